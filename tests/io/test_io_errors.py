"""Every bad input named in issue 2 gets a clear error naming the file and what to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from affine import Affine

from changedetect.errors import GeoreferenceError, TileReadError, TimeSeriesError
from changedetect.io import open_series, open_stack


def _tile(write_tif, path: Path, bands: int = 3, size: int = 32, **kw) -> Path:
    data = np.random.default_rng(len(path.name)).integers(
        1, 250, (bands, size, size), dtype=np.uint16
    )
    return write_tif(path, data, **kw)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(TileReadError, match=r"'.*nowhere' does not exist; pass a folder of tiles"):
        open_series(tmp_path / "nowhere")


def test_missing_file_in_a_manifest(write_tif, tmp_path: Path) -> None:
    _tile(write_tif, tmp_path / "a.tif")
    (tmp_path / "m.csv").write_text("path,date\na.tif,2024-01-01\nb.tif,2024-02-01\n")
    with pytest.raises(
        TileReadError,
        match=r"tile '.*b\.tif', listed in manifest '.*m\.csv', line 3, does not exist.*resolved against the "
              r"folder of the file that lists it",
    ):
        open_series(tmp_path / "m.csv")


def test_a_missing_raster_given_by_name_gets_no_manifest_hint() -> None:
    """The manifest's hint only where a manifest (or a STAC item) listed the file (a review found it on
    `changedetect info missing.tif`, where no manifest is involved)."""
    from changedetect.io._inspect import inspect_raster

    with pytest.raises(TileReadError) as err:
        inspect_raster("nowhere/b.tif")
    assert "does not exist" in str(err.value) and "manifest" not in str(err.value)


def test_a_manifest_without_a_date_column_says_so(write_tif, tmp_path: Path) -> None:
    _tile(write_tif, tmp_path / "a.tif")
    (tmp_path / "m.csv").write_text("path,when\na.tif,2024-01-01\n")
    with pytest.raises(TimeSeriesError, match=r"has no 'date' column \(columns: path, when\)"):
        open_series(tmp_path / "m.csv")
    (tmp_path / "m.csv").write_text("path,date\na.tif,2024-01-01\na.tif,someday\n")
    with pytest.raises(TimeSeriesError, match=r"line 3: date 'someday' is missing or not a date"):
        open_series(tmp_path / "m.csv")  # the line a spreadsheet shows (the header is line 1)


def test_not_a_raster(write_tif, tmp_path: Path) -> None:
    _tile(write_tif, tmp_path / "a_20240101.tif")
    (tmp_path / "b_20240201.tif").write_text("path,date\nthis is a CSV saved as .tif\n")
    with pytest.raises(
        TileReadError, match=r"b_20240201\.tif' is not a raster GDAL can read .*unknown format"
    ):
        open_series(tmp_path)


@pytest.mark.parametrize("keep", [0.5, 100])
def test_truncated_geotiff(write_tif, tmp_path: Path, keep: float) -> None:
    path = _tile(write_tif, tmp_path / "a_20240101.tif", bands=1, size=256)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep) if keep < 1 else int(keep)])
    with pytest.raises(
        TileReadError, match=r"a_20240101\.tif.* truncated.*copy or download it again"
    ):
        open_series(path)


def test_truncation_found_at_read_time_names_the_file(
    write_tif, tmp_path: Path, monkeypatch
) -> None:
    path = _tile(write_tif, tmp_path / "a_20240101.tif", bands=1, size=256)
    stack = open_stack(path, chunks=64)
    path.write_bytes(path.read_bytes()[:2000])  # damaged after opening, before reading
    with pytest.raises(
        TileReadError, match=r"reading band 1 of '.*a_20240101\.tif'.*truncated or corrupt"
    ):
        stack.values  # noqa: B018


def test_geotiff_without_crs(write_tif, tmp_path: Path) -> None:
    _tile(write_tif, tmp_path / "a_20240101.tif")
    _tile(
        write_tif,
        tmp_path / "b_20240201.tif",
        crs=None,
        transform=Affine(0.5, 0, 683_000, 0, -0.5, 1_203_000),
    )
    with pytest.raises(
        GeoreferenceError,
        match=r"b_20240201\.tif' has a geotransform but no CRS; assign its CRS .*rio edit-info",
    ):
        open_series(tmp_path)


def test_no_date_in_the_name(write_tif, tmp_path: Path) -> None:
    _tile(write_tif, tmp_path / "a_20240101.tif")
    _tile(write_tif, tmp_path / "latest.tif")
    with pytest.raises(
        TimeSeriesError,
        match=r"no date in the file name '.*latest\.tif'.*rename it like 'tile_20240131\.tif'.*manifest",
    ):
        open_series(tmp_path)


def test_pattern_picks_which_date_in_the_name(write_tif, tmp_path: Path) -> None:
    import datetime as dt

    _tile(write_tif, tmp_path / "S2_20240131_proc20240305.tif")
    assert open_series(tmp_path).dates == [dt.date(2024, 1, 31)]
    assert open_series(tmp_path, pattern=r"proc(?P<date>\d{8})").dates == [dt.date(2024, 3, 5)]
    with pytest.raises(TimeSeriesError, match=r"looked for the pattern 'acq\(\?P<date>"):
        _tile(write_tif, tmp_path / "S2_20240229_proc20240301.tif")
        open_series(tmp_path, pattern=r"acq(?P<date>\d{8})")


def test_duplicated_date(write_tif, tmp_path: Path) -> None:
    _tile(write_tif, tmp_path / "tile_20240101.tif")
    _tile(write_tif, tmp_path / "tile_2024-01-01.tif")
    with pytest.raises(
        TimeSeriesError,
        match=r"date 2024-01-01 appears more than once \(.*tile_2024-01-01\.tif.*keep one file per date",
    ):
        open_series(tmp_path)


def test_duplicated_date_in_a_manifest(write_tif, tmp_path: Path) -> None:
    _tile(write_tif, tmp_path / "a.tif")
    _tile(write_tif, tmp_path / "b.tif")
    (tmp_path / "m.json").write_text(
        json.dumps([{"path": "a.tif", "date": "2024-03-05"}, {"path": "b.tif", "date": "20240305"}])
    )
    with pytest.raises(TimeSeriesError, match="date 2024-03-05 appears more than once"):
        open_series(tmp_path / "m.json")


def test_band_count_differs_between_dates(write_tif, tmp_path: Path) -> None:
    _tile(write_tif, tmp_path / "tile_20240101.tif", bands=4)
    _tile(write_tif, tmp_path / "tile_20240201.tif", bands=3)
    with pytest.raises(
        TimeSeriesError,
        match=r"2024-02-01 \('.*tile_20240201\.tif'\) has 3 band\(s\) but 2024-01-01 .* has 4; every date must have the same bands",
    ):
        open_series(tmp_path)


def test_band_names_differ_between_dates(write_tif, tmp_path: Path) -> None:
    _tile(write_tif, tmp_path / "tile_20240101.tif", descriptions=["red", "green", "blue"])
    _tile(write_tif, tmp_path / "tile_20240201.tif", descriptions=["red", "green", "nir"])
    with pytest.raises(
        TimeSeriesError,
        match=r"has bands \['red', 'green', 'nir'\] but 2024-01-01 has \['red', 'green', 'blue'\]",
    ):
        open_series(tmp_path)


def test_extents_that_do_not_overlap(write_tif, tmp_path: Path) -> None:
    _tile(write_tif, tmp_path / "tile_20240101.tif")
    _tile(write_tif, tmp_path / "tile_20240201.tif", origin=(690_000.0, 1_203_000.0))
    with pytest.raises(
        GeoreferenceError,
        match=r"2024-02-01 \('.*tile_20240201\.tif'\) covers .* in EPSG:32648, which does not overlap 2024-01-01",
    ):
        open_series(tmp_path)


def test_overlap_is_checked_across_crs(write_tif, tmp_path: Path) -> None:
    _tile(write_tif, tmp_path / "tile_20240101.tif")  # UTM 48N, Ho Chi Minh City
    _tile(
        write_tif,
        tmp_path / "tile_20240201.tif",
        crs="EPSG:4326",
        res=1e-5,
        origin=(106.6742, 10.8781),
    )
    assert len(open_series(tmp_path).dates) == 2
    _tile(
        write_tif, tmp_path / "tile_20240301.tif", crs="EPSG:4326", res=1e-4, origin=(2.3, 48.8)
    )  # Paris
    with pytest.raises(GeoreferenceError, match="does not overlap"):
        open_series(tmp_path)


def test_mixed_georeferenced_and_plain_images(write_tif, tmp_path: Path) -> None:
    from PIL import Image

    _tile(write_tif, tmp_path / "tile_20240101.tif")
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "tile_20240201.png")
    with pytest.raises(GeoreferenceError, match="mix of georeferenced and plain images"):
        open_series(tmp_path)


def test_empty_folder_and_unknown_band(write_tif, tmp_path: Path, shared_data: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(TileReadError, match="holds no raster files"):
        open_series(tmp_path / "empty")
    city = tmp_path / "city"
    shutil.copytree(shared_data / "oscd" / "images" / "pisa", city)
    (city / "dates.txt").write_text("date_1: 20150704\n")
    with pytest.raises(
        TimeSeriesError, match=r"dates\.txt' lists 1 dates but .* has 2 image folders"
    ):
        open_series(city)


def test_unknown_band_name(write_tif, tmp_path: Path) -> None:
    _tile(write_tif, tmp_path / "tile_20240101.tif", descriptions=["red", "green", "blue"])
    with pytest.raises(
        TimeSeriesError, match="band\\(s\\) nir not in .*available: red, green, blue"
    ):
        open_stack(tmp_path, bands=["nir"])
