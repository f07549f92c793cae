"""``changedetect run --pattern`` (audit D): tiles dated otherwise than YYYYMMDD in their names (15-01-2024)
were refused by run with "give a date pattern (pattern=... / --pattern REGEX)", an option run did not have
(only info and coregister did)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from click.testing import CliRunner

from changedetect.cli import cli
from changedetect.config import PipelineConfig
from changedetect.testing import make_footprints, make_model, make_permits, make_stack, write_stack

DMY = r"(?P<day>\d{2})-(?P<month>\d{2})-(?P<year>\d{4})"


def test_run_reads_the_dates_its_pattern_finds(tmp_path: Path) -> None:
    stack = make_stack(n_dates=2, size=64, seed=7)
    for path in write_stack(stack, tmp_path / "tiles", prefix="t"):  # t_20240115.tif -> t_15-01-2024.tif
        day = path.stem[2:]
        path.rename(path.with_name(f"t_{day[6:]}-{day[4:6]}-{day[:4]}.tif"))
    make_permits(make_footprints(stack).iloc[:1]).to_file(tmp_path / "permits.gpkg")
    config = PipelineConfig().with_model(str(make_model(tmp_path / "tiny-model")))
    config = dataclasses.replace(config, detect=dataclasses.replace(config.detect, window=64, overlap=16))
    (tmp_path / "run.toml").write_text(config.to_toml(), encoding="utf-8")
    args = ["-q", "run", str(tmp_path / "tiles"), "--permits", str(tmp_path / "permits.gpkg"),
            "--config", str(tmp_path / "run.toml"), "--out", str(tmp_path / "out")]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code != 0 and "--pattern REGEX" in str(refused.exception)
    done = CliRunner().invoke(cli, [*args, "--pattern", DMY])
    assert done.exit_code == 0, done.output
    doc = json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))
    assert doc["dates"] == [str(t)[:10] for t in stack["time"].values]


def test_detect_series_reads_the_dates_its_pattern_finds(tmp_path: Path) -> None:
    stack = make_stack(n_dates=2, size=64, seed=7)
    for path in write_stack(stack, tmp_path / "tiles", prefix="t"):
        day = path.stem[2:]
        path.rename(path.with_name(f"t_{day[6:]}-{day[4:6]}-{day[:4]}.tif"))
    model = make_model(tmp_path / "tiny-model")
    args = ["-q", "detect", "--series", str(tmp_path / "tiles"), "--model", str(model), "--window", "64",
            "--overlap", "16", "--out", str(tmp_path / "p.tif")]
    done = CliRunner().invoke(cli, [*args, "--pattern", DMY])
    assert done.exit_code == 0, done.output
    first, last = (str(t)[:10] for t in stack["time"].values)
    assert f"{first} -> {last}" in done.stdout
    files = sorted(str(p) for p in (tmp_path / "tiles").glob("*.tif"))
    pair = CliRunner().invoke(cli, ["detect", *files, "--out", str(tmp_path / "q.tif"), "--pattern", DMY])
    assert pair.exit_code == 2 and "give it with --series" in pair.output
