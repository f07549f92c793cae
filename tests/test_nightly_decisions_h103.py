"""Review (helper-103) of the nightly's inspectors' decisions beside the other withdrawals of the night.

- A ``false_alarm`` or ``resolved`` decision on a violation that the night withdraws for another reason (a permit
  entered in the register since, a same-sun check) is recorded on its withdrawn row (``decision``,
  ``decided_on``, ``inspector``); before, the row had ``''`` there and the decision was nowhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box
from test_review_nightly_decisions_h100 import SAME_SUN
from test_review_nightly_rematch import _loaded, _open_rows, _permit


def _table(*rows: tuple[str, str, str, str]) -> pd.DataFrame:
    return pd.DataFrame([{"violation_id": v, "decision": d, "decided_on": day, "inspector": who, "note": "",
                          "row": k + 1} for k, (v, d, day, who) in enumerate(rows)],
                        columns=["violation_id", "decision", "decided_on", "inspector", "note", "row"])


def test_a_decision_on_a_violation_the_night_withdraws_otherwise_is_on_its_withdrawn_row(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tonight's register gained a permit over the house (``a-0``), which an inspector dismissed as a false alarm,
    and tonight's same-sun check withdraws the block (``a-1``), which another resolved: both rows are withdrawn
    for the night's reason, with the inspectors' decisions; the shed's (``a-2``) confirmed decision is on its
    open row, and an undecided withdrawn row has ``''``."""
    from changedetect import _merge, _nightly_rematch, _withdraw_masked
    from changedetect._nightly_decisions import bound
    from changedetect._state import State
    from changedetect.match import MatchConfig

    rows = _open_rows()
    state = State(generation=3)
    _merge.write_generation(rows, state.violations_path(tmp_path))

    def images(merged: gpd.GeoDataFrame, *_: Any, **__: Any) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
        hit = merged["violation_id"].isin(["a-1", "a-3"]).to_numpy()
        return (merged[~hit].reset_index(drop=True),
                merged[hit].assign(withdrawn="2020-09-04", withdrawn_reason=SAME_SUN).reset_index(drop=True))

    monkeypatch.setattr(_withdraw_masked, "withdraw_all", images)
    register = _loaded(tmp_path / "r.gpkg", _permit("GP-2020-0142", box(-1, -1, 21, 21)))
    rematch = _nightly_rematch.bound({}, register, "2020-09-04", MatchConfig(), "k", {"a": 0.5})
    decisions = _table(("a-0", "false_alarm", "2020-09-01", "Nguyễn Văn A"), ("a-1", "resolved", "2020-09-02", "B"),
                       ("a-2", "confirmed", "2020-09-03", "C"))
    kept, withdrawn = _merge.merge_and_withdraw(
        state, tmp_path, [], "2020-09-04", permits=str(tmp_path / "r.gpkg"), share=0.05, season_days=45,
        rematch=rematch, decided=bound(decisions, "2020-09-04", None, rows))
    got = withdrawn.set_index("violation_id")[["decision", "decided_on", "inspector", "withdrawn_reason"]]
    assert sorted(got.index) == ["a-0", "a-1", "a-3"]
    assert got.loc["a-0", ["decision", "decided_on", "inspector"]].tolist() == ["false_alarm", "2020-09-01",
                                                                               "Nguyễn Văn A"]
    assert got.loc["a-0", "withdrawn_reason"].startswith("now covered by a permit in the register")
    assert got.loc["a-1", ["decision", "decided_on", "inspector"]].tolist() == ["resolved", "2020-09-02", "B"]
    assert got.loc["a-1", "withdrawn_reason"] == SAME_SUN
    assert got.loc["a-3", ["decision", "decided_on", "inspector"]].tolist() == ["", "", ""]
    assert kept.set_index("violation_id").loc["a-2", "decision"] == "confirmed"


# --------------------------------------------------------------------------------------- through the night
NIGHTS = ("2020-01-06", "2020-07-05", "2020-09-04")


def _run(world: dict[str, Any], base: Path, night: str, permits: Path, decisions: Path | None = None) -> Any:
    from changedetect.config import PipelineConfig
    from changedetect.nightly import run_nightly

    return run_nightly(world["tiles"], permits=permits, state=base / "state", out=base / "out", night=night,
                       workers=1, config=PipelineConfig.from_toml(world["config"]), decisions=decisions)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """:mod:`test_review_nightly_rematch`'s world (a house and a block new in July): nights 1 and 2 committed
    (``two``), with the first register; ``house`` and ``block``: their ids."""
    from test_review_nightly_decisions_h100 import _id_at, _open_at
    from test_review_nightly_rematch import BLOCK, _snapshot, house_and_block_world
    from test_review_nightly_rerun_withdraw import HOUSE

    root = tmp_path_factory.mktemp("decisions_h103")
    world = house_and_block_world(root)
    world["summaries"] = [_run(world, root, night, world["first"]) for night in NIGHTS[:2]]
    world["two"] = _snapshot(root, "two")
    opened = _open_at(world["two"])
    world["house"], world["block"] = _id_at(opened, HOUSE), _id_at(opened, BLOCK)
    return world


