"""A Sentinel-2 date at its swath edge: its bands have no data over one side and its SCL says no data
(class 0) over the same pixels.  That is the tiles not reaching, not the SCL: the shares of the SCL's
classes count only pixels where the bands have data, what it masked over the bands' own no data is
kept apart (``masked_where_no_data``), and the advice is the tiles' ("check that the tiles cover the
area"), never "check that '..._SCL_20m.tif' is this date's SCL".  And ``run`` warns once for each
compared pair under half the scene, not only for the first and last dates."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path

import pytest
import test_review_s2_clouds as s2
from affine import Affine
from test_review_report_coverage import _Collect, _section

from changedetect.testing import make_footprints, make_model, make_permits

EDGE = s2.SIZE // 4  # the edge date's bands and SCL have data west of this 10 m column only: 25 %


def l2a(root: Path, days: tuple[str, ...], edge: str) -> Path:
    """An L2A-like folder (as ``s2_folder``'s) of ``days``; on ``edge`` the bands are 0 (Sentinel-2's
    no data) and the SCL 0 (no data) east of :data:`EDGE`, with a small cloud (9) on the side with data."""
    folder = root / "tiles"
    folder.mkdir(parents=True, exist_ok=True)
    for k, day in enumerate(days):
        data, scl = s2._bands(cloudy=False, seed=k), s2._scl(False)
        if day == edge:
            data[:, :, EDGE:] = 0
            scl[:, EDGE // 2:] = 0
            scl[2:6, 2:6] = 9  # 16 of the SCL's 1024 px: 1.6 % cloud
            data[:, 4:12, 4:12] = 9000
        for b, name in enumerate(s2.BANDS):
            s2._write(folder / f"T32TPP_{day}T101021_{name}_10m.tif", data[b:b + 1], s2.ORIGIN)
        s2._write(folder / f"T32TPP_{day}T101021_SCL_20m.tif", scl[None], s2.ORIGIN @ Affine.scale(2))
    return folder


def _run(root: Path, days: tuple[str, ...], edge: str, *, fill: bool = True) -> dict:
    from changedetect.config import PipelineConfig
    from changedetect.io import open_stack
    from changedetect.pipeline import run

    clean = l2a(root / "clean", days, edge="")
    make_permits(make_footprints(open_stack(clean)).iloc[:1]).to_file(root / "permits.gpkg")
    folder = l2a(root, days, edge)
    config = PipelineConfig().with_model(str(make_model(root / "m")))
    config = dataclasses.replace(config, detect=dataclasses.replace(config.detect, window=64, overlap=8,
                                                                    fill_masked_before=fill))
    handler = _Collect()
    logging.getLogger("changedetect").addHandler(handler)
    try:
        run(folder, permits=root / "permits.gpkg", out=root / "out", config=config)
    finally:
        logging.getLogger("changedetect").removeHandler(handler)
    return {"folder": folder, "out": root / "out", "said": handler.said,
            "doc": json.loads((root / "out" / "run.json").read_text(encoding="utf-8"))}


@pytest.fixture(scope="module")
def swath(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _run(tmp_path_factory.mktemp("swath"), s2.DATES, edge=s2.DATES[1])


@pytest.fixture(scope="module")
def middle(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Three dates, the middle one at its swath edge, its BEFORE not filled from the last clear view
    (``fill_masked_before = false``): both consecutive pairs are low, the first and last dates' is not."""
    return _run(tmp_path_factory.mktemp("middle"), ("20200105", "20200404", "20200704"), edge="20200404",
                fill=False)


