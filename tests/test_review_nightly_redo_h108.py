"""Review (helper-108) of a night done again, and of a violation an inspector confirmed after an image check.

- The last night done again (another permit register, or decisions) writes its lists with the types of a
  first run: ``overlap_ratio``, ``excess_area_m2``, ``area_m2`` and ``confidence`` ``Real`` in the CSVs'
  ``.csvt``, ``confidence`` a float32 in the GeoPackage and written as the first run wrote it; before, the merge's
  empty frame of the night's (no) candidates made them ``object``: ``String``, ``Real`` and the float32 widened
  (``0.9103000164031982`` for ``0.9103`` on the sample city).  A
  night whose pair finds nothing new lost them the same way, in the open register and for good in the state.
- ``violations-<night>`` lists the night's violations that are open when the night is committed: a night done
  again lists one of its own rows that it withdraws (a permit entered since, a ``false_alarm``) in
  ``withdrawn-<night>`` with its reason, and no longer in ``violations-<night>``; the two lists together hold
  every row first seen that night, once.  (The code did so already; commit 5a7c3e0 said the list still held
  every row first seen that night: this pins the behaviour chosen, which a list keeping the row would fail.)
- A violation an image check withdrew (a moved shadow) that an inspector confirmed since is back in the register
  with ``same_sun`` ``confirmed by an inspector``, not ``pending``: it is never judged again, so it no longer
  counts as awaiting a same-season check (before: ``(1 awaiting a same-season check)`` every night after).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import pytest
from test_review_nightly_decisions_h100 import SAME_SUN
from test_review_nightly_rematch import _open_rows, _snapshot

NIGHTS = ("2020-01-06", "2020-07-05", "2020-09-04")
NUMBERS = ("overlap_ratio", "excess_area_m2", "area_m2", "confidence", "prob_mean", "prob_max")


def _run(world: dict[str, Any], base: Path, night: str, permits: Path, decisions: Path | None = None) -> Any:
    from changedetect.config import PipelineConfig
    from changedetect.nightly import run_nightly

    return run_nightly(world["tiles"], permits=permits, state=base / "state", out=base / "out", night=night,
                       workers=1, config=PipelineConfig.from_toml(world["config"]), decisions=decisions)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """:mod:`test_review_nightly_rematch`'s world (a house and a block new in July): nights 1 and 2 committed
    with the first register (``two``); ``house`` and ``block``: their ids."""
    from test_review_nightly_decisions_h100 import _id_at, _open_at
    from test_review_nightly_rematch import BLOCK, house_and_block_world
    from test_review_nightly_rerun_withdraw import HOUSE

    root = tmp_path_factory.mktemp("redo_h108")
    world = house_and_block_world(root)
    for night in NIGHTS[:2]:
        _run(world, root, night, world["first"])
    world["two"] = _snapshot(root, "two")
    opened = _open_at(world["two"])
    world["house"], world["block"] = _id_at(opened, HOUSE), _id_at(opened, BLOCK)
    return world


def _csv(path: Path) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """A list's CSV: column -> its ``.csvt`` type, and id -> column -> the text written."""
    import csv

    text = path.read_text(encoding="utf-8-sig").splitlines()
    header = next(csv.reader(text[:1]))
    types = path.with_suffix(".csvt").read_text(encoding="utf-8").strip().split(",")
    rows = {r["violation_id"]: r for r in csv.DictReader(text)}
    return dict(zip(header, types, strict=True)), rows


def _gpkg_types(path: Path) -> dict[str, str]:
    info = pyogrio.read_info(path, layer=path.stem)
    return dict(zip(info["fields"], [str(t) for t in info["dtypes"]], strict=True))


