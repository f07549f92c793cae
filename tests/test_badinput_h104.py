"""A demanding user's bad inputs to the command line (helper 104's sweep): each is exit 2 with one
message naming the file and what to do, never an internal error, and no output is left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

import changedetect.cli as cdcli
from changedetect.io.vectors import write_vector
from changedetect.testing import make_stack, make_violations, write_stack


def _exit(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the CLI; its exit status and its stderr."""
    cdcli._STATE["debug"] = False
    with pytest.raises(SystemExit) as info:
        cdcli.main(argv)
    code = info.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err


def _one_error(err: str) -> str:
    assert "Internal error" not in err and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_coregister_resolution_coarser_than_the_scene(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """--resolution 1000 on a 48 m scene gives a one-pixel grid: it was an IndexError (exit 1)."""
    write_stack(make_stack(2, size=96), tmp_path / "tiles")
    out = tmp_path / "aligned"
    code, err = _exit(["coregister", str(tmp_path / "tiles"), "--resolution", "1000", "--out", str(out)], capsys)
    line = _one_error(err)
    assert code == 2, err
    assert "1x1 pixels" in line and "--resolution" in line and "finer" in line, line
    assert not out.exists()


@pytest.mark.parametrize("text", ["{", "[1, 2]", "\udcff"])
def test_report_with_a_corrupt_run_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    """A run folder whose run.json is cut short, not an object or not UTF-8: it was a JSONDecodeError
    (exit 1, 'This is a bug')."""
    run = tmp_path / "run"
    run.mkdir()
    write_vector(make_violations(), run / "violations.gpkg")
    (run / "run.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    code, err = _exit(["report", str(run)], capsys)
    line = _one_error(err)
    assert code == 2, err
    assert str(run / "run.json") in line and "changedetect run" in line, line
    assert not (run / "report.html").exists()
