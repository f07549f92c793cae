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
