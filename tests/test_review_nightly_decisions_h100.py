"""Review (helper-100) of the nightly's inspectors' decisions beside the register's rematch and the parcels.

- A violation an inspector ``confirmed`` stays open against the image checks (a moved shadow, a late cloud
  mask) on every later night, also one run without ``--decisions`` (the register's own ``decision`` column
  says it); before, only a night whose file still listed it kept it open.
- That violation is matched again against a register that changed the same night, as every open one is;
  before, it was put back after the rematch and kept its old status for good (the register's stamp was
  recorded as matched).
- An earlier night run again with a decisions file, after later nights were committed, is not done again
  (its files were rewritten from today's register, rows withdrawn since gone); the decisions apply on the
  next night.
- A decisions CSV as Excel saves it: UTF-16 ("Unicode Text") and Windows-1258 (a Vietnamese Windows' "CSV").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box
from test_review_nightly_rematch import _loaded, _open_rows, _permit

SAME_SUN = "not seen under the same sun: 2020-01-05 -> 2021-01-04 decides change on less than 5 % of it"


def _table(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame([{"violation_id": v, "decision": d, "decided_on": day, "inspector": "", "note": "",
                          "row": k + 1} for k, (v, d, day) in enumerate(rows)],
                        columns=["violation_id", "decision", "decided_on", "inspector", "note", "row"])


def _confirmed_register() -> gpd.GeoDataFrame:
    """The open register after a night that confirmed ``a-1`` (its decision columns filled)."""
    from changedetect._nightly_decisions import decide

    kept, _ = decide(_open_rows(), _table(("a-1", "confirmed", "2020-08-01")), "2020-08-02")
    return kept


def test_a_confirmed_violation_stays_open_on_a_night_without_decisions() -> None:
    from changedetect._nightly_decisions import bound

    rows = _confirmed_register()
    gone = rows.iloc[[1, 2]].assign(withdrawn="2020-09-04", withdrawn_reason=SAME_SUN)
    kept = rows.drop(index=[1, 2]).reset_index(drop=True)
    for decisions in (None, _table(("a-0", "confirmed", "2020-08-05"))):  # no file, or one that omits it
        again, withdrawn = bound(decisions, "2020-09-04", None, rows).apply(kept, gone)
        assert withdrawn["violation_id"].tolist() == ["a-2"], withdrawn
        assert "a-1" in set(again["violation_id"]) and set(again["decision"]) >= {"confirmed"}
    # tonight's decision on it stands over the register's (dealt with since: resolved)
    again, withdrawn = bound(_table(("a-1", "resolved", "2020-09-01")), "2020-09-04", None, rows).apply(kept, gone)
    assert "a-1" not in set(again["violation_id"]) and set(withdrawn["violation_id"]) == {"a-1", "a-2"}


def test_a_confirmed_violation_the_images_withdraw_is_matched_again_the_same_night(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same night: tonight's same-sun check withdraws the confirmed block, the register gained a permit
    for a third of it: it stays open (confirmed) and is ``exceeds_permit`` under its id."""
    from changedetect import _merge, _nightly_rematch, _withdraw_masked
    from changedetect._nightly_decisions import bound
    from changedetect._state import State
    from changedetect.match import MatchConfig

    rows = _confirmed_register()
    state = State(generation=3)
    _merge.write_generation(rows, state.violations_path(tmp_path))

    def images(merged: gpd.GeoDataFrame, *_: Any, **__: Any) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
        hit = (merged["violation_id"] == "a-1").to_numpy()
        return (merged[~hit].reset_index(drop=True),
                merged[hit].assign(withdrawn="2020-09-04", withdrawn_reason=SAME_SUN).reset_index(drop=True))

    monkeypatch.setattr(_withdraw_masked, "withdraw_all", images)
    register = _loaded(tmp_path / "r.gpkg", _permit("GP-2020-0143", box(100, 0, 120, 20)))
    rematch = _nightly_rematch.bound({}, register, "2020-09-04", MatchConfig(), "k", {"a": 0.5})
    kept, withdrawn = _merge.merge_and_withdraw(
        state, tmp_path, [], "2020-09-04", permits=str(tmp_path / "r.gpkg"), share=0.05, season_days=45,
        rematch=rematch, decided=bound(_table(("a-1", "confirmed", "2020-08-01")), "2020-09-04", None, rows))
    assert not len(withdrawn), withdrawn
    (block,) = kept[kept["violation_id"] == "a-1"].itertuples()
    assert (block.status, block.permit_ids, block.previous_status, block.decision) == (
        "exceeds_permit", "GP-2020-0143", "unlicensed", "confirmed")


