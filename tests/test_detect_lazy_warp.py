"""A lazy co-registered date too large to hold is read window by window, and each window warps the
blocks under it again: 0.75 s a 256² window on the sample city tiled 4 x 4, against 0.03 s read back
from a spilled stack (docs/detection.md).  ``detect_pair`` says so once, naming the fix
(``changedetect.io.spill_stack``), and only then: not for the reference date, a held date or a
spilled stack."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from _fakes import textured_scene

from changedetect._pipeline_steps import holding
from changedetect.coregister import coregister
from changedetect.detect import DetectConfig, detect_pair
from changedetect.errors import ChangeDetectWarning
from changedetect.io import spill_stack
from changedetect.nn import get_model
from changedetect.testing import make_grid
from changedetect.weights import ModelCard, save_model

SIZE = 192
CARD = ModelCard(name="tiny", version="0.0.1", arch="siamese_unet", bands=("red", "green", "blue"),
                 arch_kwargs={"widths": [8, 16, 16], "depths": [0, 1, 1], "decoder_width": 8})


@pytest.fixture(autouse=True)
def _fresh() -> None:
    """Each test starts as a fresh process: no stack warned of yet."""
    import changedetect.detect

    changedetect.detect._SAID_LAZY.clear()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("m") / "tiny"
    save_model(get_model(CARD.arch, in_channels=3, **CARD.arch_kwargs), CARD, folder)
    return str(folder)


@pytest.fixture(scope="module")
def aligned() -> xr.DataArray:
    """Two dates of a textured scene, the second shifted by (1.6, -0.8) px, co-registered (lazy)."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(float)
    dates = [np.stack([textured_scene(y + dy, x + dx, b) for b in range(3)]) for dx, dy in ((0, 0), (1.6, -0.8))]
    grid = make_grid(SIZE, resolution=0.5)
    stack = xr.DataArray(np.stack(dates), dims=("time", "band", "y", "x"),
                         coords={"time": pd.DatetimeIndex(["2024-01-15", "2024-07-12"]),
                                 "band": ["red", "green", "blue"], **grid.coords()})
    stack = stack.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
    out, report = coregister(stack)
    assert report.dates[1].status in ("global", "local") and out.chunks is not None
    return out


def _detect(aligned: xr.DataArray, model: str) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        detect_pair(aligned.isel(time=0), aligned.isel(time=1), config=DetectConfig(model=model, window=64, overlap=16))
    return [str(w.message) for w in caught if issubclass(w.category, ChangeDetectWarning)]


def test_a_lazy_warped_date_over_the_hold_limit_is_named_with_the_fix(aligned: xr.DataArray, model: str) -> None:
    with holding(1.0):  # nothing is held
        said = _detect(aligned, model)
    assert len(said) == 1  # the warped date; not the reference date, whose graph holds no warp of its own
    assert "spill_stack" in said[0] and "lazy co-registered" in said[0]


def test_a_held_or_spilled_stack_gives_no_such_warning(aligned: xr.DataArray, model: str, tmp_path: Path) -> None:
    assert _detect(aligned, model) == []  # 0.4 MiB: held
    with holding(1.0):
        assert _detect(spill_stack(aligned, tmp_path), model) == []


def test_a_series_says_it_once(aligned: xr.DataArray, model: str) -> None:
    from changedetect.detect import detect_series

    three = xr.concat([aligned, aligned.isel(time=[1]).assign_coords(time=pd.DatetimeIndex(["2025-01-20"]))], "time")
    with holding(1.0), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        detect_series(three, config=DetectConfig(model=model, window=64, overlap=16))
    said = [w for w in caught if issubclass(w.category, ChangeDetectWarning) and "spill_stack" in str(w.message)]
    assert len(said) == 1
    assert said[0].filename == __file__  # the user's line, not one inside changedetect
