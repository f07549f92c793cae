"""``changedetect coregister`` on a small scene says what it did and nothing of SciPy's internals (H121)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine


def _scene(path: Path, seed: int, size: int = 192) -> None:
    y, x = np.mgrid[0:size, 0:size]
    base = (np.sin(x / 7.0) + np.cos(y / 9.0) + np.sin((x + y) / 13.0) + 3) / 6 * 200
    noise = np.random.default_rng(seed).normal(0, 3, (3, size, size))
    data = np.clip(base + noise, 1, 255).astype(np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8",
                       crs="EPSG:32648", transform=Affine(0.5, 0, 683_000, 0, -0.5, 1_203_000)) as dst:
        dst.write(data)
        for i, name in enumerate(("red", "green", "blue"), 1):
            dst.set_band_description(i, name)


def test_a_scene_with_a_few_tie_points_gets_no_scipy_warning(tmp_path: Path) -> None:
    # 192 px give 4 tie points: the spline's trend is then a constant, and SciPy's "`degree` should not be
    # below 1 ... may not be uniquely solvable" came out as a "WARNING py.warnings: UserWarning" line
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    _scene(tiles / "t_20240101.tif", 1)
    _scene(tiles / "t_20240301.tif", 2)
    proc = subprocess.run([sys.executable, "-m", "changedetect.cli", "coregister", str(tiles), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "tie points 4/4" in proc.stdout + proc.stderr  # the case: fewer than 6 tie points
    assert "degree" not in proc.stderr and "py.warnings" not in proc.stderr, proc.stderr
