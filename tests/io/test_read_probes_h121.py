"""Inputs a GIS hands over that the read path took for something else (review H121): each is read right,
or refused in one line naming the file and what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.rpc import RPC

from changedetect.cli import cli
from changedetect.errors import GeoreferenceError, TileReadError, TimeSeriesError
from changedetect.io import describe, open_series

BANDS = ("red", "green", "blue")


def _image(seed: int, bands: int = 3, size: int = 32, dtype: str = "uint8") -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 250, (bands, size, size)).astype(dtype)


def _dated(write_tif: Callable[..., Path], folder: Path, **kw: object) -> Path:
    """The georeferenced first date of a two-date folder."""
    return write_tif(folder / "t_20240101.tif", _image(1), descriptions=BANDS, **kw)


def _strip_georeference(path: Path) -> None:
    """Rewrite ``path`` without CRS nor geotransform (pixels and band descriptions kept)."""
    with rasterio.open(path) as src:
        data, names = src.read(), src.descriptions
    path.unlink()
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
                       count=data.shape[0], dtype=data.dtype) as dst:
        dst.write(data)
        for i, name in enumerate(names, 1):
            dst.set_band_description(i, name)


def test_a_file_georeferenced_by_gcps_only_is_named_with_the_gdalwarp_that_grids_it(
        write_tif: Callable[..., Path], tmp_path: Path) -> None:
    # was: "has no CRS and no geotransform; assign its CRS (rio edit-info --crs ...)", which would have
    # put it at pixel coordinates
    _dated(write_tif, tmp_path)
    late = write_tif(tmp_path / "t_20240301.tif", _image(2), descriptions=BANDS)
    _strip_georeference(late)
    x, y = 683_000.0, 1_203_000.0
    with rasterio.open(late, "r+") as dst:
        dst.gcps = ([GroundControlPoint(0, 0, x, y), GroundControlPoint(0, 32, x + 16, y),
                     GroundControlPoint(32, 0, x, y - 16), GroundControlPoint(32, 32, x + 16, y - 16)],
                    CRS.from_epsg(32648))
    with pytest.raises(GeoreferenceError, match=r"t_20240301\.tif' is georeferenced only by 4 ground control "
                       r"points \(GCPs in EPSG:32648\).*`gdalwarp -t_srs EPSG:32648 -r bilinear '.*t_20240301"
                       r"\.tif' OUT\.tif`") as info:
        open_series(tmp_path)
    assert "assign its CRS" not in str(info.value)


def test_a_file_with_rpcs_only_is_named_with_the_orthorectification_it_needs(
        write_tif: Callable[..., Path], tmp_path: Path) -> None:
    _dated(write_tif, tmp_path)
    late = write_tif(tmp_path / "t_20240301.tif", _image(2), descriptions=BANDS)
    _strip_georeference(late)
    rpc = RPC(height_off=0, height_scale=100, lat_off=10.85, lat_scale=0.01, long_off=106.65, long_scale=0.01,
              line_off=16, line_scale=16, samp_off=16, samp_scale=16,
              line_num_coeff=[0, 0, -1] + [0] * 17, line_den_coeff=[1] + [0] * 19,
              samp_num_coeff=[0, 1] + [0] * 18, samp_den_coeff=[1] + [0] * 19)
    with rasterio.open(late, "r+") as dst:
        dst.rpcs = rpc
    with pytest.raises(GeoreferenceError, match=r"t_20240301\.tif' is georeferenced only by RPCs .*orthorectify "
                       r"it first, with a DEM .*`gdalwarp -rpc -to RPC_DEM=DEM\.tif -t_srs EPSG:32648"):
        open_series(tmp_path)


def test_a_palette_image_is_refused_as_colour_indices(write_tif: Callable[..., Path], tmp_path: Path) -> None:
    # was: read as one band 'B1' of colour indices, resampled bilinearly and co-registered
    for k, day in enumerate(("20240101", "20240301")):
        path = write_tif(tmp_path / f"t_{day}.tif", _image(k, bands=1))
        with rasterio.open(path, "r+") as dst:
            dst.write_colormap(1, {v: (v, 255 - v, v // 2, 255) for v in range(256)})
    with pytest.raises(TileReadError, match=r"t_20240101\.tif' is a palette \(colour-mapped\) image: .*"
                       r"`gdal_translate -expand rgb '.*t_20240101\.tif' OUT\.tif`"):
        open_series(tmp_path)


def test_an_scl_with_a_colour_table_stays_the_dates_cloud_mask(write_tif: Callable[..., Path],
                                                               tmp_path: Path) -> None:
    rows = ["path,date,bands"]
    for day in ("2024-01-01", "2024-03-01"):
        write_tif(tmp_path / f"bands_{day}.tif", _image(1, dtype="uint16"))
        classes = write_tif(tmp_path / f"classes_{day}.tif", np.full((1, 32, 32), 4, np.uint8))
        with rasterio.open(classes, "r+") as dst:  # as QGIS or a STAC asset's COG may carry SCL's colours
            dst.write_colormap(1, {v: (v, v, v, 255) for v in range(12)})
        rows += [f"bands_{day}.tif,{day},B02;B03;B04", f"classes_{day}.tif,{day},SCL"]
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    series = open_series(tmp_path / "manifest.csv")
    assert series.band_names == ["B02", "B03", "B04"]
    assert all(s.scl is not None for s in series.scenes)


def test_a_complex_band_is_refused_instead_of_losing_its_imaginary_part(
        write_tif: Callable[..., Path], tmp_path: Path) -> None:
    # was: numpy's ComplexWarning, and the real part read as if it were the image
    for k, day in enumerate(("20240101", "20240301")):
        write_tif(tmp_path / f"t_{day}.tif", _image(k, bands=1).astype("complex64"))
    with pytest.raises(TileReadError, match=r"t_20240101\.tif' band 1 is complex64 .*give its amplitude"):
        open_series(tmp_path)


def test_a_link_to_a_missing_file_is_named_not_left_out(write_tif: Callable[..., Path], tmp_path: Path) -> None:
    # was: the folder read as two dates, 2024-05-01 gone without a word
    _dated(write_tif, tmp_path)
    write_tif(tmp_path / "t_20240301.tif", _image(2), descriptions=BANDS)
    os.symlink(tmp_path / "unmounted" / "t_20240501.tif", tmp_path / "t_20240501.tif")
    with pytest.raises(TileReadError, match=r"t_20240501\.tif' is a symbolic link to '.*unmounted.*', which does "
                       r"not exist.*restore its target, or remove the link"):
        open_series(tmp_path)


def test_a_link_to_a_file_is_read_as_the_file(write_tif: Callable[..., Path], tmp_path: Path) -> None:
    _dated(write_tif, tmp_path / "tiles")
    target = write_tif(tmp_path / "elsewhere" / "t_20240301.tif", _image(2), descriptions=BANDS)
    os.symlink(target, tmp_path / "tiles" / "t_20240301.tif")
    assert [d.isoformat() for d in open_series(tmp_path / "tiles").dates] == ["2024-01-01", "2024-03-01"]


def test_a_zip_of_tiles_and_a_vsizip_path_say_to_unzip(write_tif: Callable[..., Path], tmp_path: Path) -> None:
    import zipfile

    tile = _dated(write_tif, tmp_path / "tiles")
    archive = tmp_path / "tiles.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(tile, tile.name)
    # was: "is not a raster GDAL can read (... unknown format ...)"
    with pytest.raises(TileReadError, match=r"tiles\.zip' is a ZIP archive \(\d+ bytes\), not a raster: unzip it"):
        open_series(archive)
    # was: "'/vsizip/...' does not exist"
    with pytest.raises(TileReadError, match=r"is a GDAL virtual path \(vsizip\), and changedetect reads local "
                       r"files: unzip the archive"):
        open_series(f"/vsizip/{archive}/{tile.name}")
    with pytest.raises(TileReadError, match=r"GDAL virtual path"):
        open_series([str(tile), f"/vsizip/{archive}/{tile.name}"])
    (tmp_path / "only_zip").mkdir()
    archive.rename(tmp_path / "only_zip" / archive.name)
    with pytest.raises(TileReadError, match=r"holds no raster files.*it holds the archive 'tiles\.zip': unzip it"):
        open_series(tmp_path / "only_zip")


def test_a_crs_without_a_registered_datum_is_not_given_anothers_epsg_code(
        write_tif: Callable[..., Path], tmp_path: Path) -> None:
    # pyproj's 70 % match named UTM 48N on an unnamed datum of the WGS 84 ellipsoid EPSG:23868, DGN95 / UTM
    # zone 48N (Indonesia): `changedetect info` printed "CRS: EPSG:23868 (unknown)"
    from changedetect.io.geo import crs_code

    unnamed = "+proj=utm +zone=48 +ellps=WGS84 +units=m +no_defs"
    for day in ("20240101", "20240301"):
        write_tif(tmp_path / f"t_{day}.tif", _image(1), crs=unnamed, descriptions=BANDS)
    info = describe(tmp_path)
    assert not str(info["crs"]).startswith("EPSG:"), info["crs"]
    assert "Transverse_Mercator" in info["crs"] or "Transverse Mercator" in info["crs"]
    assert crs_code(unnamed) is None
    assert crs_code("+proj=utm +zone=48 +datum=WGS84 +units=m +no_defs") == "EPSG:32648"
    assert crs_code("EPSG:3405") == "EPSG:3405"
    result = CliRunner().invoke(cli, ["info", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "23868" not in result.output


def test_the_cli_says_it_in_one_line(write_tif: Callable[..., Path], tmp_path: Path) -> None:
    for k, day in enumerate(("20240101", "20240301")):
        write_tif(tmp_path / f"t_{day}.tif", _image(k, bands=1).astype("complex64"))
    proc = subprocess.run([sys.executable, "-m", "changedetect.cli", "info", str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "band 1 is complex64" in lines[0], proc.stderr


def test_a_date_missing_a_band_file_names_the_band(write_tif: Callable[..., Path], tmp_path: Path) -> None:
    # was: "2024-03-01 (...) has 4 band(s) but 2024-01-01 (...) has 5", leaving the user to diff 13 file names
    for day in ("20240101", "20240301"):
        for band in ("B02", "B03", "B04", "B08", "B11"):
            if (day, band) != ("20240301", "B11"):
                write_tif(tmp_path / f"T48_{day}_{band}.tif", _image(1, bands=1, dtype="uint16"))
    with pytest.raises(TimeSeriesError, match=r"2024-03-01 \(.*\) has 4 band\(s\) but 2024-01-01 \(.*\) has 5; "
                       r"it lacks B11; every date must have the same bands"):
        open_series(tmp_path)
