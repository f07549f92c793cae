"""A new night dated before the last night committed is refused; a committed night may be run again.

An operator's typo in ``--night`` (or a script replaying dates) committed such a night out of order: its
register held violations first seen months after it, and it became 'the last night committed'.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from changedetect.config import PipelineConfig
from changedetect.errors import ConfigError
from changedetect.nightly import run_nightly
from changedetect.testing import make_nightly_catalog


def test_a_night_before_the_last_committed_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    world = make_nightly_catalog(tmp_path / "world", {"district1": 1})
    config = PipelineConfig.from_toml(world["config"])

    def night(day: str) -> object:
        return run_nightly(world["tiles"], permits=world["permits"], state=tmp_path / "state", out=tmp_path / "out",
                           night=day, workers=1, config=config)

    night("2024-05-20")
    state = (tmp_path / "state" / "state.json").read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match=r"night 2024-04-01 is before the last night committed, 2024-05-20"):
        night("2024-04-01")
    assert (tmp_path / "state" / "state.json").read_text(encoding="utf-8") == state
    assert not list((tmp_path / "out").glob("*2024-04-01*"))
    again = night("2024-05-20")  # a night already committed: run again (its outputs restored only)
    assert again.night == "2024-05-20"
    assert sorted(json.loads((tmp_path / "state" / "state.json").read_text(encoding="utf-8"))["nights"]) == ["2024-05-20"]
    later = night("2024-06-01")
    assert later.night == "2024-06-01"
