"""Review of ``changedetect info --json``: its warnings (a date that looks panchromatic) are in the
JSON object (``warnings``, as the nightly job's and co-registration's), not only on stderr, where a
script reading the JSON never looks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from changedetect.cli import cli
from changedetect.testing import make_stack, write_stack


def test_info_json_lists_the_grey_date_warning(tmp_path: Path) -> None:
    stack = make_stack(n_dates=2, size=300, seed=4)
    stack[0] = np.repeat(stack.isel(time=0, band=[0]).values, stack.sizes["band"], axis=0)  # red as RGB
    write_stack(stack, tmp_path / "tiles")
    result = CliRunner().invoke(cli, ["info", "--json", str(tmp_path / "tiles")])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert len(info["warnings"]) == 1, info["warnings"]
    said = info["warnings"][0]
    assert "2024-01-15 ('tile_20240115.tif')" in said and "panchromatic" in said and "vhr-building" in said


def test_info_json_has_no_warnings_on_colour(tmp_path: Path) -> None:
    write_stack(make_stack(n_dates=2, size=300, seed=4), tmp_path / "tiles")
    result = CliRunner().invoke(cli, ["info", "--json", str(tmp_path / "tiles")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["warnings"] == []
