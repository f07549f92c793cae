"""The permit register: schema, column mapping, validation and loading.

A register is read from a GeoPackage (the default), GeoJSON, Shapefile,
GeoParquet, CSV (a WKT column, or lon/lat columns) or a PostGIS table or query
(see :mod:`changedetect.io.registers`), its columns are mapped onto the schema
of ``permits/schema.json`` (:data:`SCHEMA`), and every row is checked.

Validation reports *every* bad row, with its row number (1-based, in the order
the source returns the rows; the header of a CSV is not counted), the column
and the reason.  Invalid polygons are repaired with ``make_valid`` and a
:class:`~changedetect.errors.PermitRowWarning`.

- ``strict=True`` (the default): any rejected row raises
  :class:`~changedetect.errors.PermitSchemaError` listing the first 20
  problems and how many there are in all.
- ``strict=False``: the good rows are returned, a ``PermitRowWarning`` says how
  many were rejected, and with ``rejects_path`` the rejected rows are written
  (atomically) with a ``reject_reason`` and a ``row`` column.

A register without a CRS, or without a required column, is refused in both
modes.  The register itself is only ever read.

Example
-------
>>> from changedetect.permits import load_register
>>> permits = load_register("permits/sample_register.gpkg")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from changedetect import _permit_checks as chk
from changedetect._permit_checks import Problem
from changedetect._permit_columns import map_columns
from changedetect._permit_schema import (
    COLUMNS,
    DATE_FORMAT_HUMAN,
    PERMIT_STATUSES,
    PERMIT_TYPES,
    SCHEMA,
)
from changedetect.errors import PermitRowWarning, PermitSchemaError

log = logging.getLogger(__name__)

#: How many problems an error message lists before "... and N more".
MAX_LISTED = 20
_REQUIRED: tuple[str, ...] = tuple(SCHEMA["required"])


@dataclass
class ValidationResult:
    """What :func:`validate_register` found.

    Attributes
    ----------
    name
        The register's name in messages (its path or URL).
    permits
        The good rows, schema columns first (dates as ``datetime.date``), in the
        register's CRS.
    rejects
        The rejected rows as read (attributes as text), with ``row`` and ``reject_reason``.
    problems
        One :class:`Problem` per rejected cell, plus register-level problems (``row`` is ``None``).
    repairs
        Rows kept after a repair (invalid geometry made valid).
    """

    name: str
    permits: gpd.GeoDataFrame
    rejects: gpd.GeoDataFrame
    problems: list[Problem] = field(default_factory=list)
    repairs: list[Problem] = field(default_factory=list)

    @property
    def fatal(self) -> bool:
        """Whether the register as a whole is unusable (no CRS, a missing column)."""
        return any(p.row is None for p in self.problems)

    @property
    def ok(self) -> bool:
        """No problems at all (repairs are not problems)."""
        return not self.problems

    def __repr__(self) -> str:
        """What a notebook shows: the counts and the first problems (the frames: ``.permits``, ``.rejects``)."""
        head = (f"ValidationResult('{self.name}': {len(self.permits)} permits kept, {len(self.rejects)} rows "
                f"rejected, {len(self.problems)} problem(s), {len(self.repairs)} repair(s))")
        return head if not self.problems else head + "\n" + self.report(limit=5).split("\n", 1)[1]

    def report(self, limit: int = MAX_LISTED) -> str:
        """The problems as text: a headline, then one line each (at most ``limit``)."""
        rows = {p.row for p in self.problems if p.row is not None}
        head = f"permit register '{self.name}': {len(self.problems)} problem(s)"
        if rows:
            head += f" in {len(rows)} row(s)"
        lines = [head] + [f"  {p}" for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"  ... and {len(self.problems) - limit} more")
        return "\n".join(lines)


def validate_register(gdf: gpd.GeoDataFrame, *, name: str = "register") -> ValidationResult:
    """Check every row of a register whose columns already bear the schema names.

    Parameters
    ----------
    gdf
        The register (see :func:`map_columns` for other column names).
    name
        How messages name the register (a path or URL).

    Returns
    -------
    ValidationResult
        Good rows, rejected rows and every problem found.
    """
    problems: list[Problem] = []
    missing = [c for c in _REQUIRED if c != "geometry" and c not in gdf.columns]
    if missing:
        problems.append(Problem(None, ", ".join(missing), (
            f"required column(s) {', '.join(missing)} missing; found {', '.join(map(str, gdf.columns))}. "
            "Rename the columns, or map the register's names onto them (column_map= in Python, "
            "--column-map on the command line, column_map in the [permits] table of --config)"
        )))
    if gdf.crs is None and len(gdf):
        problems.append(Problem(None, "geometry", (
            "the register has no CRS; declare it in the file (a .prj beside a Shapefile or CSV, or an "
            "'SRID=9210;' prefix on a CSV's WKT) or give it (crs= in Python, --permits-crs on the "
            "command line, crs in the [permits] table of --config), e.g. 'EPSG:9210' for VN-2000 / TM-3 105-45"
        )))
    if problems:
        empty = gdf.iloc[0:0]
        return ValidationResult(name, empty, _rejects_frame(empty, {}), problems)
    good: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    keep: list[int] = []
    reasons: dict[int, list[str]] = {}
    repairs: list[Problem] = []
    first_row: dict[str, int] = {}
    geom_errors: Mapping[int, str] = gdf.attrs.get("geometry_errors", {})
    line_errors: Mapping[int, str] = gdf.attrs.get("line_errors", {})
    text_hint: str | None = gdf.attrs.get("text_hint")  # what else to do with text that is not UTF-8
    degrees = gdf.crs.to_string() if gdf.crs is not None and gdf.crs.is_geographic else None
    for i, rec in enumerate(gdf.to_dict("records")):
        row = i + 1
        row_problems, values, note = _check_row(rec, gdf.geometry.name, geom_errors.get(i))
        if degrees and values.get("geometry") is not None:
            row_problems += _not_degrees(values["geometry"], degrees)
        if i in line_errors:  # a CSV line with more fields than its header: its values may have moved
            row_problems.insert(0, Problem(0, None, line_errors[i]))
        pid = values.get("permit_id")
        if pid is not None and not any(p.column == "permit_id" for p in row_problems):
            if pid in first_row:
                row_problems.append(Problem(
                    row, "permit_id", f"duplicated permit_id {chk.shown(pid)} (first on row {first_row[pid]}): a renewal or an "
                    "amendment keeps one row per permit_id with its current dates and area, or takes an id of "
                    "its own (on a lot, permit_expired reads the permit that expires last)"
                ))
            else:
                first_row[pid] = row
        row_problems = [Problem(row, p.column, _hinted(p.reason, text_hint), pid) for p in row_problems]
        if row_problems:
            problems.extend(row_problems)
            reasons[i] = [f"{p.column}: {p.reason}" for p in row_problems]
            continue
        if note:
            repairs.append(Problem(row, "geometry", note, pid))
        keep.append(i)
        for c in COLUMNS:
            good[c].append(values.get(c))
    extra = [c for c in gdf.columns if c not in COLUMNS and c != gdf.geometry.name]
    permits = gpd.GeoDataFrame(
        {**{c: pd.Series(good[c], dtype="float64" if c == "permitted_area_m2" else object)
            for c in COLUMNS if c != "geometry"},
         **{c: gdf[c].iloc[keep].reset_index(drop=True) for c in extra}},
        geometry=gpd.GeoSeries(good["geometry"], crs=gdf.crs), crs=gdf.crs,
    )
    return ValidationResult(name, permits, _rejects_frame(gdf, reasons), problems, repairs)


def _hinted(reason: str, hint: str | None) -> str:
    """A reason about text that is not UTF-8, with what else the source allows (a Shapefile's .cpg)."""
    return f"{reason}, {hint}" if hint and reason.startswith("text is not valid UTF-8") else reason


def _check_row(
    rec: Mapping[str, Any], geom_col: str, geom_error: str | None
) -> tuple[list[Problem], dict[str, Any], str | None]:
    out: dict[str, Any] = {}
    probs: list[Problem] = []

    def take(column: str, value: Any, err: str | None) -> None:
        if err:
            probs.append(Problem(0, column, err))
        else:
            out[column] = value

    pid, err = chk.check_text(rec.get("permit_id"))
    if pid is not None:
        pid = pid.strip()
    take("permit_id", pid, err or (None if pid else "missing permit_id"))
    take("permit_type", *chk.check_choice(rec.get("permit_type"), PERMIT_TYPES, "permit_type"))
    take("status", *chk.check_choice(rec.get("status"), PERMIT_STATUSES, "status"))
    take("issued_on", *chk.check_date(rec.get("issued_on"), "issued_on"))
    take("valid_until", *chk.check_date(rec.get("valid_until"), "valid_until"))
    if "issued_on" in out and "valid_until" in out and out["valid_until"] < out["issued_on"]:
        probs.append(Problem(0, "valid_until", (
            f"valid_until {out['valid_until'].isoformat()} is before issued_on {out['issued_on'].isoformat()}"
        )))
    take("permitted_area_m2", *chk.check_area(rec.get("permitted_area_m2")))
    take("address", *chk.check_text(rec.get("address")))
    if geom_error:
        probs.append(Problem(0, "geometry", geom_error))
        note = None
    else:
        geom, err, note = chk.check_geometry(rec.get(geom_col))
        take("geometry", geom, err)
    for col, value in rec.items():  # other text columns must be UTF-8 too
        if col not in COLUMNS and col != geom_col:
            _, err = chk.check_text(value) if isinstance(value, str | bytes) else (None, None)
            if err:
                probs.append(Problem(0, str(col), err))
    return probs, out, note


def _not_degrees(geom: Any, crs: str) -> list[Problem]:
    """A problem when ``geom``, in the geographic CRS ``crs``, lies outside longitude/latitude range:
    projected metres (a CSV's x/y, a wrong .prj) would otherwise never meet a footprint."""
    left, bottom, right, top = geom.bounds
    if left >= -180 and right <= 180 and bottom >= -90 and top <= 90:
        return []
    return [Problem(0, "geometry", (
        f"coordinates ({left:.10g}, {bottom:.10g}) are not longitude/latitude, but the register's CRS is {crs} "
        "(degrees); if they are projected metres, give the register's real CRS (its .prj, an 'SRID=...;' WKT "
        "prefix, or --permits-crs / crs= for a CSV's x/y columns, e.g. EPSG:9210 or EPSG:32648)"
    ))]


def _rejects_frame(gdf: gpd.GeoDataFrame, reasons: Mapping[int, list[str]]) -> gpd.GeoDataFrame:
    """Rejected rows as read, attributes as UTF-8-safe text, plus ``row`` and ``reject_reason``."""
    idx = sorted(reasons)
    geom_name = gdf.geometry.name if isinstance(gdf, gpd.GeoDataFrame) and "geometry" in gdf else None
    sub = gdf.iloc[idx]
    data: dict[str, Any] = {"row": [i + 1 for i in idx]}
    for col in sub.columns:
        if col != geom_name:
            data[str(col)] = [None if chk.isnull(v) else _safe_text(v) for v in sub[col].tolist()]
    data["reject_reason"] = ["; ".join(reasons[i]) for i in idx]
    geoms = sub.geometry.tolist() if geom_name else [None] * len(idx)
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=gdf.crs), crs=gdf.crs)


