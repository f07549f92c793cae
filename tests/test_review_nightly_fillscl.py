"""Review: a fill date's SCL that arrives late makes the pairs that filled from it run again.

Four dates, one a night; the second's SCL is held back.  The third is cloudy (its SCL, on time, masks
CLOUD), so the fourth night's pair (d2, d3) fills d2's no data there from the last clear view, the
second date (``[detect] fill_dates``), which without its SCL has data everywhere: its cloud shadow
(dark, over SHADOW) reads as ground that brightened by d3, a violation; its cloud (white, over HIDDEN)
hides the house standing there by d3.  When the second date's SCL lands, its own pairs run again (the
existing rule), and until 2026-12-01 nothing else did: the shadow's violation stayed open and the house
was never reported.  Now (d2, d3), which read that date as a fill date, runs again too: the shadow's
violation is withdrawn (``under a cloud a late SCL masks``), the house is reported, filled from the
first date; the night again, and the next night, change nothing.  The detector reads any brightening as
change (``test_review_nightly_rerun_withdraw``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from test_review_nightly_rerun_withdraw import (
    ORIGIN,
    SIZE,
    _night,
    _open,
    _px,
    _under,
    _world_of,
)
from test_review_s2_clouds import _write

DATES = ("20200105", "20200305", "20200505", "20200705")  # no two a year apart: no same-season partner
NIGHTS = ("2020-01-06", "2020-03-06", "2020-05-06", "2020-07-06", "2020-07-07", "2020-07-08")
CLOUD = (slice(20, 36), slice(18, 34))  # d2's cloud, 10 m pixels (the SCL's 20 m rows 10:18, cols 9:17)
SHADOW = (slice(20, 26), slice(18, 34))  # d1's cloud shadow (SCL 3, rows 10:13)
HIDDEN = (slice(28, 36), slice(18, 34))  # d1's cloud (SCL 9, rows 14:18)
HOUSE = (slice(30, 36), slice(22, 30))  # standing by d2, under both clouds
KIND = "under a cloud a late SCL masks"


def _world(root: Path) -> dict[str, Any]:
    def paint(k: int, data: np.ndarray, scl: np.ndarray) -> None:
        data[:, 0:16, 0:32] = 3000  # on every date: it sets each scene's spread, so z-scores compare
        if k >= 2:
            data[(slice(None), *HOUSE)] = 3000
        if k == 1:
            data[(slice(None), *SHADOW)] = 100
            data[(slice(None), *HIDDEN)] = 4000
            scl[10:13, 9:17] = 3
            scl[14:18, 9:17] = 9
        if k == 2:
            data[(slice(None), *CLOUD)] = 9000
            scl[10:18, 9:17] = 9

    return _world_of(root, DATES, paint)


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    world = _world(tmp_path_factory.mktemp("fill_scl"))
    summaries = [_night(world, night) for night in NIGHTS[:4]]
    world["before"] = _open(world["root"] / "out")
    shutil.copy(world["held"], world["tiles"] / "s2" / world["held"].name)  # d1's SCL lands late
    summaries.append(_night(world, NIGHTS[4]))
    return {**world, "summaries": summaries}


def _house(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    where = _px(*HOUSE)
    return frame[[g.intersection(where).area > 0.5 * where.area for g in frame.geometry]]


def test_the_first_runs_read_the_shadow_as_change_and_miss_the_house(nights: dict[str, Any]) -> None:
    """The premise: without d1's SCL, (d2, d3) filled d2's cloud from d1's shadow and cloud."""
    before = nights["before"]
    shadow = before[[v in _under(before, _px(*SHADOW)) for v in before["violation_id"]]]
    assert [(str(b)[:10], str(a)[:10]) for b, a in zip(shadow["before"], shadow["after"], strict=True)] == [
        ("2020-05-05", "2020-07-05")], before[["violation_id", "before", "after"]]
    assert not any(str(a)[:10] == "2020-07-05" for a in _house(before)["after"]), before


