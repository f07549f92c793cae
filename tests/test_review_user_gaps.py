"""Two gaps a user meets: `detect DIR1 DIR2`, and `match` on footprints without change_type."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from changedetect.cli import cli
from changedetect.testing import make_footprints, make_permits, make_stack


def _warnings(caplog: pytest.LogCaptureFixture, word: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and word in r.getMessage()]


# ---------------------------------------------------------------------------------- detect DIRS
def test_detect_on_two_folders_says_series_or_two_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    result = CliRunner().invoke(cli, ["detect", str(tmp_path / "a"), str(tmp_path / "b"), "--out",
                                      str(tmp_path / "p.tif")])
    assert result.exit_code == 2
    assert "--series" in result.output and "two raster files" in result.output, result.output
    assert "BEFORE" in result.output and "AFTER" in result.output and "are folders" in result.output
    assert "Traceback" not in result.output


# ------------------------------------------------------------------------------ match change_type
def test_match_without_change_type_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    stack = make_stack(n_dates=2, size=64)
    fp = make_footprints(stack)
    make_permits(fp.iloc[:1]).to_file(tmp_path / "permits.gpkg")
    fp.drop(columns="change_type").to_file(tmp_path / "fp.gpkg")
    fp.to_file(tmp_path / "typed.gpkg")
    with caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(cli, ["match", str(tmp_path / "fp.gpkg"), "--permits",
                                          str(tmp_path / "permits.gpkg"), "--out", str(tmp_path / "v.gpkg")])
        assert result.exit_code == 0, result.output
        said = [line for line in result.stderr.splitlines() if "change_type" in line]  # a 'Warning:' line: -q too
        assert len(said) == 1 and "fp.gpkg" in said[0] and "new" in said[0] and "type_mismatch" in said[0], said
        caplog.clear()
        typed = CliRunner().invoke(cli, ["match", str(tmp_path / "typed.gpkg"), "--permits",
                                         str(tmp_path / "permits.gpkg"), "--out", str(tmp_path / "t.gpkg")])
        assert typed.exit_code == 0, typed.output
        assert "change_type" not in typed.stderr


def test_vector_columns_reads_the_schema_of_each_format(tmp_path: Path) -> None:
    from changedetect.io.vectors import vector_columns

    fp = make_footprints(make_stack(n_dates=2, size=64)).drop(columns="change_type")
    fp.to_file(tmp_path / "fp.geojson")
    fp.to_parquet(tmp_path / "fp.parquet")
    fp.assign(wkt=fp.geometry.to_wkt()).drop(columns="geometry").to_csv(tmp_path / "fp.csv", index=False)
    for name in ("fp.geojson", "fp.parquet", "fp.csv"):
        columns = vector_columns(tmp_path / name)
        assert columns is not None and "footprint_id" in columns and "change_type" not in columns, name
    assert vector_columns(tmp_path / "absent.gpkg") is None
