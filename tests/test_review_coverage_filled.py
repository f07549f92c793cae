"""What a pair compared when its BEFORE was filled from the last clear view.

Since detection fills a consecutive pair's cloudy BEFORE from the latest earlier date with data
(``changedetect._fill_before``), the pair compares every pixel where its AFTER has data and its BEFORE
has data or was filled: more than "data on both dates".  run.json's ``coverage``, the report's "What
was compared", ``run``'s warnings and the nightly's summary count it so (``compared_share``,
``filled_share``, ``filled_from``); a pair the fill does not touch, and an older run.json, read as before."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
from test_review_report_coverage import _Collect  # the warnings run logs

from changedetect._fill_before import fill_before
from changedetect.testing import make_run_inputs, make_stack

D0, D1, D2 = "2024-01-15", "2024-03-15", "2024-05-14"  # make_run_inputs' dates


# --------------------------------------------------------------------------------- the rule itself
def test_the_compared_share_follows_the_fills_own_rule() -> None:
    """On one stack: the pixels coverage_of counts as filled are those fill_before filled where the
    AFTER has data, from the same dates; a same-season pair (not filled) keeps data on both dates."""
    from changedetect._pipeline_coverage import coverage_of, fill_orders, valid_masks

    stack = make_stack(dates=["2023-01-10", "2023-06-10", "2024-01-12", "2024-03-10"], size=64, seed=1)
    stack = stack.copy(deep=True)
    stack.values[2, :, :40, :] = np.nan  # the cloudy BEFORE of (2, 3)
    stack.values[1, 0, :10, :] = np.nan  # one band missing: not a clear view there, 2023-01-10 is
    stack.values[3, :, 50:, :] = np.nan  # the AFTER's own cloud: not compared, filled or not
    days = [str(t)[:10] for t in stack["time"].values]
    pairs = [(2, 3), (0, 2)]
    orders = fill_orders(days, pairs, [{"before": days[2], "after": days[3]}], None)
    assert orders == {(2, 3): [1, 0]}  # the same-season pair (0, 2) is not filled
    valid = valid_masks(stack, [0, 1, 2, 3])
    got = {(p["before"], p["after"]): p for p in coverage_of(days, pairs, valid, [], fills=orders)["pairs"]}

    source = fill_before(stack, 2).source
    assert source is not None
    after = np.isfinite(stack.values[3]).all(axis=0)
    filled = got[(days[2], days[3])]
    assert filled["coverage_both_dates"] == pytest.approx(10 / 64, abs=1e-4)
    assert filled["filled_share"] == pytest.approx(((source >= 0) & after).mean(), abs=1e-4)
    assert filled["compared_share"] == pytest.approx(after.mean(), abs=1e-4)  # every BEFORE pixel filled
    assert filled["filled_from"] == pytest.approx({days[1]: 30 * 64 / 64**2, days[0]: 10 * 64 / 64**2}, abs=1e-4)
    assert filled["low"] is False
    same = got[(days[0], days[2])]
    assert same["compared_share"] == same["coverage_both_dates"] == pytest.approx(24 / 64, abs=1e-4)
    assert "filled_share" not in same and same["low"] is True


# ------------------------------------------------------------------------------------------------ run
def _cloudy_middle(root: Path, *, report: bool = True):  # type: ignore[no-untyped-def]
    """make_run_inputs' three dates, the middle one without data over its northern two thirds."""
    config = make_run_inputs(root)
    middle = sorted((root / "tiles").glob("*.tif"))[1]
    with rasterio.open(middle) as src:
        data, profile, names = src.read(), src.profile, src.descriptions
    data[:, :200, :] = 0
    with rasterio.open(middle, "w", **{**profile, "nodata": 0}) as dst:
        dst.write(data)
        dst.descriptions = names
    return replace(config, output=replace(config.output, report=report))


def _run(root: Path, config, **kwargs):  # type: ignore[no-untyped-def]
    from changedetect.pipeline import run

    handler = _Collect()
    logging.getLogger("changedetect").addHandler(handler)
    try:
        run(root / "tiles", permits=root / "permits.gpkg", out=root / "out", config=config, **kwargs)
    finally:
        logging.getLogger("changedetect").removeHandler(handler)
    return json.loads((root / "out" / "run.json").read_text()), handler.said


