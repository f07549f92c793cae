"""The presence check: change the network hints at, confirmed by a building segmenter."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from test_detect import CFG, FakeCard, Loaded, _da
from torch import nn

from changedetect.detect import detect_each_pair, detect_series
from changedetect.presence import PresenceCheck, confirmed_change

PX = 0.25  # m² per pixel (0.5 m)


def _scene() -> tuple[np.ndarray, np.ndarray]:
    """Building probability before (none) and after (a 12 x 12 px house, 36 m², at 0.95)."""
    before = np.full((40, 40), 0.05, np.float32)
    after = before.copy()
    after[10:22, 10:22] = 0.95
    return before, after


def test_a_hint_confirmed_by_the_segmenter_is_raised() -> None:
    before, after = _scene()
    prob = np.zeros_like(before)
    prob[15, 15] = 0.35  # the network's hint, below its threshold
    out = confirmed_change(before, after, prob, pixel_m2=PX)
    assert out[11:21, 10:22].min() == pytest.approx(0.525)  # just above 0.5 (the opening rounds corners)
    assert out[:10].max() == 0 and out[22:].max() == 0  # nothing outside the house
    assert out.dtype == np.float32
    # a demolition is the same with the dates swapped
    np.testing.assert_allclose(confirmed_change(after, before, prob, pixel_m2=PX), out)


def test_no_hint_no_change_and_the_networks_own_outline_is_kept() -> None:
    before, after = _scene()
    nothing = np.zeros_like(before)
    nothing[15, 15] = 0.2  # below check.support (0.3)
    np.testing.assert_array_equal(confirmed_change(before, after, nothing, pixel_m2=PX), nothing)
    # the network outlines half of the house itself: the object is its, left as it is
    own = np.zeros_like(before)
    own[10:16, 10:22] = 0.9
    np.testing.assert_array_equal(confirmed_change(before, after, own, pixel_m2=PX), own)
    # ... but a sliver of decision (under check.decided of the object) is raised with the rest
    sliver = np.zeros_like(before)
    sliver[10:12, 10:14] = 0.9
    assert confirmed_change(before, after, sliver, pixel_m2=PX)[20, 20] == pytest.approx(0.525)
    # a separate detection of the network just beside the house (a neighbour, 1 px away): raising
    # the house would merge the two into one bloated outline, so it is left alone
    beside = np.zeros_like(before)
    beside[15, 15] = 0.35
    beside[10:22, 23:30] = 0.9
    np.testing.assert_array_equal(confirmed_change(before, after, beside, pixel_m2=PX), beside)
    beside[10:22, 23:26] = 0  # 4 px away: raised
    assert confirmed_change(before, after, beside, pixel_m2=PX)[15, 15] == pytest.approx(0.525)
    # the raise is relative to the threshold the network is read at
    assert confirmed_change(before, after, nothing + 0.15, pixel_m2=PX, threshold=0.7)[15, 15] == pytest.approx(0.715)


def test_what_the_network_decided_on_another_pair_is_left_to_it() -> None:
    before, after = _scene()
    prob = np.zeros_like(before)
    prob[15, 15] = 0.35
    elsewhere = np.zeros(before.shape, bool)
    assert confirmed_change(before, after, prob, pixel_m2=PX, decided=elsewhere)[15, 15] == pytest.approx(0.525)
    # the network outlined most of the house on another pair: the object is its
    elsewhere[10:18, 10:22] = True
    np.testing.assert_array_equal(confirmed_change(before, after, prob, pixel_m2=PX, decided=elsewhere), prob)
    # a detection of another pair just beside the object: raised, the two would join when the
    # pairs are combined
    elsewhere[:] = False
    elsewhere[10:22, 23:30] = True
    np.testing.assert_array_equal(confirmed_change(before, after, prob, pixel_m2=PX, decided=elsewhere), prob)
    elsewhere[10:22, 23:26] = False  # 4 px away: raised
    assert confirmed_change(before, after, prob, pixel_m2=PX, decided=elsewhere)[15, 15] == pytest.approx(0.525)
    with pytest.raises(ValueError, match="decided"):
        confirmed_change(before, after, prob, pixel_m2=PX, decided=elsewhere[:10])


def test_detect_each_pair_gives_the_check_every_pairs_decisions(monkeypatch: pytest.MonkeyPatch) -> None:
    from changedetect.presence import DatePresence

    stack = _series()
    loaded = Loaded(Hint(), FakeCard())
    raw = [p.values.copy() for _, _, p in detect_each_pair(stack, config=CFG, model=loaded)]
    seen = []
    original = DatePresence.confirm

    def spy(self, i, j, prob, threshold=0.5, *, any_season=False, decided=None):  # noqa: ANN001, ANN202
        seen.append(decided.copy())
        return original(self, i, j, prob, threshold, any_season=any_season, decided=decided)

    monkeypatch.setattr(DatePresence, "confirm", spy)
    strong = replace(CFG, threshold=0.34)  # the hints (0.35) are decisions at 0.34
    detect_each_pair(stack, config=strong, model=loaded, segmenter=Loaded(Bright(), FakeCard(name="b", version="1")))
    union = np.logical_or.reduce([np.nan_to_num(r) >= 0.34 for r in raw])
    assert len(seen) == 3 and union.any() and all(np.array_equal(d, union) for d in seen)


def test_small_objects_weak_presence_and_a_building_on_both_dates_are_left() -> None:
    before, after = _scene()
    prob = np.zeros_like(before)
    prob[15, 15] = 0.35
    # 36 m² < 40 m²: too small
    small = confirmed_change(before, after, prob, pixel_m2=PX, check=PresenceCheck(min_area_m2=40))
    np.testing.assert_array_equal(small, prob)
    # the segmenter is not sure enough of the house (0.8 < presence 0.85)
    unsure = after.copy()
    unsure[10:22, 10:22] = 0.8
    np.testing.assert_array_equal(confirmed_change(before, unsure, prob, pixel_m2=PX), prob)
    # a building on both dates (re-roofed, relit): no change
    built = before.copy()
    built[10:22, 10:22] = 0.6
    np.testing.assert_array_equal(confirmed_change(built, after, prob, pixel_m2=PX), prob)


def test_nan_stays_nan_and_no_data_is_neither_a_building_nor_its_absence() -> None:
    before, after = _scene()
    prob = np.zeros_like(before)
    prob[15, 15] = 0.35
    prob[11, 11] = np.nan
    out = confirmed_change(before, after, prob, pixel_m2=PX)
    assert np.isnan(out[11, 11]) and out[12, 12] > 0.5
    # a building on both dates; on the after date a 12 m² patch reads 0.1 (too small to count),
    # beside a strip with no data: the strip must not count as "no building" and grow the patch
    both = np.full((40, 40), 0.9, np.float32)
    patchy = both.copy()
    patchy[10:22, 20:24] = 0.1  # 48 px = 12 m² < 15 m²
    hint = np.zeros_like(both)
    hint[15, 21] = 0.35
    assert not (confirmed_change(patchy, both, hint, pixel_m2=PX) > 0.5).any()
    patchy[:, :20] = np.nan
    hint[:, :20] = np.nan
    out = confirmed_change(patchy, both, hint, pixel_m2=PX)
    assert not (out > 0.5).any() and np.isnan(out[:, :20]).all()


def test_across_seasons_the_change_must_hold_under_the_same_sun() -> None:
    before, after = _scene()  # January (no house), July (a house)
    prob = np.zeros_like(before)
    prob[15, 15] = 0.35
    # the next January sees the house too (same_sun: the two Januaries): confirmed
    out = confirmed_change(before, after, prob, pixel_m2=PX, same_sun=(before, after))
    assert out[15, 15] == pytest.approx(0.525)
    np.testing.assert_array_equal(out, confirmed_change(before, after, prob, pixel_m2=PX))
    # it does not (July's "house" was a yard lit by the high sun): left as it is
    np.testing.assert_array_equal(confirmed_change(before, after, prob, pixel_m2=PX, same_sun=(before, before)),
                                  prob)
    unsure = after.copy()
    unsure[10:22, 10:22] = 0.8  # below presence (0.85) in the same sun
    np.testing.assert_array_equal(confirmed_change(before, after, prob, pixel_m2=PX, same_sun=(before, unsure)),
                                  prob)
    # a demolition: the pair and its same-sun dates swapped together
    np.testing.assert_allclose(confirmed_change(after, before, prob, pixel_m2=PX, same_sun=(after, before)), out)
    np.testing.assert_array_equal(confirmed_change(after, before, prob, pixel_m2=PX, same_sun=(after, after)),
                                  prob)
    # no data in the same-sun dates is no evidence: the object's pixels there are left out
    holed = after.copy()
    holed[10:22, 10:14] = np.nan
    out = confirmed_change(before, after, prob, pixel_m2=PX, same_sun=(before, holed))
    assert (out[11:21, 10:22] > 0.5).all()  # the strip has data on both dates of the pair: raised too
    blind = np.full_like(after, np.nan)  # no data at all on a same-sun date: no evidence, not confirmed
    np.testing.assert_array_equal(confirmed_change(before, after, prob, pixel_m2=PX, same_sun=(before, blind)),
                                  prob)
    # a detection of the network just beside the house, where a same-sun date has no data: the
    # house is still left alone (raised, it would merge with it)
    beside = prob.copy()
    beside[10:22, 23:30] = 0.9
    holed = after.copy()
    holed[:, 23:] = np.nan
    np.testing.assert_array_equal(confirmed_change(before, after, beside, pixel_m2=PX, same_sun=(before, holed)),
                                  beside)
    with pytest.raises(ValueError, match="same_sun"):
        confirmed_change(before, after, prob, pixel_m2=PX, same_sun=(before[:10], after))


def test_bad_input_is_refused() -> None:
    before, after = _scene()
    prob = np.zeros_like(before)
    with pytest.raises(ValueError, match="shapes"):
        confirmed_change(before, after[:10], prob, pixel_m2=PX)
    with pytest.raises(ValueError, match="below the threshold"):
        confirmed_change(before, after, prob, pixel_m2=PX, threshold=0.3)
    with pytest.raises(ValueError, match="presence"):
        PresenceCheck(presence=0)
    with pytest.raises(ValueError, match="min_area_m2"):
        PresenceCheck(min_area_m2=-1)


class Hint(nn.Module):
    """A change model that only hints: 0.35 where the dates differ, 0.01 elsewhere."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        differ = (a - b).abs().mean(dim=1, keepdim=True) > 0.5
        return torch.where(differ, torch.logit(torch.tensor(0.35)), torch.logit(torch.tensor(0.01)))


