"""``changedetect coregister`` on tiny files, and on a real OSCD city."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

from changedetect._registration.synthetic import displace, textured_scene
from changedetect.cli import cli

SIZE = 160


def _tiles(folder: Path, shifts: list[tuple[float, float]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    base = textured_scene((SIZE + 32, SIZE + 32), seed=11)
    for k, s in enumerate(shifts):
        img = displace(base, lambda r, c, s=s: (np.full(r.shape, s[0]), np.full(r.shape, s[1])))[16:-16, 16:-16]
        data = np.clip(np.stack([img, img * 0.9, img * 1.1]), 0, 255).astype(np.uint8)
        profile = {"driver": "GTiff", "width": SIZE, "height": SIZE, "count": 3, "dtype": "uint8",
                   "crs": "EPSG:32648", "transform": Affine(0.5, 0, 680000.0, 0, -0.5, 1190000.0)}
        with rasterio.open(folder / f"district12_2024{k + 1:02d}15.tif", "w", **profile) as dst:
            dst.write(data)
    return folder


def test_cli_writes_aligned_cogs_and_the_report(tmp_path: Path) -> None:
    tiles = _tiles(tmp_path / "tiles", [(0, 0), (1.5, -2.25)])
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["-q", "coregister", str(tiles), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "coregistration.json").read_text())
    assert report["dates"][1]["shift_px"] == pytest.approx([1.5, -2.25], abs=0.1)
    cogs = sorted(out.glob("aligned_*.tif"))
    assert [p.name for p in cogs] == ["aligned_20240115.tif", "aligned_20240215.tif"]
    profiles = []
    for p in cogs:
        with rasterio.open(p) as src:
            profiles.append((src.crs, src.transform, src.shape, src.count, src.dtypes[0]))
    assert profiles[0] == profiles[1] and profiles[0][2] == (SIZE, SIZE)
    assert re.search(r"2024-02-15  shift \+1\.[45]\d, -2\.[23]\d px", result.output), result.output
    again = CliRunner().invoke(cli, ["coregister", str(tiles), "--out", str(out)])
    assert again.exit_code != 0 and "--overwrite" in str(again.exception or again.output)
    # overwritten with one date fewer: the other date's COG goes too (info would read it)
    (tiles / "district12_20240215.tif").rename(tmp_path / "aside.tif")
    (tiles / "district12_20240315.tif").write_bytes((tmp_path / "aside.tif").read_bytes())
    third = CliRunner().invoke(cli, ["-q", "coregister", str(tiles), "--out", str(out), "--overwrite"])
    assert third.exit_code == 0, third.output
    assert sorted(p.name for p in out.glob("aligned_*.tif")) == ["aligned_20240115.tif", "aligned_20240315.tif"]


def test_cli_reference_crs_and_resolution(tmp_path: Path) -> None:
    tiles = _tiles(tmp_path / "tiles", [(0, 0), (0.75, 0.5)])
    out = tmp_path / "out"
    args = ["-q", "coregister", str(tiles), "--out", str(out), "--reference", "2024-02-15",
            "--crs", "EPSG:3857", "--resolution", "1", "--no-local", "--no-radiometric"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "coregistration.json").read_text())
    assert report["reference"] == "2024-02-15" and report["crs"] == "EPSG:3857"
    assert report["config"]["radiometric"] is False and report["config"]["local"] is False
    moved = report["dates"][0]  # 2024-01-15, registered onto the reference 2024-02-15
    assert moved["status"] == "global" and moved["max_local_px"] == 0.0
    assert moved["gain"] == {} and moved["offset"] == {}, "--no-radiometric fits no gain or offset"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "changedetect.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    tiles = _tiles(tmp_path / "tiles", [(0, 0), (1, 1)])
    proc = _run("coregister", str(tiles), "--out", str(tmp_path / "o"), "--reference", "1999-01-01")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "1999-01-01" in lines[0], proc.stderr
    assert "2024-01-15" in lines[0]  # names the dates that exist
    proc = _run("coregister", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o2"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.shared_data
def test_oscd_city_with_a_known_applied_shift(shared_data: Path) -> None:
    """Real Sentinel-2 10 m imagery (OSCD Pisa, B04): a known shift is recovered to 0.05 px."""
    path = next((shared_data / "oscd/images/pisa/imgs_1").glob("*_B04.tif"))
    with rasterio.open(path) as src:
        img = src.read(1).astype(np.float64)
    from changedetect.coregister import estimate_shift

    shift = (3.37, -6.81)
    mov = displace(img, lambda r, c: (np.full(r.shape, shift[0]), np.full(r.shape, shift[1])))
    est = estimate_shift(img[16:-16, 16:-16], mov[16:-16, 16:-16])
    assert est.reliable
    assert (est.dx, est.dy) == pytest.approx(shift, abs=0.05)


@pytest.mark.shared_data
def test_oscd_second_date_is_registered_through_io(shared_data: Path) -> None:
    """The OSCD pair (different CRS-grids per band, real change) is read onto one grid and registered."""
    from changedetect.coregister import CoregisterConfig, coregister
    from changedetect.io import open_series

    stack = open_series(shared_data / "oscd/images/bercy").to_stack(bands=["B02", "B03", "B04", "B08", "B11"])
    aligned, report = coregister(stack, config=CoregisterConfig(local=False))
    assert aligned.shape == stack.shape
    second = report.dates[1]
    assert second.status == "global" and second.reliability > 0.5
    # Sentinel-2 dates of 2015-2018 (before the Global Reference Image) are off by up to ~1 px
    assert max(abs(v) for v in second.shift_px) < 1.5
    assert second.tie_points_kept >= 8
