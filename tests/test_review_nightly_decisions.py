"""Review: the nightly job respects the inspectors' decisions (``--decisions``).

After a visit the city records a decision on a violation: ``confirmed``, ``false_alarm`` or ``resolved``.
Until 2026-12-01 the job read none: a false alarm an inspector dismissed stayed open for ever (and was
reported again when a pair found it again), a violation dealt with stayed in the open list.  Now
(:mod:`changedetect._nightly_decisions`) a dismissed or resolved violation is withdrawn with the decision as
its reason and is not opened again for a change first seen before the decision; a confirmed one carries its
decision; a bad file is one error before anything is written.

The world is :mod:`test_review_nightly_rematch`'s (the detector reads any brightening as change): the July
date has a new house and a new block; a late April date (the house already there) arrives after night 3,
so that night 4's pair finds the house again, first seen on 2020-04-01."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box
from test_review_nightly_rematch import BLOCK, _at, _bytes, _open, _register, _snapshot
from test_review_nightly_rerun_withdraw import HOUSE, _brighter_model, _px, _write_dates

from changedetect.testing import make_nightly_catalog

DATES = ("20200105", "20200401", "20200704", "20200903")
NIGHTS = ("2020-01-06", "2020-07-05", "2020-09-04", "2020-09-05")
DISMISSED = "dismissed by the inspector as a false alarm"
INSPECTOR = "Nguyễn Văn A"


def _decisions(path: Path, house: str, block: str, *, word: str = "báo động nhầm", day: str = "01/08/2020") -> Path:
    """The city's decisions as an inspector's office writes them: Excel's BOM, Vietnamese words and dates."""
    path.write_text("violation_id,decision,decided_on,inspector,note\n"
                    f"{house},{word},{day},{INSPECTOR},bóng cây trên mái tôn\n"
                    f"{block},xác nhận,2020-08-01,Trần Thị B,\n", encoding="utf-8-sig")
    return path


def _night(world: dict[str, Any], night: str, base: Path | None = None, decisions: Path | None = None) -> Any:
    from changedetect.config import PipelineConfig
    from changedetect.nightly import run_nightly

    base = base or world["root"]
    return run_nightly(world["tiles"], permits=world["register"], state=base / "state", out=base / "out",
                       night=night, workers=1, config=PipelineConfig.from_toml(world["config"]), decisions=decisions)


def _args(world: dict[str, Any], base: Path, night: str, *extra: str) -> list[str]:
    return ["-q", "nightly", "--catalog", str(world["tiles"]), "--permits", str(world["register"]), "--state",
            str(base / "state"), "--out", str(base / "out"), "--night", night, "--config", str(world["config"]),
            "--workers", "1", *extra]


def _cli(world: dict[str, Any], base: Path, night: str, *extra: str) -> Any:
    from click.testing import CliRunner

    from changedetect.cli import cli

    return CliRunner().invoke(cli, _args(world, base, night, *extra))


