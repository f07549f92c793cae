"""Reading a configuration's nested mappings onto its dataclasses, and writing them back as TOML
(private: :meth:`changedetect.config.PipelineConfig.from_dict`, ``to_dict`` and ``to_toml``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import types
import typing
from collections.abc import Mapping
from dataclasses import fields, is_dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from changedetect.errors import ConfigError


def _build(default: Any, data: Mapping[str, Any], *, where: str, path: str) -> Any:
    """A copy of dataclass ``default`` with the values of ``data`` (checked)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: [{path or 'top level'}] must be a table, got {data!r}")
    names = [f.name for f in fields(default) if f.init]
    changes: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{path}.{key}" if path else key
        if key not in names:
            near = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
            if not path:  # a top-level name is a table, or a stage's key written above its table's header
                owners = [n for n in names if is_dataclass(sub := getattr(default, n)) and key in
                          {f.name for f in fields(sub)}]
                guess = (f" ('{key}' is a key of {', '.join(f'[{n}]' for n in owners)}: write it below that table's "
                         "header)" if owners else f" (did you mean [{near[0]}]?)" if near else "")
                raise ConfigError(f"{where}: unknown key '{key}'{guess}; allowed tables: "
                                  f"{', '.join(f'[{n}]' for n in names)}")
            guess = f" (did you mean '{near[0]}'?)" if near else ""
            raise ConfigError(f"{where}: unknown key '{full}'{guess}; allowed keys in [{path}]: {', '.join(names)}")
        current = getattr(default, key)
        if is_dataclass(current) and not isinstance(current, type):  # a table, or that stage's config itself
            changes[key] = value if isinstance(value, type(current)) else _build(current, value, where=where,
                                                                                 path=full)
        elif value is False and not isinstance(current, bool) and _optional(default, key):
            changes[key] = None  # TOML has no null: `false` turns an optional setting off
        elif value is True and current is None and "bool" not in _members(default, key):
            raise ConfigError(f"{where}: '{full}' does not take true (false turns it off; give a value "
                              f"of the type {_annotation(default, key)})")
        elif current is None:  # an optional setting: its type from the annotation
            changes[key] = _coerce_optional(default, key, value, where=where, full=full)
        else:
            changes[key] = _coerce(current, value, where=where, key=full)
    try:
        return replace(default, **changes)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: [{path or 'top level'}] {exc}") from None


_C = TypeVar("_C")


def stage_config(config: Any, cls: type[_C], *, call: str, table: str) -> _C:
    """``config`` as a ``cls``: itself, or a mapping of its fields (``{"window": 256}``, nested for a
    :class:`~changedetect.config.PipelineConfig`) read as the TOML file's ``[table]`` is (an unknown key
    or a wrong type is one :class:`~changedetect.errors.ConfigError` naming it); anything else a
    ``TypeError`` saying what ``call`` takes."""
    if isinstance(config, cls):
        return config
    if isinstance(config, Mapping):
        built: _C = _build(cls(), config, where=f"{call}'s config", path=table)
        return built
    raise TypeError(f"{call}'s config must be a {cls.__name__} or a dict of its fields (as the TOML "
                    f"file's [{table or 'top level'}]), got {type(config).__name__}")


_SIMPLE = {"int": int, "float": float, "str": str, "bool": bool}


def _coerce_optional(default: Any, key: str, value: Any, *, where: str, full: str) -> Any:
    """``value`` for a field whose default is None, checked against its annotation's simple types
    (``int | None``: an int; an int where a float is asked is taken as a float)."""
    members = _members(default, key) - {"None"}
    if value is None or not members or not members <= set(_SIMPLE):  # None: from_dict of to_dict
        return value  # other types (paths, tuples, ...) are checked where they are used
    if isinstance(value, bool) and "bool" not in members:
        raise ConfigError(f"{where}: '{full}' must be {' or '.join(sorted(members))}, got {str(value).lower()}")
    if any(isinstance(value, _SIMPLE[m]) for m in members):
        return value
    if isinstance(value, int) and "float" in members:
        return float(value)
    raise ConfigError(f"{where}: '{full}' must be {' or '.join(sorted(members))}, got {type(value).__name__} "
                      f"{value!r}")