class Bright(nn.Module):
    """A "building segmenter" (fed one date twice): very bright pixels (z > 2.5) are buildings (p 0.98)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(a.mean(dim=1, keepdim=True) > 2.5, 4.0, -4.0) + 0 * b[:, :1]


def _series() -> xr.DataArray:
    """January, June, the next January: dark ground; a bright 16 x 16 px house (64 m²) from June
    on; a bright 12 x 12 px yard (36 m²), lit in June only (the segmenter takes it for a roof)."""
    rng = np.random.default_rng(0)
    ground = 50 + 5 * rng.random((3, 64, 64))
    built = ground.copy()
    built[:, 20:36, 20:36] = 200
    lit = built.copy()
    lit[:, 44:56, 44:56] = 200
    times = np.array(["2024-01-01", "2024-06-01", "2025-01-01"], dtype="datetime64[ns]")
    return (xr.concat([_da(ground), _da(lit), _da(built.copy())], dim="time")
            .assign_coords(time=times).transpose("time", "band", "y", "x"))


def test_same_sun_dates_of_a_cross_season_pair() -> None:
    from changedetect.presence import DatePresence

    stack = _series()
    segmenter = Loaded(Bright(), FakeCard(name="bright", version="1"))
    dates = DatePresence(stack, segmenter, CFG)
    # January -> June: January and the next January; June -> January: the two Januaries too
    assert dates.same_sun(0, 1) == (0, 2) and dates.same_sun(1, 2) == (0, 2)
    assert dates.same_sun(0, 2) is None  # already of one season
    assert [dates.applies(i, j) for i, j in [(0, 1), (1, 2), (0, 2)]] == [True, True, True]
    two = DatePresence(stack.isel(time=[0, 1]), segmenter, CFG)  # no date brackets them
    assert two.same_sun(0, 1) is None and not two.applies(0, 1)
    off = DatePresence(stack, segmenter, CFG, check=PresenceCheck(across_seasons=False))
    assert off.same_sun(0, 1) is None and not off.applies(0, 1) and off.applies(0, 2)
    config_off = DatePresence(stack, segmenter, replace(CFG, presence_across_seasons=False))
    assert not config_off.check.across_seasons and config_off.same_sun(0, 1) is None
    from changedetect.config import PipelineConfig  # ... as `changedetect run --config` sets it

    assert not PipelineConfig.from_dict({"detect": {"presence_across_seasons": False}}).detect.presence_across_seasons
    assert dates.rasters == {}  # nothing computed to answer
    # five dates, two years: the nearest bracketing dates, a later one of BEFORE's season first
    times = np.array(["2024-01-10", "2024-07-10", "2025-01-10", "2025-07-10", "2026-01-10"], dtype="datetime64[ns]")
    five = xr.concat([stack.isel(time=0)] * 5, dim="time").assign_coords(time=times)
    dates = DatePresence(five, segmenter, CFG)
    assert dates.same_sun(0, 1) == (0, 2)  # the next January, not the one after
    assert dates.same_sun(1, 2) == (1, 3)  # July and the next July, before the earlier January
    assert dates.same_sun(3, 4) == (2, 4)  # no later July: the last January before it
    assert dates.same_sun(0, 3) == (0, 4)  # an explicit longer pair: a date after its AFTER date
    assert dates.same_sun(-2, -1) == (2, 4)  # negative indices as the stack's


def test_detect_series_confirms_the_hint_under_the_same_sun_only() -> None:
    from changedetect.presence import DatePresence

    stack = _series()
    loaded = Loaded(Hint(), FakeCard())
    segmenter = Loaded(Bright(), FakeCard(name="bright", version="1"))
    alone, first_alone = detect_series(stack, config=CFG, model=loaded)
    assert 0.3 < float(alone.values[28, 28]) < 0.5 and np.isnat(first_alone.values).all()
    assert 0.3 < float(alone.values[50, 50]) < 0.5  # the lit yard: a hint too
    prob, first = detect_series(stack, config=CFG, model=loaded, segmenter=segmenter)
    assert float(prob.values[28, 28]) == pytest.approx(0.525) and float(prob.values[5, 5]) < 0.5
    # January -> June is checked against the two Januaries (the same sun): the house, which still
    # stands the next January, is found there and first seen in June; the yard, a roof to the
    # segmenter in June only, is not
    assert (first.values[20:36, 21:35] == np.datetime64("2024-06-01", "ns")).all()
    assert np.isnat(first.values[:18]).all() and np.isnat(first.values[40:]).all()
    assert float(prob.values[50, 50]) < 0.5
    assert prob.attrs["presence_check"].startswith("bright 1 sha256:")
    assert prob.attrs["presence_check_pairs"] == "2024-01-01/2024-06-01;2024-06-01/2025-01-01;2024-01-01/2025-01-01"
    events = detect_each_pair(stack, config=CFG, model=loaded, segmenter=segmenter)
    assert [(i, j) for i, j, _ in events] == [(0, 1), (1, 2), (0, 2)]
    assert float(events[0][2].values[28, 28]) > 0.5 and float(events[2][2].values[28, 28]) > 0.5
    assert ["presence_check" in p.attrs for _, _, p in events] == [True, True, True]
    # without the next January, nothing brackets January -> June: it is not checked (winter
    # shadows would pass for buildings), and the house stays a hint
    two = stack.isel(time=[0, 1])
    unchecked, _ = detect_series(two, config=CFG, model=loaded, segmenter=segmenter)
    assert "presence_check" not in unchecked.attrs and float(unchecked.values[28, 28]) < 0.5
    # nor with across_seasons off: then only the January -> January pair is checked
    same_only = DatePresence(stack, segmenter, CFG, check=PresenceCheck(across_seasons=False))
    events = detect_each_pair(stack, config=CFG, model=loaded, segmenter=same_only)
    alone_pair = detect_each_pair(stack, config=CFG, model=loaded, pairs=[(0, 1)])[0][2].values
    np.testing.assert_array_equal(events[0][2].values, alone_pair)
    assert ["presence_check" in p.attrs for _, _, p in events] == [False, False, True]
    # switched off: the network alone
    off, _ = detect_series(stack, config=replace(CFG, presence_check=False), model=loaded, segmenter=segmenter)
    np.testing.assert_array_equal(off.values, alone.values)
    assert "presence_check" not in off.attrs
    # the nightly's mask pair is checked whatever its seasons, so that what may have been found
    # before tonight is not reported again
    events = detect_each_pair(stack, config=CFG, model=loaded, segmenter=segmenter, pairs=[(1, 2), (0, 2)],
                              mask_pairs=[(0, 1)])
    assert float(events[1][2].values[28, 28]) == 0.0
    assert "presence_check" in events[0][2].attrs  # (June, January), against the two Januaries
    unmasked = detect_each_pair(stack, config=CFG, model=loaded, segmenter=segmenter, pairs=[(1, 2), (0, 2)])
    assert float(unmasked[1][2].values[28, 28]) > 0.5
    # ... with its own two dates alone: the June-only yard, which the two Januaries rule out for a
    # pair, may have been found on an earlier night's pair, so the mask keeps it
    hint = detect_each_pair(stack, config=CFG, model=loaded, pairs=[(0, 1)])[0][2].values
    dates = DatePresence(stack, segmenter, CFG)
    assert float(dates.confirm(0, 1, hint, any_season=True)[50, 50]) > 0.5
    assert float(dates.confirm(0, 1, hint)[50, 50]) < 0.5
    # a DatePresence keeps the rasters it computed (for the pipeline's change_type), and must be
    # made on the same stack
    dates = DatePresence(stack, segmenter, CFG)
    again, _ = detect_series(stack, config=CFG, model=loaded, segmenter=dates)
    np.testing.assert_array_equal(again.values, prob.values)
    assert sorted(dates.rasters) == [0, 1, 2] and float(dates.raster(-1).values[28, 28]) > 0.9
    with pytest.raises(ValueError, match="another stack"):
        detect_series(stack.isel(time=[0, 2]), config=CFG, model=loaded, segmenter=dates)
    # the check's season follows DetectConfig.season_days
    assert DatePresence(stack, segmenter, replace(CFG, season_days=10)).check.season_days == 10
    assert DatePresence(stack, segmenter, replace(CFG, season_days=None)).check.season_days == 45


def test_same_season_and_check_validation() -> None:
    from changedetect.presence import same_season

    assert same_season(np.datetime64("2024-03-01"), np.datetime64("2025-04-10"), 45)
    assert not same_season(np.datetime64("2024-03-01"), np.datetime64("2025-04-20"), 45)
    with pytest.raises(ValueError, match="season_days"):
        PresenceCheck(season_days=120)


def test_cli_detect_series_uses_the_models_segmenter(tmp_path: Path) -> None:
    """`detect --series` with the shipped model loads its buildings/ stage for the check (the COG
    says so in its tags); --no-presence-check leaves it out."""
    import rasterio
    from click.testing import CliRunner

    from changedetect.cli import cli
    from changedetect.testing import make_stack, write_stack

    write_stack(make_stack(3, size=96, dates=["2024-01-15", "2024-07-12", "2025-01-20"]), tmp_path / "tiles")
    out = tmp_path / "change.tif"
    for flag, checked in (([], True), (["--no-presence-check"], False)):
        res = CliRunner().invoke(cli, ["-q", "detect", str(tmp_path / "tiles"), "--series", "--out", str(out),
                                       "--overwrite", *flag])
        assert res.exit_code == 0, res.output
        with rasterio.open(out) as src:
            tags = src.tags()
        assert ("presence_check" in tags) is checked, tags
        if checked:
            assert tags["presence_check"].startswith("vhr-building-buildings ")
