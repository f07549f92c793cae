"""The curated public API resolves, and importing the package does not import torch."""

from __future__ import annotations

import subprocess
import sys

import changedetect


def test_every_public_name_resolves() -> None:
    """Each name is its module's object of that name, and a function or class is called what it is listed as."""
    import importlib

    for name in changedetect.__all__:
        value = getattr(changedetect, name)
        if name in changedetect._LAZY:
            assert value is getattr(importlib.import_module(changedetect._LAZY[name]), name), name
        if callable(value) and hasattr(value, "__name__"):
            assert value.__name__ == name, (name, value)


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