def _optional(default: Any, key: str) -> bool:
    """Whether field ``key`` of dataclass ``default`` accepts ``None`` (and is not a ``bool``)."""
    members = _members(default, key)
    return "None" in members and "bool" not in members


def _members(default: Any, key: str) -> set[str]:
    """The type names field ``key``'s annotation allows (``int | None``: int, None)."""
    try:
        hint = typing.get_type_hints(type(default))[key]
    except Exception:  # a name imported for type checking only: read the annotation's text
        return {part.strip() for part in _annotation(default, key).split("|")}
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
        else (hint,)
    return {"None" if a is type(None) else getattr(a, "__name__", str(a)) for a in args}


def _annotation(default: Any, key: str) -> str:
    hint = next((f.type for f in fields(default) if f.name == key), "")
    return hint if isinstance(hint, str) else getattr(hint, "__name__", str(hint))


def _coerce(current: Any, value: Any, *, where: str, key: str) -> Any:
    """``value`` converted to the type of the default ``current``, or ConfigError."""
    if current is None or value is None:
        return value
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: '{key}' must be true or false, got {value!r}")
        return value
    if isinstance(current, int) and isinstance(value, bool):  # a bool is an int to Python, not to TOML
        raise ConfigError(f"{where}: '{key}' must be int, got {str(value).lower()}")
    if isinstance(current, Enum):
        try:
            return type(current)(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in type(current))
            raise ConfigError(f"{where}: '{key}' must be one of {allowed}, got {value!r}") from None
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(current, tuple) and isinstance(value, list):
        return tuple(value)
    if isinstance(current, Path) and isinstance(value, str):
        return Path(value)
    if isinstance(current, int | float | str) and not isinstance(value, type(current)):
        raise ConfigError(
            f"{where}: '{key}' must be {type(current).__name__}, got {type(value).__name__} {value!r}"
        )
    return value


def _plain(obj: Any) -> Any:
    """Dataclasses, tuples, paths, dates and enums as JSON-ready values."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return [_plain(v) for v in obj]
    if isinstance(obj, Enum):
        return _plain(obj.value)
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, dt.date | dt.datetime):
        return obj.isoformat()
    return obj


def _to_toml(data: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> str:
    """A small TOML writer for the nested dicts of :meth:`PipelineConfig.to_dict`.  A setting that is
    unset (None) as its default (``defaults``: the default configuration's dict) is written as a
    comment, ``# threshold = (unset: its default applies)``, which reads back the same (a missing key
    is its default), rather than as ``threshold = false``; one set to None against a default
    (``season_days``) stays ``false``, which :meth:`from_toml` reads as None."""
    lines: list[str] = []

    def table(prefix: str, d: Mapping[str, Any], default: Mapping[str, Any]) -> None:
        scalars = {k: v for k, v in d.items() if not isinstance(v, Mapping)}
        if prefix:
            lines.append(f"[{prefix}]")
        for k, v in scalars.items():
            unset = v is None and k in default and default[k] is None
            lines.append(f"# {_toml_key(k)} = (unset: its default applies)" if unset
                         else f"{_toml_key(k)} = {_toml_value(v)}")
        lines.append("")
        for k, v in d.items():
            if isinstance(v, Mapping):
                sub = default.get(k)
                table(f"{prefix}.{_toml_key(k)}" if prefix else _toml_key(k), v,
                      sub if isinstance(sub, Mapping) else {})

    table("", data, defaults or {})
    return "\n".join(lines).strip() + "\n"


def _toml_key(key: str) -> str:
    """``key`` bare when TOML allows it, else quoted (a register's column names: ``"Số giấy phép"``,
    ``"dia.chi"``, which bare would be a dotted key)."""
    import json
    import re

    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _toml_value(v: Any) -> str:
    import json

    if v is None:  # TOML has no null; `false` reads back as None for an optional field
        return "false"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, float) and v != v:
        return "nan"
    if isinstance(v, float) and v in (float("inf"), float("-inf")):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, int | float):
        return repr(v)
    return json.dumps(str(v), ensure_ascii=False)


__all__ = ["_build", "_plain", "_to_toml", "stage_config"]
