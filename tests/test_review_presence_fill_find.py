"""The presence check on the last clear view, through find() (whole scene and blocks): a house built
under a cloud that the network only hints at on the filled pair is confirmed from the clear view
(tests/test_review_presence_fill.py has the unit tests)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from test_review_fill_before import CFG, Card, Diff, Loaded
from test_review_presence_fill import CLOUD, HOUSE, SEGMENTER, WINTER, Hint, _series
from torch import nn

from changedetect._pipeline_chain import Clock
from changedetect._pipeline_find import Found, find
from changedetect.config import PipelineConfig
from changedetect.testing import Building, make_stack


def _find(stack: xr.DataArray, network: nn.Module | None = None) -> Found:
    network = Hint() if network is None else network
    config = replace(PipelineConfig(), detect=replace(CFG, same_sun_share=None, rebuilds=False))
    return find(stack, None, None, config, (Loaded(network, Card()), SEGMENTER), Clock(False), False, None)


def _house(found: Found) -> list[tuple[str, str, str, float]]:
    fp = found.footprints
    return [(str(r.first_seen)[:10], str(r.before_date)[:10], r.change_type, round(float(r.prob_mean), 3))
            for r in fp.itertuples()]


def test_a_house_the_network_hints_at_under_a_cloud_is_confirmed_on_the_clear_view() -> None:
    """The network compares the filled BEFORE (2024-01-15 under the cloud) with 2024-02-25 and only
    hints (0.40) at the house; the segmenter sees no roof on 2024-01-15 and one on 2024-02-25.  The
    check read 2024-02-05's own raster, no data under the cloud, and confirmed nothing: the house was
    missed (neither vetoed nor raised), where the same series without the cloud finds it."""
    clear = _find(_series(cloud=False))
    assert _house(clear) == [("2024-02-25", "2024-02-05", "new", pytest.approx(0.525, abs=0.01))]
    found = _find(_series())
    assert found.filled[(1, 2)] is not None and (found.filled[(1, 2)][CLOUD] == 0).all()
    assert float(np.nanmax(found.prob.values[HOUSE])) == pytest.approx(0.525)
    assert _house(found) == [("2024-02-25", "2024-01-15", "new", pytest.approx(0.525, abs=0.01))]


def test_a_house_the_network_decides_under_a_cloud_is_typed_new() -> None:
    """change_type reads the first and last dates' rasters, never filled (the first has no earlier
    date, the last is an AFTER): a house built under the middle date's cloud is `new`."""
    assert _house(_find(_series(), Diff())) == [("2024-02-25", "2024-01-15", "new", pytest.approx(0.999, abs=0.01))]


def test_each_date_is_segmented_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import changedetect.presence as presence

    calls: list[str] = []
    real = presence.building_presence

    def counted(date: xr.DataArray, *args: object, **kwargs: object) -> xr.DataArray:
        calls.append(str(date["time"].values)[:10])
        return real(date, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(presence, "building_presence", counted)
    _find(_series())
    assert sorted(calls) == WINTER  # 2024-01-15 once, for its own pair and as the clear view


def test_a_blocked_run_confirms_it_as_the_whole_scene_does(tmp_path: Path) -> None:
    """Each block runs find() on its own stack: its filled sources and its segmenter's rasters are
    the block's, so a house under a cloud across the blocks' seam is confirmed as on the whole scene."""
    from changedetect._pipeline_blocks import run_blocks

    house = Building(150, 150, 12, 12, appears=2)  # across the seam of 2 x 2 blocks of 160 px
    stack = make_stack(dates=WINTER, size=320, buildings=[house], noise=1.0, seed=4).copy(deep=True)
    stack.values[1, :, 140:176, 140:176] = np.nan
    config = replace(PipelineConfig(), detect=replace(CFG, same_sun_share=None, rebuilds=False))
    models = (Loaded(Hint(), Card()), SEGMENTER)
    whole = find(stack, None, None, config, models, Clock(False), False, None)
    config = replace(config, run=replace(config.run, block_px=256, halo_px=32))
    blocked = run_blocks(stack, None, None, config, models, Clock(False), False, None, tmp_path)
    assert blocked.footprints.attrs["blocks"] == 4
    rows = [[(str(r.first_seen)[:10], str(r.before_date)[:10], r.change_type, round(r.area_m2, 2))
             for r in found.footprints.itertuples()] for found in (whole, blocked)]
    assert rows[0] == rows[1] == [("2024-02-25", "2024-01-15", "new", 36.0)]