def _safe_text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def load_register(
    source: str | os.PathLike[str],
    *,
    layer: str | None = None,
    table: str | None = None,
    query: str | None = None,
    params: Mapping[str, Any] | tuple[Any, ...] | None = None,
    column_map: Mapping[str, str] | None = None,
    crs: Any = None,
    strict: bool = True,
    rejects_path: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    timezone: str | None = None,
) -> gpd.GeoDataFrame:
    """Read, map and validate a permit register.

    Parameters
    ----------
    source
        A file (``.gpkg``, ``.geojson``, ``.shp``, ``.parquet``, ``.csv``) or a
        ``postgresql://user@host:port/db`` URL.
    layer
        Layer of a multi-layer file (GeoPackage).
    table, query, params
        For PostGIS: a table (``schema.table``, identifiers checked) or a
        ``SELECT`` with ``%(name)s`` placeholders filled from ``params``.
    column_map
        Register column name -> schema name, for registers that name things differently.
    crs
        CRS of a source that declares none (a CSV with WKT); ignored otherwise.
    strict
        Raise on any bad row (default), or keep the good rows (lenient).
    rejects_path
        Lenient mode: where to write the rejected rows (any :func:`write_vector` format).
    overwrite
        Replace an existing rejects file.
    timezone
        PostGIS only: the time zone (an IANA name, e.g. ``"Asia/Ho_Chi_Minh"``) whose calendar day a
        ``timestamp with time zone`` permit date is taken as (the session's ``TimeZone``); ``None``:
        the server's (or ``PGTZ``'s).  ``date`` and text columns are read as they are.

    Returns
    -------
    geopandas.GeoDataFrame
        The valid permits in the register's CRS, columns as in :data:`SCHEMA`.

    Raises
    ------
    PermitSchemaError
        Strict mode and a bad row; either mode and no CRS, a missing column, or every row rejected.
    """
    from changedetect.io.registers import read_register

    if isinstance(source, gpd.GeoDataFrame):
        raise TypeError("load_register reads a register file or postgresql:// URL; for a GeoDataFrame "
                        "already in memory use validate_register(map_columns(gdf)) and its .permits")
    raw, name = read_register(source, layer=layer, table=table, query=query, params=params, crs=crs,
                              timezone=timezone)
    result = validate_register(map_columns(raw, column_map, name=name), name=name)
    if result.fatal or (strict and result.problems):
        raise PermitSchemaError(result.report() + (
            "\nFix these rows in the register; to go on with the good rows only, load it with strict=False "
            "in Python, or give --lenient on the command line (strict = false in the [permits] table of "
            "--config), which sets the bad rows aside in a rejects file"
            if not result.fatal else ""
        ))
    if result.repairs:
        warnings.warn(PermitRowWarning(
            f"permit register '{name}': repaired {len(result.repairs)} row(s): "
            + "; ".join(str(p) for p in result.repairs[:MAX_LISTED])
        ), stacklevel=2)
    if result.problems and not len(result.permits) and len(result.rejects):
        raise PermitSchemaError(
            f"permit register '{name}': every one of its {len(result.rejects)} row(s) was rejected, so nothing "
            "could be matched against it and every building would come out unlicensed. A fault that takes every "
            "row (a decimal comma, a changed date format or column layout, another export) is the register's, not "
            "its rows': fix the register\n" + result.report())
    if result.problems:
        n_bad = len(result.rejects)
        where = (f"; rejected rows written to '{rejects_path}'" if rejects_path else
                 "; the rejected rows are not kept (rejects_path= in Python, --rejects FILE for changedetect match)")
        warnings.warn(PermitRowWarning(
            f"permit register '{name}': rejected {n_bad} of {n_bad + len(result.permits)} row(s){where}\n"
            + result.report()
        ), stacklevel=2)
        if rejects_path is not None:
            from changedetect.io.vectors import write_vector

            write_vector(result.rejects, Path(rejects_path), overwrite=overwrite)
    log.info("permit register %s: %d permits", name, len(result.permits))
    result.permits.attrs["register"] = name  # for match's messages
    return result.permits


__all__ = [
    "COLUMNS", "DATE_FORMAT_HUMAN", "MAX_LISTED", "PERMIT_STATUSES", "PERMIT_TYPES", "SCHEMA", "Problem",
    "ValidationResult", "load_register", "map_columns", "validate_register",
]
