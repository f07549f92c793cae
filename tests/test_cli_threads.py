"""The CLI lets torch's OpenMP threads sleep between parallel regions (OMP_WAIT_POLICY=PASSIVE):
beside a busy core a spinning thread takes the core the working one needs (figures in
docs/benchmarks.md). libgomp reads the variable once, when torch loads, so torch must not be loaded
before ``main`` runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from changedetect.cli import main


def test_main_sets_a_passive_wait_policy_unless_the_user_set_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    with pytest.raises(SystemExit):
        main(["--version"])
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    with pytest.raises(SystemExit):
        main(["--version"])
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_the_cli_does_not_load_torch_before_main_runs() -> None:
    code = "import sys, changedetect.cli; print('torch' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "False", "changedetect.cli imports torch: OMP_WAIT_POLICY would come too late"