def _committed_again(world: dict[str, Any]) -> dict[str, Any]:
    """Night 3 from night 2's state (before the April date lands): through the command with the decisions,
    twice more (with them, without the file); and first without the decisions, then with them."""
    base = _snapshot(world["root"], "again3")
    runs = [_cli(world, base, NIGHTS[2], *extra) for extra in (("--decisions", str(world["decisions"])),) * 2 + ((),)]
    late = _snapshot(world["root"], "late")
    plain = _night(world, NIGHTS[2], base=late)
    plain_open = _open(late / "out")
    later = _night(world, NIGHTS[2], base=late, decisions=world["decisions"])
    return {"runs": [(r.exit_code, r.output, _bytes(base / "out")) for r in runs], "plain": plain,
            "plain_open": plain_open, "later": later, "later_open": _open(late / "out")}


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("nightly_decisions")
    world = make_nightly_catalog(root, {})

    def paint(k: int, data: np.ndarray, scl: np.ndarray) -> None:
        if k:
            data[(slice(None), *HOUSE)] = 5000
        if k > 1:
            data[(slice(None), *BLOCK)] = 5000

    held = _write_dates(root / "held" / "s2", DATES, paint)
    (world["tiles"] / "s2").mkdir(parents=True)
    for day in (DATES[0], DATES[2], DATES[3]):  # the April date is late
        for f in held.glob(f"s2_{day}*.tif"):
            shutil.move(f, world["tiles"] / "s2" / f.name)
    model = _brighter_model(root / "brighter")
    world["config"].write_text(f'[detect]\nmodel = "{model}"\nwindow = 64\noverlap = 8\n', encoding="utf-8")
    world["register"] = _register(root / "register.gpkg")
    summaries = [_night(world, n) for n in NIGHTS[:2]]
    opened = world["after_night_2"] = _open(root / "out")
    (house,) = _at(opened, _px(*HOUSE))["violation_id"]
    (block,) = _at(opened, _px(*BLOCK))["violation_id"]
    world["decisions"] = _decisions(root / "quyet_dinh.csv", house, block)
    world["bad"] = root / "bad"  # a fresh state, never written
    world["again"] = _committed_again(world)
    summaries.append(_night(world, NIGHTS[2], decisions=world["decisions"]))
    world["after_night_3"] = _open(root / "out")
    world["bytes_3"] = _bytes(root / "out")
    for f in held.glob(f"s2_{DATES[1]}*.tif"):  # the April date arrives: its pair finds the house again
        shutil.move(f, world["tiles"] / "s2" / f.name)
    summaries.append(_night(world, NIGHTS[3]))
    world["after_night_4"] = _open(root / "out")
    return {**world, "summaries": summaries, "house": house, "block": block}


def test_night_2_opens_the_house_and_the_block(nights: dict[str, Any]) -> None:
    """The premise: both are open, without decision columns (no decision exists yet)."""
    opened = nights["after_night_2"]
    assert len(opened) == 2 and "decision" not in opened, opened


def test_a_false_alarm_is_withdrawn_with_the_inspectors_reason(nights: dict[str, Any]) -> None:
    third, out, house = nights["summaries"][2], nights["root"] / "out", nights["house"]
    assert third.withdrawn == [house] and third.withdrawn_reasons == {DISMISSED: 1}, third
    assert house not in set(nights["after_night_3"]["violation_id"])
    gone = gpd.read_file(out / f"withdrawn-{NIGHTS[2]}.gpkg", layer=f"withdrawn-{NIGHTS[2]}")
    assert gone["violation_id"].tolist() == [house]
    assert gone["withdrawn_reason"][0] == f"{DISMISSED}: on 2020-08-01 by {INSPECTOR} (bóng cây trên mái tôn)"
    assert (gone["decision"][0], gone["inspector"][0]) == ("false_alarm", INSPECTOR)
    assert INSPECTOR in (out / f"withdrawn-{NIGHTS[2]}.csv").read_text(encoding="utf-8")
    report = (out / f"report-{NIGHTS[2]}-s2.html").read_text(encoding="utf-8")
    assert house in report and DISMISSED in report


def test_a_confirmed_violation_stays_open_with_its_decision(nights: dict[str, Any]) -> None:
    (row,) = nights["after_night_3"].itertuples()
    assert row.violation_id == nights["block"]
    assert (row.decision, row.inspector) == ("confirmed", "Trần Thị B")
    assert pd.Timestamp(row.decided_on) == pd.Timestamp("2020-08-01")  # a DATE field


def test_the_dismissed_house_found_again_is_not_reopened(nights: dict[str, Any]) -> None:
    """Night 4's pair (the late April date) finds the house again, first seen 2020-04-01, before the
    decision: it stays closed; without ``--decisions`` that night, from the state alone."""
    fourth = nights["summaries"][3]
    assert fourth.pairs == 1 and fourth.new_violations == 0, fourth
    assert fourth.suppressed == [nights["house"]], fourth
    now = nights["after_night_4"]
    assert now["violation_id"].tolist() == [nights["block"]] and now["decision"].tolist() == ["confirmed"]
    assert "1 kept closed" in repr(fourth)


