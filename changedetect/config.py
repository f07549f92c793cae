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

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from changedetect._config_toml import _build, _plain, _to_toml
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
    chip_margin_px
        The margin is at least this many pixels of the imagery: 15 m is 30 pixels at 0.5 m but
        a pixel and a half of Sentinel-2's 10 m, where a small footprint's chip would show no
        ground around it (8 pixels: 80 m at 10 m).
    overview_px
        Longest side of the overview map, in pixels.
    max_cards
        At most this many violation cards (most urgent first); 0 for all.  The report says how
        many more are in the violation list.  A district gives thousands: at 16384² px, 4,909
        cards made a 535 MB file (about 110 kB a card), which a browser struggles to open.
    include_permitted
        Whether buildings matched to a valid permit get a card too.
    lang
        The report's language: ``"en"`` (English) or ``"vi"`` (Tiếng Việt: the statuses, labels and
        reasons in the terms of Vietnamese urban management; the default title too).  The violation
        files stay in English.
    """

    title: str = "Buildings without a matching permit"
    rgb_bands: tuple[str, ...] = ("red", "green", "blue")
    chip_px: int = 200
    chip_margin_m: float = 15.0
    chip_margin_px: int = 8
    overview_px: int = 1200
    max_cards: int = 500
    include_permitted: bool = False
    lang: str = "en"

    def __post_init__(self) -> None:
        from changedetect._report_text import check_lang

        check_lang(self.lang)
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
        px = self.chip_margin_px
        if isinstance(px, bool) or not isinstance(px, int) or px < 0:
            raise ConfigError(f"chip_margin_px must be a whole number of pixels, 0 or more, got {px!r}")


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
class ParcelsConfig:
    """How ``changedetect run --parcels`` reads the cadastral parcel layer: the options of
    :func:`changedetect.parcels.load_parcels` (the layer's path or URL is the run's ``parcels=``).

    Parameters
    ----------
    table, query
        For a ``postgresql://`` layer: a table (``schema.table``), or one ``SELECT``.
    layer
        Layer of a multi-layer file (GeoPackage).
    column_map
        Layer column -> ``parcel_id``, ``address``, ``sheet``, ``parcel_no`` or ``land_use``, for
        names the aliases do not know (e.g. ``column_map = {MaTD = "parcel_id"}``).
    crs
        CRS of a layer that declares none (a CSV with WKT), or that replaces one PROJ cannot place,
        e.g. ``"EPSG:9210"``.
    """

    table: str | None = None
    query: str | None = None
    layer: str | None = None
    column_map: dict[str, str] | None = None
    crs: str | None = None

    def __post_init__(self) -> None:
        value = self.column_map
        if value is not None and (not isinstance(value, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) and v for k, v in value.items())):
            raise ConfigError("column_map maps a parcel layer column onto parcel_id, address, sheet, parcel_no or "
                              f"land_use, e.g. column_map = {{MaTD = \"parcel_id\"}}; got {value!r}")

    def load(self, source: str | Path) -> Any:
        """The checked layer (:func:`changedetect.parcels.load_parcels` with these options)."""
        from changedetect.parcels import load_parcels

        return load_parcels(source, layer=self.layer, table=self.table, query=self.query, crs=self.crs,
                            column_map=dict(self.column_map) if self.column_map else None)


#: the violation list's formats: ``gpkg`` always, the others as :class:`OutputConfig` asks
LIST_FORMATS = ("gpkg", "csv", "geojson", "parquet")
#: other names of them (``--format json``, ``--format .geoparquet``): the writer's extensions
_ALIASES = {"json": "geojson", "geoparquet": "parquet"}


@dataclass(frozen=True)
class OutputConfig:
    """What a run writes beside the violations, and the formats of the violation list.

    The violation list is always written as ``violations.gpkg`` (the run folder's own list: QGIS
    opens it styled, ``changedetect report RUN_DIR`` and the nightly job read it); ``csv``,
    ``geojson`` and ``parquet`` add the same rows in those formats (:attr:`formats`,
    :meth:`with_formats`: ``--format`` on the command line).

    Parameters
    ----------
    first_seen
        Write ``first_seen.tif`` (date a pixel first changed) for series of 3+ dates.
    csv
        Write ``violations.csv`` (WKT geometry and lon/lat in EPSG:4326, with GDAL's ``.prj`` and
        ``.csvt`` beside it).
    report
        Write ``report.html``.
    checksum_inputs
        Record the sha256 of every input file in ``run.json``.
    geojson
        Write ``violations.geojson`` (RFC 7946: EPSG:4326, longitude first).
    parquet
        Write ``violations.parquet`` (GeoParquet, in the run's own CRS).
    """

    first_seen: bool = True
    csv: bool = True
    report: bool = True
    checksum_inputs: bool = True
    geojson: bool = False
    parquet: bool = False

    @property
    def formats(self) -> tuple[str, ...]:
        """The violation list's formats, in :data:`LIST_FORMATS` order: ``gpkg`` and those asked."""
        return tuple(f for f in LIST_FORMATS if f == "gpkg" or getattr(self, f))

    def with_formats(self, formats: str | Iterable[str]) -> OutputConfig:
        """A copy writing the violation list in exactly ``formats`` (and the GeoPackage, always).

        ``formats`` holds names of :data:`LIST_FORMATS`, in any case, comma-separated or not;
        ``json``, ``geoparquet`` and a leading dot are taken too (``--format .geojson``).

        Raises
        ------
        ConfigError
            A name that is not one of them.
        """
        items = [formats] if isinstance(formats, str) else list(formats)
        given = [n.strip() for item in items for n in str(item).split(",") if n.strip()]
        names = {n: _ALIASES.get(key, key) for n in given if (key := n.lower().lstrip("."))}
        unknown = [n for n, name in names.items() if name not in LIST_FORMATS]
        if unknown:
            shp = "; Shapefiles are read, not written: use gpkg" if any(names[n] == "shp" for n in unknown) else ""
            raise ConfigError(f"unknown format {', '.join(repr(n) for n in unknown)} for the violation list: "
                              f"choose among {', '.join(LIST_FORMATS)} (the GeoPackage is always written{shp})")
        chosen = set(names.values())
        return replace(self, **{f: f in chosen for f in LIST_FORMATS if f != "gpkg"})


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
    parcels: ParcelsConfig = field(default_factory=ParcelsConfig)

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
        return _to_toml(self.to_dict(), type(self)().to_dict())

    def with_model(self, name: str | None) -> PipelineConfig:
        """A copy with ``detect.model`` set to ``name`` (unchanged when ``None``)."""
        if name is None:
            return self
        return replace(self, detect=replace(self.detect, model=name))


__all__ = ["LIST_FORMATS", "OutputConfig", "ParcelsConfig", "PermitsConfig", "PipelineConfig", "ReportConfig",
           "RunConfig"]