# --------------------------------------------------------------------------------------- through the night


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """:mod:`test_review_nightly_rematch`'s world (a house and a block new in July, found by a detector that
    reads any brightening as change): nights 1 and 2 committed (``two``), then night 3 (``three``)."""
    from test_review_nightly_rematch import BLOCK, _snapshot, house_and_block_world
    from test_review_nightly_rerun_withdraw import HOUSE

    root = tmp_path_factory.mktemp("decisions_h100")
    world = house_and_block_world(root)
    for night in NIGHTS[:2]:
        _run(world, root, night, world["first"])
    world["two"] = _snapshot(root, "two")
    _run(world, root, NIGHTS[2], world["first"])
    world["three"] = _snapshot(root, "three")
    opened = _open_at(world["two"])
    world["house"], world["block"] = (_id_at(opened, HOUSE), _id_at(opened, BLOCK))
    return world


NIGHTS = ("2020-01-06", "2020-07-05", "2020-09-04")


def _run(world: dict[str, Any], base: Path, night: str, permits: Path, decisions: Path | None = None) -> Any:
    from changedetect.config import PipelineConfig
    from changedetect.nightly import run_nightly

    return run_nightly(world["tiles"], permits=permits, state=base / "state", out=base / "out", night=night,
                       workers=1, config=PipelineConfig.from_toml(world["config"]), decisions=decisions)


