"""Review of the raster input layer and the permit register reader with real-world-shaped inputs.

Each test builds a small input in ``tmp_path`` the way users' files come (rotated GeoTIFFs,
GeoPackages with several layers, Excel CSVs in a Vietnamese locale, ...) and checks for a
correct result or one clear error naming the file, row or band and what to do.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
from affine import Affine
from shapely.geometry import box

from changedetect.errors import PermitSchemaError, RegisterReadError, TileReadError, TimeSeriesError
from changedetect.io import open_series
from changedetect.permits import load_register
from changedetect.types import Grid

X0, Y0 = 680_000.0, 1_200_000.0  # UTM 48N, Ho Chi Minh City


def _tif(path: Path, transform: Affine | None = None, *, size: int = 32, seed: int = 0) -> Path:
    data = np.random.default_rng(seed).integers(1, 250, (3, size, size)).astype("uint8")
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8",
                       crs="EPSG:32648", transform=transform or Affine(1, 0, X0, 0, -1, Y0)) as dst:
        dst.write(data)
    return path


def _register(n: int = 3, crs: str = "EPSG:32648") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({
        "permit_id": [f"GP-{i}" for i in range(n)],
        "permit_type": ["new_construction"] * n,
        "issued_on": ["2024-01-01"] * n,
        "valid_until": ["2025-01-01"] * n,
        "permitted_area_m2": [100.0] * n,
        "status": ["active"] * n,
    }, geometry=[box(X0 + 20 * i, Y0, X0 + 20 * i + 10, Y0 + 10) for i in range(n)], crs=crs)


# --------------------------------------------------------------------------- rasters


def _apply(t: Affine, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f

_NORTH_UP = Affine(1, 0, X0, 0, -1, Y0)


@pytest.mark.parametrize("transform", [
    _NORTH_UP @ Affine.rotation(20),                          # rotated
    Affine(1, 0, X0 + 32, 0, -1, Y0) @ Affine.rotation(90),   # a quarter turn
    Affine(1, 0.3, X0, 0, -1, Y0),                            # sheared
    Affine(1, 0, X0, 0, 1, Y0 - 32),                          # south-up (rows go north)
], ids=["rotated", "rotated-90", "sheared", "south-up"])
@pytest.mark.parametrize("first", [True, False], ids=["reference", "second"])
def test_rotated_sheared_and_south_up_geotiffs_are_read_onto_a_north_up_grid(
    tmp_path: Path, transform: Affine, first: bool
) -> None:
    # Before: a rotated first date became the stack's grid, its x/y coordinates computed as if it
    # were north-up (silently wrong ground); a quarter turn was "does not overlap" with zero-size
    # bounds; a south-up file failed every read as "truncated or corrupt".
    odd = _tif(tmp_path / ("a_20240101.tif" if first else "b_20240301.tif"), transform, seed=1)
    _tif(tmp_path / ("b_20240301.tif" if first else "a_20240101.tif"), _NORTH_UP)
    series = open_series(tmp_path)
    stack = series.to_stack(resampling="nearest")
    grid = Grid.of(stack)
    assert (grid.transform.b, grid.transform.d) == (0, 0) and grid.transform.a > 0 > grid.transform.e
    assert series.bands[0].resolution == pytest.approx(1.0, rel=0.05)
    # each pixel whose centre falls inside the odd file holds the value of the file's pixel there
    with rasterio.open(odd) as src:
        data, inverse = src.read(1), ~src.transform
    got = stack.isel(time=0 if first else 1, band=0).values
    rows, cols = np.mgrid[0:grid.height, 0:grid.width]
    xs, ys = _apply(grid.transform, cols + 0.5, rows + 0.5)
    c, r = _apply(inverse, xs, ys)
    inside = (c > 0.5) & (c < 31.5) & (r > 0.5) & (r < 31.5)
    inside &= (np.abs(c - np.round(c)) > 0.01) & (np.abs(r - np.round(r)) > 0.01)  # not on a pixel edge
    assert inside.sum() > 200
    expected = data[np.floor(r[inside]).astype(int), np.floor(c[inside]).astype(int)]
    np.testing.assert_array_equal(got[inside], expected)


# --------------------------------------------------------------------------- permits

def test_geopackage_with_several_layers_needs_a_layer(tmp_path: Path) -> None:
    # Before: the first layer was read with pyogrio's warning only, whichever year it held.
    path = tmp_path / "permits.gpkg"
    _register(3).to_file(path, layer="giay_phep_2023")
    _register(2).to_file(path, layer="giay_phep_2024")
    with pytest.raises(RegisterReadError, match=r"permits\.gpkg' has 2 layers \(giay_phep_2023, giay_phep_2024\).*--layer"):
        load_register(path)
    assert len(load_register(path, layer="giay_phep_2024")) == 2


def test_geopackage_layer_without_geometry_is_one_clear_error(tmp_path: Path) -> None:
    # Before: AttributeError: 'DataFrame' object has no attribute 'crs'.
    path = tmp_path / "permits.gpkg"
    pyogrio.write_dataframe(pd.DataFrame(_register().drop(columns="geometry")), path, layer="bang", driver="GPKG")
    with pytest.raises(RegisterReadError, match=r"permits\.gpkg'.*layer 'bang' has no geometry"):
        load_register(path)

def test_projected_coordinates_in_a_lonlat_register_are_named(tmp_path: Path) -> None:
    # x/y columns of a CSV are taken as EPSG:4326: UTM metres there were kept as 'degrees' and
    # no permit could ever match a footprint (every structure unlicensed).
    path = tmp_path / "permits.csv"
    path.write_text("permit_id,permit_type,issued_on,valid_until,permitted_area_m2,status,x,y\n"
                    "A,new_construction,2024-01-01,2025-01-01,100,active,106.62,10.86\n"
                    "B,new_construction,2024-01-01,2025-01-01,100,active,680005,1200005\n", encoding="utf-8")
    with pytest.raises(PermitSchemaError, match=r"row 2 \(permit_id 'B'\), column 'geometry': .*680005.*EPSG:4326.*--permits-crs"):
        load_register(path)
    assert list(load_register(path, strict=False)["permit_id"]) == ["A"]

def test_semicolon_manifest_from_a_vietnamese_excel(tmp_path: Path) -> None:
    # Excel in a locale whose decimal mark is a comma (vi-VN) saves CSV with ';' between fields.
    _tif(tmp_path / "a.tif")
    _tif(tmp_path / "b.tif", seed=1)
    (tmp_path / "list.csv").write_text("path;date\na.tif;2024-01-15\nb.tif;2024-03-15\n", encoding="utf-8")
    assert open_series(tmp_path / "list.csv").dates == [dt.date(2024, 1, 15), dt.date(2024, 3, 15)]


def test_semicolon_register_csv(tmp_path: Path) -> None:
    path = tmp_path / "permits.csv"
    path.write_text("permit_id;permit_type;issued_on;valid_until;permitted_area_m2;status;wkt\n"
                    f"A;new_construction;2024-01-01;2025-01-01;100;active;POINT ({X0} {Y0})\n", encoding="utf-8")
    assert list(load_register(path, crs="EPSG:32648")["permit_id"]) == ["A"]
def test_mosaic_tiles_of_one_date_say_how_to_mosaic(tmp_path: Path) -> None:
    # A date delivered as two tiles side by side (with a gap between them): the message used to
    # suggest naming each file's bands in a manifest (which would make a 6-band date).
    _tif(tmp_path / "t1_20240101.tif")
    _tif(tmp_path / "t2_20240101.tif", Affine(1, 0, X0 + 40, 0, -1, Y0), seed=1)
    _tif(tmp_path / "b_20240301.tif", seed=2)
    with pytest.raises(TimeSeriesError, match=r"t1_20240101\.tif.*t2_20240101\.tif.*gdalbuildvrt"):
        open_series(tmp_path)

def test_day_month_year_dates_get_their_iso_form_in_the_message(tmp_path: Path) -> None:
    # dd/mm/yyyy is how dates are written in Vietnam; the message says how to write them.
    reg = _register(1)
    reg["issued_on"] = ["15/01/2024"]
    path = tmp_path / "permits.gpkg"
    reg.to_file(path)
    with pytest.raises(PermitSchemaError, match=r"'15/01/2024' is not a date.*day/month/year.*2024-01-15"):
        load_register(path)


def test_day_first_file_names_with_a_pattern_of_named_parts(tmp_path: Path) -> None:
    # 'anh_15-01-2024.tif': a pattern whose group holds the day-first text used to give
    # "no date in the file name" (it had matched), and no pattern could read such names.
    for name in ("anh_15-01-2024.tif", "anh_15-03-2024.tif"):
        _tif(tmp_path / name)
    with pytest.raises(TimeSeriesError, match=r"finds '15-01-2024' in the file name 'anh_15-01-2024\.tif'.*\?P<day>"):
        open_series(tmp_path, pattern=r"(\d{2}-\d{2}-\d{4})")
    dated = open_series(tmp_path, pattern=r"(?P<day>\d{2})-(?P<month>\d{2})-(?P<year>\d{4})")
    assert dated.dates == [dt.date(2024, 1, 15), dt.date(2024, 3, 15)]


def test_vrt_mosaic_whose_source_is_gone_names_it(tmp_path: Path) -> None:
    # A VRT built by gdalbuildvrt points at its tiles; with one moved away, every read failed as
    # "Read failed. See previous exception ...; the file may be truncated or corrupt".
    _tif(tmp_path / "a_20240101.tif")
    tile = _tif(tmp_path / "tile.tif", seed=1)
    vrt = tmp_path / "b_20240301.vrt"
    bands = "".join(
        f'<VRTRasterBand dataType="Byte" band="{b}"><ColorInterp>{c}</ColorInterp><SimpleSource><SourceFilename '
        f'relativeToVRT="1">tile.tif</SourceFilename><SourceBand>{b}</SourceBand></SimpleSource></VRTRasterBand>'
        for b, c in ((1, "Red"), (2, "Green"), (3, "Blue")))
    vrt.write_text(f'<VRTDataset rasterXSize="32" rasterYSize="32"><SRS>EPSG:32648</SRS>'
                   f"<GeoTransform>{X0}, 1, 0, {Y0}, 0, -1</GeoTransform>{bands}</VRTDataset>")
    assert len(open_series([tmp_path / "a_20240101.tif", vrt]).dates) == 2  # whole, it reads
    tile.rename(tmp_path / "moved.tif")
    with pytest.raises(TileReadError, match=r"b_20240301\.vrt' is a VRT whose source file '.*tile\.tif' does not exist"):
        open_series(tmp_path)


_HEADER = "permit_id,permit_type,issued_on,valid_until,permitted_area_m2,status"


def test_excel_csv_with_empty_trailing_columns_and_rows(tmp_path: Path) -> None:
    # Excel exports formatted-but-empty columns as ",," and empty rows as ",,,,": it was
    # "ValueError: Buffer has wrong number of dimensions" (several columns named '').
    path = tmp_path / "permits.csv"
    path.write_text(f"{_HEADER},wkt,,\nA,new_construction,2024-01-01,2025-01-01,100,active,POINT ({X0} {Y0}),,\n"
                    ",,,,,,,,\n", encoding="utf-8")
    permits = load_register(path, crs="EPSG:32648")
    assert list(permits["permit_id"]) == ["A"] and "" not in permits.columns


def test_csv_columns_named_twice_are_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "permits.csv"
    path.write_text(f"{_HEADER},note,note,wkt\nA,new_construction,2024-01-01,2025-01-01,100,active,a,b,POINT (1 2)\n",
                    encoding="utf-8")
    with pytest.raises(PermitSchemaError, match=r"permits\.csv' has the column\(s\) 'note' more than once"):
        load_register(path, crs="EPSG:32648")


def test_unquoted_separator_in_a_csv_value_names_the_row(tmp_path: Path) -> None:
    # An address with an unquoted comma in the last column: its tail ', Phường 5' was dropped silently.
    path = tmp_path / "permits.csv"
    path.write_text(f"{_HEADER},wkt,address\n"
                    f"A,new_construction,2024-01-01,2025-01-01,100,active,POINT ({X0} {Y0}),\"12 Lê Lợi, Phường 5\"\n"
                    f"B,new_construction,2024-01-01,2025-01-01,100,active,POINT ({X0} {Y0}),12 Lê Lợi, Phường 5\n",
                    encoding="utf-8")
    with pytest.raises(PermitSchemaError, match=r"row 2 \(permit_id 'B'\): the line has 9 fields but the header 8"):
        load_register(path, crs="EPSG:32648")
    kept = load_register(path, crs="EPSG:32648", strict=False)
    assert list(kept["address"]) == ["12 Lê Lợi, Phường 5"]


def test_column_map_onto_a_column_the_register_has(tmp_path: Path) -> None:
    # Mapping 'so_gp_moi' onto 'permit_id' in a register that has a 'permit_id' column too was
    # "AttributeError: 'DataFrame' object has no attribute 'tolist'".
    path = tmp_path / "permits.gpkg"
    _register().assign(so_gp_moi=["X1", "X2", "X3"]).to_file(path)
    with pytest.raises(PermitSchemaError, match=r"'permit_id' and 'so_gp_moi' would all be named 'permit_id'"):
        load_register(path, column_map={"so_gp_moi": "permit_id"})
    renamed = load_register(path, column_map={"permit_id": "old_permit_id", "so_gp_moi": "permit_id"})
    assert list(renamed["permit_id"]) == ["X1", "X2", "X3"]
