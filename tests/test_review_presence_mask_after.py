"""The presence check on a nightly mask pair's filled AFTER: the mask ``(partner, previous)`` compares
the previous date as the pair ``(previous, new)`` starts from it, filled from the last clear view, and
the building segmenter reads that AFTER the same way (pixel by pixel from the date it came from, under
the season rule of ``DatePresence.before``), not the previous date's own raster, no data under its
cloud: else a house an earlier night saw, which only the segmenter confirms, is reported again by
``(partner, new)``."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from test_review_fill_before import CFG, Card, Loaded
from test_review_presence_fill import CLOUD, HOUSE, INNER, SEGMENTER, Hint

from changedetect.detect import detect_each_pair
from changedetect.presence import DatePresence
from changedetect.testing import Building, make_stack

HINT = Loaded(Hint(), Card())
# partner (a year before tonight), a clear date that saw the house built (the previous date's season),
# the previous date (cloudy over the house), tonight's
NIGHT = ["2023-03-10", "2023-12-20", "2024-01-15", "2024-03-15"]


def _night(days: list[str] = NIGHT) -> xr.DataArray:
    house = Building(HOUSE[0].start, HOUSE[1].start, 12, 12, appears=1)
    stack = make_stack(dates=days, size=64, buildings=[house], noise=1.0, seed=4).copy(deep=True)
    stack.values[2, :, CLOUD[0], CLOUD[1]] = np.nan
    return stack


def test_the_mask_pair_checks_its_filled_after_and_keeps_earlier_news_out() -> None:
    """The network only hints (0.40) at the house on (partner, previous as filled) and on (partner,
    tonight); the segmenter confirms it on both. Checked on the previous date's own raster, the mask
    had no data under the cloud and let (partner, tonight) report the house again."""
    stack = _night()
    presence = DatePresence(stack, SEGMENTER, CFG)
    filled: dict[tuple[int, int], np.ndarray | None] = {}
    events = detect_each_pair(stack, config=CFG, model=HINT, pairs=[(2, 3), (0, 3)], mask_pairs=[(0, 2)],
                              segmenter=presence, filled=filled, fill_from=[1])
    source = filled[(2, 3)]
    assert source is not None and (source[CLOUD] == 1).all()
    assert (np.nan_to_num(events[1][2].values[HOUSE]) < 0.5).all()  # masked: earlier news
    assert (np.nan_to_num(events[0][2].values[HOUSE]) < 0.5).all()
    assert presence.filled_after[(0, 2)] is source  # the same view the compared pair starts from
    assert np.isnan(presence.raster(2).values[CLOUD]).all()  # the date's own raster is left as it is
    assert sorted(presence.rasters) == [0, 1, 2, 3]  # each date segmented once


def test_a_clear_view_of_another_season_does_not_stand_in_for_after() -> None:
    """The previous date (January, cloudy) filled from the July before: across seasons the segmenter
    takes a shadow for a roof, so the check reads the previous date's own no data there."""
    stack = _night(["2023-03-10", "2023-07-20", "2024-01-15", "2024-03-15"])
    source = np.full((64, 64), -1, dtype=np.int16)
    source[CLOUD] = 1
    hint = np.full((64, 64), 0.01, np.float32)
    hint[HOUSE] = 0.4
    other = DatePresence(stack, SEGMENTER, CFG)
    other.filled_after[(0, 2)] = source
    assert np.isnan(other.after(0, 2)[CLOUD]).all()
    assert float(np.nanmax(other.confirm(0, 2, hint, any_season=True)[HOUSE])) == pytest.approx(0.4)
    same = DatePresence(_night(), SEGMENTER, CFG)  # December: it stands in
    same.filled_after[(0, 2)] = source
    assert float(same.confirm(0, 2, hint, any_season=True)[INNER].min()) == pytest.approx(0.525)
    assert np.isnan(same.after(1, 2)[CLOUD]).all()  # another pair's AFTER is the date's own
