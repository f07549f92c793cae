"""``changedetect info``: text and JSON, and bad input as one clean line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

from changedetect.cli import cli

S2_ORDER = [
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


def _dated_tiles(folder: Path, n: int = 2, size: int = 300) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        data = np.full((4, size, size), 100 + k, dtype=np.uint8)
        data[:, :, : size // 4] = 0  # a quarter of nodata
        profile = {
            "driver": "GTiff", "width": size, "height": size, "count": 4, "dtype": "uint8", "nodata": 0,
            "crs": "EPSG:32648", "transform": Affine(0.5, 0, 683_000, 0, -0.5, 1_203_000),
        }  # fmt: skip
        with rasterio.open(folder / f"district12_2024010{k + 1}.tif", "w", **profile) as dst:
            dst.write(data)
            for i, name in enumerate(["red", "green", "blue", "nir"], 1):
                dst.set_band_description(i, name)
    return folder


def test_info_json_on_synthetic_tiles(tmp_path: Path) -> None:
    folder = _dated_tiles(tmp_path / "tiles")
    result = CliRunner().invoke(cli, ["info", "--json", str(folder)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["dates"] == ["2024-01-01", "2024-01-02"]
    assert [b["name"] for b in info["bands"]] == ["red", "green", "blue", "nir"]
    assert info["bands"][0] == {
        "name": "red", "resolution": 0.5, "resolution_xy": [0.5, 0.5], "nominal_resolution": None,
        "width": 300, "height": 300, "dtype": "uint8", "nodata": 0.0,
    }  # fmt: skip
    assert info["crs"] == "EPSG:32648"
    assert info["bounds"] == [683_000.0, 1_202_850.0, 683_150.0, 1_203_000.0]
    west, south, east, north = info["bounds_lonlat"]
    assert 106.6 < west < east < 106.7 and 10.8 < south < north < 10.9
    assert info["size"]["files"] == 2 and info["size"]["pixels_per_band"] == 90_000
    assert info["nodata_share"] == pytest.approx(0.25, abs=0.01)


def test_nodata_share_uses_a_decimated_read(tmp_path: Path, monkeypatch) -> None:
    import changedetect.io.summary as describe_mod

    shapes: list[tuple[int, int] | None] = []
    windows: list[tuple[int, int]] = []  # full-resolution reads (the panchromatic check's windows)
    real = describe_mod.read_float

    def spy(src, index, window, *, out_shape=None, **kw):
        (shapes.append(out_shape) if out_shape is not None else windows.append((window.width, window.height)))
        return real(src, index, window, out_shape=out_shape, **kw)

    monkeypatch.setattr(describe_mod, "read_float", spy)
    info = describe_mod.describe(_dated_tiles(tmp_path / "t", n=1, size=600), sample=64)
    assert shapes == [(64, 64)] * 4
    assert windows and all(w <= 128 and h <= 128 for w, h in windows)  # never the whole scene
    assert info["scenes"][0]["nodata_share"] == pytest.approx(0.25, abs=0.02)


def test_info_text(tmp_path: Path) -> None:
    folder = _dated_tiles(tmp_path / "tiles", n=1, size=32)
    result = CliRunner().invoke(cli, ["info", str(folder)])
    assert result.exit_code == 0, result.output
    assert "1 date(s), 4 band(s)" in result.output
    assert "Dates:  2024-01-01" in result.output
    assert "nir      0.50 m (0.50 x 0.50 m)  32 x 32 px  uint8, nodata 0" in result.output
    assert "CRS:    EPSG:32648 (WGS 84 / UTM zone 48N)" in result.output


def test_info_help_has_examples() -> None:
    result = CliRunner().invoke(cli, ["info", "--help"])
    assert result.exit_code == 0
    assert "changedetect info ../shared/data/oscd/images/paris" in result.output
    assert "--json" in result.output


def test_info_on_oscd_paris_lists_2_dates_and_13_bands(shared_data: Path) -> None:
    city = shared_data / "oscd" / "images" / "paris"
    result = CliRunner().invoke(cli, ["info", "--json", str(city)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["dates"] == ["2016-11-30", "2017-11-07"]
    assert [b["name"] for b in info["bands"]] == S2_ORDER
    for band in info["bands"]:
        assert band["resolution"] == pytest.approx(band["nominal_resolution"], rel=0.1)
    assert sorted({b["nominal_resolution"] for b in info["bands"]}) == [10, 20, 60]
    text = CliRunner().invoke(cli, ["info", str(city)]).output
    assert "2 date(s), 13 band(s)" in text
    assert "B02     10.52 m" in text and "B05     21.03 m" in text and "B01     63.10 m" in text


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "changedetect.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    folder = _dated_tiles(tmp_path / "tiles", n=1, size=16)
    (folder / "district12_20240102.tif").write_bytes(b"not a tiff at all")
    proc = _run("info", str(folder))
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert (
        lines[0].startswith("Error: '")
        and "district12_20240102.tif' is not a raster GDAL can read" in lines[0]
    )
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("json_out", [False, True])
def test_a_corrupt_block_inside_a_tile_is_one_line_naming_the_file(tmp_path: Path, repo_root: Path,
                                                                     json_out: bool) -> None:
    """The header reads, a compressed block does not: 'Internal error ... This is a bug' (exit 1) before."""
    folder = tmp_path / "tiles"
    folder.mkdir()
    for tif in sorted((repo_root / "sample_tiles").glob("*.tif")):
        (folder / tif.name).write_bytes(tif.read_bytes())
    bad = folder / "district12_20250120.tif"
    data = bytearray(bad.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 20000] = np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8).tobytes()
    bad.write_bytes(bytes(data))
    proc = _run("info", str(folder), *(["--json"] if json_out else []))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: reading band"), proc.stderr
    assert str(bad) in lines[0] and "corrupt" in lines[0]
    assert "See previous exception" not in lines[0] and "IReadBlock failed" in lines[0]  # GDAL's own reason


def test_missing_path_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = _run("info", str(tmp_path / "nowhere"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"Error: '{tmp_path / 'nowhere'}' does not exist; pass a folder of tiles, a manifest "
        "(.csv/.json), a STAC item or a raster file"
    ]


def test_info_on_the_sample_city(repo_root: Path) -> None:
    tiles = repo_root / "sample_tiles"
    if not (tiles / "manifest.json").is_file():
        pytest.skip("sample_tiles/ has not been generated (python -m changedetect.samplecity)")
    result = CliRunner().invoke(cli, ["info", "--json", str(tiles)])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert len(info["dates"]) >= 3 and info["dates"] == sorted(info["dates"])
    assert [b["name"] for b in info["bands"]] == ["red", "green", "blue", "nir"]
    assert all(b["resolution"] == 0.5 and b["dtype"] == "uint8" for b in info["bands"])
    assert info["crs"] == "EPSG:32648"
    west, south, east, north = info["bounds_lonlat"]
    assert 106.63 <= west < east <= 106.70 and 10.84 <= south < north <= 10.89
