"""Review of the nightly summary's coverage: per area, the share of the scene with data on both dates
of each pair it ran (``coverage_both_dates`` of the pair's run), and a warning when it is under half,
as ``changedetect run`` warns; the same night again changes nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio

from changedetect.testing import make_nightly_catalog, make_stack, write_stack

NIGHTS = ("2024-01-16", "2024-03-16")  # make_stack's dates: 2024-01-15, 2024-03-15


@pytest.fixture(scope="module")
def two_nights(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Area ``full`` covered on both dates; area ``edge`` whose second date has data on the western
    26 of 64 columns only; both nights run."""
    from changedetect.config import PipelineConfig
    from changedetect.nightly import run_nightly

    root = tmp_path_factory.mktemp("nightly_coverage")
    world = make_nightly_catalog(root, {"full": 1})
    stack = make_stack(n_dates=2, size=64, seed=3)
    stack[-1, :, :, 26:] = np.nan
    for p in write_stack(stack, world["tiles"] / "edge", prefix="edge"):
        with rasterio.open(p, "r+") as dst:  # write_stack's uint8 has no nodata: make 0 the nodata
            dst.nodata = 0
    config = PipelineConfig.from_toml(world["config"])

    def night(n: str) -> object:
        return run_nightly(world["tiles"], permits=world["permits"], state=root / "state", out=root / "out",
                           night=n, workers=1, config=config)

    summaries = [night(n) for n in NIGHTS]
    return {**world, "night": night, "summaries": summaries}


def test_the_summary_gives_each_areas_pair_coverage(two_nights: dict) -> None:
    first, second = two_nights["summaries"]
    assert first.coverage == {}  # a baseline night runs no pair
    cov = second.coverage
    assert sorted(cov) == ["edge", "full"]
    assert [(c["before"], c["after"]) for c in cov["edge"]] == [("2024-01-15", "2024-03-15")]
    assert cov["edge"][0]["coverage_both_dates"] == pytest.approx(26 / 64, abs=0.03)
    assert cov["full"][0]["coverage_both_dates"] == pytest.approx(1.0, abs=0.01)
    assert second.to_dict()["coverage"] == cov
    json.dumps(second.to_dict())  # JSON-ready


def test_a_pair_with_data_on_under_half_the_scene_is_a_warning(two_nights: dict) -> None:
    second = two_nights["summaries"][1]
    low = [w for w in second.warnings if "data on both" in w]
    assert len(low) == 1, second.warnings
    assert low[0].startswith("area edge:") and "2024-01-15" in low[0] and "2024-03-15" in low[0], low
    assert float(re.search(r"([\d.]+) %", low[0])[1]) == pytest.approx(100 * 26 / 64, abs=3)
    assert not [w for w in second.warnings if w.startswith("area full")]


def test_the_same_night_again_changes_no_output(two_nights: dict) -> None:
    root = two_nights["root"]
    files = sorted(p for p in [*(root / "out").iterdir(), root / "state" / "state.json"] if p.is_file())
    before = {p.name: p.read_bytes() for p in files}
    again = two_nights["night"](NIGHTS[1])
    assert again.pairs == 0 and again.coverage == {}
    assert {p.name: p.read_bytes() for p in files} == before
    assert sorted(p.name for p in (root / "out").iterdir()) == sorted(before.keys() - {"state.json"})


def test_the_command_prints_each_areas_coverage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from changedetect import nightly
    from changedetect.cli import cli

    def fake(*args: object, **kwargs: object) -> nightly.NightlySummary:
        return nightly.NightlySummary("2024-03-16", new_acquisitions=2, pairs=2, areas=["edge", "full"],
                                      coverage={"edge": [{"before": "2024-01-15", "after": "2024-03-15",
                                                          "coverage_both_dates": 0.4062}],
                                                "full": [{"before": "2024-01-15", "after": "2024-03-15",
                                                          "coverage_both_dates": 1.0}]})

    monkeypatch.setattr(nightly, "run_nightly", fake)
    (tmp_path / "catalog").mkdir()
    args = ["nightly", "--catalog", str(tmp_path / "catalog"), "--permits", "r.gpkg", "--state", str(tmp_path / "st"),
            "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "coverage    edge 2024-01-15..2024-03-15: 40.6 % of the scene has data on both dates" in result.output
    assert "coverage    full 2024-01-15..2024-03-15: 100.0 %" in result.output
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert json.loads(result.stdout)["coverage"]["edge"][0]["coverage_both_dates"] == 0.4062


def test_the_command_says_a_low_coverage_once_naming_the_area(two_nights: dict, tmp_path: Path) -> None:
    """Plain output: the summary's WARNING line (naming the area), not also the pair's own log line
    (which does not), as for the other warnings of the night; that one with -v."""
    import shutil
    import subprocess
    import sys

    world = two_nights
    shutil.copytree(world["tiles"], tmp_path / "catalog")
    cmd = [sys.executable, "-m", "changedetect.cli", "nightly", "--catalog", str(tmp_path / "catalog"),
           "--permits", str(world["permits"]), "--state", str(tmp_path / "state"), "--out", str(tmp_path / "out"),
           "--config", str(world["config"]), "--night"]
    for night in NIGHTS:
        res = subprocess.run([*cmd, night], capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr
    said = res.stdout + res.stderr
    assert said.count("of the scene has data on both 2024-01-15 and 2024-03-15") == 1, said
    assert "WARNING area edge: only 40.6 % of the scene" in res.stderr, said
    assert "coverage    edge 2024-01-15..2024-03-15: 40.6 %" in res.stdout, said
