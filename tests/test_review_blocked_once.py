"""A run block by block says each date's warnings once, as a whole-scene run does: a grey
(panchromatic) date is one warning, not one per block and pair."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest
import rasterio

from changedetect.config import RunConfig
from changedetect.testing import make_run_inputs


def _make_grey(tile: Path) -> None:
    """Rewrite ``tile`` with its first band copied into every band (a panchromatic image as RGB)."""
    with rasterio.open(tile) as src:
        profile, data, names = src.profile, src.read(), src.descriptions
    with rasterio.open(tile, "w", **profile) as dst:
        dst.write(np.repeat(data[:1], data.shape[0], axis=0))
        dst.descriptions = names


def test_a_blocked_run_says_a_grey_date_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from changedetect.pipeline import run

    config = make_run_inputs(tmp_path)
    tiles = sorted((tmp_path / "tiles").glob("*.tif"))
    _make_grey(tiles[0])
    config = dataclasses.replace(config, run=RunConfig(block_px=256, halo_px=32))  # 2 x 2 blocks of 300 px
    with caplog.at_level(logging.WARNING):
        run(tmp_path / "tiles", permits=tmp_path / "permits.gpkg", out=tmp_path / "out", config=config)
    said = [r.getMessage() for r in caplog.records if "panchromatic" in r.getMessage()]
    assert len(said) == 1, said


def test_a_blocked_run_says_a_pixel_size_warning_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The model's ground-sample-distance warning ('made for 0.3-1 m pixels') too: once, not per block."""
    from changedetect.pipeline import run

    config = make_run_inputs(tmp_path)
    for tile in sorted((tmp_path / "tiles").glob("*.tif")):  # 10 times coarser pixels: out of the model's range
        with rasterio.open(tile, "r+") as dst:
            t = dst.transform
            dst.transform = rasterio.Affine(t.a * 10, t.b, t.c, t.d, t.e * 10, t.f)
    config = dataclasses.replace(config, run=RunConfig(block_px=256, halo_px=32))  # 2 x 2 blocks of 300 px
    with caplog.at_level(logging.WARNING):
        run(tmp_path / "tiles", permits=tmp_path / "permits.gpkg", out=tmp_path / "out", config=config)
    said = [r.getMessage() for r in caplog.records if "is made for" in r.getMessage()]
    assert len(said) == 1, said