def test_the_pair_that_filled_from_the_late_date_runs_again(nights: dict[str, Any]) -> None:
    late = nights["summaries"][4]
    assert not late.failed, late.failed
    assert [r["date"] for r in late.reruns] == ["2020-03-05"], late.reruns
    ran = sorted((c["before"], c["after"]) for c in late.coverage["s2"])
    assert ran == [("2020-01-05", "2020-03-05"), ("2020-03-05", "2020-05-05"), ("2020-05-05", "2020-07-05")], ran


def test_its_violation_under_the_late_shadow_is_withdrawn(nights: dict[str, Any]) -> None:
    late, before = nights["summaries"][4], nights["before"]
    (shadow,) = _under(before, _px(*SHADOW))
    assert shadow in late.withdrawn and late.withdrawn_reasons.get(KIND) == len(late.withdrawn), late
    out = nights["root"] / "out"
    gone = gpd.read_file(out / f"withdrawn-{NIGHTS[4]}.gpkg", layer=f"withdrawn-{NIGHTS[4]}")
    why = gone.set_index("violation_id").loc[shadow, "withdrawn_reason"]
    assert why.startswith(f"{KIND}: ") and "2020-03-05 ('s2_20200305_SCL.tif')" in why, why
    assert "filled" in why and "2020-05-05 -> 2020-07-05" in why, why
    assert shadow not in set(_open(out)["violation_id"])


def test_the_house_under_the_late_cloud_is_reported_filled_from_the_first_date(nights: dict[str, Any]) -> None:
    house = _house(_open(nights["root"] / "out"))
    assert len(house) == 1, house
    row = house.iloc[0]
    assert (str(row["before"])[:10], str(row["after"])[:10]) == ("2020-05-05", "2020-07-05"), row
    assert str(row["before_date"])[:10] == "2020-01-05" and str(row["night"])[:10] == NIGHTS[4], row  # DATE fields


def test_the_night_again_and_the_next_change_nothing(nights: dict[str, Any]) -> None:
    root, out = nights["root"], nights["root"] / "out"
    files = sorted(p for p in [*out.iterdir(), root / "state" / "state.json"] if p.is_file())
    before = {p.name: p.read_bytes() for p in files}
    again = _night(nights, NIGHTS[4])
    assert (again.pairs, again.withdrawn, again.reruns) == (0, [], []), again
    assert {p.name: p.read_bytes() for p in files} == before
    nxt = _night(nights, NIGHTS[5])
    assert (nxt.pairs, nxt.reruns, nxt.withdrawn, nxt.new_violations) == (0, [], [], 0), nxt


# ------------------------------------------------------------------------------------- unit level
PAIR = {"before": "2020-05-05", "after": "2020-07-05", "scl_rerun": {}}