@pytest.fixture(scope="module")
def middle_filled(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The same, filled (the default): the second pair compares its AFTER against 2020-01-05 where
    2020-04-04 has no data (``tests/test_review_coverage_filled.py``)."""
    return _run(tmp_path_factory.mktemp("middlefilled"), ("20200105", "20200404", "20200704"), edge="20200404")


# ------------------------------------------------------------------------------------- the SCL's shares
def test_cloud_shares_count_the_scl_where_the_bands_have_data(tmp_path: Path) -> None:
    from changedetect.io import open_series
    from changedetect.io.clouds import cloud_shares

    series = open_series(l2a(tmp_path, s2.DATES, edge=s2.DATES[1]))
    for side in (1024, 16):  # the bands on their own grid, and read decimated onto a 40 m one
        shares = {c["date"]: c for c in cloud_shares(series, side=side)}
        edge = shares["2020-07-04"]
        assert edge["masked_where_no_data"] == pytest.approx(0.75, abs=0.01), (side, edge)
        assert edge["cloud_share"] == edge["masked_share"] == pytest.approx(16 / 1024, abs=0.002), (side, edge)
        assert edge["masked_classes"] == {"cloud, high probability (9)": pytest.approx(16 / 1024, abs=0.002)}, edge
        assert shares["2020-01-05"]["masked_share"] == shares["2020-01-05"]["masked_where_no_data"] == 0.0


# ------------------------------------------------------------------------------------------------ run
def test_run_blames_the_tiles_not_the_scl(swath: dict) -> None:
    said = [s for s in swath["said"] if "data on both" in s]
    assert len(said) == 1, swath["said"]
    assert "2020-07-04's tiles have no data over 75 % of the scene" in said[0], said
    assert "check that the tiles cover the area" in said[0], said
    assert "this date's SCL" not in said[0] and "masked by its Sentinel-2" not in said[0], said
    assert not [s for s in swath["said"] if "mostly cloud" in s], swath["said"]


def test_run_json_gives_the_swath_edge_to_the_tiles(swath: dict) -> None:
    doc = swath["doc"]
    dates = {d["date"]: d for d in doc["coverage"]["dates"]}
    assert dates["2020-07-04"]["tiles_nodata_share"] == pytest.approx(0.75, abs=0.02), dates
    (scl,) = [c for c in doc["clouds"] if c["date"] == "2020-07-04"]
    assert scl["masked_share"] < 0.02 and "no data (0)" not in scl["masked_classes"], scl
    assert scl["masked_where_no_data"] == pytest.approx(0.75, abs=0.01), scl


def test_the_report_gives_the_swath_edge_to_the_tiles(swath: dict, tmp_path: Path) -> None:
    from changedetect.report import report_from_run

    for text in ((swath["out"] / "report.html").read_text(encoding="utf-8"),
                 report_from_run(swath["out"], out_path=tmp_path / "again.html").read_text(encoding="utf-8")):
        section = _section(text)
        assert "no data (0)" not in section and "this date&#x27;s SCL" not in section, section
        assert "tiles cover the area" in section, section
        row = re.search(r"<tr><td>2020-07-04</td>.*?</tr>", section, flags=re.S)
        assert row and re.search(r"7\d\.\d %</td></tr>", row.group(0)), section


# ------------------------------------------------------------------------------ each low pair warned
def test_run_warns_for_each_low_pair_once(middle: dict) -> None:
    said = [s for s in middle["said"] if "data on both" in s]
    pairs = {("2020-01-05", "2020-04-04"), ("2020-04-04", "2020-07-04")}
    assert {(p["before"], p["after"]) for p in middle["doc"]["coverage"]["pairs"] if p["low"]} == pairs
    assert len(said) == 2, said
    for (before, after), line in zip(sorted(pairs), sorted(said), strict=True):
        assert f"data on both {before} and {after}" in line, said
        assert "2020-04-04's tiles have no data over 75 % of the scene" in line, said
    assert middle["doc"]["coverage_both_dates"] > 0.9  # the first and last dates': not low, not warned


def test_a_pair_filled_from_the_clear_view_is_not_low(middle_filled: dict) -> None:
    pairs = {(p["before"], p["after"]): p for p in middle_filled["doc"]["coverage"]["pairs"]}
    assert {pair for pair, p in pairs.items() if p["low"]} == {("2020-01-05", "2020-04-04")}
    filled = pairs[("2020-04-04", "2020-07-04")]
    assert filled["coverage_both_dates"] == pytest.approx(0.25, abs=0.03)
    assert filled["compared_share"] > 0.95 and filled["filled_from"] == {"2020-01-05": filled["filled_share"]}
    said = [s for s in middle_filled["said"] if "of the scene" in s and "a compared pair" in s]
    assert len(said) == 1 and "data on both 2020-01-05 and 2020-04-04" in said[0], said


def test_the_first_and_last_pair_is_warned_once(tmp_path: Path) -> None:
    """A compared pair that is also the first and last dates' is said once, with that figure."""
    from changedetect._pipeline_chain import warn_coverage

    handler = _Collect()
    logging.getLogger("changedetect").addHandler(handler)
    coverage = {"pairs": [{"before": "a", "after": "b", "coverage_both_dates": 0.2, "low": True},
                          {"before": "b", "after": "c", "coverage_both_dates": 0.3, "low": True},
                          {"before": "b", "after": "c", "coverage_both_dates": 0.3, "low": True},
                          {"before": "a", "after": "c", "coverage_both_dates": 0.3, "low": True}],
                "dates": []}
    try:
        warn_coverage(0.25, ["a", "b", "c"], [], coverage)
    finally:
        logging.getLogger("changedetect").removeHandler(handler)
    said = sorted(handler.said)
    assert len(said) == 3, said
    assert "25.0 % of the scene has data on both a and c" in said[1] and "first and last" in said[1], said
    assert "20.0 % of the scene has data on both a and b" in said[0], said
    assert "30.0 % of the scene has data on both b and c" in said[2], said
