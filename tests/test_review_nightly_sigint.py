"""Review: Ctrl-C (a real SIGINT) to ``changedetect nightly`` while its pairs run on Dask distributed.

The reviewer saw exit 130 and a correct next run, but stderr also held two asyncio
``Task exception was never retrieved ... AllExit`` tracebacks from ``distributed`` (and its
``CancelledError`` warnings): the user must see one line, ``Interrupted.``, and nothing else.

The job runs in a child process started as cron starts it (``python -m changedetect.cli nightly``,
without ``-v``), except that the chain's ``pipeline.run`` first touches a marker file and then
waits for the SIGINT before it runs on, so that the SIGINT lands while every area's pair is running
on the cluster (the real pairs of this tiny catalog take about a second; the marker makes the
moment certain, not a guess), and the pairs go on after it, as real ones do.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from changedetect.testing import make_nightly_catalog

pytestmark = pytest.mark.skipif(os.name != "posix", reason="sends a POSIX SIGINT to a child process")

NIGHT = "2024-03-16"
AREAS = {"district1": 1, "district3": 2}

def child_script(wait: str, prelude: str = "") -> str:
    """A child nightly process: ``prelude``, then each pair's ``pipeline.run`` touches ``$MARKER_DIR/<area>``
    when ``MARKER_DIR`` is set and runs ``wait`` (one statement) before it runs on; then the console entry
    point as installed."""
    return f"""
import os, signal, sys, threading, time
from pathlib import Path
from changedetect import pipeline
real = pipeline.run
{prelude}
def run(manifest, **kwargs):
    marks = os.environ.get("MARKER_DIR")
    if marks:
        (Path(marks) / Path(manifest).parent.name).touch()
        {wait}
    return real(manifest, **kwargs)
pipeline.run = run
from changedetect.cli import main
sys.argv[0] = "changedetect"
main(sys.argv[1:])
"""


#: the child: each pair waits for the SIGINT (at most 60 s) before running on
CHILD = child_script("interrupted.wait(60)", prelude="""interrupted = threading.Event()
def on_sigint(signum, frame):
    interrupted.set()
    signal.default_int_handler(signum, frame)
signal.signal(signal.SIGINT, on_sigint)""")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two areas of two tiny dates each (one pair each on ``NIGHT``), a register and a tiny model."""
    return make_nightly_catalog(tmp_path_factory.mktemp("nightly_sigint"), AREAS)


def _start(world: dict[str, Path], base: Path, *extra: str, marker_dir: Path | None = None, child: str = CHILD,
           preexec_fn: Callable[[], object] | None = None) -> subprocess.Popen[str]:
    """``changedetect nightly`` on ``NIGHT`` over ``base``'s catalog (state and outputs in ``base``), run by the
    ``child`` script (default :data:`CHILD`); ``preexec_fn``: run in the child before it starts (test_sigterm_nightly
    restores SIGTERM's default there)."""
    argv = ["nightly", "--catalog", str(base / "catalog"), "--permits", str(world["permits"]),
            "--state", str(base / "state"), "--out", str(base / "out"), "--night", NIGHT,
            "--config", str(world["config"]), "--workers", "2", *extra]
    env = {k: v for k, v in os.environ.items() if k not in ("MARKER_DIR", "CHANGEDETECT_NIGHTLY_KILL_AT")}
    if marker_dir is not None:
        env["MARKER_DIR"] = str(marker_dir)
    return subprocess.Popen([sys.executable, "-c", child, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=base, preexec_fn=preexec_fn)


def _wait_for(paths: list[Path], proc: subprocess.Popen[str], limit: float = 60.0) -> None:
    """Until every path exists (the pairs have started); fails if the job ends or never gets there."""
    end = time.monotonic() + limit
    while not all(p.exists() for p in paths):
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the job ended ({proc.returncode}) before its pairs started:\n{err}")
        if time.monotonic() > end:
            proc.kill()
            proc.communicate()
            pytest.fail("the pairs never started")
        time.sleep(0.05)


def test_sigint_while_the_pairs_run_on_dask_prints_one_line_exits_130_and_the_next_run_finishes(
        world: dict[str, Path], tmp_path: Path) -> None:
    shutil.copytree(world["tiles"], tmp_path / "catalog")
    marks = tmp_path / "marks"
    marks.mkdir()
    proc = _start(world, tmp_path, marker_dir=marks)
    _wait_for([marks / area for area in AREAS], proc)
    proc.send_signal(signal.SIGINT)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        pytest.fail(f"the job did not end after Ctrl-C:\n{stderr}")
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "never retrieved" not in stderr, stderr
    assert stderr.strip().splitlines() == ["Interrupted."], "one line, nothing of distributed's shutdown:\n" + stderr
    assert stdout == ""
    assert not (tmp_path / "state" / "state.json").exists(), "nothing committed"

    proc = _start(world, tmp_path, "--json")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["pairs"] == len(AREAS) and summary["failed"] == {}
    assert sorted(json.loads((tmp_path / "state" / "state.json").read_text())["acquisitions"]) == sorted(AREAS)


_STARTED = threading.Event()


def _area(task: dict) -> dict:
    """A pair that is still inside the chain's local-threads setting when the client closes."""
    import dask

    from changedetect import _nightly_dask

    with _nightly_dask.running(task), _nightly_dask.local_dask():
        _STARTED.set()
        end = time.monotonic() + 20
        while dask.config.get("scheduler", None) == "threads" and time.monotonic() < end:
            time.sleep(0.02)  # until the client has closed (it restores its own setting)
    return {"area": task["area"], "error": None, "runs": []}


def test_an_interrupted_night_leaves_the_process_able_to_compute_with_dask() -> None:
    """In a notebook: a pair still inside the chain's local-threads setting when the client closed
    put back "dask.distributed" once it ended, and every later Dask computation of the kernel failed
    ("Requested dask.distributed scheduler but no Client active"); nor are Dask's loggers left off."""
    import _thread
    import logging

    import dask
    import dask.array as da

    from changedetect import _nightly_dask

    started = _STARTED
    started.clear()
    seen: dict[str, object] = {}

    def interrupt() -> None:
        # generous: a local Dask cluster can take long to start on a loaded machine (30 s was once not enough)
        seen["started"] = started.wait(180)
        seen["handler"] = signal.getsignal(signal.SIGINT)
        if seen["started"]:
            _thread.interrupt_main()

    # interrupt_main does nothing unless Python's own handler has SIGINT, and a suite started in the
    # background of a shell (`make test &`) inherits SIGINT ignored: there the test failed 3 times in 4
    # (2026-12-03, 'DID NOT RAISE'; every test of both workers saw SIG_IGN). The handler is Python's here
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=interrupt, daemon=True).start()
        before = dask.config.get("scheduler", None)
        try:
            _nightly_dask.compute(_area, [{"area": "a"}], scheduler=None, workers=1)
        except KeyboardInterrupt:
            pass
        else:
            pytest.fail(f"the night was not interrupted (SIGINT's handler before the test: {previous!r}; {seen})")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert started.is_set()
    assert dask.config.get("scheduler", None) == before
    assert int(da.ones(4, chunks=2).sum().compute()) == 4
    assert not logging.getLogger("distributed").disabled and not logging.getLogger("asyncio").disabled
