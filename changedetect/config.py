"""The configuration of a whole run, as frozen dataclasses.

Each stage owns its configuration dataclass (``CoregisterConfig`` in
:mod:`changedetect.coregister`, ``DetectConfig`` in :mod:`changedetect.detect`,
``VectorizeConfig`` in :mod:`changedetect.vectorize`, ``MatchConfig`` in
:mod:`changedetect.match`); :class:`PipelineConfig` gathers them with the
report and output options.  A TOML file maps one-to-one onto it::

    [detect]
    model = "vhr-building"
    threshold = 0.5

    [match]
    min_overlap_ratio = 0.1

    [report]
    title = "District 12, weekly review"

A table is a dataclass, a key is a field; a key that is not a field raises
:class:`~changedetect.errors.ConfigError` naming it and the allowed ones.  TOML has no
null: ``false`` sets an optional field to ``None`` (``season_days = false`` in ``[detect]``
compares consecutive dates only; ``min_presence = false`` in ``[vectorize]`` keeps every
footprint).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from changedetect._run_config import RunConfig
from changedetect.errors import ConfigError

if TYPE_CHECKING:
    from changedetect.coregister import CoregisterConfig
    from changedetect.detect import DetectConfig
    from changedetect.match import MatchConfig
    from changedetect.vectorize import VectorizeConfig


@dataclass(frozen=True)
class ReportConfig:
    """Options of the inspectors' HTML report.

    Parameters
    ----------
    title
        Heading of the report.
    rgb_bands
        Band names drawn as red, green and blue (the first three bands when
        none of these names exist).
    chip_px
        Side of a before/after image chip, in pixels of the report.
    chip_margin_m
        Ground margin around a footprint in a chip, in metres.
    overview_px
        Longest side of the overview map, in pixels.
    max_cards
        At most this many violation cards (most urgent first); 0 for all.
    include_permitted
        Whether buildings matched to a valid permit get a card too.
    """

    title: str = "Buildings without a matching permit"
    rgb_bands: tuple[str, ...] = ("red", "green", "blue")
    chip_px: int = 200
    chip_margin_m: float = 15.0
    overview_px: int = 1200
    max_cards: int = 0
    include_permitted: bool = False

    def __post_init__(self) -> None:
        bands = self.rgb_bands
        if isinstance(bands, str) or not isinstance(bands, tuple | list) or len(bands) != 3 \
                or not all(isinstance(b, str) and b for b in bands):
            raise ConfigError(f"rgb_bands must be three band names (red, green, blue), e.g. "
                              f"[\"red\", \"green\", \"blue\"], got {bands!r}")
        for name in ("chip_px", "overview_px"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a whole number of pixels, 1 or more, got {value!r}")
        if isinstance(self.max_cards, bool) or not isinstance(self.max_cards, int) or self.max_cards < 0:
            raise ConfigError(f"max_cards must be 0 (all cards) or more, got {self.max_cards!r}")
        margin = self.chip_margin_m
        if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 <= margin < float("inf"):
            raise ConfigError(f"chip_margin_m must be metres, 0 or more, got {margin!r}")


@dataclass(frozen=True)
class PermitsConfig:
    """How ``changedetect run`` and ``changedetect nightly`` read the permit register: the
    options of :func:`changedetect.permits.load_register` (and of ``changedetect match``).

    Parameters
    ----------
    table, query, params
        For a ``postgresql://`` register: a table (``schema.table``), or one ``SELECT`` with
        ``%(name)s`` placeholders and their values (a TOML table, e.g. ``params = {d = "12"}``).
    layer
        Layer of a multi-layer file (GeoPackage).
    column_map
        Register column -> schema column, for registers that name things differently.
    crs
        CRS of a register that declares none (a CSV with WKT, PostGIS geometries of SRID 0),
        e.g. ``"EPSG:9210"``.
    strict
        ``False``: keep the good rows, warn about the bad ones and write them to
        ``permit_rejects.gpkg`` in the run's folder (lenient).
    timezone
        For a ``postgresql://`` register: the city's time zone, e.g. ``"Asia/Ho_Chi_Minh"``; a
        ``timestamp with time zone`` permit date is its calendar day there (unset: the server's).
    """

    table: str | None = None
    query: str | None = None
    params: dict[str, str] | None = None
    layer: str | None = None
    column_map: dict[str, str] | None = None
    crs: str | None = None
    strict: bool = True
    timezone: str | None = None

    def __post_init__(self) -> None:
        for name in ("params", "column_map"):
            value = getattr(self, name)
            if value is None:
                continue
            example = 'params = {d = "12"}' if name == "params" else 'column_map = {so_gp = "permit_id"}'
            if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
                raise ConfigError(f"{name} must be a table of names and values, e.g. {example}, got {value!r}")
            if name == "column_map" and not all(isinstance(v, str) and v for v in value.values()):
                raise ConfigError(f"column_map maps a register column onto a schema column name, e.g. {example}; "
                                  f"got {value!r}")

    def load(self, source: str | Path, *, rejects_path: str | Path | None = None) -> Any:
        """The validated register (:func:`changedetect.permits.load_register` with these options)."""
        from changedetect.permits import load_register

        return load_register(source, layer=self.layer, table=self.table, query=self.query,
                             params=dict(self.params) if self.params else None,
                             column_map=dict(self.column_map) if self.column_map else None, crs=self.crs,
                             strict=self.strict, rejects_path=None if self.strict else rejects_path,
                             overwrite=True, timezone=self.timezone)


@dataclass(frozen=True)
class OutputConfig:
    """What a run writes beside the violations.

    Parameters
    ----------
    first_seen
        Write ``first_seen.tif`` (date a pixel first changed) for series of 3+ dates.
    csv
        Write ``violations.csv`` (WKT geometry, lon/lat).
    report
        Write ``report.html``.
    checksum_inputs
        Record the sha256 of every input file in ``run.json``.
    """

    first_seen: bool = True
    csv: bool = True
    report: bool = True
    checksum_inputs: bool = True


def _coregister_config() -> CoregisterConfig:
    from changedetect.coregister import CoregisterConfig

    return CoregisterConfig()


def _detect_config() -> DetectConfig:
    from changedetect.detect import DetectConfig

    return DetectConfig()


def _vectorize_config() -> VectorizeConfig:
    from changedetect.vectorize import VectorizeConfig

    return VectorizeConfig()


def _match_config() -> MatchConfig:
    from changedetect.match import MatchConfig

    return MatchConfig()


@dataclass(frozen=True)
class PipelineConfig:
    """Every parameter of a run: one sub-configuration per stage.

    The defaults are the stages' own defaults.  Build from a TOML file with
    :meth:`from_toml`, or in code::

        PipelineConfig().with_model("vhr-building")
    """

    coregister: CoregisterConfig = field(default_factory=_coregister_config)
    detect: DetectConfig = field(default_factory=_detect_config)
    vectorize: VectorizeConfig = field(default_factory=_vectorize_config)
    match: MatchConfig = field(default_factory=_match_config)
    report: ReportConfig = field(default_factory=ReportConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    permits: PermitsConfig = field(default_factory=PermitsConfig)
    run: RunConfig = field(default_factory=RunConfig)

    @classmethod
    def from_toml(cls, path: str | Path) -> PipelineConfig:
        """Read a TOML file whose tables map one-to-one onto the sub-configurations.

        Raises
        ------
        ConfigError
            The file is missing or not TOML, a key is unknown, or a value has the wrong type.
        """
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # a BOM, as some Windows editors write
        except FileNotFoundError:
            raise ConfigError(f"configuration file '{path}' does not exist") from None
        except OSError as exc:  # a folder, no permission, ...
            raise ConfigError(f"cannot read configuration file '{path}': {exc.strerror or exc}; give a TOML "
                              "file") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"configuration file '{path}' is not valid TOML: {exc}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "configuration") -> PipelineConfig:
        """Build from nested mappings (as :meth:`to_dict` gives, or a parsed TOML file)."""
        return _build(cls(), data, where=source, path="")

    def to_dict(self) -> dict[str, Any]:
        """Every parameter as JSON-ready nested dicts (for ``run.json``)."""
        return _plain(self)

    def to_toml(self) -> str:
        """The configuration as TOML text that :meth:`from_toml` reads back."""
        return _to_toml(self.to_dict())

    def with_model(self, name: str | None) -> PipelineConfig:
        """A copy with ``detect.model`` set to ``name`` (unchanged when ``None``)."""
        if name is None:
            return self
        return replace(self, detect=replace(self.detect, model=name))


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
        if is_dataclass(current) and not isinstance(current, type):
            changes[key] = _build(current, value, where=where, path=full)
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


def _to_toml(data: Mapping[str, Any]) -> str:
    """A small TOML writer for the nested dicts of :meth:`PipelineConfig.to_dict`."""
    lines: list[str] = []

    def table(prefix: str, d: Mapping[str, Any]) -> None:
        scalars = {k: v for k, v in d.items() if not isinstance(v, Mapping)}
        if prefix:
            lines.append(f"[{prefix}]")
        lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in scalars.items())
        lines.append("")
        for k, v in d.items():
            if isinstance(v, Mapping):
                table(f"{prefix}.{_toml_key(k)}" if prefix else _toml_key(k), v)

    table("", data)
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


__all__ = ["OutputConfig", "PermitsConfig", "PipelineConfig", "ReportConfig", "RunConfig"]