def _decisions(path: Path, *rows: tuple[str, str]) -> Path:
    path.write_text("violation_id,decision,decided_on,inspector\n" + "".join(
        f"{v},{d},2020-07-05,Nguyễn Văn A\n" for v, d in rows), encoding="utf-8")
    return path


def test_the_last_night_done_again_for_decisions_reports_nothing_new(world: dict[str, Any], tmp_path: Path) -> None:
    """Night 2 (which opened the house and the block) done again with a decision confirming the block: 0 new
    violations in its summary (and through the command's line), the night's list and the open register as they
    were but for the decision; before, its two rows were counted new again."""
    from click.testing import CliRunner
    from test_review_nightly_rematch import _snapshot

    from changedetect.cli import cli

    assert world["summaries"][1].new_violations == 2  # the night's first run
    base = _snapshot(world["two"], "again")
    decisions = _decisions(tmp_path / "d.csv", (world["block"], "confirmed"))
    summary = _run(world, base, NIGHTS[1], world["first"], decisions)
    assert (summary.new_violations, summary.open_violations, summary.withdrawn) == (0, 2, []), summary
    listed = gpd.read_file(base / "out" / f"violations-{NIGHTS[1]}.gpkg", layer=f"violations-{NIGHTS[1]}")
    assert sorted(listed["violation_id"]) == sorted([world["house"], world["block"]])  # first seen then, open
    # through the command, with a decision dismissing the house too
    via = _snapshot(world["two"], "cli")
    both = _decisions(tmp_path / "d2.csv", (world["block"], "confirmed"), (world["house"], "false_alarm"))
    got = CliRunner().invoke(cli, ["-q", "nightly", "--catalog", str(world["tiles"]), "--permits", str(world["first"]),
                                    "--state", str(via / "state"), "--out", str(via / "out"), "--night", NIGHTS[1],
                                    "--config", str(world["config"]), "--workers", "1", "--decisions", str(both)])
    assert got.exit_code == 0, got.output
    assert "0 new violation(s), 1 withdrawn (1 dismissed by the inspector as a false alarm), 1 open" in got.output


# ------------------------------------------------------------------------------------ decided_on with a zone
@pytest.mark.parametrize(("written", "zone", "day"), [
    ("2025-02-03T20:00:00+00:00", "Asia/Ho_Chi_Minh", "2025-02-04"),  # 03:00 on the 4th in Hồ Chí Minh City
    ("2025-02-03 20:00:00+00", "Asia/Ho_Chi_Minh", "2025-02-04"),  # as psql prints a timestamptz
    ("2025-02-03T20:00:00Z", "Asia/Ho_Chi_Minh", "2025-02-04"),
    ("2025-02-04T01:00:00+07:00", "Asia/Ho_Chi_Minh", "2025-02-04"),
    ("2025-02-04T01:00:00+07:00", "UTC", "2025-02-03"),
    ("2025-02-03T20:00:00+00:00", None, "2025-02-03"),  # no city zone: its own
    ("2025-02-03T23:30:00", "Asia/Ho_Chi_Minh", "2025-02-03"),  # no zone written: the day as written
    ("2025-02-03", "Asia/Ho_Chi_Minh", "2025-02-03"),
    ("03/02/2025", "Asia/Ho_Chi_Minh", "2025-02-03"),
])
def test_a_decided_on_with_a_zone_is_its_day_in_the_citys_zone(tmp_path: Path, written: str, zone: str | None,
                                                                 day: str) -> None:
    from changedetect._nightly_decisions import read_decisions

    path = tmp_path / "d.csv"
    path.write_text(f"violation_id,decision,decided_on\nd-1,confirmed,{written}\n", encoding="utf-8")
    assert read_decisions(path, timezone=zone)["decided_on"].tolist() == [day]


