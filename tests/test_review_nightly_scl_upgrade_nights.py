"""Review: the upgrade of a state written before SCL checksums dated a legacy date's SCL against the
state's last commit alone.  ``state.json`` is rewritten every night, even with nothing new, so an SCL
that came a few nights before the upgrade was taken as there when its date was compared (adopted,
with a warning) and its clouds stayed.  Each record's own night dates it now: an SCL written after
that night was over, its bands before, came late.  A catalog copied to another disk after those
nights (every file new) still compares nothing again."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import test_review_nightly_late_scl as late_scl
import test_review_s2_clouds as s2


def _at(day: str, hour: int) -> float:
    """A local time on ``day`` (YYYY-MM-DD), as the nightly job's nights are local dates."""
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour)).timestamp()


def _legacy(tmp_path: Path, *, scl_from_the_start: bool) -> tuple[dict, Path, Path]:
    """Two nights (2020-01-06, 2020-07-05) then the state rewritten as the previous version wrote it."""
    world, held = late_scl._world(tmp_path)
    if scl_from_the_start:
        shutil.copy(held, world["tiles"] / "bands" / held.name)
    late_scl._night(world, "2020-01-06")
    late_scl._night(world, "2020-07-05")
    state_file = tmp_path / "state" / "state.json"
    state = json.loads(state_file.read_text())
    for record in state["acquisitions"]["bands"].values():
        record.pop("scl", None)
    state_file.write_text(json.dumps(state))  # the last commit: now, long after the nights
    return world, held, state_file


def _touch(files: list[Path], when: float) -> None:
    for f in files:
        os.utime(f, (when, when))


def test_an_scl_that_came_nights_before_the_upgrade_compares_its_date_again(tmp_path: Path) -> None:
    world, held, _ = _legacy(tmp_path, scl_from_the_start=False)
    area = world["tiles"] / "bands"
    _touch(list(area.glob(f"*{s2.DATES[0]}*")), _at("2020-01-05", 12))  # each date there before its night
    _touch(list(area.glob(f"*{s2.DATES[1]}*")), _at("2020-07-04", 12))
    scl = Path(shutil.copy(held, area / held.name))
    _touch([scl], _at("2020-07-08", 3))  # three nights after 2020-07-05 compared its date
    night = late_scl._night(world, "2020-07-10")
    assert night.pairs == 1 and [r["date"] for r in night.reruns] == ["2020-07-04"], (night.reruns, night.warnings)
    assert "2020-07-05" in night.reruns[0]["reason"], night.reruns
    (line,) = [w for w in night.warnings if "SCL" in w]  # the first date's SCL came with its bands
    assert "2020-01-05" in line and "2020-07-04" not in line, line
    assert late_scl._cover(night) < 0.95  # compared again with its cloud mask
    after = late_scl._night(world, "2020-07-11")
    assert (after.pairs, after.reruns, after.warnings) == (0, [], []), after


def test_a_catalog_copied_after_its_nights_compares_nothing_again(tmp_path: Path) -> None:
    """Every file written by the copy, after the nights that compared the dates and before the last
    commit: no SCL is taken as late (it came with its bands)."""
    world, _, _ = _legacy(tmp_path, scl_from_the_start=True)
    _touch(list((world["tiles"] / "bands").iterdir()), _at("2020-07-08", 3))
    night = late_scl._night(world, "2020-07-10")
    assert (night.pairs, night.reruns) == (0, []), night
    (line,) = [w for w in night.warnings if "SCL" in w]
    assert "2020-01-05" in line and "2020-07-04" in line, line
