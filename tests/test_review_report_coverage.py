"""What the inspectors' report and ``run``'s warning say about the scene each pair could compare.

The report shows, per compared pair, the share of the scene with data on both dates (low pairs
marked), and per date what was masked: the classes its Sentinel-2 SCL masked and the tiles' own
no data, so that "no violation here" is not read as "checked and clean" under a cloud.  ``run``'s
low-coverage warning names what masked the scene (the SCL's no data is not "check the tiles")."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
import test_review_s2_cloud_edges as edges
import test_review_s2_clouds as s2

from changedetect.testing import (
    make_footprints,
    make_model,
    make_permits,
    make_stack,
    make_violations,
)


# ------------------------------------------------------------------------------ the shared wording
def _cloud(date: str, **shares: float) -> dict:
    return {"date": date, "cloud_share": shares.get("cloud", 0.0), "masked_share": shares.get("masked", 0.0),
            "masked": True, "scl": "x_SCL_20m.tif", "masked_classes": shares.get("classes", {})}


def test_the_scl_no_data_is_named_not_the_tiles() -> None:
    from changedetect.io.clouds import coverage_why

    said = coverage_why([_cloud("2020-07-04", masked=0.8, classes={"no data (0)": 0.8})],
                        ("2020-01-05", "2020-07-04"))
    assert "2020-07-04 is 80 % masked by its Sentinel-2 scene classification (SCL)" in said, said
    assert "80 % no data (0)" in said and "tiles cover the area" not in said, said
    assert "this date's SCL" in said, said


def test_clouds_and_tiles_each_named() -> None:
    from changedetect.io.clouds import coverage_why

    clouds = [_cloud("2020-07-04", cloud=0.5, masked=0.5, classes={"cloud, high probability (9)": 0.4,
                                                                   "cloud shadow (3)": 0.1})]
    said = coverage_why(clouds, ("2020-01-05", "2020-07-04"), tiles_nodata={"2020-01-05": 0.3})
    assert "40 % cloud, high probability (9), 10 % cloud shadow (3)" in said, said
    assert "a clearer date will see more" in said, said
    assert "2020-01-05's tiles have no data over 30 % of the scene" in said, said
    assert "check that the tiles cover the area" in said, said


def test_nothing_masked_or_not_masked_is_the_tiles() -> None:
    from changedetect.io.clouds import coverage_why

    unmasked = {**_cloud("2020-07-04", cloud=0.9, masked=0.9), "masked": False}  # --no-cloud-mask
    for clouds in ([], [unmasked], [_cloud("2020-07-04", masked=0.05, classes={"no data (0)": 0.05})]):
        assert coverage_why(clouds, ("2020-01-05", "2020-07-04")).startswith("check that the tiles cover the area")
    # a run.json of an older version: no classes, its masked share beyond the cloud is the SCL's no data
    old = {"date": "2020-07-04", "cloud_share": 0.0, "masked_share": 1.0, "masked": True}
    assert "100 % no data, defective or outside the SCL" in coverage_why([old], ("2020-07-04",))


# ------------------------------------------------------------------------- run: SCL says no data
@pytest.fixture(scope="module")
def scl_nodata(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The L2A-like folder whose second date's SCL says no data (0) over its eastern three quarters:
    the tiles have data there, 0 % cloud."""
    from changedetect.config import PipelineConfig
    from changedetect.io import open_stack
    from changedetect.pipeline import run

    root = tmp_path_factory.mktemp("sclnodata")
    folder = s2.s2_folder(root)
    make_permits(make_footprints(open_stack(folder)).iloc[:1]).to_file(root / "permits.gpkg")
    with rasterio.open(edges._scl_path(folder), "r+") as dst:
        scl = np.full((dst.height, dst.width), 4, dtype=np.uint8)
        scl[:, dst.width // 4:] = 0
        dst.write(scl, 1)
    config = PipelineConfig().with_model(str(make_model(root / "m")))
    config = dataclasses.replace(config, detect=dataclasses.replace(config.detect, window=64, overlap=8))
    handler = _Collect()
    logging.getLogger("changedetect").addHandler(handler)
    try:
        summary = run(folder, permits=root / "permits.gpkg", out=root / "out", config=config)
    finally:
        logging.getLogger("changedetect").removeHandler(handler)
    return {"out": root / "out", "summary": summary, "said": handler.said}


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.said: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.said.append(record.getMessage())


def test_run_names_the_scl_no_data(scl_nodata: dict) -> None:
    said = [s for s in scl_nodata["said"] if "data on both" in s]
    assert len(said) == 1, scl_nodata["said"]
    assert "2020-07-04 is 75 % masked by its Sentinel-2 scene classification (SCL)" in said[0], said
    assert "no data (0)" in said[0] and "check that the tiles cover the area" not in said[0], said


def test_run_json_records_each_pair_and_date(scl_nodata: dict) -> None:
    doc = json.loads((scl_nodata["out"] / "run.json").read_text(encoding="utf-8"))
    (pair,) = doc["coverage"]["pairs"]
    assert (pair["before"], pair["after"], pair["low"]) == ("2020-01-05", "2020-07-04", True)
    assert pair["coverage_both_dates"] == doc["coverage_both_dates"] == pytest.approx(0.25, abs=0.02)
    dates = {d["date"]: d for d in doc["coverage"]["dates"]}
    assert dates["2020-01-05"]["valid_share"] == 1.0 and dates["2020-01-05"]["tiles_nodata_share"] == 0.0
    assert dates["2020-07-04"]["valid_share"] == pytest.approx(0.25, abs=0.02)
    assert dates["2020-07-04"]["tiles_nodata_share"] == pytest.approx(0.0, abs=0.02)
    (scl,) = [c for c in doc["clouds"] if c["date"] == "2020-07-04"]
    assert sum(scl["masked_classes"].values()) == pytest.approx(0.75, abs=0.02), scl


def test_the_runs_report_shows_the_coverage(scl_nodata: dict, tmp_path: Path) -> None:
    from changedetect.report import report_from_run

    for text in ((scl_nodata["out"] / "report.html").read_text(encoding="utf-8"),
                 report_from_run(scl_nodata["out"], out_path=tmp_path / "again.html").read_text(encoding="utf-8")):
        section = _section(text)
        assert "2020-01-05 → 2020-07-04" in section and "25" in section, section
        assert 'class="low"' in section and "LOW" in section, section
        assert "no data (0)" in section and "75" in section, section


def _section(text: str) -> str:
    match = re.search(r'<section class="coverage">.*?</section>', text, flags=re.S)
    assert match, "no coverage section"
    return match.group(0)


# --------------------------------------------------------------------------------- the report
def test_report_marks_low_pairs_and_stays_self_contained(tmp_path: Path) -> None:
    from changedetect.report import write_report

    stack = make_stack(n_dates=3, size=64, seed=2)
    coverage = {
        "pairs": [{"before": "2024-01-15", "after": "2024-07-12", "coverage_both_dates": 0.98, "low": False},
                  {"before": "2024-07-12", "after": "2025-01-20", "coverage_both_dates": 0.31, "low": True}],
        "dates": [{"date": "2024-01-15", "valid_share": 0.99, "tiles_nodata_share": 0.01},
                  {"date": "2024-07-12", "valid_share": 0.99, "tiles_nodata_share": 0.01},
                  {"date": "2025-01-20", "valid_share": 0.32, "tiles_nodata_share": 0.0}],
        "clouds": [{"date": "2025-01-20", "cloud_share": 0.68, "masked_share": 0.68, "masked": True,
                    "scl": "<b>_SCL.tif", "masked_classes": {"cloud, high probability (9)": 0.68}}],
    }
    text = write_report(make_violations(stack, n=1), out_path=tmp_path / "r.html", stack=stack,
                        coverage=coverage).read_text(encoding="utf-8")
    section = _section(text)
    rows = re.findall(r"<tr[^>]*>.*?</tr>", section, flags=re.S)
    low = [r for r in rows if 'class="low"' in r]
    assert len(low) == 1 and "2024-07-12 → 2025-01-20" in low[0] and "31.0 %" in low[0], low
    assert "a clearer date will see more" in low[0], low
    assert any("2025-01-20" in r and "68.0 % cloud, high probability (9)" in r for r in rows), rows
    assert "not checked" in section
    assert "<b>_SCL" not in text
    assert not re.search(r"(src|href)=\"(?!data:)", text) and "http" not in section
    assert all(base64.b64decode(u) for u in re.findall(r'src="data:image/(?:jpeg|png);base64,([^"]+)"', text))


def test_report_without_coverage_has_no_section(tmp_path: Path) -> None:
    from changedetect.report import render_report

    assert '<section class="coverage">' not in render_report(make_violations(make_stack(n_dates=2, size=32), n=1))


@pytest.mark.browser
def test_the_coverage_renders_in_headless_chromium(scl_nodata: dict, tmp_path: Path) -> None:
    """The run's report in a real browser: no console message, the section and its LOW row in the DOM."""
    import test_report_browser as browser

    exe = browser._chromium()
    url = (scl_nodata["out"] / "report.html").resolve().as_uri()
    dom = browser._run(exe, "--enable-logging=stderr", "--v=0", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert [line for line in dom.stderr.splitlines() if ":CONSOLE" in line] == []
    section = _section(dom.stdout)
    assert re.search(r'<tr class="low"><td>2020-01-05 → 2020-07-04</td><td class="pct">2\d\.\d %</td>', section), section
    shot = tmp_path / "report.png"
    result = browser._run(exe, "--window-size=1200,900", "--hide-scrollbars", f"--screenshot={shot}", url)
    assert result.returncode == 0 and shot.stat().st_size > 10_000, result.stderr[-2000:]
