"""SIGTERM to ``changedetect nightly`` (``systemctl stop``, a cron ``timeout``) while its pairs run on Dask:
the job ends as on Ctrl-C, with one line (``Terminated.``), exit status 143 and nothing committed, and the
next run finishes the night.  Before, Python's default handler killed it at once (exit -15), which a
state committed last survives, but which left the lock holder's temporary files for the next run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from test_review_nightly_sigint import _start as _start_nightly
from test_review_nightly_sigint import child_script

from changedetect.testing import make_nightly_catalog

pytestmark = pytest.mark.skipif(os.name != "posix", reason="sends a POSIX SIGTERM to a child process")

AREAS = {"district1": 1, "district3": 2}

#: the child: each pair waits for the SIGTERM (at most 60 s) before it runs on, so that the night cannot end
#: before the signal comes however slow the machine.  SIGTERM stays the CLI's: the handler the CLI installs is
#: wrapped so that it first tells the pairs, then raises as it would.
CHILD = child_script("terminated.wait(60)", prelude="""terminated = threading.Event()
_install = signal.signal
def _signal(signum, handler):
    if signum == signal.SIGTERM and callable(handler):
        cli_handler = handler
        def handler(s, f):
            terminated.set()
            cli_handler(s, f)
    return _install(signum, handler)
signal.signal = _signal""")


def _start(world: dict[str, Path], base: Path, *extra: str, marker_dir: Path | None = None) -> subprocess.Popen[str]:
    """test_review_nightly_sigint's launcher with this file's child, SIGTERM's default handler in the child."""
    return _start_nightly(world, base, *extra, marker_dir=marker_dir, child=CHILD,
                          preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))


def test_sigterm_while_the_pairs_run_exits_143_with_one_line_and_the_next_run_finishes(tmp_path: Path) -> None:
    world = make_nightly_catalog(tmp_path / "world", AREAS)
    shutil.copytree(world["tiles"], tmp_path / "catalog")
    marks = tmp_path / "marks"
    marks.mkdir()
    proc = _start(world, tmp_path, marker_dir=marks)
    end = time.monotonic() + 120
    while not all((marks / area).exists() for area in AREAS):
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            pytest.fail(f"the pairs never started:\n{proc.communicate()[1]}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        pytest.fail(f"the job did not end after SIGTERM:\n{stderr}")
    assert proc.returncode == 143, f"{proc.returncode}: {stderr}"
    assert stderr.strip().splitlines() == ["Terminated."], stderr
    assert stdout == ""
    assert not (tmp_path / "state" / "state.json").exists(), "nothing committed"
    assert [p.name for p in (tmp_path / "out").rglob("*.tmp-*")] == []  # nothing half-written among the outputs

    proc = _start(world, tmp_path, "--json")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["pairs"] == len(AREAS) and summary["failed"] == {}
