"""Audit G (helper-144): interruptions and failing disks part-way through a command.

``train`` saved its checkpoint to ``checkpoints/last.tmp`` and renamed it: Ctrl-C or SIGTERM (a
``KeyboardInterrupt`` in the main thread) or a full disk during ``torch.save`` left that half-written
file in the model folder, and when it was the first checkpoint the same command run again refused
the folder ('is not empty (no interrupted training run to resume)') instead of starting it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from test_review_train_eval import TINY_TOML

from changedetect.cli import main


def _config(tmp_path: Path, steps: int) -> Path:
    """A tiny training config over a three-image cache (two to train on, one held out)."""
    from changedetect.training.datasets import LabelledImage, save_cache

    def image(seed: int, group: str) -> LabelledImage:
        rng = np.random.default_rng(seed)
        img = rng.integers(60, 120, (3, 96, 96)).astype(np.uint8)
        mask = np.zeros((96, 96), bool)
        mask[20:30, 40:50] = True
        img[:, mask] = 210
        return LabelledImage(f"im{seed}", img, mask, 0.5, group, np.ones((96, 96), bool))

    cache = tmp_path / "cache.npz"
    save_cache(cache, images=[image(1, "a"), image(2, "a"), image(3, "held")])
    toml = tmp_path / "t.toml"
    toml.write_text(TINY_TOML.format(cache=cache, steps=steps, extra=""))
    return toml


def _train(capsys: pytest.CaptureFixture[str], toml: Path, out: Path) -> tuple[int, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["-q", "train", str(toml), "--out", str(out), "--device", "cpu"])
    return int(info.value.code or 0), capsys.readouterr().err


def _interrupting_save(monkeypatch: pytest.MonkeyPatch, at_call: int,
                       exc: Callable[[], BaseException] = KeyboardInterrupt) -> None:
    """``torch.save`` to a file writes a few bytes and raises ``exc`` on its ``at_call``-th call (1-based)."""
    real, calls = torch.save, [0]

    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        if isinstance(f, (str, Path)):
            calls[0] += 1
            if calls[0] == at_call:
                Path(f).write_bytes(b"PK\x03\x04 half a checkpoint")
                raise exc()
        real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)


def _files(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())


def test_ctrl_c_in_the_first_checkpoint_leaves_no_temporary_and_the_command_runs_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    toml, out = _config(tmp_path, steps=4), tmp_path / "m"
    with monkeypatch.context() as patch:
        _interrupting_save(patch, at_call=1)
        code, err = _train(capsys, toml, out)
    assert (code, err.strip()) == (130, "Interrupted."), err
    # before: checkpoints/last.tmp (half-written) beside the first log line
    assert _files(out) == ["train_log.jsonl"]
    code, err = _train(capsys, toml, out)  # before: exit 2, "'.../m' is not empty (no interrupted ... run"
    assert code == 0, err
    assert _files(out) == ["MODEL_CARD.md", "checkpoints/last.pt", "metadata.json", "train_log.jsonl",
                           "weights.pt"]
    assert [line.count('"step": 2') for line in (out / "train_log.jsonl").read_text().splitlines()] == [1, 0]


def test_a_full_disk_in_a_later_checkpoint_keeps_the_last_one_and_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import errno

    toml, out = _config(tmp_path, steps=4), tmp_path / "m"
    with monkeypatch.context() as patch:
        _interrupting_save(patch, at_call=2, exc=lambda: OSError(errno.ENOSPC, "No space left on device"))
        code, err = _train(capsys, toml, out)
    assert code == 2 and "no space left on the disk" in err, err
    assert _files(out) == ["checkpoints/last.pt", "train_log.jsonl"]  # before: checkpoints/last.tmp too
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=False)["step"] == 2
    code, err = _train(capsys, toml, out)
    assert code == 0, err
    assert (out / "weights.pt").is_file()


def test_a_killed_saves_temporary_goes_when_the_run_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """SIGKILL (OOM, a power cut) runs no cleanup: the temporary file it left goes with the next run,
    whether that resumes (a checkpoint was saved) or starts afresh (none was)."""
    toml = _config(tmp_path, steps=4)
    for name, stop_after in (("resumed", 2), ("fresh", None)):
        out = tmp_path / name
        if stop_after is not None:
            from changedetect.training.config import TrainConfig
            from changedetect.training.train import train

            assert train(TrainConfig.from_toml(toml), out=out, progress=False, device="cpu",
                         stop_after=stop_after) is None
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        (out / "checkpoints" / ".last.tmp-0badf00d.pt").write_bytes(b"PK\x03\x04 cut")
        (out / "checkpoints" / "last.tmp").write_bytes(b"PK\x03\x04 an older version's")
        code, err = _train(capsys, toml, out)
        assert code == 0, f"{name}: {err}"
        assert not [f for f in _files(out) if "tmp" in f], f"{name}: {_files(out)}"


# --- an output file's path that is an existing folder ----------------------------------------------
# Before: refused without --overwrite ('already exists'), and with it the command did all its work and then
# failed to rename its temporary file onto the folder: 'Internal error: IsADirectoryError ... This is a bug'
# (detect, vectorize, match, report); run replaced some of its outputs, then failed the same way.


@pytest.fixture()
def dummies(tmp_path: Path) -> dict[str, Path]:
    """Inputs that exist (for click's checks) but that no command could read: the refusal must come first."""
    paths = {name: tmp_path / name for name in ("a.tif", "b.tif", "fp.gpkg", "v.gpkg")}
    for path in paths.values():
        path.write_bytes(b"not a raster")
    (tmp_path / "tiles").mkdir()
    paths["tiles"] = tmp_path / "tiles"
    return paths


@pytest.mark.parametrize("case", ["detect", "detect-series", "vectorize", "match", "match-rejects", "report",
                                  "run"])
def test_an_output_file_that_is_a_folder_is_refused_before_any_work(
        case: str, dummies: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from test_cli_errors import REGISTER

    d = tmp_path / "o"
    argv, folder = {
        "detect": (["detect", dummies["a.tif"], dummies["b.tif"], "--out", d / "c.tif"], d / "c.tif"),
        "detect-series": (["detect", dummies["tiles"], "--series", "--out", d / "c.tif"], d / "c_first_seen.tif"),
        "vectorize": (["vectorize", dummies["a.tif"], "--out", d / "fp.gpkg"], d / "fp.gpkg"),
        "match": (["match", dummies["fp.gpkg"], "--permits", REGISTER, "--out", d / "v.gpkg"], d / "v.gpkg"),
        "match-rejects": (["match", dummies["fp.gpkg"], "--permits", REGISTER, "--out", d / "v.gpkg", "--lenient",
                           "--rejects", d / "r.gpkg"], d / "r.gpkg"),
        "report": (["report", "--violations", dummies["v.gpkg"], "--out", d / "r.html"], d / "r.html"),
        "run": (["run", dummies["tiles"], "--permits", REGISTER, "--out", d], d / "violations.gpkg"),
    }[case]
    folder.mkdir(parents=True)
    (folder / "keep.txt").write_text("the user's")
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv] + ["--overwrite"])
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert "Internal error" not in err and f"'{folder}' is a folder, but" in err.strip().splitlines()[-1], err
    assert sorted(p.name for p in d.rglob("*")) == sorted([folder.name, "keep.txt"])  # nothing else begun, nothing removed


