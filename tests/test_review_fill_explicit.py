"""The last clear view on explicit pairs (the nightly job's): a pair of consecutive dates of the stack
has its BEFORE filled from the stack's earlier dates (``fill_from`` of them when given), which need
not be compared; a pair that skips a date is not; a mask pair's AFTER that a compared pair fills is
that filled image."""

from __future__ import annotations

import numpy as np
import pytest
from test_review_fill_before import CFG, CLOUD, DATES, HOUSE, MODEL, _series

from changedetect._fill_before import FILLED_ATTR, fill_before
from changedetect.detect import detect_each_pair, detect_series
from changedetect.testing import Building, make_stack


def test_an_explicit_consecutive_pair_is_filled_from_an_earlier_date_it_does_not_compare() -> None:
    filled: dict[tuple[int, int], np.ndarray | None] = {}
    events = detect_each_pair(_series(), config=CFG, model=MODEL, pairs=[(1, 2)], filled=filled)
    assert list(filled) == [(1, 2)]
    source = filled[(1, 2)]
    assert source is not None and (source[CLOUD] == 0).all()
    assert (events[0][2].values[HOUSE] >= 0.5).mean() > 0.9  # the house built under 2024-03-15's cloud
    prob, first = detect_series(_series(), config=CFG, model=MODEL, pairs=[(1, 2)])
    assert (first.values[HOUSE] == np.datetime64(DATES[2], "ns")).mean() > 0.9


def test_a_pair_that_skips_a_date_is_not_filled() -> None:
    filled: dict[tuple[int, int], np.ndarray | None] = {}
    events = detect_each_pair(_series(), config=CFG, model=MODEL, pairs=[(0, 2)], filled=filled)
    assert filled == {}
    assert events[0][2].attrs["before"] == DATES[0]


def test_fill_from_limits_the_dates_read() -> None:
    stack = _series(cloud=False)
    stack.values[2, :, CLOUD[0], CLOUD[1]] = np.nan
    assert (fill_before(stack, 2).source[CLOUD] == 1).all()  # type: ignore[index]
    done = fill_before(stack, 2, [0])  # date 1 left out: never the source
    assert done.source is not None and (done.source[CLOUD] == 0).all()
    assert done.image.attrs[FILLED_ATTR] == (DATES[0],)
    assert fill_before(stack, 2, [2]).source is None  # only dates before BEFORE count, never itself or later
    filled: dict[tuple[int, int], np.ndarray | None] = {}
    detect_each_pair(_series(), config=CFG, model=MODEL, pairs=[(1, 2)], filled=filled, fill_from=[])
    assert filled == {}


def test_a_mask_pairs_after_is_the_filled_before_of_the_compared_pair() -> None:
    # partner, a date that saw the house built, the previous date (cloudy over it), tonight's
    days = ["2023-03-10", "2023-11-20", "2024-01-15", "2024-03-15"]
    house = Building(HOUSE[0].start, HOUSE[1].start, 12, 12, appears=1)
    stack = make_stack(dates=days, size=64, buildings=[house], noise=1.0, seed=4).copy(deep=True)
    stack.values[2, :, CLOUD[0], CLOUD[1]] = np.nan
    pairs, masks = [(2, 3), (0, 3)], [(0, 2)]
    on = detect_each_pair(stack, config=CFG, model=MODEL, pairs=pairs, mask_pairs=masks, fill_from=[1])
    # (partner, tonight) sees the house; the mask (partner, the previous date as filled) knows it is
    # earlier news, so tonight's pairs do not count it
    assert (np.nan_to_num(on[1][2].values[HOUSE]) < 0.5).all()
    assert (np.nan_to_num(on[0][2].values[HOUSE]) < 0.5).all()


def test_each_dates_data_mask_is_read_once_for_all_the_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Four dates, the middle two cloudy: the pairs (1, 2) and (2, 3) both fill, and date 0's and
    date 1's masks are each read once, not once per pair."""
    import changedetect._fill_before as fb
    from changedetect._detect_each import _fills

    stack = make_stack(dates=["2024-01-15", "2024-02-15", "2024-03-15", "2024-04-15"], size=64, seed=4).copy(deep=True)
    stack.values[1:3, :, 20:40, 20:40] = np.nan
    read: list[str] = []
    real = fb._has_data
    monkeypatch.setattr(fb, "_has_data", lambda date: read.append(str(date["time"].values)[:10]) or real(date))
    fills = _fills(stack, [(0, 1), (1, 2), (2, 3)], None)
    assert sorted(fills) == [1, 2] and all(f.source is not None for f in fills.values())
    assert sorted(read) == ["2024-01-15", "2024-02-15", "2024-03-15"]