@pytest.mark.parametrize("blocked", [False, True])
def test_a_pair_compared_against_the_clear_view_is_not_low(tmp_path: Path, blocked: bool) -> None:
    config = _cloudy_middle(tmp_path)
    if blocked:
        config = replace(config, run=replace(config.run, block_px=256, halo_px=32))
    doc, said = _run(tmp_path, config)
    pairs = {(p["before"], p["after"]): p for p in doc["coverage"]["pairs"]}
    filled = pairs[(D1, D2)]
    assert filled["coverage_both_dates"] == pytest.approx(1 / 3, abs=0.03)
    assert filled["low"] is False and not [s for s in said if D1 in s and D2 in s], said  # was LOW, and warned
    assert filled["compared_share"] == pytest.approx(1.0, abs=0.03) and filled["low"] is False
    assert filled["filled_share"] == pytest.approx(2 / 3, abs=0.03)
    assert list(filled["filled_from"]) == [D0] and filled["filled_from"][D0] == filled["filled_share"]
    first = pairs[(D0, D1)]  # the series' first date has nothing earlier: data on both dates, as before
    assert first["compared_share"] == first["coverage_both_dates"] and first["low"] is True
    assert "filled_share" not in first
    assert [s for s in said if f"data on both {D0} and {D1}" in s], said
    if not blocked:
        section = re.search(r'<section class="coverage">.*?</section>', (tmp_path / "out" / "report.html")
                            .read_text(encoding="utf-8"), flags=re.S)
        assert section
        (row,) = [r for r in re.findall(r"<tr[^>]*>.*?</tr>", section.group(0), flags=re.S) if f"{D1} → {D2}" in r]
        assert 'class="low"' not in row and "LOW" not in row, row
        assert re.search(r"(99|100)\.\d % compared, 6\d % of it against the clear view of 2024-01-15", row), row


def test_an_explicit_filled_pair_is_warned_of_by_what_it_compared(tmp_path: Path) -> None:
    """The nightly's pair (previous, new): the first and last dates kept are that pair, filled."""
    config = _cloudy_middle(tmp_path, report=False)
    doc, said = _run(tmp_path, config, pairs=[(D1, D2)], fill_from=[D0])
    (pair,) = doc["coverage"]["pairs"]
    assert not [s for s in said if "of the scene" in s], said  # was: "only 33 % ... has data on both"
    assert doc["coverage_both_dates"] == pytest.approx(1 / 3, abs=0.03)  # the first and last dates' own data
    assert pair["compared_share"] == pytest.approx(1.0, abs=0.03) and pair["low"] is False


def test_a_low_filled_pair_says_what_it_compared() -> None:
    from changedetect._pipeline_chain import warn_coverage

    pair = {"before": D1, "after": D2, "coverage_both_dates": 0.1, "compared_share": 0.3, "filled_share": 0.2,
            "filled_from": {D0: 0.2}, "low": True}
    handler = _Collect()
    logging.getLogger("changedetect").addHandler(handler)
    try:
        warn_coverage(0.1, [D1, D2], [], {"pairs": [pair], "dates": []})
    finally:
        logging.getLogger("changedetect").removeHandler(handler)
    (said,) = handler.said
    assert f"only 30.0 % of the scene was compared between {D1} and {D2}" in said, said


# ------------------------------------------------------------------------------ report and nightly
def test_the_report_row_and_an_older_run_json(tmp_path: Path) -> None:
    from changedetect._report_coverage import from_run, section

    new = {"before": D1, "after": D2, "coverage_both_dates": 0.42, "compared_share": 0.72, "filled_share": 0.216,
           "filled_from": {D0: 0.216}, "low": False}
    text = section({"pairs": [new], "dates": []})
    assert "72.0 %" in text and "72.0 % compared, 30 % of it against the clear view of 2024-01-15" in text, text
    assert "LOW" not in text.split("</p>", 1)[1]
    old = {"coverage": {"pairs": [{"before": D1, "after": D2, "coverage_both_dates": 0.42, "low": True}],
                        "dates": []}}
    text = section(from_run(old))
    assert "42.0 %" in text and "LOW" in text and "clear view of" not in text, text


def test_the_nightly_reads_the_compared_share(tmp_path: Path) -> None:
    from changedetect._nightly_coverage import low_coverage, pair_coverage

    for name, pair in (("new", {"coverage_both_dates": 0.3, "compared_share": 0.9, "filled_share": 0.6,
                                "low": False}),
                       ("low", {"coverage_both_dates": 0.1, "compared_share": 0.4, "filled_share": 0.3,
                                "low": True}),
                       ("old", {"coverage_both_dates": 0.3, "low": True})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(json.dumps(
            {"coverage_both_dates": pair["coverage_both_dates"], "clouds": [],
             "coverage": {"pairs": [{"before": D1, "after": D2, **pair}], "dates": []}}))
    results = [{"area": name, "runs": [{"before": D1, "after": D2, "run_dir": str(tmp_path / name)}]}
               for name in ("new", "low", "old")]
    cov = pair_coverage(results)
    assert (cov["new"][0]["compared_share"], cov["new"][0]["filled_share"]) == (0.9, 0.6)
    assert (cov["old"][0]["compared_share"], cov["old"][0]["filled_share"]) == (0.3, 0.0)
    said = low_coverage(cov)
    assert len(said) == 2, said
    assert said[0].startswith(f"area low: only 40.0 % of the scene was compared between {D1} and {D2}"), said
    assert said[1].startswith(f"area old: only 30.0 % of the scene has data on both {D1} and {D2}"), said
