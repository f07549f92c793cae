"""A new user's first hour with the README: what the CLI prints agrees with what it writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_weights import tiny_model  # noqa: F401  (fixture)

import changedetect.cli as cdcli

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install '.[onnx]')")


def test_export_summary_gives_the_graphs_input_shape(tiny_model: Path, tmp_path: Path,  # noqa: F811
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The text summary names the batch axis, as export.json and the graph do: (n, 3, h, w)."""
    out = tmp_path / "deploy"
    try:
        cdcli.main(["export", str(tiny_model), "--out", str(out), "--no-check"])
    except SystemExit as exc:
        assert not exc.code, capsys.readouterr()
    text = capsys.readouterr().out
    inputs = json.loads((out / "export.json").read_text())["inputs"]
    assert inputs["before"].startswith("(n, 3, h, w)")
    assert "before, after (n, 3, h, w) raw red, green, blue" in text, text
