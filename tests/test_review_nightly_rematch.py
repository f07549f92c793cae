"""Review: the nightly job's open register follows the permit register.

A city's register lags: a permit is entered weeks after the building went up, or a smaller one is entered
for a building reported as unlicensed.  Until 2026-12-01 a violation opened on an earlier night kept its
status for ever, and inspectors were sent to buildings permitted since.  Now a night whose register changed
matches every earlier open violation again (:mod:`changedetect._nightly_rematch`, the match stage the pairs
use): one a permit now covers is withdrawn, naming the permit; one whose status changed keeps its id, with
``previous_status`` and ``status_since``; a night with an unchanged register changes nothing.

The nights are those of :mod:`test_review_nightly_rerun_withdraw`'s deterministic detector (change where the
after date is brighter), with a third date and no cloud: the July date has a new house and a new block."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box
from test_review_nightly_rerun_withdraw import (
    HOUSE,
    RES,
    X0,
    Y0,
    _brighter_model,
    _px,
    _write_dates,
)

from changedetect.testing import make_nightly_catalog

DATES = ("20200105", "20200704", "20200903")
NIGHTS = ("2020-01-06", "2020-07-05", "2020-09-04", "2020-09-05")
BLOCK = (slice(10, 20), slice(10, 28))
KIND = "now covered by a permit in the register"


def _permit(pid: str, geom: Any, issued: str = "2019-06-01") -> dict[str, Any]:
    return {"permit_id": pid, "permit_type": "new_construction", "issued_on": issued, "valid_until": "2022-12-31",
            "permitted_area_m2": round(geom.area, 1), "address": f"Số {pid[-2:]} Tô Ký", "status": "active",
            "geometry": geom}


def _register(path: Path, *extra: dict[str, Any]) -> Path:
    """A register in the imagery's CRS: one permit far from both buildings, and ``extra``."""
    far = _permit("GP-2019-0001", box(X0 + 10, Y0 - 630, X0 + 40, Y0 - 600))
    gpd.GeoDataFrame([far, *extra], geometry="geometry", crs="EPSG:32632").to_file(path)
    return path


def _entered(path: Path) -> Path:
    """The register with two permits entered since: one covering the house, one for a third of the block."""
    house = _px(*HOUSE).buffer(RES, join_style="mitre")
    third = _px(BLOCK[0], slice(BLOCK[1].start, BLOCK[1].start + 6))
    return _register(path, _permit("GP-2020-0142", house), _permit("GP-2020-0143", third))


def _night(world: dict[str, Any], night: str, permits: Path, base: Path | None = None) -> Any:
    from changedetect.config import PipelineConfig
    from changedetect.nightly import run_nightly

    base = base or world["root"]
    return run_nightly(world["tiles"], permits=permits, state=base / "state", out=base / "out", night=night,
                       workers=1, config=PipelineConfig.from_toml(world["config"]))


