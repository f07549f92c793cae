"""Review: two fill dates of a pair whose SCLs both came late; the withdrawal names the date the pair
filled from.

The pair (d2, d3) filled d2's no data from its fill dates, d1 tried first, then d0.  When neither had
its SCL, d1 had data everywhere and filled all of it: d0 filled nothing.  When both SCLs land, the
rerun no longer finds what d1's clouds made.  Until 2026-12-01 d0 was judged first with d1's SCL as
it is now, as if the first run had had it: what lay under both clouds was taken as filled from d0,
and the withdrawal named d0 and d0's SCL, a date the pair never read there.  The small world of dates
is :mod:`test_review_nightly_fillscl`'s."""

from __future__ import annotations

from pathlib import Path

from test_review_nightly_fillscl import KIND, NIGHTS, PAIR, _register, _rerun_folder, _scl_file
from test_review_nightly_rerun_withdraw import _px


def test_two_late_fill_dates_name_the_one_the_pair_filled_from(tmp_path: Path) -> None:
    from changedetect._withdraw_masked import withdraw_masked

    d0 = _scl_file(tmp_path / "s2_20200105_SCL.tif", (slice(20, 36), slice(10, 30)))
    d1 = _scl_file(tmp_path / "s2_20200305_SCL.tif", (slice(28, 36), slice(18, 34)))
    run_dir = _rerun_folder(tmp_path / "rerun")  # BEFORE's no data over CLOUD (rows 20:36, cols 18:34)
    register = _register([("both", _px(slice(28, 36), slice(18, 24))),  # under d1's cloud and d0's
                          ("d1_only", _px(slice(28, 36), slice(30, 34))),  # under d1's cloud, d0 clear
                          ("d0_only", _px(slice(20, 28), slice(18, 30)))])  # d1 clear: d1 filled it both times
    fill = [{"path": "d0.tif", "date": "2020-01-05", "scl": d0}, {"path": "d1.tif", "date": "2020-03-05", "scl": d1}]
    late = {"2020-01-05": "its SCL came late", "2020-03-05": "its SCL came late"}
    pair = {**PAIR, "run_dir": str(run_dir), "fill": fill, "scl_fill": late}
    kept, gone = withdraw_masked(register, [{"area": "s2", "error": None, "runs": [pair]}], NIGHTS[4])
    assert sorted(gone["violation_id"]) == ["both", "d1_only"], gone
    assert kept["violation_id"].tolist() == ["d0_only"], kept
    for why in gone["withdrawn_reason"]:
        assert why.startswith(f"{KIND}: 100% of it"), why
        assert "filled it from 2020-03-05" in why and "2020-03-05 ('s2_20200305_SCL.tif')" in why, why
        assert "2020-01-05" not in why, why

    # d1's SCL on time (only d0's late): the first run had d1's, and took d0 under d1's cloud
    pair = {**pair, "scl_fill": {"2020-01-05": "its SCL came late"}}
    gone = withdraw_masked(register, [{"area": "s2", "error": None, "runs": [pair]}], NIGHTS[4])[1]
    assert gone["violation_id"].tolist() == ["both"], gone
    assert "filled it from 2020-01-05" in gone["withdrawn_reason"].iloc[0], gone
