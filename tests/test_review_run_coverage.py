"""`run` says what share of the scene has data on both compared dates (`detect` does), in its summary,
its JSON and run.json, and warns below half: a half-covered delivery does not look like a full one."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from changedetect.cli import cli
from changedetect.testing import make_footprints, make_model, make_permits, make_stack, write_stack


def _warnings(caplog: pytest.LogCaptureFixture, word: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and word in r.getMessage()]


# ------------------------------------------------------------------------------------- coverage
@pytest.fixture(scope="module")
def half_covered(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("coverage")
    stack = make_stack(n_dates=2, size=64, seed=3)
    stack[-1, :, :, 32:] = np.nan  # the last date covers the western 40 % of the scene only
    stack[-1, :, :, 26:32] = np.nan
    tiles = write_stack(stack, root / "tiles", prefix="district12")
    for p in tiles:  # write_stack's uint8 has no nodata: make 0 the nodata
        with rasterio.open(p, "r+") as dst:
            dst.nodata = 0
    make_permits(make_footprints(stack).iloc[:1]).to_file(root / "permits.gpkg")
    from changedetect.config import PipelineConfig

    config = PipelineConfig().with_model(str(make_model(root / "m")))
    config = dataclasses.replace(config, detect=dataclasses.replace(config.detect, window=64, overlap=8))
    toml = root / "run.toml"
    toml.write_text(config.to_toml(), encoding="utf-8")
    return {"root": root, "tiles": root / "tiles", "permits": root / "permits.gpkg", "config": config,
            "toml": toml}


def test_run_says_what_share_has_data_on_both_dates(half_covered: dict, caplog: pytest.LogCaptureFixture) -> None:
    from changedetect.pipeline import run

    out = half_covered["root"] / "out"
    with caplog.at_level(logging.WARNING):
        summary = run(half_covered["tiles"], permits=half_covered["permits"], out=out, config=half_covered["config"])
    assert summary.coverage_both_dates == pytest.approx(26 / 64, abs=0.03)
    assert summary.to_dict()["coverage_both_dates"] == summary.coverage_both_dates
    assert json.loads((out / "run.json").read_text())["coverage_both_dates"] == summary.coverage_both_dates
    said = _warnings(caplog, "data on both")
    assert len(said) == 1 and "2024-01-15" in said[0] and "2024-03-15" in said[0], said


def test_cli_run_prints_the_coverage(half_covered: dict, tmp_path: Path) -> None:
    args = ["run", str(half_covered["tiles"]), "--permits", str(half_covered["permits"]), "--out",
            str(tmp_path / "out"), "--config", str(half_covered["toml"])]
    result = CliRunner().invoke(cli, ["-q", *args])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if "data on both" in line)
    share = re.search(r"([\d.]+) % of the scene has data on both", line)
    assert share is not None and float(share.group(1)) == pytest.approx(41, abs=1.5), line


def test_valid_share_reads_the_masks_decimated(tmp_path: Path) -> None:
    from changedetect.io import write_cog
    from changedetect.io.raster import valid_share

    image = make_stack(n_dates=1, size=1200, seed=0).isel(time=0, band=[0, 1, 2]).clip(1, 255)
    half = image.copy()
    half[:, :, 400:] = np.nan  # a third of the columns has data
    half[2, :300, :] = np.nan  # and one band misses a strip: no data there either
    write_cog(half, tmp_path / "a.tif", dtype="uint8", nodata=0)
    write_cog(image, tmp_path / "b.tif", dtype="uint8", nodata=0)
    both = valid_share([tmp_path / "a.tif", tmp_path / "b.tif"], side=256)  # from the overviews
    assert both == pytest.approx(400 / 1200 * 900 / 1200, abs=0.01)
    assert valid_share([tmp_path / "b.tif"]) == 1.0
