"""Vector writers: every format round-trips, writes are atomic, no silent overwrite."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from shapely.geometry import box

from changedetect.errors import OutputExistsError
from changedetect.io.vectors import write_vector


@pytest.fixture()
def frame() -> gpd.GeoDataFrame:
    x0, y0 = 686_000.0, 1_192_000.0  # Ho Chi Minh City, EPSG:32648
    return gpd.GeoDataFrame(
        {
            "violation_id": ["v1", "v2"],
            "status": ["unlicensed", "permitted"],
            "permit_ids": [["P-1", "P-2"], []],
            "area_m2": [150.0, 80.5],
            "first_seen": [dt.date(2024, 3, 1), None],
            "detected": pd.to_datetime(["2024-03-01", None]),
            "address": ["12 Đường Lê Lợi, Quận 1", "Phường Bến Nghé"],
        },
        geometry=[box(x0, y0, x0 + 10, y0 + 15), box(x0 + 50, y0, x0 + 58, y0 + 10)],
        crs="EPSG:32648",
    )


@pytest.mark.parametrize("ext", [".gpkg", ".geojson", ".csv", ".parquet"])
def test_roundtrip(frame: gpd.GeoDataFrame, tmp_path: Path, ext: str) -> None:
    path = write_vector(frame, tmp_path / f"out{ext}")
    assert path.exists()
    sides = [".csvt", ".prj"] if ext == ".csv" else []  # GDAL's CRS and field types beside a CSV
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"out{s}" for s in [ext, *sides])  # no temp files
    if ext == ".csv":
        table = pd.read_csv(path)
        back = gpd.GeoDataFrame(table, geometry=gpd.GeoSeries.from_wkt(table["wkt"]), crs=4326)
        assert {"lon", "lat", "wkt"} <= set(table.columns)
        assert table["lon"].between(106, 107).all() and table["lat"].between(10, 11).all()
    elif ext == ".parquet":
        back = gpd.read_parquet(path)
    else:
        back = gpd.read_file(path)
    if ext == ".geojson":
        assert back.crs.to_epsg() == 4326
    back = back.to_crs(frame.crs)
    assert back.geometry.iloc[0].symmetric_difference(frame.geometry.iloc[0]).area < 0.5
    assert list(back["permit_ids"].fillna("")) == ["P-1,P-2", ""]
    assert back["address"].iloc[0] == "12 Đường Lê Lợi, Quận 1"
    assert str(pd.Timestamp(back["first_seen"].iloc[0]).date()) == "2024-03-01"


def test_gpkg_field_types(frame: gpd.GeoDataFrame, tmp_path: Path) -> None:
    path = write_vector(frame, tmp_path / "v.gpkg", layer="violations")
    info = pyogrio.read_info(path, layer="violations")
    types = dict(zip(info["fields"], info["ogr_types"], strict=True))
    assert types["first_seen"] == "OFTDate"
    assert types["detected"] == "OFTDate"  # whole-day timestamps are written as dates
    assert types["area_m2"] == "OFTReal"
    assert types["permit_ids"] == "OFTString"
    assert info["crs"] == "EPSG:32648"


def test_refuses_overwrite(frame: gpd.GeoDataFrame, tmp_path: Path) -> None:
    path = write_vector(frame, tmp_path / "v.gpkg")
    before = path.read_bytes()
    with pytest.raises(OutputExistsError, match="overwrite"):
        write_vector(frame.iloc[:1], path)
    assert path.read_bytes() == before
    write_vector(frame.iloc[:1], path, overwrite=True)
    assert len(gpd.read_file(path)) == 1


def test_failed_write_leaves_nothing(frame: gpd.GeoDataFrame, tmp_path: Path) -> None:
    bad = frame.copy()
    bad["broken"] = [object(), object()]  # not writable by any driver
    with pytest.raises(Exception):  # noqa: B017 - the driver's own error
        write_vector(bad, tmp_path / "v.parquet")
    assert list(tmp_path.iterdir()) == []


def test_unknown_extension(frame: gpd.GeoDataFrame, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.gpkg"):
        write_vector(frame, tmp_path / "v.shp")


def test_the_csv_carries_a_utf8_mark_for_excel_and_reads_back_everywhere(frame: gpd.GeoDataFrame,
                                                                          tmp_path: Path) -> None:
    """Excel on Windows opens a CSV without a byte-order mark in the local code page: 'Đường Lê Lợi'
    came out as 'Ä�Æ°á»�ng'.  With the mark, pandas, GDAL (and QGIS through it) read the same columns."""
    path = write_vector(frame, tmp_path / "v.csv")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert pd.read_csv(path).columns[0] == "violation_id"
    back = pyogrio.read_dataframe(path)
    assert back.columns[0] == "violation_id" and back["address"].iloc[0] == "12 Đường Lê Lợi, Quận 1"


def test_an_empty_list_is_a_polygon_layer_like_a_full_one(frame: gpd.GeoDataFrame, tmp_path: Path) -> None:
    """A quiet night's violation list was a generic-geometry ('Unknown') layer, a night with rows a Polygon one."""
    import pyogrio

    write_vector(frame.iloc[:0], tmp_path / "empty.gpkg", empty_geometry_type="Polygon")
    write_vector(frame, tmp_path / "full.gpkg", empty_geometry_type="Polygon")
    assert pyogrio.read_info(tmp_path / "full.gpkg")["geometry_type"] == "Polygon"
    assert pyogrio.read_info(tmp_path / "empty.gpkg")["geometry_type"] == "Polygon"
    write_vector(frame.iloc[:0], tmp_path / "any.gpkg")  # a frame of any geometry: not said to be polygons
    assert pyogrio.read_info(tmp_path / "any.gpkg")["geometry_type"] == "Unknown"