def test_the_night_again_changes_no_byte(nights: dict[str, Any]) -> None:
    """Night 3 through the command (the library's lists but for the GeoPackages' timestamps), then again with
    the same decisions, then without the file: not a byte changes."""
    (code, output, first), *again = nights["again"]["runs"]
    assert code == 0, output
    assert {k: v for k, v in first.items() if not k.endswith(".gpkg")} == {
        k: v for k, v in nights["bytes_3"].items() if not k.endswith(".gpkg")}
    for code, output, files in again:
        assert code == 0, output
        assert files == first


def test_decisions_given_after_the_night_was_committed_are_applied_on_a_run_again(nights: dict[str, Any]) -> None:
    again = nights["again"]
    assert again["plain"].withdrawn == [] and "decision" not in again["plain_open"]
    assert again["later"].withdrawn == [nights["house"]], again["later"]
    pd.testing.assert_frame_equal(again["later_open"], nights["after_night_3"])


@pytest.mark.parametrize(("word", "day", "said"), [
    ("bỏ qua", "01/08/2020", "row 1 (line 2): 'decision' 'bỏ qua' is not a decision; write one of confirmed, "
                             "xác nhận, false_alarm, báo động nhầm, resolved, đã xử lý"),
    ("false_alarm", "2020-02-30", "row 1 (line 2): 'decided_on' '2020-02-30' is not a date; write it as "
                                  "YYYY-MM-DD"),
])
def test_a_bad_decisions_file_is_one_line_and_writes_nothing(nights: dict[str, Any], tmp_path: Path, word: str,
                                                             day: str, said: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from changedetect.cli import main

    bad = _decisions(tmp_path / "quyet_dinh.csv", nights["house"], nights["block"], word=word, day=day)
    with pytest.raises(SystemExit) as info:
        main(_args(nights, nights["bad"], NIGHTS[2], "--decisions", str(bad)))
    assert info.value.code == 2
    captured = capsys.readouterr()
    (line,) = (captured.out + captured.err).strip().splitlines()
    assert f"decisions file '{bad}', {said}" in line, line
    assert not nights["bad"].exists()


def test_an_unknown_id_is_a_warning(nights: dict[str, Any], tmp_path: Path) -> None:
    base = _snapshot(nights["root"], "unknown")
    extra = tmp_path / "d.csv"
    extra.write_text("violation_id,decision,decided_on\nhcm-20200705-999,resolved,2020-08-02\n", encoding="utf-8")
    summary = _night(nights, NIGHTS[3], base=base, decisions=extra)
    (warning,) = summary.warnings
    assert "row 1: violation_id 'hcm-20200705-999' is neither open nor withdrawn" in warning, warning
    assert summary.withdrawn == []


# ------------------------------------------------------------------------------------------------ unit level


def test_read_decisions_takes_vietnamese_words_dates_and_tables(tmp_path: Path) -> None:
    from changedetect._nightly_decisions import read_decisions

    csv = tmp_path / "d.csv"
    csv.write_text("violation_id;decision;decided_on;inspector\n"
                   "a-1;Xác nhận;03/02/2025;Lê Văn C\na-2;da_xu_ly;2025-02-04;\na-3;FALSE_ALARM;2025-02-05;\n"
                   ";;;\n", encoding="utf-8-sig")
    got = read_decisions(csv)
    assert got[["violation_id", "decision", "decided_on", "inspector"]].values.tolist() == [
        ["a-1", "confirmed", "2025-02-03", "Lê Văn C"], ["a-2", "resolved", "2025-02-04", ""],
        ["a-3", "false_alarm", "2025-02-05", ""]]
    import pyogrio

    table = pd.DataFrame({"violation_id": ["a-1"], "decision": ["đã xử lý"], "decided_on": ["2025-02-03"]})
    pyogrio.write_dataframe(table, tmp_path / "d.gpkg", layer="quyet_dinh")  # a table without geometry
    assert read_decisions(tmp_path / "d.gpkg")["decision"].tolist() == ["resolved"]


def test_read_decisions_says_which_rows_disagree_and_keeps_the_latest(tmp_path: Path) -> None:
    from changedetect._nightly_decisions import read_decisions
    from changedetect.errors import ConfigError

    csv = tmp_path / "d.csv"
    csv.write_text("violation_id,decision,decided_on\na-1,confirmed,2025-02-03\na-1,resolved,2025-03-10\n",
                   encoding="utf-8")
    (row,) = read_decisions(csv).itertuples()  # confirmed, then dealt with: the latest stands
    assert (row.decision, row.decided_on) == ("resolved", "2025-03-10")
    csv.write_text("violation_id,decision,decided_on\na-1,confirmed,2025-02-03\na-1,false_alarm,2025-02-03\n",
                   encoding="utf-8")
    with pytest.raises(ConfigError, match=r"'a-1' has different decisions on 2025-02-03 \(row 1 confirmed, "
                                          r"row 2 false_alarm\)"):
        read_decisions(csv)
    csv.write_text("violation_id,verdict,decided_on\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="has no column 'decision'"):
        read_decisions(csv)


def _rows() -> gpd.GeoDataFrame:
    geoms = [box(0, 0, 20, 20), box(100, 0, 160, 20), box(300, 0, 310, 10)]
    return gpd.GeoDataFrame({"violation_id": ["a-1", "a-2", "a-3"], "area": "a", "night": "2020-07-05",
                             "footprint_id": ["f1", "f2", "f3"], "status": "unlicensed"},
                            geometry=geoms, crs="EPSG:32632")


def _table(*rows: tuple[str, str, str]) -> pd.DataFrame:
    return pd.DataFrame([{"violation_id": v, "decision": d, "decided_on": day, "inspector": "", "note": "",
                          "row": k + 1} for k, (v, d, day) in enumerate(rows)])


def test_decide_withdraws_the_closed_and_marks_the_confirmed() -> None:
    from changedetect._nightly_decisions import decide

    kept, gone = decide(_rows(), _table(("a-1", "resolved", "2020-08-01"), ("a-2", "confirmed", "2020-08-01")),
                        "2020-09-04")
    assert gone["violation_id"].tolist() == ["a-1"]
    assert gone["withdrawn_reason"][0] == "resolved per the inspector: on 2020-08-01"
    assert kept["violation_id"].tolist() == ["a-2", "a-3"]
    assert kept["decision"].tolist() == ["confirmed", ""] and kept["decided_on"].tolist() == ["2020-08-01", ""]
    # no decision: the register keeps its schema
    kept, gone = decide(_rows(), _table(), "2020-09-04")
    assert "decision" not in kept and not len(gone)


def test_keep_out_only_what_was_first_seen_by_the_decision() -> None:
    """A dismissed structure found again with a ``first_seen`` up to the decision's date stays closed; one
    first seen after it (rebuilt after a demolition) is new; a decision dated after the night waits."""
    from changedetect._nightly_decisions import bound

    decided = bound(_table(("a-1", "resolved", "2020-08-01"), ("a-3", "false_alarm", "2020-12-01")),
                    "2020-09-04", None, _rows())
    assert decided.closed is not None and decided.closed["violation_id"].tolist() == ["a-1"]
    cand = gpd.GeoDataFrame({"area": "a", "after": "2020-09-03", "footprint_id": ["x", "y", "f1"],
                             "first_seen": ["2020-07-04", "2020-08-02", "2020-08-01"]},
                            geometry=[box(0, 0, 20, 21), box(1, 0, 20, 20), box(0, 0, 40, 40)], crs="EPSG:32632")
    carried = np.array(["", "", "f1"], dtype=object)  # the third carried the dismissed one's id
    assert decided.keep_out(cand, carried).tolist() == [True, False, True]
    assert decided.suppressed == {"a-1": 2}


def test_the_demolition_of_a_resolved_violation_is_its_enforcement_not_a_new_one() -> None:
    from changedetect._nightly_decisions import bound

    decided = bound(_table(("a-1", "resolved", "2020-08-01"), ("a-2", "false_alarm", "2020-08-01")),
                    "2020-09-04", None, _rows())
    cand = gpd.GeoDataFrame({"area": "a", "after": "2020-09-03", "first_seen": "2020-09-03",
                             "change_type": ["demolished", "demolished", "new"]},
                            geometry=[box(0, 0, 20, 20), box(100, 0, 160, 20), box(0, 0, 20, 20)], crs="EPSG:32632")
    assert decided.keep_out(cand, np.array(["", "", ""], dtype=object)).tolist() == [True, False, False]


def test_a_confirmed_violation_is_not_withdrawn_by_the_images() -> None:
    """An inspector saw it on the ground: a same-sun or late-SCL withdrawal does not take it out; a permit
    entered since does."""
    from changedetect._nightly_decisions import bound

    rows = _rows()
    decided = bound(_table(("a-1", "confirmed", "2020-08-01"), ("a-2", "confirmed", "2020-08-01")),
                    "2020-09-04", None, rows)
    gone = rows.iloc[:2].assign(withdrawn="2020-09-04", withdrawn_reason=[
        "not seen under the same sun: 2020-01-05 -> 2021-01-04 decides change on less than 5 % of it",
        "now covered by a permit in the register: permit GP-1 covers it"])
    kept, withdrawn = decided.apply(rows.iloc[2:].reset_index(drop=True), gone)
    assert kept["violation_id"].tolist() == ["a-3", "a-1"] and kept["decision"].tolist() == ["", "confirmed"]
    assert withdrawn["violation_id"].tolist() == ["a-2"]


@pytest.fixture
def decisions_db() -> Iterator[tuple[Any, str]]:
    """psycopg and the URL of a throwaway PostGIS server (its own per test), or the test skipped saying why."""
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install '.[postgis]')")
    from changedetect.testing_postgis import PostgisUnavailable, throwaway_postgis

    try:
        cluster = throwaway_postgis("decisions")
        url = cluster.__enter__()
    except PostgisUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield psycopg, url
    finally:
        cluster.__exit__(None, None, None)


def test_read_decisions_from_a_database_table_without_geometry(decisions_db: tuple[Any, str]) -> None:
    from changedetect._nightly_decisions import read_decisions

    psycopg, url = decisions_db
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE quyet_dinh (violation_id text, decision text, decided_on date, inspector text)")
        conn.execute("INSERT INTO quyet_dinh VALUES ('a-1', 'báo động nhầm', '2025-02-03', 'Nguyễn Văn A')")
    got = read_decisions(f"{url}#quyet_dinh")
    assert got[["violation_id", "decision", "decided_on", "inspector"]].values.tolist() == [
        ["a-1", "false_alarm", "2025-02-03", "Nguyễn Văn A"]]
    assert "password" not in got.attrs["source"]


def test_read_decisions_from_a_timestamptz_column_takes_the_day_in_the_city(decisions_db: tuple[Any, str]) -> None:
    """A PostGIS decisions table whose decided_on is a timestamptz (what a web form's 'now()' writes):
    its day in the city's zone ([permits] timezone), not in the server's (UTC here) or the session's."""
    from changedetect._nightly_decisions import read_decisions

    psycopg, url = decisions_db
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE quyet_dinh (violation_id text, decision text, decided_on timestamptz, "
                     "inspector text)")
        conn.execute("INSERT INTO quyet_dinh VALUES ('a-1', 'xác nhận', '2025-02-03 20:00:00+00', 'B'), "
                     "('a-2', 'đã xử lý', '2025-02-04 01:00:00+07', 'C')")
    got = read_decisions(f"{url}#quyet_dinh", timezone="Asia/Ho_Chi_Minh")
    days = dict(zip(got["violation_id"], got["decided_on"], strict=True))
    assert days == {"a-1": "2025-02-04", "a-2": "2025-02-04"}, days  # 03:00 and 01:00 in Ho Chi Minh City
