"""The curated public API resolves, and importing the package does not import torch."""

from __future__ import annotations

import subprocess
import sys

import changedetect


def test_every_public_name_resolves() -> None:
    for name in changedetect.__all__:
        assert getattr(changedetect, name) is not None, name


def test_all_matches_the_lazy_table() -> None:
    assert set(changedetect._LAZY) | {"ChangeDetectError", "__version__", "errors"} == set(
        changedetect.__all__
    )


def test_import_is_light() -> None:
    code = "import sys, changedetect; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_submodules_are_not_shadowed() -> None:
    import importlib

    for name in ("coregister", "vectorize", "match", "evaluate", "detect", "pipeline"):
        module = importlib.import_module(f"changedetect.{name}")
        assert getattr(changedetect, name) is module, name


def test_unknown_attribute() -> None:
    try:
        changedetect.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected AttributeError")
