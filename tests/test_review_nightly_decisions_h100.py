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
