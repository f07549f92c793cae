"""change_type on the last clear view: without a building segmenter, :func:`change_types` reads the
first kept date's brightness.  When that date is a nightly pair's BEFORE with a cloud its SCL
masked, the pair compared the filled image (the clear view from an earlier date); the type must
be read from that same image, not from the cloud's no data (which reads as "nothing built", so a
house pulled down under the cloud came out `new`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import xarray as xr
from test_review_fill_before import CFG, MODEL

from changedetect._pipeline_chain import Clock
from changedetect._pipeline_find import Found, find
from changedetect.config import PipelineConfig
from changedetect.testing import Building, make_stack

DATES = ["2024-01-15", "2024-03-15", "2024-05-15"]
HOUSE = (slice(30, 42), slice(20, 32))  # standing on the first two dates, gone on the last
CLOUD = (slice(24, 48), slice(14, 40))  # over it on the middle date


def _demolition(cloud: bool) -> xr.DataArray:
    house = Building(HOUSE[0].start, HOUSE[1].start, 12, 12, appears=0)
    stack = make_stack(dates=DATES, size=64, buildings=[house], noise=1.0, seed=4).copy(deep=True)
    bare = make_stack(dates=DATES, size=64, buildings=[], noise=1.0, seed=4)
    stack.values[2] = bare.values[2]
    if cloud:
        stack.values[1, :, CLOUD[0], CLOUD[1]] = np.nan
    return stack


def _types(stack: xr.DataArray, fill: bool = True) -> list[str]:
    """The nightly's shape of run: the pair (1, 2) compared, date 0 read only to fill date 1."""
    detect = replace(CFG, same_sun_share=None, rebuilds=False, fill_masked_before=fill)
    found: Found = find(stack, [(1, 2)], None, replace(PipelineConfig(), detect=detect), (MODEL, None),
                        Clock(False), False, None, fill_from=[0])
    return [str(t) for t in found.footprints["change_type"]]


def test_a_house_pulled_down_under_the_previous_dates_cloud_is_typed_demolished() -> None:
    assert _types(_demolition(cloud=False)) == ["demolished"]  # the clear series: the heuristic's answer
    assert _types(_demolition(cloud=True)) == ["demolished"]  # the cloud's pair: read on the clear view


def test_without_filling_the_cloud_hides_it_as_before() -> None:
    assert _types(_demolition(cloud=True), fill=False) == []  # nothing compared under the cloud
