"""The CLI frame: error handling, exit codes, help."""

from __future__ import annotations

import pytest

import changedetect.cli as cdcli
from changedetect.errors import TileReadError


def _raise(exc: BaseException):  # noqa: ANN202
    def fake_main(*args: object, **kwargs: object) -> None:
        raise exc

    return fake_main


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cdcli.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "Find buildings put up or altered without a permit" in out
    for name in cdcli.cli.list_commands(None):  # type: ignore[arg-type]
        assert name in out


def test_unknown_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cdcli.main(["no-such-command"])
    assert info.value.code == 2
    assert "No such command" in capsys.readouterr().err


def test_library_error_is_one_line_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cdcli.cli, "main", _raise(TileReadError("tile 'a.tif' is truncated")))
    monkeypatch.setitem(cdcli._STATE, "debug", False)
    with pytest.raises(SystemExit) as info:
        cdcli.main(["info", "x"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.strip() == "Error: tile 'a.tif' is truncated"
    assert "Traceback" not in err


def test_debug_reraises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cdcli.cli, "main", _raise(TileReadError("boom")))
    monkeypatch.setitem(cdcli._STATE, "debug", True)
    with pytest.raises(TileReadError):
        cdcli.main(["--debug", "info", "x"])


def test_internal_error_says_bug(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cdcli.cli, "main", _raise(ZeroDivisionError("oops")))
    monkeypatch.setitem(cdcli._STATE, "debug", False)
    with pytest.raises(SystemExit) as info:
        cdcli.main(["info", "x"])
    assert info.value.code == 1
    assert "--debug" in capsys.readouterr().err


def test_error_hierarchy_inherits_builtins() -> None:
    from changedetect import errors

    assert issubclass(errors.TileReadError, OSError)
    assert issubclass(errors.PermitSchemaError, ValueError)
    assert issubclass(errors.OutputExistsError, FileExistsError)
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(obj, Warning):
            assert issubclass(obj, errors.ChangeDetectError), name