def test_atomic_path_onto_a_folder_is_a_location_error(tmp_path: Path) -> None:
    from changedetect.errors import OutputLocationError
    from changedetect.io.atomic import atomic_path

    (tmp_path / "v.gpkg").mkdir()
    with pytest.raises(OutputLocationError, match="is a folder, but this output is a file"), \
            atomic_path(tmp_path / "v.gpkg", overwrite=True) as tmp:
        tmp.write_text("x")
    assert [p.name for p in tmp_path.iterdir()] == ["v.gpkg"]


# --- another user's files ---------------------------------------------------------------------------
# A nightly state made by one user (a night run by hand as root) and then run by another (cron's user): the
# lock, state.json or a footprints parquet that this user may not open ended in 'Internal error:
# PermissionError ... This is a bug in changedetect'. (chmod cannot stop root, who runs the tests: the
# refusals are raised by a patched open.)


def test_a_lock_this_user_may_not_open_is_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    import errno
    import os

    import changedetect._state as state_module
    from changedetect.testing import make_nightly_catalog

    world = make_nightly_catalog(tmp_path / "world", {"district1": 1})
    real_open = os.open

    def refusing(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if Path(path).name == "lock":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(state_module.os, "open", refusing)
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["-q", "nightly", "--catalog", str(world["tiles"]), "--permits", str(world["permits"]),
              "--config", str(world["config"]), "--state", str(tmp_path / "state"), "--out", str(tmp_path / "out"),
              "--night", "2024-03-16"])
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert err.strip().splitlines() == [
        f"Error: cannot open the nightly lock '{tmp_path / 'state' / 'lock'}' (Permission denied): run the job as "
        "the user that owns the state folder, or let this user write the lock and the state folder's files "
        "(chown/chmod)"]
    assert not (tmp_path / "out").exists() and not (tmp_path / "state" / "state.json").exists()


