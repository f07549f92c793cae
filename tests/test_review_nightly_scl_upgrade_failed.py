"""Review: the upgrade of a state written before SCL checksums decides once per date whether the SCL
came late (by its modification time against the state's last commit).  That decision must survive a
night on which the area fails: the failed night still rewrites ``state.json``, so deciding again the
next night would take the late SCL as older than the last commit and never compare its date again."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import test_review_nightly_late_scl as late_scl
import test_review_s2_clouds as s2


def test_a_late_scl_of_a_legacy_state_is_still_compared_after_a_failed_night(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from changedetect import pipeline
    from changedetect.errors import ChangeDetectError

    world, held = late_scl._world(tmp_path)
    late_scl._night(world, "2020-01-06")
    late_scl._night(world, "2020-07-05")
    state_file = tmp_path / "state" / "state.json"
    state = json.loads(state_file.read_text())
    for record in state["acquisitions"]["bands"].values():
        record.pop("scl", None)  # as the previous version wrote it
    state_file.write_text(json.dumps(state))
    committed = state_file.stat().st_mtime - 3600  # the last commit an hour ago ...
    os.utime(state_file, (committed, committed))
    for f in (world["tiles"] / "bands").iterdir():  # ... the bands and the early SCL before it
        os.utime(f, (committed - 3600, committed - 3600))
    scl = Path(shutil.copy(held, world["tiles"] / "bands" / held.name))
    os.utime(scl, (committed + 60, committed + 60))  # the late SCL after it (and before tonight's commit)

    def broken(*args: object, **kwargs: object) -> None:
        raise ChangeDetectError("the disk is full")

    monkeypatch.setattr(pipeline, "run", broken)
    third = late_scl._night(world, "2020-07-06")
    assert set(third.failed) == {"bands"} and [r["date"] for r in third.reruns] == ["2020-07-04"], third
    monkeypatch.undo()
    fourth = late_scl._night(world, "2020-07-07")
    assert not fourth.failed, fourth.failed
    assert fourth.pairs == 1 and [r["date"] for r in fourth.reruns] == ["2020-07-04"], (fourth, fourth.warnings)
    assert "2020-07-04" not in " ".join(w for w in fourth.warnings if "SCL" in w), fourth.warnings
    assert late_scl._cover(fourth) == pytest.approx(1 - s2._masked_10m(True).mean(), abs=0.01)
    fifth = late_scl._night(world, "2020-07-08")
    assert (fifth.pairs, fifth.reruns) == (0, []), fifth