def _decisions(path: Path, *rows: tuple[str, str]) -> Path:
    path.write_text("violation_id,decision,decided_on,inspector\n" + "".join(
        f"{v},{d},2020-07-05,Nguyễn Văn A\n" for v, d in rows), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------- 1. the types
def test_the_night_done_again_writes_the_types_and_numbers_of_its_first_run(world: dict[str, Any]) -> None:
    """Night 2 done again with the register that gained a permit over the house (withdrawn) and one for a third
    of the block (now ``exceeds_permit``): the lists' numeric columns have the first run's types, in the CSVs'
    ``.csvt`` and in the GeoPackages, and the same text in the CSV."""
    first = world["two"] / "out"
    base = _snapshot(world["two"], "types")
    summary = _run(world, base, NIGHTS[1], world["entered"])
    assert summary.withdrawn == [world["house"]], summary
    was_types, was_rows = _csv(first / f"violations-{NIGHTS[1]}.csv")
    assert {was_types[c] for c in NUMBERS} == {"Real"}  # the premise
    was_gpkg = _gpkg_types(first / f"violations-{NIGHTS[1]}.gpkg")
    for stem in (f"violations-{NIGHTS[1]}", f"withdrawn-{NIGHTS[1]}"):
        types, rows = _csv(base / "out" / f"{stem}.csv")
        assert {c: types[c] for c in NUMBERS} == {c: was_types[c] for c in NUMBERS}, stem
        gpkg = _gpkg_types(base / "out" / f"{stem}.gpkg")
        assert {c: gpkg[c] for c in NUMBERS} == {c: was_gpkg[c] for c in NUMBERS}, stem
        for vid, row in rows.items():  # (the block's overlap and excess are tonight's match's)
            assert (row["confidence"], row["area_m2"]) == (was_rows[vid]["confidence"], was_rows[vid]["area_m2"])
    assert _gpkg_types(base / "out" / "open_violations.gpkg")["confidence"] == was_gpkg["confidence"]
    kept = gpd.read_parquet(next((base / "state").glob("violations-*.parquet")))
    assert str(kept["confidence"].dtype) == was_gpkg["confidence"]


def test_a_night_whose_pair_finds_nothing_new_keeps_the_registers_types(world: dict[str, Any]) -> None:
    """Night 3: its pair (July -> September) finds nothing new; the open register and the state keep their
    numeric types (before: ``confidence`` float64, in the state for good, so that every later night's
    ``confidence`` read ``0.8999999761581421``)."""
    base = _snapshot(world["two"], "quiet")
    was = _gpkg_types(world["two"] / "out" / "open_violations.gpkg")
    state = next((world["two"] / "state").glob("violations-*.parquet"))
    was_state = {c: str(t) for c, t in gpd.read_parquet(state).dtypes.items() if c in NUMBERS}
    summary = _run(world, base, NIGHTS[2], world["first"])
    assert (summary.pairs, summary.new_violations, summary.open_violations) == (1, 0, 2), summary
    now = _gpkg_types(base / "out" / "open_violations.gpkg")
    assert {c: now[c] for c in NUMBERS} == {c: was[c] for c in NUMBERS}
    kept = gpd.read_parquet(next((base / "state").glob("violations-*.parquet")))
    assert {c: str(t) for c, t in kept.dtypes.items() if c in NUMBERS} == was_state


def test_retyped_gives_object_columns_of_numbers_their_committed_type() -> None:
    import numpy as np
    import pandas as pd

    from changedetect._nightly_commit import retyped

    frame = pd.DataFrame({"confidence": pd.Series([np.float32(0.9).item(), None], dtype=object),
                          "area_m2": pd.Series([1.5, 2.0], dtype=object), "status": ["a", "b"],
                          "mixed": pd.Series([1.0, "x"], dtype=object), "n": pd.Series([1, None], dtype=object)})
    got = retyped(frame, {"confidence": np.dtype("float32"), "area_m2": np.dtype("float64"),
                          "mixed": np.dtype("float64"), "n": np.dtype("int64")})
    assert [str(t) for t in got.dtypes] == ["float32", "float64", str(frame["status"].dtype), "object", "object"]
    assert str(got["confidence"].iloc[0]) == "0.9" and np.isnan(got["confidence"].iloc[1])


# ------------------------------------------------------------------------ 2. the night's list, done again
@pytest.mark.parametrize("how", ["register", "false_alarm"])
def test_a_night_done_again_lists_its_own_withdrawn_row_in_the_withdrawn_list_only(
        world: dict[str, Any], tmp_path: Path, how: str) -> None:
    """Night 2 done again with a permit entered over the house, or a decision dismissing it: the house leaves
    ``violations-<night>`` (the night's violations open when it is committed) for ``withdrawn-<night>``, with
    its reason; the two lists hold the first run's rows, each once; run again (and with the night's list
    gone, restored) nothing changes."""
    base = _snapshot(world["two"], f"listed-{how}")
    if how == "register":
        summary = _run(world, base, NIGHTS[1], world["entered"])
        kind = "now covered by a permit in the register"
    else:
        summary = _run(world, base, NIGHTS[1], world["first"],
                       _decisions(tmp_path / "d.csv", (world["house"], "false_alarm")))
        kind = "dismissed by the inspector as a false alarm"
    assert summary.withdrawn == [world["house"]] and summary.new_violations == 0, summary
    first = gpd.read_file(world["two"] / "out" / f"violations-{NIGHTS[1]}.gpkg", layer=f"violations-{NIGHTS[1]}")
    assert sorted(first["violation_id"]) == sorted([world["house"], world["block"]])  # the premise

    def lists() -> tuple[list[str], gpd.GeoDataFrame]:
        listed = gpd.read_file(base / "out" / f"violations-{NIGHTS[1]}.gpkg", layer=f"violations-{NIGHTS[1]}")
        gone = gpd.read_file(base / "out" / f"withdrawn-{NIGHTS[1]}.gpkg", layer=f"withdrawn-{NIGHTS[1]}")
        return listed["violation_id"].tolist(), gone

    listed, gone = lists()
    assert listed == [world["block"]]
    assert gone["violation_id"].tolist() == [world["house"]] and gone["withdrawn_reason"][0].startswith(kind)
    assert str(gone["night"][0])[:10] == NIGHTS[1]  # first seen that night
    assert sorted(listed + gone["violation_id"].tolist()) == sorted(first["violation_id"])
    for name in (f"violations-{NIGHTS[1]}.gpkg", f"violations-{NIGHTS[1]}.csv"):
        (base / "out" / name).unlink()
    _run(world, base, NIGHTS[1], world["entered"] if how == "register" else world["first"])
    again, gone_again = lists()
    assert again == listed and gone_again["violation_id"].tolist() == [world["house"]]


# ------------------------------------------------------------------- 3. reopened by an inspector's decision
def _table(*rows: tuple[str, str, str]) -> Any:
    import pandas as pd

    return pd.DataFrame([{"violation_id": v, "decision": d, "decided_on": day, "inspector": "", "note": "",
                          "row": k + 1} for k, (v, d, day) in enumerate(rows)],
                        columns=["violation_id", "decision", "decided_on", "inspector", "note", "row"])


def test_a_reopened_confirmed_violation_no_longer_awaits_a_same_season_check(tmp_path: Path) -> None:
    """``a-1`` (a July row, ``pending``) was withdrawn as a moved shadow; an inspector confirms it: the next night
    it is back with ``same_sun`` ``confirmed by an inspector`` and the night counts 0 awaiting a check, and so
    does the night after, without decisions.  ``a-0``, open and ``pending``, confirmed the same night: likewise;
    ``a-3`` (not decided) stays ``pending``."""
    from changedetect import _merge
    from changedetect._nightly_commit import _pending
    from changedetect._nightly_decisions import INSPECTED, bound
    from changedetect._state import State

    rows = _open_rows().assign(same_sun="pending")
    state = State(generation=4)
    _merge.write_generation(rows.iloc[[0, 3]].reset_index(drop=True), state.violations_path(tmp_path))
    gone = rows.iloc[[1]].assign(withdrawn="2020-09-04", withdrawn_reason=SAME_SUN).reset_index(drop=True)
    _merge.write_generation(gone, state.withdrawn_path(tmp_path))
    decisions = _table(("a-1", "confirmed", "2020-09-06"), ("a-0", "confirmed", "2020-09-06"))
    decided = bound(decisions, "2020-09-07", gone, gpd.read_parquet(state.violations_path(tmp_path)))
    kept, withdrawn = _merge.merge_and_withdraw(state, tmp_path, [], "2020-09-07", permits="", share=0.05,
                                                season_days=45, decided=decided)
    assert kept["violation_id"].tolist() == ["a-0", "a-3", "a-1"] and not len(withdrawn)
    assert kept["same_sun"].tolist() == [INSPECTED, "pending", INSPECTED]
    assert _pending(kept) == 1
    # the night after, without --decisions: the register's own decision column keeps it so
    later = State(generation=5)
    _merge.write_generation(kept, later.violations_path(tmp_path))
    again, _ = _merge.merge_and_withdraw(later, tmp_path, [], "2020-09-08", permits="", share=0.05,
                                         season_days=45, decided=bound(None, "2020-09-08", gone, None))
    assert again["same_sun"].tolist() == [INSPECTED, "pending", INSPECTED] and _pending(again) == 1