def _scl_file(path: Path, masked: tuple[slice, slice] | None) -> str:
    """A 20 m SCL (vegetation, 4) with class 9 over ``masked`` (10 m pixel slices, even bounds)."""
    scl = np.full((SIZE // 2, SIZE // 2), 4, dtype=np.uint8)
    if masked is not None:
        scl[masked[0].start // 2:masked[0].stop // 2, masked[1].start // 2:masked[1].stop // 2] = 9
    _write(path, scl[None], ORIGIN @ Affine.scale(2))
    return str(path)


def _rerun_folder(run_dir: Path, *, masked: bool = True, found: list[Any] = ()) -> Path:
    """What a rerun pair leaves: before_rgb.tif with no data over CLOUD, run.json's clouds, its footprints."""
    run_dir.mkdir(parents=True)
    rgb = np.full((3, SIZE, SIZE), 120, dtype=np.uint8)
    before = rgb.copy()
    before[(slice(None), *CLOUD)] = 0
    profile = {"driver": "GTiff", "width": SIZE, "height": SIZE, "count": 3, "dtype": "uint8",
               "crs": "EPSG:32632", "transform": ORIGIN, "nodata": 0}
    for name, data in (("before_rgb.tif", before), ("after_rgb.tif", rgb)):
        with rasterio.open(run_dir / name, "w", **profile) as dst:
            dst.write(data)
    clouds = [{"date": d, "cloud_share": 0.06, "masked_share": 0.06, "masked": masked, "scl": f"s2_{d.replace('-', '')}_SCL.tif"}
              for d in ("2020-01-05", "2020-03-05", "2020-05-05")]
    (run_dir / "run.json").write_text(json.dumps({"clouds": clouds}), encoding="utf-8")
    gpd.GeoDataFrame({"footprint_id": [f"F-{i}" for i in range(len(found))]}, geometry=list(found),
                     crs="EPSG:32632").to_file(run_dir / "footprints.gpkg")
    return run_dir


def _register(rows: list[tuple[str, Any]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"violation_id": [r[0] for r in rows], "area": "s2", "night": NIGHTS[3],
                             "before": PAIR["before"], "after": PAIR["after"], "status": "unlicensed",
                             "footprint_id": "F-x"}, geometry=[r[1] for r in rows], crs="EPSG:32632").to_crs(9210)


def test_only_what_the_fill_took_from_the_late_date_and_the_rerun_no_longer_finds(tmp_path: Path) -> None:
    """The late date is d0, the earlier fill date (d1 is tried first).  Withdrawn: no data on BEFORE, d1
    masked (so the first run took d0), d0 now masked by its late SCL, not found again.  Kept: where BEFORE
    has data (never filled), where d1 was the clear view, where d0's SCL is clear, what the rerun finds."""
    from changedetect._withdraw_masked import withdraw_masked

    d0 = _scl_file(tmp_path / "s2_20200105_SCL.tif", (slice(20, 36), slice(10, 30)))
    d1 = _scl_file(tmp_path / "s2_20200305_SCL.tif", (slice(28, 36), slice(18, 34)))
    found_again = _px(slice(28, 36), slice(24, 30))
    run_dir = _rerun_folder(tmp_path / "rerun", found=[found_again])
    register = _register([("under", _px(slice(28, 36), slice(18, 24))),
                          ("found", found_again),
                          ("later_clear", _px(slice(20, 28), slice(18, 30))),  # d1 clear: took d1 both times
                          ("before_has_data", _px(slice(20, 36), slice(10, 18))),
                          ("late_clear", _px(slice(28, 36), slice(30, 34)))])
    fill = [{"path": "d0.tif", "date": "2020-01-05", "scl": d0}, {"path": "d1.tif", "date": "2020-03-05", "scl": d1}]
    pair = {**PAIR, "run_dir": str(run_dir), "fill": fill, "scl_fill": {"2020-01-05": "its SCL came late"}}
    results = [{"area": "s2", "error": None, "runs": [pair]}]
    kept, gone = withdraw_masked(register, results, NIGHTS[4])
    assert gone["violation_id"].tolist() == ["under"], gone
    assert kept["violation_id"].tolist() == ["found", "later_clear", "before_has_data", "late_clear"]
    why = gone["withdrawn_reason"].iloc[0]
    assert why.startswith(f"{KIND}: 100% of it") and "filled" in why and "2020-01-05 ('s2_20200105_SCL.tif')" in why
    # d1's own SCL masking all of BEFORE's no data: the first run took d0 there too
    fill = [fill[0], {**fill[1], "scl": _scl_file(tmp_path / "d1_all.tif", CLOUD)}]
    results = [{"area": "s2", "error": None, "runs": [{**pair, "fill": fill}]}]
    assert withdraw_masked(register, results, NIGHTS[4])[1]["violation_id"].tolist() == ["under", "later_clear"]
    # a fill date without an SCL had data everywhere: the late date filled nothing after it
    results = [{"area": "s2", "error": None, "runs": [{**pair, "fill": [fill[0], {**fill[1], "scl": None}]}]}]
    assert not len(withdraw_masked(register, results, NIGHTS[4])[1])
    # an SCL the rerun did not mask (cloud_mask = false) withdraws nothing
    unmasked = _rerun_folder(tmp_path / "unmasked", masked=False, found=[found_again])
    results = [{"area": "s2", "error": None, "runs": [{**pair, "run_dir": str(unmasked)}]}]
    assert not len(withdraw_masked(register, results, NIGHTS[4])[1])
