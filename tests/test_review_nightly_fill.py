"""The nightly job's last clear view: a house put up under the previous night's cloud (the middle
date's SCL masks it) is found by the third night's pair, whose BEFORE is filled from the area's first
date (read for it, not compared: ``[detect] fill_dates``), first seen on the third date with the
first as its ``before_date``; the nights again change nothing.  Until 2026-12 the nightly job, which
runs explicit pairs, never filled: (d0, d1) and (d1, d2) both had no data there and it was never
reported.  The detector reads any brightening as change (``test_review_nightly_rerun_withdraw``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
from test_review_nightly_rerun_withdraw import _brighter_model, _night, _open, _px, _write_dates

from changedetect.testing import make_nightly_catalog

DATES = ("20200105", "20200305", "20200505")  # no two a year apart: no same-season partner
NIGHTS = ("2020-01-06", "2020-03-06", "2020-05-06")
CLOUD = (slice(20, 36), slice(18, 34))  # 10 m pixels; the SCL's 20 m rows 10:18, cols 9:17
HOUSE = (slice(24, 32), slice(22, 30))  # under it


def _world(root: Path, fill_dates: int = 2) -> dict[str, Any]:
    def paint(k: int, data: np.ndarray, scl: np.ndarray) -> None:
        if k:
            data[(slice(None), *HOUSE)] = 5000  # going up under the cloud, standing by the third date
        if k == 1:
            data[(slice(None), *CLOUD)] = 9000
            scl[10:18, 9:17] = 9

    world = make_nightly_catalog(root, {})
    _write_dates(world["tiles"] / "s2", DATES, paint)
    model = _brighter_model(root / "brighter")
    world["config"].write_text(f'[detect]\nmodel = "{model}"\nwindow = 64\noverlap = 8\nfill_dates = {fill_dates}\n',
                               encoding="utf-8")
    return world


def _three_nights(world: dict[str, Any]) -> list[Any]:
    return [_night(world, night) for night in NIGHTS]


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    world = _world(tmp_path_factory.mktemp("nightly_fill"))
    summaries = _three_nights(world)
    out = world["root"] / "out"
    first = {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}
    state = (world["root"] / "state" / "state.json").read_bytes()
    again = [_night(world, night) for night in NIGHTS]
    return {**world, "summaries": summaries, "again": again, "files": first, "state": state}


def _on_house(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    where = _px(*HOUSE)
    return frame[[g.intersection(where).area > 0.5 * where.area for g in frame.geometry]]


def test_the_third_night_reports_the_house_built_under_the_cloud(nights: dict[str, Any]) -> None:
    third = gpd.read_file(nights["root"] / "out" / "violations-2020-05-06.gpkg",
                          layer="violations-2020-05-06").to_crs(32632)
    house = _on_house(third)
    assert len(house) == 1, third
    row = house.iloc[0]
    assert str(row["first_seen"])[:10] == "2020-05-05"
    assert (str(row["before"])[:10], str(row["after"])[:10]) == ("2020-03-05", "2020-05-05")
    assert nights["summaries"][1].new_violations == 0  # the cloud itself: masked, no violation


def test_its_before_date_is_the_clear_view(nights: dict[str, Any]) -> None:
    third = _on_house(_open(nights["root"] / "out"))
    assert len(third) == 1 and str(third.iloc[0]["before_date"])[:10] == "2020-01-05", third.columns


def test_the_nights_again_change_nothing(nights: dict[str, Any]) -> None:
    assert all(s.new_violations == 0 and s.pairs == 0 for s in nights["again"])
    out = nights["root"] / "out"
    assert {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()} == nights["files"]
    assert (nights["root"] / "state" / "state.json").read_bytes() == nights["state"]


def test_fill_dates_0_reads_none_and_the_house_is_never_reported(tmp_path: Path) -> None:
    world = _world(tmp_path, fill_dates=0)
    summaries = _three_nights(world)
    assert summaries[2].new_violations == 0
    assert _on_house(_open(world["root"] / "out")).empty
