"""open_series / to_stack on synthetic tiles of every accepted layout."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image

from changedetect.errors import NotGeoreferencedWarning
from changedetect.io import open_series, open_stack
from changedetect.types import Grid, check_tilestack


def test_directory_of_dated_tiles(make_series) -> None:
    folder = make_series(n=3, size=40)
    series = open_series(folder)
    assert series.dates == [dt.date(2024, 1, 10), dt.date(2024, 1, 11), dt.date(2024, 1, 12)]
    assert series.band_names == ["red", "green", "blue", "nir"]
    assert series.bands[0].resolution == pytest.approx(0.5)
    assert series.crs.to_epsg() == 32648
    stack = series.to_stack(chunks=16)
    check_tilestack(stack)
    assert isinstance(stack.data, da.Array)
    assert stack.shape == (3, 4, 40, 40)
    assert stack.dtype == np.float32
    assert stack.rio.crs.to_epsg() == 32648
    assert stack.rio.transform() == Affine(0.5, 0, 683_000, 0, -0.5, 1_203_000)
    assert stack.attrs["sources"][1].endswith("tile_20240111.tif")
    with rasterio.open(folder / "tile_20240111.tif") as src:
        expected = src.read().astype(np.float32)
    expected[expected == 0] = np.nan
    np.testing.assert_array_equal(stack.isel(time=1).values, expected)


def test_iso_dates_and_nodata_become_nan(write_tif, tmp_path: Path) -> None:
    data = np.arange(64, dtype=np.uint16).reshape(8, 8)
    data[0, 0] = 9999
    write_tif(tmp_path / "a_2023-05-01.tif", data, nodata=9999)
    write_tif(tmp_path / "b_2023-04-01.tif", data + 1, nodata=9999)
    stack = open_stack(tmp_path)
    assert list(stack.time.dt.strftime("%Y-%m-%d").values) == ["2023-04-01", "2023-05-01"]
    assert np.isnan(stack.values[1, 0, 0, 0])
    assert stack.values[1, 0, 0, 1] == 1
    assert list(stack.band.values) == ["B1"]


def test_manifest_csv_relative_paths_and_band_names(write_tif, tmp_path: Path, rng) -> None:
    for name in ("x.tif", "y.tif"):
        write_tif(tmp_path / "data" / name, rng.integers(0, 100, (3, 10, 12), dtype=np.uint8))
    (tmp_path / "data" / "m.csv").write_text(
        "path,date,bands\nx.tif,2022-01-02,a;b;c\ny.tif,20220301,a;b;c\n"
    )
    series = open_series(tmp_path / "data" / "m.csv")
    assert series.kind == "manifest"
    assert series.band_names == ["a", "b", "c"]
    assert series.files == [tmp_path / "data" / "x.tif", tmp_path / "data" / "y.tif"]
    assert series.to_stack().shape == (2, 3, 10, 12)


def test_manifest_json_in_folder_is_preferred(write_tif, tmp_path: Path, rng) -> None:
    for day in (1, 2):
        write_tif(tmp_path / f"scene{day}.tif", rng.integers(0, 100, (2, 6, 6), dtype=np.uint8))
    manifest = {
        "tiles": [
            {"path": "scene2.tif", "date": "2021-06-02"},
            {"path": "scene1.tif", "date": "2021-06-01"},
        ]
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    series = open_series(tmp_path)
    assert series.dates == [dt.date(2021, 6, 1), dt.date(2021, 6, 2)]
    assert series.files[0].name == "scene1.tif"


def test_band_per_file_with_different_resolutions(write_tif, tmp_path: Path, rng) -> None:
    for day in ("20200101", "20200201"):
        write_tif(
            tmp_path / f"T48_{day}_B02.tif", rng.integers(1, 999, (20, 20), dtype=np.uint16), res=10
        )
        write_tif(
            tmp_path / f"T48_{day}_B8A.tif", rng.integers(1, 999, (10, 10), dtype=np.uint16), res=20
        )
        write_tif(
            tmp_path / f"T48_{day}_B01.tif", rng.integers(1, 999, (4, 4), dtype=np.uint16), res=50
        )
    series = open_series(tmp_path)
    assert series.band_names == ["B01", "B02", "B8A"]
    assert [b.grid.shape for b in series.bands] == [(4, 4), (20, 20), (10, 10)]
    assert [b.nominal_resolution for b in series.bands] == [60, 10, 20]
    assert series.reference_grid().shape == (20, 20)
    stack = series.to_stack(resampling="nearest", chunks=7)
    assert stack.shape == (2, 3, 20, 20)
    with rasterio.open(tmp_path / "T48_20200201_B8A.tif") as src:
        coarse = src.read(1).astype(np.float32)
    np.testing.assert_array_equal(stack.sel(band="B8A").values[1], np.kron(coarse, np.ones((2, 2))))
    tiled = series.to_stack(resampling="bilinear", chunks=7).values  # no seams between blocks
    np.testing.assert_allclose(
        tiled, series.to_stack(resampling="bilinear", chunks=64).values, atol=1e-3
    )
    coarser = series.to_stack(series.reference_grid(resolution=40), resampling="average")
    assert coarser.shape == (2, 3, 5, 5)


def test_list_of_paths_and_band_selection(make_series) -> None:
    folder = make_series(n=2, size=16)
    files = sorted(folder.glob("*.tif"))
    stack = open_stack([str(f) for f in files], bands=["nir", "red"])
    assert list(stack.band.values) == ["nir", "red"]
    assert stack.shape == (2, 2, 16, 16)


def test_to_stack_onto_a_shifted_grid_in_another_crs(make_series) -> None:
    folder = make_series(n=2, size=32)
    series = open_series(folder)
    grid = Grid(
        crs=series.crs,
        transform=Affine(0.5, 0, 683_008.0, 0, -0.5, 1_203_000.0),
        width=32,
        height=32,
    )
    stack = series.to_stack(grid, resampling="nearest")
    assert np.isnan(stack.values[0, 0, :, -16:]).all()  # beyond the tile's east edge
    native = series.to_stack().values
    np.testing.assert_array_equal(stack.values[:, :, :, :16], native[:, :, :, 16:])
    geographic = Grid(
        crs=4326, transform=Affine(1e-5, 0, 106.6711, 0, -1e-5, 10.8810), width=8, height=8
    )
    assert open_series(folder).to_stack(geographic).rio.crs.to_epsg() == 4326


def test_png_pairs_warn_and_use_pixel_coordinates(tmp_path: Path, rng) -> None:
    for name in ("img1.png", "img2.png"):
        Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)).save(tmp_path / name)
    with pytest.warns(NotGeoreferencedWarning, match="pixel coordinates"):
        series = open_series([tmp_path / "img1.png", tmp_path / "img2.png"])
    assert series.placeholder_dates and not series.georeferenced
    stack = series.to_stack()
    assert stack.shape == (2, 3, 12, 10)
    assert stack.rio.crs is None
    np.testing.assert_array_equal(
        stack.values[0].transpose(1, 2, 0), np.asarray(Image.open(tmp_path / "img1.png"))
    )


def test_png_pair_takes_dates_txt_from_the_parent(tmp_path: Path, rng) -> None:
    (tmp_path / "pair").mkdir()
    for name in ("img1.png", "img2.png"):
        Image.fromarray(rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)).save(
            tmp_path / "pair" / name
        )
    (tmp_path / "dates.txt").write_text("date_1: 20161130\ndate_2: 20171107\n")
    with pytest.warns(NotGeoreferencedWarning):
        series = open_series(tmp_path / "pair")
    assert series.dates == [dt.date(2016, 11, 30), dt.date(2017, 11, 7)]


def test_stac_item_with_local_cogs(write_tif, tmp_path: Path, rng) -> None:
    write_tif(tmp_path / "assets" / "blue.tif", rng.integers(0, 999, (8, 8), dtype=np.uint16))
    write_tif(tmp_path / "assets" / "nir.tif", rng.integers(0, 999, (8, 8), dtype=np.uint16))
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "d12-2024-03-01",
        "properties": {"datetime": "2024-03-01T03:20:00Z"},
        "geometry": None,
        "assets": {
            "blue": {
                "href": "assets/blue.tif",
                "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                "roles": ["data"],
                "eo:bands": [{"name": "B02"}],
            },
            "nir": {
                "href": "./assets/nir.tif",
                "type": "image/tiff; application=geotiff",
                "roles": ["data"],
            },
            "thumb": {"href": "thumb.png", "type": "image/png", "roles": ["thumbnail"]},
        },
    }
    (tmp_path / "item.json").write_text(json.dumps(item))
    series = open_series(tmp_path / "item.json")
    assert series.kind == "stac"
    assert series.dates == [dt.date(2024, 3, 1)]
    assert series.band_names == ["B02", "nir"]


def test_open_series_reads_no_pixels(make_series, monkeypatch) -> None:
    folder = make_series(n=2, size=16)

    def boom(*args, **kwargs):
        raise AssertionError("open_series must not read pixels")

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", boom)
    monkeypatch.setattr(rasterio.io.DatasetReader, "read_masks", boom)
    series = open_series(folder)
    stack = series.to_stack()  # building the lazy stack reads nothing either
    assert stack.shape == (2, 4, 16, 16)
    with pytest.raises(AssertionError, match="must not read"):
        stack.values  # noqa: B018


def test_oscd_paris_all_13_bands_on_the_10m_grid_lazily(shared_data: Path) -> None:
    city = shared_data / "oscd" / "images" / "paris"
    series = open_series(city)
    assert series.dates == [dt.date(2016, 11, 30), dt.date(2017, 11, 7)]
    assert series.band_names == [
        "B01",
        "B02",
        "B03",
        "B04",
        "B05",
        "B06",
        "B07",
        "B08",
        "B8A",
        "B09",
        "B10",
        "B11",
        "B12",
    ]
    nominal = {b.name: b.nominal_resolution for b in series.bands}
    for band in series.bands:  # ground sizes measured at the scene centre, within 10 % of nominal
        assert band.resolution == pytest.approx(nominal[band.name], rel=0.1), band.name
    b02 = next((city / "imgs_1").glob("*_B02.tif"))
    with rasterio.open(b02) as src:
        shape, reference = src.shape, src.read(1)
    stack = series.to_stack()
    assert isinstance(stack.data, da.Array)
    assert stack.shape == (2, 13, *shape)
    np.testing.assert_array_equal(stack.sel(band="B02").isel(time=0).values, reference)
    assert not np.isnan(stack.sel(band="B01").values).any()


def test_oscd_single_date_folder_takes_its_date_from_dates_txt(shared_data: Path) -> None:
    series = open_series(shared_data / "oscd" / "images" / "aguasclaras" / "imgs_1")
    assert series.dates == [dt.date(2015, 9, 16)]  # the file names say 2016-12-27: dates.txt wins
    assert len(series.bands) == 13


def test_real_rgb_byte_and_solaris(shared_data: Path, tmp_path: Path) -> None:
    shutil.copy(shared_data / "rasterio" / "RGB.byte.tif", tmp_path / "rgb_20010101.tif")
    shutil.copy(shared_data / "solaris" / "sample_geotiff.tif", tmp_path / "sol_20200101.tif")
    rgb = open_series(tmp_path / "rgb_20010101.tif")
    assert rgb.band_names == ["red", "green", "blue"]
    assert rgb.bands[0].resolution == pytest.approx(300, rel=0.01)
    stack = rgb.to_stack(chunks=256)
    assert stack.shape == (1, 3, 718, 791)
    assert np.isnan(stack.values[0, 0, 0, 0])  # nodata=0 in the corners
    sol = open_series(tmp_path / "sol_20200101.tif")
    assert sol.bands[0].resolution == pytest.approx(0.5, rel=0.01)
    assert sol.crs.to_epsg() == 32616


def test_manifest_json_mapping_of_dates_with_shared_band_names(
    write_tif, tmp_path: Path, rng
) -> None:
    for day in (3, 4):
        write_tif(tmp_path / f"s{day}.tif", rng.integers(0, 9, (2, 5, 5), dtype=np.uint8))
    doc = {
        "bands": [{"name": "red"}, {"name": "nir"}],
        "dates": {"2020-02-04": "s4.tif", "2020-02-03": "s3.tif"},
    }
    (tmp_path / "series.json").write_text(json.dumps(doc))
    series = open_series(tmp_path / "series.json")
    assert series.dates == [dt.date(2020, 2, 3), dt.date(2020, 2, 4)]
    assert series.band_names == ["red", "nir"]


def test_folder_of_stac_items(write_tif, tmp_path: Path, rng) -> None:
    for day in ("2024-01-05", "2024-02-05"):
        write_tif(tmp_path / "cogs" / f"{day}.tif", rng.integers(0, 99, (3, 8, 8), dtype=np.uint8))
        item = {
            "type": "Feature",
            "id": day,
            "properties": {"datetime": f"{day}T03:00:00Z"},
            "assets": {
                "image": {
                    "href": f"cogs/{day}.tif",
                    "eo:bands": [{"name": n} for n in ("red", "green", "blue")],
                }
            },
        }
        (tmp_path / f"item-{day}.json").write_text(json.dumps(item))
    series = open_series(tmp_path)
    assert series.kind == "stac"
    assert series.dates == [dt.date(2024, 1, 5), dt.date(2024, 2, 5)]
    assert series.band_names == ["red", "green", "blue"]
    items = open_series(sorted(tmp_path.glob("item-*.json")))  # a list of items (the nightly job)
    assert items.kind == "list" and items.dates == series.dates


def test_four_band_geotiff_flagged_rgba_is_not_masked_by_its_4th_band(
    write_tif, tmp_path: Path
) -> None:
    data = np.full((4, 8, 8), 7, dtype=np.uint8)
    data[3, :4] = 0  # NIR = 0 over water; GDAL calls band 4 "alpha" by default
    write_tif(tmp_path / "t_20240101.tif", data)
    with rasterio.open(tmp_path / "t_20240101.tif") as src:
        assert src.colorinterp[3].name == "alpha"
    stack = open_stack(tmp_path)
    assert list(stack.band.values) == ["B1", "B2", "B3", "B4"]  # order unknown without descriptions
    assert not np.isnan(stack.values).any()
    grid = open_series(tmp_path).reference_grid(resolution=1.0)  # the warped path too
    assert not np.isnan(open_stack(tmp_path, grid=grid, resampling="nearest").values).any()


def test_plain_images_regrid_keeps_rows_going_down(tmp_path: Path, rng) -> None:
    image = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    image[:4] = 0
    for name in ("a.png", "b.png"):
        Image.fromarray(image).save(tmp_path / name)
    with pytest.warns(NotGeoreferencedWarning):
        series = open_series([tmp_path / "a.png", tmp_path / "b.png"])
    half = series.to_stack(series.reference_grid(resolution=2), resampling="average")
    assert half.shape == (2, 3, 4, 4)
    assert (half.values[0, :, :2] == 0).all() and (half.values[0, :, 2:] > 0).all()
