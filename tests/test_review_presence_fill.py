"""The presence check on the last clear view: where a consecutive pair's BEFORE was filled from an
earlier date (``DetectConfig.fill_masked_before``), the building segmenter's BEFORE is read from the
date each pixel came from, as the network compared it, not from the cloudy date (no data there)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from test_review_fill_before import CFG, Card, Loaded
from torch import nn

from changedetect.presence import DatePresence
from changedetect.testing import Building, make_stack

HOUSE = (slice(30, 42), slice(20, 32))  # 12 x 12 px of 0.5 m: 36 m², built between the first and last date
INNER = (slice(31, 41), slice(21, 31))  # without its corners (the check's opening takes them)
CLOUD = (slice(24, 48), slice(14, 40))  # over it on the middle date
WINTER = ["2024-01-15", "2024-02-05", "2024-02-25"]  # one season: every consecutive pair is checked


class Hint(nn.Module):
    """A change network that only hints (0.40) where the dates differ by a standard deviation."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where((a - b).abs().mean(dim=1, keepdim=True) > 1.0, -0.4, -4.0)


class Roof(nn.Module):
    """A building segmenter (fed one date twice): a bright first band (z > 2) is a roof (0.98)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(a[:, :1] > 2.0, 4.0, -4.0) + 0 * b[:, :1]


SEGMENTER = Loaded(Roof(), Card(name="roof"))


def _series(dates: list[str] = WINTER, cloud: bool = True, appears: int = 2) -> xr.DataArray:
    house = Building(HOUSE[0].start, HOUSE[1].start, 12, 12, appears=appears)
    stack = make_stack(dates=dates, size=64, buildings=[house], noise=1.0, seed=4).copy(deep=True)
    if cloud:
        stack.values[1, :, CLOUD[0], CLOUD[1]] = np.nan
    return stack


def test_a_clear_view_of_another_season_does_not_stand_in_for_before() -> None:
    """BEFORE (January, cloudy) filled from the July before: the network compares July with
    February, but the segmenter across seasons takes a shadow for a roof, so the check stays
    blind there (date i's own no data), as before the clear view."""
    stack = _series(["2023-07-15", "2024-01-15", "2024-02-05"])
    source = np.full((64, 64), -1, dtype=np.int16)
    source[CLOUD] = 0
    dates = DatePresence(stack, SEGMENTER, CFG, filled={(1, 2): source})
    assert np.isnan(dates.before(1, 2)[CLOUD]).all()
    hint = np.full((64, 64), 0.01, np.float32)
    hint[HOUSE] = 0.4
    assert float(np.nanmax(dates.confirm(1, 2, hint)[HOUSE])) == pytest.approx(0.4)
    same = DatePresence(_series(), SEGMENTER, CFG, filled={(1, 2): source})  # January: it stands in
    assert float(same.confirm(1, 2, hint)[INNER].min()) == pytest.approx(0.525)
    assert np.isnan(same.raster(1).values[CLOUD]).all()  # the date's own raster is left as it is


def test_a_pair_across_seasons_is_bracketed_from_the_clear_view() -> None:
    """January (cloudy, filled from the January three weeks before) -> July, checked against the
    next January (the same sun as BEFORE): the bracket's BEFORE is the clear view too, else the
    object under the cloud has no data there and is never confirmed."""
    stack = _series(["2024-01-01", "2024-01-22", "2024-07-15", "2025-01-25"])
    source = np.full((64, 64), -1, dtype=np.int16)
    source[CLOUD] = 0
    dates = DatePresence(stack, SEGMENTER, CFG, filled={(1, 2): source})
    assert dates.same_sun(1, 2) == (1, 3)
    hint = np.full((64, 64), 0.01, np.float32)
    hint[HOUSE] = 0.4
    assert float(dates.confirm(1, 2, hint)[INNER].min()) == pytest.approx(0.525)
    blind = DatePresence(stack, SEGMENTER, CFG)
    assert float(blind.confirm(1, 2, hint)[HOUSE].max()) == pytest.approx(0.4)


def test_the_same_sun_rule_reads_the_clear_view_too() -> None:
    """A footprint first seen across seasons is kept when the segmenter sees it come between the
    same-sun dates (``segmenter_held``): BEFORE there is the clear view as well, not the cloud."""
    from shapely.geometry import box

    from changedetect._pipeline_steps import segmenter_held

    stack = _series(["2024-01-01", "2024-01-22", "2024-07-15", "2025-01-25"])
    source = np.full((64, 64), -1, dtype=np.int16)
    source[CLOUD] = 0
    t = stack.rio.transform()
    (x0, y0), (x1, y1) = t @ (HOUSE[1].start, HOUSE[0].start), t @ (HOUSE[1].stop, HOUSE[0].stop)
    geoms = np.array([box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))])
    assert segmenter_held(DatePresence(stack, SEGMENTER, CFG, filled={(1, 2): source}))(1, 2, geoms).tolist() == [True]
    assert segmenter_held(DatePresence(stack, SEGMENTER, CFG))(1, 2, geoms).tolist() == [False]


def test_change_type_reads_a_filled_first_date_as_its_pair_compared_it() -> None:
    """The first date the later stages keep is an explicit pair's BEFORE, which may be filled:
    change_type's before raster is then that pair's last clear view, not the cloud's no data."""
    from changedetect._pipeline_steps import presence_rasters
    from changedetect.config import PipelineConfig

    stack = _series()
    source = np.full((64, 64), -1, dtype=np.int16)
    source[CLOUD] = 0
    dates = DatePresence(stack, SEGMENTER, CFG, filled={(1, 2): source})
    prob = stack.isel(time=0, band=0, drop=True).copy(data=np.full((64, 64), 0.9, np.float32))
    rasters = presence_rasters(prob, PipelineConfig(), dates, (1, 2))
    assert rasters is not None
    before, after = rasters
    np.testing.assert_array_equal(before.values[CLOUD], dates.raster(0).values[CLOUD])
    assert float(before.values[INNER].max()) < 0.1 and float(after.values[INNER].min()) > 0.9
    assert np.isnan(dates.raster(1).values[CLOUD]).all()
    own = presence_rasters(prob, PipelineConfig(), DatePresence(stack, SEGMENTER, CFG), (1, 2))
    assert own is not None and np.isnan(own[0].values[CLOUD]).all()  # unfilled: the date's own


def test_detect_series_with_a_segmenter_confirms_from_the_clear_view() -> None:
    """`detect --series` (detect_series with a loaded segmenter, no DatePresence of the caller's):
    the check reads the clear view too, as `run` does."""
    from test_review_fill_before import Loaded as Model

    from changedetect.detect import detect_series

    prob, first = detect_series(_series(), config=CFG, model=Model(Hint(), Card()), segmenter=SEGMENTER)
    assert float(prob.values[INNER].min()) == pytest.approx(0.525)
    assert (first.values[INNER] == np.datetime64("2024-02-25", "ns")).all()
