"""A date co-registration could not register is said where the inspector and the operator look.

Such a date is compared as it lies.  With one delivery georeferenced 15 m off, the sample city gave 55
violations and not one permitted building, while the run's summary, report.html, run.json and the
nightly's warnings said nothing: one log line did, and ``-q`` (the cron and systemd examples) hid it.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import rasterio
from _fakes import run_quietly
from affine import Affine
from click.testing import CliRunner

from changedetect._nightly_coverage import record, unregistered
from changedetect._pipeline_chain import unregistered_dates
from changedetect.cli import cli
from changedetect.testing import make_stack, write_stack


@pytest.fixture(scope="module")
def shifted_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 3-date run whose last date's tile says it lies 30 px (15 m) east of where it does."""
    root = tmp_path_factory.mktemp("unregistered")
    stack = make_stack(n_dates=3, size=256, seed=3)
    tiles = write_stack(stack, root / "tiles", prefix="district12")
    with rasterio.open(tiles[-1], "r+") as dst:
        t = dst.transform
        dst.transform = Affine(t.a, t.b, t.c + 30 * t.a, t.d, t.e, t.f)
    out, stdout = run_quietly(root, stack, root / "tiles", window=128)
    last = str(stack["time"].values[-1])[:10]
    return {"out": out, "stdout": stdout, "last": last, "first": str(stack["time"].values[0])[:10]}


def test_the_summary_run_json_and_report_say_the_date_was_not_co_registered(shifted_run: dict) -> None:
    line = next((x for x in shifted_run["stdout"].splitlines() if "NOT CO-REGISTERED" in x), None)
    assert line is not None and shifted_run["last"] in line and "max_shift" in line, shifted_run["stdout"]
    doc = json.loads((shifted_run["out"] / "run.json").read_text(encoding="utf-8"))
    assert [u["date"] for u in doc["unregistered"]] == [shifted_run["last"]]
    assert doc["unregistered"][0]["reference"] == shifted_run["first"]
    report = (shifted_run["out"] / "report.html").read_text(encoding="utf-8")
    assert f"NOT CO-REGISTERED: {shifted_run['last']} could not be aligned on {shifted_run['first']}" in report


def test_the_report_rendered_again_in_vietnamese_says_it_too(shifted_run: dict, tmp_path: Path) -> None:
    target = tmp_path / "bao_cao.html"
    done = CliRunner().invoke(cli, ["report", str(shifted_run["out"]), "--lang", "vi", "--out", str(target)])
    assert done.exit_code == 0, done.output
    assert f"KHÔNG ĐỒNG ĐĂNG KÝ ĐƯỢC: ảnh ngày {shifted_run['last']}" in target.read_text(encoding="utf-8")


def test_the_nightly_warns_of_it_in_its_summary(shifted_run: dict) -> None:
    results = [{"area": "district12", "runs": [{"before": shifted_run["first"], "after": shifted_run["last"],
                                                 "run_dir": str(shifted_run["out"])}]}]
    said = unregistered(results)
    assert len(said) == 1 and said[0].startswith(f"area district12: the {shifted_run['last']} acquisition could "
                                                 "not be co-registered"), said
    summary = SimpleNamespace(coverage={}, warnings=[])
    record(summary, results)
    assert said[0] in summary.warnings


def test_only_compared_dates_that_failed_are_listed() -> None:
    report = SimpleNamespace(reference="2024-01-15", dates=[
        SimpleNamespace(date="2024-01-15", status="reference", reason=None),
        SimpleNamespace(date="2024-03-15", status="local", reason=None),
        SimpleNamespace(date="2024-05-15", status="unreliable", reason="too few windows matched"),
        SimpleNamespace(date="2024-07-15", status="unreliable", reason=None)])
    got = unregistered_dates(report, ["2024-01-15", "2024-03-15", "2024-05-15"])  # 07-15 not compared
    assert got == [{"date": "2024-05-15", "reference": "2024-01-15", "reason": "too few windows matched"}]
