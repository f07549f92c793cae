"""What `--help` says of the project's own scripts and outputs stays true (H110's review: run --help's
'`make demo` runs this' example lacked the demo's --parcels; models --json said 'one JSON object' and
printed an array)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from changedetect.cli import cli

REPO = Path(__file__).resolve().parents[1]


def _words(text: str) -> list[str]:
    return text.replace("\\\n", " ").split()


def test_run_help_shows_the_command_make_demo_runs() -> None:
    demo = (REPO / "scripts" / "demo.sh").read_text(encoding="utf-8")
    line = next(ln for ln in demo.splitlines() if re.match(r"\$CD run ", ln))
    ran = [w for w in _words(line)[1:] if w != "--overwrite"]
    out = CliRunner().invoke(cli, ["run", "--help"], terminal_width=200).output
    block = re.split(r"\n\s*(?:\x08)?\n", out.split("`make demo` runs this, with --overwrite):", 1)[1])[0]
    shown = _words(block)
    assert shown[:1] == ["changedetect"] and shown[1:] == ran, (shown, ran)


def test_models_json_help_says_what_it_prints() -> None:
    runner = CliRunner()
    listed = json.loads(runner.invoke(cli, ["models", "--json"]).output)
    one = json.loads(runner.invoke(cli, ["models", "vhr-building", "--json"]).output)
    assert isinstance(listed, list) and isinstance(one, dict)
    helptext = " ".join(runner.invoke(cli, ["models", "--help"], terminal_width=200).output.split())
    assert "an array of the models' cards" in helptext and "its card as one object" in helptext