@pytest.mark.parametrize("exc", [
    PermissionError(13, "Permission denied", "/srv/state/state.json"),
    PermissionError(13, "Failed to open local file '/srv/state/footprints-000003.parquet'. Detail: [errno 13] "
                        "Permission denied"),  # pyarrow's words: no filename
])
def test_permission_denied_is_one_line_not_a_bug(exc: OSError, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import changedetect.io.summary as summary

    def refuse(*args: object, **kwargs: object) -> None:
        raise exc

    monkeypatch.setattr(summary, "describe", refuse)
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["info", str(tmp_path)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("Error: permission denied: ") and "/srv/state/" in err and "chown/chmod" in err, err


# --- an error raised while an interruption unwinds ----------------------------------------------------
# `train --workers 2` stopped by `systemctl stop` or `timeout` (SIGTERM to the whole process group): the
# data-loader workers die of the same SIGTERM, and torch's SIGCHLD handler raised 'DataLoader worker (pid N)
# is killed by signal: Terminated.' while the command's Terminated unwound: 'Internal error ... This is a
# bug', exit 1 (seen with a real SIGTERM to the process group 20 s into a tiny training run).


@pytest.mark.parametrize("interruption, code, line", [("Terminated", 143, "Terminated."),
                                                       ("KeyboardInterrupt", 130, "Interrupted.")])
@pytest.mark.parametrize("raised", ["bug", "ours"])
def test_an_error_raised_while_an_interruption_unwinds_is_the_interruption(
        interruption: str, code: int, line: str, raised: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import changedetect.cli as cdcli
    import changedetect.io.summary as summary
    from changedetect.errors import TileReadError

    def describe(*args: object, **kwargs: object) -> None:
        try:
            raise getattr(cdcli, interruption, KeyboardInterrupt)()
        finally:  # what torch's SIGCHLD handler raised here, or a read cut short
            raise (RuntimeError("DataLoader worker (pid 29523) is killed by signal: Terminated.") if raised == "bug"
                   else TileReadError("reading band 1 of 'a.tif' failed"))

    monkeypatch.setattr(summary, "describe", describe)
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["info", str(tmp_path)])
    err = capsys.readouterr().err
    assert (info.value.code, err.strip().splitlines()) == (code, [line]), err


def test_ctrl_c_during_training_is_the_last_line_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """With the progress bar on (no -q), the bar was closed only when Python collected it, after the CLI's
    'Interrupted.': the last line on the inspector's screen was the bar again (a real SIGINT 20 s in)."""
    toml, out = _config(tmp_path, steps=4), tmp_path / "m"
    _interrupting_save(monkeypatch, at_call=1)
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["train", str(toml), "--out", str(out), "--device", "cpu"])
    code = info.value.code
    del info  # the exception held the training frame, and its bar, alive: the interpreter at exit lets go
    import gc

    gc.collect()
    err = capsys.readouterr().err
    assert code == 130
    assert err.replace("\r", "\n").strip().splitlines()[-1] == "Interrupted.", err


# --- a file-size limit (`ulimit -f`, systemd's LimitFSIZE=) -------------------------------------------
# A GeoTIFF past the limit was said in one line (libtiff says 'File too large'), but a GeoPackage (GDAL's
# SQLite: 'no such table: gpkg_contents') or a checkpoint (torch.save: 'unexpected pos') was 'Internal error
# ... This is a bug', exit 1; in the nightly job the same, after every area's pair had failed.


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGXFSZ"), reason="RLIMIT_FSIZE and SIGXFSZ are POSIX")
@pytest.mark.parametrize("case", ["match", "train"])
def test_a_file_size_limit_on_a_geopackage_or_a_checkpoint_is_one_line(case: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    from test_cli_errors import REGISTER, _footprints
    from test_leftovers_h112 import LIMITED_CHILD

    out = tmp_path / "out"
    if case == "match":
        argv = ["match", str(_footprints(tmp_path / "fp.gpkg")), "--permits", str(REGISTER), "--out",
                str(out / "v.gpkg")]
    else:
        argv = ["train", str(_config(tmp_path, steps=4)), "--out", str(out / "m"), "--device", "cpu"]
    limit = 60_000  # a one-row GeoPackage is about 100 kB, the tiny model's checkpoint 125 kB
    done = subprocess.run([sys.executable, "-c", LIMITED_CHILD, str(limit), "-q", *argv], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"Error: an output file reached this process's file-size limit ({limit} bytes, RLIMIT_FSIZE): raise it "
        "(`ulimit -f unlimited`; systemd: LimitFSIZE=infinity) and run the command again (nothing half-written "
        "is left)"]
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) if out.exists() else []
    assert left == ([] if case == "match" else ["m/train_log.jsonl"])  # (a fresh start's state: tested above)


#: `changedetect train` in a child that, at its third step, sends SIGTERM to its whole process group (itself and
#: its data-loader workers), as `systemctl stop` and `timeout` do
GROUP_TERM_CHILD = """
import os, signal, sys
import changedetect.training.train as train
real, calls = train.loss_fn, [0]
def loss_fn(*args, **kwargs):
    calls[0] += 1
    if calls[0] == 3:
        os.killpg(os.getpgrp(), signal.SIGTERM)
    return real(*args, **kwargs)
train.loss_fn = loss_fn
from changedetect.cli import main
sys.argv[0] = "changedetect"
main(sys.argv[1:])
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "killpg"), reason="sends a POSIX SIGTERM to a process group")
def test_sigterm_to_train_whose_workers_die_of_it_too_is_one_line(tmp_path: Path) -> None:
    """The workers die of the same SIGTERM: torch's SIGCHLD handler raised 'DataLoader worker (pid N) is killed
    by signal: Terminated.' while the command's Terminated unwound ('Internal error', exit 1) or in the loader's
    __del__ at exit (its traceback after 'Terminated.'); seen with a real SIGTERM to the process group 16-26 s
    into a tiny run. Which of the two comes depends on when the workers' deaths reach the main process: this
    run may pass on the code before the fix (the unit test above pins the first; the second was seen in 3 of 3
    real runs before, 0 of 6 after, /tmp scripts in helper-144's report)."""
    import signal
    import subprocess
    import sys

    out = tmp_path / "m"
    done = subprocess.run([sys.executable, "-c", GROUP_TERM_CHILD, "-q", "train", str(_config(tmp_path, steps=40)),
                           "--out", str(out), "--device", "cpu", "--workers", "2"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
                          start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
    assert (done.returncode, done.stderr.strip().splitlines()[-1:]) == (143, ["Terminated."]), done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
