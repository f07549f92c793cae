"""SIGTERM (systemd's stop, `timeout`, `kill`) cleans up as Ctrl-C does: exit 143, 'Terminated.', no
output folder or staging folder left, and the default handler back when the command returns."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path

import pytest
from test_cli_errors import _exit

from changedetect.config import PipelineConfig
from changedetect.testing import make_footprints, make_model, make_permits, make_stack, write_stack


def _terminate(*args: object, **kwargs: object) -> None:
    """What `systemctl stop` does to the process, in the middle of the work (with Python's default
    handler the signal would kill the test process: that is the failure, said without dying)."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        raise AssertionError("SIGTERM has Python's default handler while the command runs: it would die "
                             "at once and leave its staging folder and temporary files")
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)  # not reached: the handler raises at once


def test_sigterm_during_info_exits_143(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    import changedetect.io.summary as summary

    monkeypatch.setattr(summary, "describe", _terminate)
    code, err = _exit(["info", str(tmp_path)], capsys)
    assert code == 143, err
    assert err.strip() == "Terminated."
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_sigterm_during_run_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    stack = make_stack(n_dates=2, size=64, seed=3)
    write_stack(stack, tmp_path / "tiles", prefix="district12")
    make_permits(make_footprints(stack).iloc[:1]).to_file(tmp_path / "permits.gpkg")
    config = PipelineConfig().with_model(str(make_model(tmp_path / "tiny-model")))
    config = dataclasses.replace(config, detect=dataclasses.replace(config.detect, window=64, overlap=8))
    (tmp_path / "run.toml").write_text(config.to_toml(), encoding="utf-8")
    import changedetect.report as report_mod

    monkeypatch.setattr(report_mod, "write_report", _terminate)
    out = tmp_path / "out"
    code, err = _exit(["-q", "run", str(tmp_path / "tiles"), "--permits", str(tmp_path / "permits.gpkg"),
                       "--config", str(tmp_path / "run.toml"), "--out", str(out)], capsys)
    assert code == 143, err
    assert err.strip().endswith("Terminated."), err
    assert not out.exists()  # nor its staging folder, which lives inside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["permits.gpkg", "run.toml", "tiles", "tiny-model"]


def test_an_inherited_sigterm_handler_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A host that handles SIGTERM itself (a notebook server, a scheduler calling main) keeps its handler."""
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        import changedetect.io.summary as summary

        monkeypatch.setattr(summary, "describe", lambda *a, **k: os.kill(os.getpid(), signal.SIGTERM))
        _exit(["info", str(tmp_path)], capsys)
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)
