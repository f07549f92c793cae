"""Review: the open register's violations opened before ``--parcels`` was first given get their parcel on
the first night run with the layer, and carry the current layer's parcel when the cadastre changes.

Until then a violation kept the parcel its night gave it: one opened on a night without the layer kept
empty parcel columns for as long as it stayed open, beside rows that had theirs.  The nights are those
of :mod:`test_review_nightly_parcels` (a house on lot 7/101, reported on night 2)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import box
from test_review_nightly_parcels import ADDRESS, _bytes, _lots, _night
from test_review_nightly_rerun_withdraw import NIGHTS, _world

COLUMNS = ["parcel_id", "parcel_sheet", "parcel_no", "parcel_address", "parcel_land_use", "parcel_share",
           "parcels_crossed"]


def _open(out: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(out / "open_violations.gpkg", layer="open_violations")


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Nights 1 and 2 without the layer (the house is opened without a parcel), night 3 with it."""
    world = _world(tmp_path_factory.mktemp("parcel_backfill"))
    shutil.copy(world["held"], world["tiles"] / "s2" / world["held"].name)  # the SCL with its date
    for night in NIGHTS[:2]:
        _night(world, night)
    out = world["root"] / "out"
    lots = _lots(world["root"] / "thua_dat.gpkg")
    opened = _open(out)
    third = _night(world, NIGHTS[2], parcels=lots)
    return {**world, "lots": lots, "opened": opened, "third": third, "after_3": _open(out)}


def test_the_house_was_opened_without_a_parcel(nights: dict[str, Any]) -> None:
    """The premise: night 2 had no layer."""
    assert len(nights["opened"]) == 1 and "parcel_id" not in nights["opened"]


def test_the_first_night_with_the_layer_gives_the_open_violation_its_parcel(nights: dict[str, Any]) -> None:
    after = nights["after_3"]
    assert nights["third"].new_violations == 0 and len(after) == 1
    row = after.iloc[0]
    assert row["violation_id"] == nights["opened"]["violation_id"].iloc[0]
    assert (row["parcel_id"], row["parcel_sheet"], row["parcel_no"], row["parcel_address"], row["parcel_land_use"],
            row["parcel_share"], row["parcels_crossed"]) == ("7/101", "7", "101", ADDRESS, "ODT", 1.0, 1)
    assert list(after.columns).index("parcels_crossed") < list(after.columns).index("same_sun")  # where a night
    # with the layer puts them
    state = gpd.read_parquet(sorted((nights["root"] / "state").glob("violations-*.parquet"))[-1])
    assert state["parcels_crossed"].dtype == np.int64  # not a float column with the NaN of the rows before


def test_the_night_again_changes_no_byte(nights: dict[str, Any]) -> None:
    out = nights["root"] / "out"
    before = _bytes(out)
    again = _night(nights, NIGHTS[2], parcels=nights["lots"])
    assert again.pairs == 0 and _bytes(out) == before


def test_a_changed_cadastre_gives_the_open_rows_its_parcel(nights: dict[str, Any]) -> None:
    """The next night with the same layer changes nothing; with the address corrected, the row takes it."""
    out = nights["root"] / "out"
    _night(nights, NIGHTS[3], parcels=nights["lots"])
    same = _open(out)
    assert same[COLUMNS].equals(nights["after_3"][COLUMNS])
    _lots(nights["lots"], address="Số 16 Tô Ký")
    _night(nights, "2020-07-08", parcels=nights["lots"])
    assert _open(out)["parcel_address"].tolist() == ["Số 16 Tô Ký"]


# ------------------------------------------------------------------------------------- unit level
def _register(night: str) -> gpd.GeoDataFrame:
    """Three open rows: one of ``night`` (its run's parcel), one of an earlier night with a parcel whose share
    was measured by its run (0.999), one of an earlier night without a parcel (as concatenated: NaN)."""
    return gpd.GeoDataFrame({
        "violation_id": ["a-1", "a-2", "a-3"], "area": "a", "night": [night, "2020-01-01", "2020-01-01"],
        "parcel_id": ["L/1", "L/1", None], "parcel_address": ["run's", "Số 1", None],
        "parcel_share": [0.5, 0.999, np.nan], "parcels_crossed": [1.0, 1.0, np.nan], "same_sun": "not needed",
    }, geometry=[box(0, 0, 10, 10), box(1, 1, 9, 9), box(2, 2, 8, 8)], crs="EPSG:32648")


def test_tonights_rows_and_unchanged_parcels_are_left_as_they_are() -> None:
    from changedetect._nightly_parcels import with_current_parcels

    lots = gpd.GeoDataFrame({"parcel_id": ["L/1"], "address": ["Số 1"]}, geometry=[box(-5, -5, 15, 15)],
                            crs="EPSG:32648")
    got = with_current_parcels(_register("2020-07-05"), lots, "2020-07-05")
    assert got["parcel_address"].tolist() == ["run's", "Số 1", "Số 1"]  # tonight's: its run's
    assert got["parcel_share"].tolist() == [0.5, 0.999, 1.0]  # the same parcel: the share its night measured
    assert got["parcels_crossed"].tolist() == [1, 1, 1] and got["parcels_crossed"].dtype == np.int64
    assert list(got.columns) == ["violation_id", "area", "night", "parcel_id", "parcel_address", "parcel_share",
                                 "parcels_crossed", "same_sun", "geometry"]
    moved = lots.assign(geometry=[box(5, -5, 15, 15)])  # the lot redrawn: half the earlier rows on it
    assert with_current_parcels(_register("2020-07-05"), moved, "2020-07-05")["parcel_share"].tolist() == \
        [0.5, 0.5, 0.5]