def test_a_decided_on_timestamp_with_a_zone_is_its_day_in_the_citys_zone() -> None:
    """As a table's timestamp field (a GeoPackage DateTime with a zone, a PostGIS timestamptz) reads."""
    import datetime as dt

    from changedetect._nightly_decisions_read import _date

    at = pd.Timestamp("2025-02-03 20:00", tz="UTC")
    assert _date(at, "row 1", "Asia/Ho_Chi_Minh") == "2025-02-04" and _date(at, "row 1", None) == "2025-02-03"
    aware = dt.datetime(2025, 2, 4, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))
    assert _date(aware, "row 1", "Asia/Ho_Chi_Minh") == "2025-02-04" and _date(aware, "row 1", "UTC") == "2025-02-03"
    assert _date(dt.date(2025, 2, 3), "row 1", "UTC") == "2025-02-03"


def test_an_unknown_city_zone_is_one_clear_error(tmp_path: Path) -> None:
    from changedetect._nightly_decisions import read_decisions
    from changedetect.errors import ConfigError

    path = tmp_path / "d.csv"
    path.write_text("violation_id,decision,decided_on\nd-1,confirmed,2025-02-03T20:00:00+00:00\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown time zone 'Asia/Saigonn'.*Asia/Ho_Chi_Minh"):
        read_decisions(path, timezone="Asia/Saigonn")


def test_the_night_reads_decided_on_in_the_citys_zone(world: dict[str, Any], tmp_path: Path) -> None:
    """Night 2 (2020-07-05) done again with the house dismissed at 20:00 UTC on the 5th: with ``[permits] timezone
    = "Asia/Ho_Chi_Minh"`` that is the 6th there, after the night: the decision waits; without it, the 5th."""
    from test_review_nightly_rematch import _snapshot

    from changedetect.config import PipelineConfig
    from changedetect.nightly import run_nightly

    path = tmp_path / "d.csv"
    path.write_text(f"violation_id,decision,decided_on\n{world['house']},false_alarm,2020-07-05T20:00:00+00:00\n",
                    encoding="utf-8")
    zoned = tmp_path / "zoned.toml"
    zoned.write_text(world["config"].read_text(encoding="utf-8") + '\n[permits]\ntimezone = "Asia/Ho_Chi_Minh"\n',
                     encoding="utf-8")
    for config, withdrawn in ((zoned, []), (world["config"], [world["house"]])):
        base = _snapshot(world["two"], f"zone-{config.stem}")
        summary = run_nightly(world["tiles"], permits=world["first"], state=base / "state", out=base / "out",
                              night=NIGHTS[1], workers=1, config=PipelineConfig.from_toml(config), decisions=path)
        assert summary.withdrawn == withdrawn, (config, summary)


# ------------------------------------------------------------------------- a night again with another register
def test_the_last_night_run_again_with_a_changed_register_is_matched_again(world: dict[str, Any]) -> None:
    """Night 2 run again, without decisions, with the register that gained a permit over the house and one for a
    third of the block: the house is withdrawn, the block is ``exceeds_permit`` under its id; once more with the
    same register nothing changes (before, the night was only restored: the house stayed open)."""
    from test_review_nightly_decisions_h100 import _open_at
    from test_review_nightly_rematch import KIND, _bytes, _snapshot

    base = _snapshot(world["two"], "entered")
    summary = _run(world, base, NIGHTS[1], world["entered"])
    assert summary.withdrawn == [world["house"]] and summary.withdrawn_reasons == {KIND: 1}, summary
    assert summary.new_violations == 0 and summary.status_changed == [world["block"]]
    (block,) = _open_at(base).itertuples()
    assert (block.violation_id, block.status, block.previous_status) == (world["block"], "exceeds_permit",
                                                                         "unlicensed")
    before = {**_bytes(base / "out"), **_bytes(base / "state")}
    again = _run(world, base, NIGHTS[1], world["entered"])
    assert again.withdrawn == [] and {**_bytes(base / "out"), **_bytes(base / "state")} == before


def test_an_earlier_night_run_again_with_a_changed_register_is_restored_with_a_warning(world: dict[str, Any]) -> None:
    """Night 1 run again after night 2, with the changed register: nothing changes (the next night processed
    matches the register), and a warning says so."""
    from test_review_nightly_rematch import _bytes, _snapshot

    base = _snapshot(world["two"], "entered_earlier")
    before = {**_bytes(base / "out"), **_bytes(base / "state")}
    summary = _run(world, base, NIGHTS[0], world["entered"])
    assert summary.withdrawn == [] and {**_bytes(base / "out"), **_bytes(base / "state")} == before
    (warning,) = summary.warnings
    assert f"night {NIGHTS[0]} was committed before {NIGHTS[1]}" in warning and "register" in warning, warning