def _open_at(base: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(base / "out" / "open_violations.gpkg", layer="open_violations").to_crs(32632)


def _id_at(frame: gpd.GeoDataFrame, where: tuple[slice, slice]) -> str:
    from test_review_nightly_rematch import _at
    from test_review_nightly_rerun_withdraw import _px

    (vid,) = _at(frame, _px(*where))["violation_id"]
    return str(vid)


def _decisions_file(path: Path, *rows: tuple[str, str]) -> Path:
    path.write_text("violation_id,decision,decided_on\n" + "".join(f"{v},{d},2020-07-05\n" for v, d in rows),
                    encoding="utf-8")
    return path


def test_the_last_night_done_again_for_decisions_matches_its_own_rows_against_tonights_register(
        world: dict[str, Any], tmp_path: Path) -> None:
    """Night 2 (the last committed) run again with decisions and a register that gained permits since: its
    own rows, matched by its pairs against the register of then, are matched again (before, only earlier
    nights' rows were, and the night's record then stamped the new register as matched)."""
    from test_review_nightly_rematch import _snapshot

    base = _snapshot(world["two"], "again2")
    decisions = _decisions_file(tmp_path / "d.csv", (world["block"], "confirmed"))
    summary = _run(world, base, NIGHTS[1], world["entered"], decisions)
    assert summary.withdrawn == [world["house"]], summary
    assert summary.withdrawn_reasons == {"now covered by a permit in the register": 1}
    (block,) = _open_at(base).itertuples()
    assert (block.violation_id, block.status, block.previous_status, block.decision) == (
        world["block"], "exceeds_permit", "unlicensed", "confirmed")


def test_an_earlier_night_run_again_with_decisions_is_not_done_again(world: dict[str, Any], tmp_path: Path) -> None:
    """Night 2 run again after night 3 was committed, with a decision dismissing the house: nothing in OUT or
    the state changes (before, night 2 was done again from today's register: its list rewritten, the house
    withdrawn as of night 2); a warning says the decisions wait for the next night."""
    from test_review_nightly_rematch import _bytes, _snapshot

    base = _snapshot(world["three"], "again_earlier")
    before = {**_bytes(base / "out"), **_bytes(base / "state")}
    decisions = _decisions_file(tmp_path / "d.csv", (world["house"], "false_alarm"))
    summary = _run(world, base, NIGHTS[1], world["first"], decisions)
    assert summary.withdrawn == [] and {**_bytes(base / "out"), **_bytes(base / "state")} == before
    (warning,) = summary.warnings
    assert f"night {NIGHTS[1]} was committed before {NIGHTS[2]}: it is not done again" in warning, warning
    # the next night processed applies them
    later = _run(world, base, "2020-09-05", world["first"], decisions)
    assert later.withdrawn == [world["house"]], later


def test_a_night_done_again_gives_its_committed_rows_the_current_parcel() -> None:
    """A night done again (for the inspectors' decisions) with a parcel layer: its rows of the earlier commit
    (``committed``) get the layer's parcel as earlier nights' rows do; a row of tonight's runs keeps its run's."""
    from changedetect._nightly_parcels import with_current_parcels

    rows = gpd.GeoDataFrame({"violation_id": ["a-1", "a-2"], "area": "a", "night": "2020-07-05",
                             "parcel_id": [None, "L/1"], "parcel_address": [None, "run's"],
                             "parcel_share": [np.nan, 0.5], "parcels_crossed": [np.nan, 1.0]},
                            geometry=[box(0, 0, 10, 10), box(1, 1, 9, 9)], crs="EPSG:32648")
    lots = gpd.GeoDataFrame({"parcel_id": ["L/1"], "address": ["Số 1"]}, geometry=[box(-5, -5, 15, 15)],
                            crs="EPSG:32648")
    got = with_current_parcels(rows, lots, "2020-07-05", committed={"a-1"})
    assert got["parcel_address"].tolist() == ["Số 1", "run's"]


# --------------------------------------------------------------------------------- the file as Excel saves it
ROWS = [["violation_id", "decision", "decided_on", "inspector", "note"],
        ["d-1", "báo động nhầm", "01/02/2025", "Nguyễn Văn A", "bóng cây, mái tôn"],
        ["d-2", "xác nhận", "2025-02-03", "Trần Thị B", ""]]
READ = [["d-1", "false_alarm", "2025-02-01", "Nguyễn Văn A", "bóng cây, mái tôn"],  # 01/02: the 1st of February
        ["d-2", "confirmed", "2025-02-03", "Trần Thị B", ""]]


def _cp1258(text: str) -> bytes:
    """``text`` as Windows writes it in code page 1258: a letter with a tone mark the page lacks as its base
    letter (with its other marks) and the tone as a combining mark."""
    import unicodedata

    out = b""
    for ch in unicodedata.normalize("NFC", text):
        try:
            out += ch.encode("cp1258")
        except UnicodeEncodeError:
            parts = unicodedata.normalize("NFD", ch)
            tones = [c for c in parts if c in "\u0300\u0301\u0303\u0309\u0323"]
            out += (unicodedata.normalize("NFC", "".join(c for c in parts if c not in tones)) + "".join(tones)
                    ).encode("cp1258")
    return out


def test_a_decisions_file_saved_by_excel_as_unicode_text_or_a_vietnamese_windows_csv(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Excel's "Unicode Text" (UTF-16, tab-separated, .txt) and its plain "CSV" on a Vietnamese Windows
    (Windows-1258, tone marks combining) read as the UTF-8 CSV does, the names NFC; the second with a warning.
    Before, both were 'cannot be read', and a .txt was handed to GDAL."""
    from changedetect._nightly_decisions import read_decisions

    utf16 = tmp_path / "quyet_dinh.txt"
    utf16.write_bytes("\r\n".join("\t".join(r) for r in ROWS).encode("utf-16"))
    ansi = tmp_path / "quyet_dinh.csv"
    ansi.write_bytes(_cp1258("\r\n".join(",".join(f'"{c}"' if "," in c else c for c in r) for r in ROWS)))
    assert b"Nguy" in ansi.read_bytes() and "Nguyễn".encode() not in ansi.read_bytes()
    for path in (utf16, ansi):
        got = read_decisions(path)[["violation_id", "decision", "decided_on", "inspector", "note"]]
        assert got.values.tolist() == READ, path
    assert "is not UTF-8" in caplog.text and "Windows-1258" in caplog.text


# ------------------------------------------------------------------------------------------------ crash-safe


def _comparable(base: Path) -> dict[str, Any]:
    """The night's outputs and committed state, comparable (each GeoPackage's rows, the other files' bytes)."""
    import json

    out = {p.name: (gpd.read_file(p, layer=p.stem).drop(columns="geometry").to_dict("list") if p.suffix == ".gpkg"
                    else p.read_bytes()) for p in sorted((base / "out").iterdir()) if p.is_file()}
    state = json.loads((base / "state" / "state.json").read_text(encoding="utf-8"))
    return {**out, "nights": state["nights"], "generation": state["generation"]}


@pytest.mark.parametrize("kill_at", range(1, 8))  # planned, generation, night gpkg, csv, outputs, reports, state
def test_sigkill_while_the_night_is_done_again_for_decisions_then_rerun_gives_the_reference(
        world: dict[str, Any], tmp_path: Path, kill_at: int) -> None:
    """As tests/test_nightly.py's kill trials: the last night done again with decisions and a changed register
    (a permit over the house; the block confirmed), the command killed at each checkpoint, then run again: the
    outputs and the state are those of an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys

    from test_review_nightly_rematch import _snapshot

    from changedetect._state import KILL_ENV

    decisions = _decisions_file(tmp_path / "d.csv", (world["block"], "confirmed"))
    reference = _snapshot(world["two"], f"reference{kill_at}")
    _run(world, reference, NIGHTS[1], world["entered"], decisions)
    base = _snapshot(world["two"], f"kill{kill_at}")
    args = [sys.executable, "-m", "changedetect.cli", "-q", "nightly", "--catalog", str(world["tiles"]),
            "--permits", str(world["entered"]), "--state", str(base / "state"), "--out", str(base / "out"),
            "--night", NIGHTS[1], "--config", str(world["config"]), "--workers", "1", "--decisions", str(decisions)]
    proc = subprocess.run(args, env={**os.environ, KILL_ENV: str(kill_at)}, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -signal.SIGKILL, f"not killed at checkpoint {kill_at}: {proc.stderr[-800:]}"
    _run(world, base, NIGHTS[1], world["entered"], decisions)  # the next run finishes the night
    assert _comparable(base) == _comparable(reference)


def test_a_violation_an_image_check_withdrew_and_an_inspector_confirmed_since_is_open_again(tmp_path: Path) -> None:
    """An inspector working from night 2's list confirms a violation that night 3 withdrew as a moved shadow:
    the next night it is open again under its id, with its decision, and out of the withdrawn table (before,
    the decision was silently left out: the id was known, withdrawn).  One withdrawn since a permit covers it
    stays withdrawn."""
    from changedetect import _merge
    from changedetect._nightly_decisions import bound
    from changedetect._state import State

    rows = _open_rows()
    state = State(generation=4)
    _merge.write_generation(rows.iloc[[0, 3]].reset_index(drop=True), state.violations_path(tmp_path))
    gone = rows.iloc[[1, 2]].assign(withdrawn="2020-09-04", withdrawn_reason=[
        SAME_SUN, "now covered by a permit in the register: permit GP-1 covers it"]).reset_index(drop=True)
    _merge.write_generation(gone, state.withdrawn_path(tmp_path))
    decisions = _table(("a-1", "confirmed", "2020-09-06"), ("a-2", "confirmed", "2020-09-06"))
    decided = bound(decisions, "2020-09-07", gone, gpd.read_parquet(state.violations_path(tmp_path)))
    kept, withdrawn = _merge.merge_and_withdraw(state, tmp_path, [], "2020-09-07", permits="", share=0.05,
                                                season_days=45, decided=decided)
    assert kept["violation_id"].tolist() == ["a-0", "a-3", "a-1"] and not len(withdrawn)
    assert kept["decision"].tolist() == ["", "", "confirmed"]
    everything = _merge.withdrawn_table(state, tmp_path, withdrawn, set(kept["violation_id"]))
    assert everything["violation_id"].tolist() == ["a-2"]


def test_the_withdrawn_list_has_no_null_decision_beside_empty_ones(tmp_path: Path) -> None:
    """The night's withdrawn list holds rows withdrawn before any decision existed (the state's) and tonight's
    with the decision columns: the former's are '' as tonight's undecided ones (before: NULL in the GeoPackage,
    which a QGIS filter ``"decision" = ''`` leaves out)."""
    from changedetect import _merge
    from changedetect._nightly_decisions import with_columns
    from changedetect._state import State

    rows, state = _open_rows(), State(generation=2)
    _merge.write_generation(rows.iloc[[0]].assign(withdrawn="2020-09-04", withdrawn_reason=SAME_SUN),
                            state.withdrawn_path(tmp_path))
    tonight = with_columns(rows.iloc[[1]].assign(withdrawn="2020-09-04", withdrawn_reason="resolved per the "
                                                 "inspector: on 2020-09-01", decision="resolved",
                                                 decided_on="2020-09-01", inspector="A"))
    both = _merge.withdrawn_table(state, tmp_path, tonight)
    assert both["decision"].tolist() == ["", "resolved"] and both["inspector"].tolist() == ["", "A"]
