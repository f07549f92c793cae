"""A decisions file's bad rows are said at once, as a permit register's are (before: one at a time)."""

from __future__ import annotations

from pathlib import Path

import pytest

from changedetect._nightly_decisions_read import read_decisions
from changedetect.errors import ConfigError


def test_every_bad_row_of_a_decisions_file_is_in_the_one_error(tmp_path: Path) -> None:
    path = tmp_path / "decisions.csv"
    path.write_text("violation_id,decision,decided_on\n"
                    "d1-001,maybe,2025-02-03\n"
                    "d1-002,false_alarm,2025-02-03\n"
                    "d1-003,false_alarm,2025-02-30\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        read_decisions(path)
    text = str(err.value)
    assert text.startswith(f"decisions file '{path}': 2 rows cannot be read; fix them all:")
    assert "row 1 (line 2): 'decision' 'maybe' is not a decision" in text
    assert "row 3 (line 4): 'decided_on' '2025-02-30' is not a date" in text
    path.write_text("violation_id,decision,decided_on\nd1-001,maybe,2025-02-03\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^decisions file '.*', row 1 \(line 2\): 'decision' 'maybe'"):
        read_decisions(path)  # one bad row: its own message, as before