def _open(out: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(out / "open_violations.gpkg", layer="open_violations").to_crs(32632)


def _at(frame: gpd.GeoDataFrame, where: Any) -> pd.DataFrame:
    return frame[[g.intersection(where).area > 0.5 * g.area for g in frame.geometry]]


def _bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


def _snapshot(root: Path, name: str) -> Path:
    to = root / name
    for sub in ("state", "out"):
        shutil.copytree(root / sub, to / sub)
    return to


def house_and_block_world(root: Path) -> dict[str, Any]:
    """The catalog of the three dates (the house and the block on the July and September dates), the
    brightening detector's config, and the two registers (``first``, ``entered``)."""
    world = make_nightly_catalog(root, {})

    def paint(k: int, data: np.ndarray, scl: np.ndarray) -> None:
        if k:
            data[(slice(None), *HOUSE)] = 5000
            data[(slice(None), *BLOCK)] = 5000

    _write_dates(world["tiles"] / "s2", DATES, paint)
    model = _brighter_model(root / "brighter")
    world["config"].write_text(f'[detect]\nmodel = "{model}"\nwindow = 64\noverlap = 8\n', encoding="utf-8")
    world["first"], world["entered"] = _register(root / "register.gpkg"), _entered(root / "register_entered.gpkg")
    return world


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("nightly_rematch")
    world = house_and_block_world(root)
    first, entered = world["first"], world["entered"]
    summaries = [_night(world, n, first) for n in NIGHTS[:2]]
    world["after_night_2"] = _open(root / "out")
    control = _snapshot(root, "control")  # night 3 with the register unchanged
    again = _snapshot(root, "again")  # night 3 once more from the same committed state
    cli = _snapshot(root, "cli")  # and through the command
    summaries.append(_night(world, NIGHTS[2], entered))
    world["after_night_3"] = _open(root / "out")
    return {**world, "summaries": summaries, "first": first, "entered": entered, "control": control,
            "again": again, "cli": cli}


def test_night_2_opens_the_house_and_the_block_as_unlicensed(nights: dict[str, Any]) -> None:
    """The premise: the register of night 2 has no permit for either."""
    opened = nights["after_night_2"]
    assert len(opened) == 2, opened
    for where in (_px(*HOUSE), _px(*BLOCK)):
        assert _at(opened, where)["status"].tolist() == ["unlicensed"], opened[["violation_id", "status"]]


def test_a_permit_entered_since_withdraws_the_violation_naming_it(nights: dict[str, Any]) -> None:
    third, out = nights["summaries"][2], nights["root"] / "out"
    (house,) = _at(nights["after_night_2"], _px(*HOUSE))["violation_id"]
    assert third.withdrawn == [house] and third.withdrawn_reasons == {KIND: 1}, third
    assert house not in set(nights["after_night_3"]["violation_id"])
    gone = gpd.read_file(out / f"withdrawn-{NIGHTS[2]}.gpkg", layer=f"withdrawn-{NIGHTS[2]}")
    assert gone["violation_id"].tolist() == [house]
    reason = gone["withdrawn_reason"][0]
    assert reason.startswith(f"{KIND}: permit GP-2020-0142 ") and "reported unlicensed on 2020-07-05" in reason
    assert "GP-2020-0142" in (out / f"withdrawn-{NIGHTS[2]}.csv").read_text(encoding="utf-8")


def test_a_smaller_permit_entered_since_makes_it_exceeds_permit_under_its_id(nights: dict[str, Any]) -> None:
    third = nights["summaries"][2]
    before = _at(nights["after_night_2"], _px(*BLOCK)).iloc[0]
    now = _at(nights["after_night_3"], _px(*BLOCK))
    assert len(now) == 1
    row = now.iloc[0]
    assert row["violation_id"] == before["violation_id"] and third.status_changed == [row["violation_id"]]
    assert (row["status"], row["permit_ids"], row["previous_status"]) == ("exceeds_permit", "GP-2020-0143",
                                                                          "unlicensed")
    assert pd.Timestamp(row["status_since"]) == pd.Timestamp(NIGHTS[2])  # a DATE field, as `night`
    assert pd.Timestamp(row["night"]) == pd.Timestamp(NIGHTS[1]) and row["excess_area_m2"] > 10_000
    assert "Số 43 Tô Ký" in row["address"] and row["geometry"].equals(before["geometry"])
    assert third.new_violations == 0 and third.open_violations == 1


def test_the_nights_report_and_summary_line_name_them(nights: dict[str, Any]) -> None:
    third = nights["summaries"][2]
    report = (nights["root"] / "out" / f"report-{NIGHTS[2]}-s2.html").read_text(encoding="utf-8")
    (block,) = third.status_changed
    assert "status changed tonight" in report and f"{block} (unlicensed -&gt; exceeds permit)" in report
    assert "withdrawn tonight" in report and third.withdrawn[0] in report
    d = third.to_dict()
    assert d["status_changed"] == [block] and d["withdrawn_reasons"] == {KIND: 1}
    assert "1 changed status" in repr(third)


def test_the_night_again_changes_no_byte_and_from_its_state_gives_the_same(nights: dict[str, Any]) -> None:
    from click.testing import CliRunner

    from changedetect.cli import cli

    root, out = nights["root"], nights["root"] / "out"
    before = _bytes(out)
    result = CliRunner().invoke(cli, ["-q", "nightly", "--catalog", str(nights["tiles"]), "--permits",
                                      str(nights["entered"]), "--state", str(root / "state"), "--out", str(out),
                                      "--night", NIGHTS[2], "--config", str(nights["config"]), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert _bytes(out) == before
    # the night computed again from the committed state of night 2: the same register, withdrawn and ids
    again = nights["again"]
    summary = _night(nights, NIGHTS[2], nights["entered"], base=again)
    assert (summary.withdrawn, summary.status_changed) == (nights["summaries"][2].withdrawn,
                                                           nights["summaries"][2].status_changed)
    pd.testing.assert_frame_equal(_open(again / "out"), nights["after_night_3"])


def test_the_cli_summary_line_counts_the_changed_statuses(nights: dict[str, Any]) -> None:
    from click.testing import CliRunner

    from changedetect.cli import cli

    base = nights["cli"]  # the committed state of night 2
    result = CliRunner().invoke(cli, ["-q", "nightly", "--catalog", str(nights["tiles"]), "--permits",
                                      str(nights["entered"]), "--state", str(base / "state"), "--out",
                                      str(base / "out"), "--night", NIGHTS[2], "--config", str(nights["config"]),
                                      "--workers", "1"])
    assert result.exit_code == 0, result.output
    line = result.output.splitlines()[0]
    assert f"1 withdrawn (1 {KIND}), 1 changed status, 1 open in total" in line, line


def test_a_night_with_the_register_unchanged_changes_nothing(nights: dict[str, Any]) -> None:
    control = nights["control"]
    summary = _night(nights, NIGHTS[2], nights["first"], base=control)
    assert (summary.withdrawn, summary.status_changed) == ([], [])
    now = _open(control / "out")
    assert "status_since" not in now and "previous_status" not in now
    pd.testing.assert_frame_equal(now, nights["after_night_2"], check_dtype=False)  # (confidence: float32 once)
    # and after the register changed: the next night with that register changes nothing either
    later = _snapshot(nights["root"], "later")
    summary = _night(nights, NIGHTS[3], nights["entered"], base=later)
    assert (summary.withdrawn, summary.status_changed) == ([], [])
    pd.testing.assert_frame_equal(_open(later / "out"), nights["after_night_3"])


# the pure function, on small GeoDataFrames


def _open_rows(night: str = "2020-07-05") -> gpd.GeoDataFrame:
    """Three earlier violations (a house, a block, a shed) and one of tonight, all unlicensed."""
    geoms = [box(0, 0, 20, 20), box(100, 0, 160, 20), box(300, 0, 310, 10), box(500, 0, 520, 20)]
    n = len(geoms)
    return gpd.GeoDataFrame({
        "violation_id": [f"a-{i}" for i in range(n)], "area": "a", "night": [night] * 3 + ["2020-09-04"],
        "before": "2020-01-05", "after": "2020-07-04", "run_violation_id": [f"r{i}" for i in range(n)],
        "footprint_id": [f"f{i}" for i in range(n)], "status": "unlicensed",
        "reason": "no permit covers it", "permit_ids": "", "overlap_ratio": 0.0, "excess_area_m2": 0.0,
        "area_m2": [g.area for g in geoms], "first_seen": "2020-07-04", "change_type": "new",
        "confidence": 0.9, "address": "", "same_sun": "not needed"}, geometry=geoms, crs="EPSG:32632")


def _loaded(path: Path, *permits: dict[str, Any]) -> gpd.GeoDataFrame:
    from changedetect.permits import load_register

    gpd.GeoDataFrame([_permit("GP-2019-0001", box(900, 900, 910, 910)), *permits], geometry="geometry",
                     crs="EPSG:32632").to_file(path)
    return load_register(path)


def test_rematch_withdraws_the_permitted_and_updates_a_changed_status(tmp_path: Path) -> None:
    from changedetect._nightly_rematch import rematch
    from changedetect.match import MatchConfig

    register = _loaded(tmp_path / "r.gpkg", _permit("GP-2020-0142", box(-1, -1, 21, 21)),
                       _permit("GP-2020-0143", box(100, 0, 120, 20)),
                       _permit("GP-2020-0144", box(499, -1, 521, 21)))  # tonight's row: its pair's business
    rows = _open_rows()
    kept, gone = rematch(rows, register, "2020-09-04", config=MatchConfig(), tolerances={"a": 0.5})
    assert gone["violation_id"].tolist() == ["a-0"] and gone["withdrawn"].tolist() == ["2020-09-04"]
    assert gone["withdrawn_reason"][0].startswith(f"{KIND}: permit GP-2020-0142 (entered in the register or "
                                                  "changed since it was reported unlicensed on 2020-07-05) covers it")
    assert kept["violation_id"].tolist() == ["a-1", "a-2", "a-3"]
    block = kept.iloc[0]
    assert (block["status"], block["permit_ids"], block["previous_status"], block["status_since"]) == \
        ("exceeds_permit", "GP-2020-0143", "unlicensed", "2020-09-04")
    assert block["excess_area_m2"] > 700 and "Số 43 Tô Ký" in block["address"]
    assert list(kept.columns[7:10]) == ["status", "status_since", "previous_status"]
    untouched = ["violation_id", "status", "reason", "permit_ids", "overlap_ratio", "geometry"]
    # the shed (no permit) and tonight's row (matched by its pair) are as they were, dated by their night
    pd.testing.assert_frame_equal(kept.iloc[1:][untouched].reset_index(drop=True),
                                  rows.iloc[2:][untouched].reset_index(drop=True))
    assert kept["status_since"].tolist()[1:] == ["2020-07-05", "2020-09-04"]
    assert kept["previous_status"].tolist()[1:] == ["", ""]


def test_rematch_with_nothing_new_in_the_register_changes_nothing(tmp_path: Path) -> None:
    from changedetect._nightly_rematch import bound, record, rematch, stamp
    from changedetect.match import MatchConfig

    rows = _open_rows()
    kept, gone = rematch(rows, _loaded(tmp_path / "r.gpkg"), "2020-09-04", config=MatchConfig())
    assert len(gone) == 0
    pd.testing.assert_frame_equal(kept, rows)
    # the night after a commit with the same register and settings does not match again at all
    register = _loaded(tmp_path / "r2.gpkg", _permit("GP-2020-0142", box(-1, -1, 21, 21)))
    nights = {"2020-07-05": {"new_violations": 3, **record({}, stamp("k", MatchConfig()), {"a": 0.5}, 4)}}
    kept, gone = bound(nights, register, "2020-09-04", MatchConfig(), "k", {})(rows)
    assert len(gone) == 0
    pd.testing.assert_frame_equal(kept, rows)
    # another register (or other settings) does
    _, gone = bound(nights, register, "2020-09-04", MatchConfig(), "other", {})(rows)
    assert gone["violation_id"].tolist() == ["a-0"]
    _, gone = bound(nights, register, "2020-09-04", MatchConfig(tolerance_m2=5.0), "k", {})(rows)
    assert gone["violation_id"].tolist() == ["a-0"]


@pytest.mark.parametrize("lang", ["en", "vi"])
def test_the_nights_report_header_follows_the_report_config(lang: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The night's report gets the run config's ``[report]`` table (title, max_cards, language) as ``run``'s
    does, and its own header lines (withdrawn, status changed, the night) are in that language."""
    from changedetect import _nightly_outputs
    from changedetect._report_text import TEXT
    from changedetect.config import ReportConfig

    seen: list[dict[str, Any]] = []
    monkeypatch.setattr("changedetect.report.write_report",
                        lambda new, **kw: seen.append(kw) or Path(kw["out_path"]))
    night = "2020-09-04"
    rows = _open_rows().assign(area="a", night=["2020-07-05", "2020-07-05", "2020-07-05", night],
                               previous_status=["", "unlicensed", "", ""], status_since="2020-07-05")
    rows.loc[1, ["status", "status_since"]] = ["exceeds_permit", night]
    gone = rows.iloc[[0]].assign(withdrawn=night, withdrawn_reason=f"{KIND}: permit GP-2020-0142 covers it")
    results = [{"area": "a", "error": None, "runs": [{"before": "2020-07-04", "after": "2020-09-03",
                                                       "run_dir": str(tmp_path)}]}]
    config = ReportConfig(lang=lang, title="Quận 12", max_cards=3)
    _nightly_outputs.write_night_reports(rows.iloc[1:], results, tmp_path, night, gone, report=config)
    (kw,) = seen
    t = TEXT[lang]
    assert kw["config"] == config
    info = kw["run_info"]
    assert info["generated"] == t["night.generated"].format(night=night)
    assert t[f"withdrawn.{KIND}"] in info["withdrawn tonight"]
    assert t["status.unlicensed"] in info["status changed tonight"]
    assert t["status.exceeds_permit"] in info["status changed tonight"]
    if lang == "vi":
        assert not any(w in " ".join(map(str, info.values())) for w in ("night", "permit register", "covered"))
