"""Read a permit register as it is: files and PostGIS.

:func:`read_register` returns the register's rows unvalidated (validation and
column mapping are :mod:`changedetect.permits`'s job) and a name for messages.
Nothing here ever writes to the register.

Sources
-------
``.gpkg`` (default), ``.geojson``/``.json``, ``.shp``, ``.fgb``
    Through pyogrio.  Text that is not valid UTF-8 is kept with the bad bytes
    escaped (as lone surrogates), so that validation can name the row.  A Shapefile
    without a .cpg (and no code page in its DBF header) is read as UTF-8, not GDAL's
    ISO-8859-1; one whose .cpg says 1258 (Windows Vietnamese) is decoded here, as GDAL's
    iconv CP1258 drops the last character of every value and column name.
``.parquet``/``.geoparquet``
    GeoParquet through geopandas.
``.csv``
    A geometry column of WKT or EWKT (``wkt``, ``geometry``, ``geom`` or
    ``the_geom``; ``SRID=9210;POLYGON(...)`` sets the CRS) or a pair of
    ``lon``/``lat`` columns (``longitude``/``latitude``, ``x``/``y``: points in
    EPSG:4326 unless ``crs`` says otherwise).  The CRS of WKT comes from
    ``crs=``, an EWKT prefix, or a ``.prj`` file beside the CSV.
``postgresql://user@host:port/db``
    With ``table="schema.table"`` (each part letters, digits and ``_``, Vietnamese
    letters too, not starting with a digit; quoted by psycopg, so case is kept) or
    ``query="SELECT ... WHERE issued_on > %(since)s"`` with ``params={"since": ...}``:
    values are always sent as parameters, never pasted into the SQL.  The session is
    read-only.  The CRS is the geometry's SRID (``crs=`` for SRID 0).  A password with
    ``@``, ``/`` or ``%`` must be percent-encoded in the URL, or left out for libpq's
    ``PGPASSWORD``, ``~/.pgpass`` or ``PGSERVICE`` (``postgresql://?service=name``).
    NULL geometries and curved ones (``CURVEPOLYGON``, which GEOS cannot read) are row
    problems of validation.  The rows are read at once (a register of 1M permits
    takes a few GB of memory).
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from changedetect.errors import (
    ConfigError,
    PermitSchemaError,
    RegisterReadError,
)
from changedetect.io._datum import datum_name, datum_shift_unknown, towgs84_lost_hint, unplaceable
from changedetect.io._discover import csv_delimiter
from changedetect.io._postgis import _read_postgis, _safe_url, check_identifier

log = logging.getLogger(__name__)

_WKT_COLUMNS = ("wkt", "geometry", "geom", "the_geom", "wkb_geometry")
_LONLAT = (("lon", "lat"), ("lng", "lat"), ("longitude", "latitude"), ("x", "y"))
_EWKT = re.compile(r"^\s*SRID=(\d+);(.*)$", re.IGNORECASE | re.DOTALL)
_OGR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".fgb", ".zip", ".gml", ".kml")
#: how a caller names each reading option of a kind of register (``what``), for messages: the
#: command-line option of its path, of its CRS, and where its layer is named
_OPTIONS: dict[str, tuple[str, str, str]] = {
    "permit register": ("--permits", "--permits-crs / crs=",
                        "--layer NAME (layer= in Python, layer in the [permits] table of --config)"),
    "parcel layer": ("--parcels", "crs= / crs in the [parcels] table of --config",
                     "layer= in Python (layer in the [parcels] table of --config)"),
}


def read_register(
    source: str | os.PathLike[str],
    *,
    layer: str | None = None,
    table: str | None = None,
    query: str | None = None,
    params: Mapping[str, Any] | tuple[Any, ...] | None = None,
    crs: Any = None,
    what: str = "permit register",
    timezone: str | None = None,
) -> tuple[gpd.GeoDataFrame, str]:
    """Read a register without validating it (``what`` names the file in messages: the
    footprints that ``match`` reads the same way are not a register).

    Returns
    -------
    (geopandas.GeoDataFrame, str)
        The rows in source order (index 0..n-1) and the register's name for
        messages (a path, or a URL without its password plus the table).
        ``frame.attrs["geometry_errors"]`` maps a row index to why its WKT
        could not be parsed (CSV only).

    Raises
    ------
    ConfigError
        ``crs`` is not a CRS pyproj knows; ``table``/``query`` given for a file.
    """
    text = os.fspath(source)
    if crs is not None:
        crs = _checked_crs(crs, what)
    if params and query is None:
        shown = _safe_url(text) if "://" in text else text
        raise ConfigError(f"params= (--param) are the values of a query's placeholders, and {what} '{shown}' is "
                          "read without a query=/--query; give the query or drop the parameters")
    if text.startswith(("postgresql://", "postgres://")):
        db_frame, name = _read_postgis(text, table=table, query=query, params=params, timezone=timezone)
        return _with_crs(db_frame, crs, name, what), name
    if table is not None or query is not None:
        raise ConfigError(f"table= and query= are for postgresql:// registers, not for the file '{text}'")
    path = Path(text)
    if not path.exists():
        hint = f" ({_OPTIONS[what][0]})" if what in _OPTIONS else ""
        raise RegisterReadError(f"{what} '{path}' does not exist; check the path{hint}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = _read_csv(path, crs, what)
    elif suffix in (".parquet", ".geoparquet"):
        frame = _guard(path, lambda: gpd.read_parquet(path), what)
    elif suffix in _OGR_SUFFIXES or path.is_dir():
        frame = _read_ogr(path, layer, what)
    else:
        raise RegisterReadError(
            f"{what} '{path}': unknown format '{suffix}'; use .gpkg, .geojson, .shp, .parquet, "
            ".csv or a postgresql:// URL"
        )
    return _with_crs(frame, crs, str(path), what).reset_index(drop=True), str(path)


def _with_crs(frame: gpd.GeoDataFrame, crs: Any, name: str, what: str) -> gpd.GeoDataFrame:
    """``crs`` for a register that declares none (a CSV's WKT, a PostGIS SRID 0); its own wins,
    unless it has no datum PROJ can take to WGS 84 (a .prj that lost its ``+towgs84``) and ``crs`` has."""
    if frame.crs is None and crs is not None:
        frame = frame.set_crs(crs)
    elif crs is not None and unplaceable(frame.crs) and not unplaceable(crs):
        warnings.warn(UserWarning(
            f"{what} '{name}' declares the CRS '{frame.crs.name}' on the datum '{datum_name(frame.crs)}', which PROJ "
            f"cannot take to WGS 84: read in the CRS given for it, {crs.to_string()} ({_crs_option(what)})"),
            stacklevel=3)
        frame = frame.set_crs(crs, allow_override=True)
    elif crs is not None and not frame.crs.equals(crs):
        log.warning("%s '%s' declares its CRS (%s): the CRS given for it (%s, %s) is for "
                    "registers without one and is not used", what, name, frame.crs.to_string(), crs.to_string(),
                    _crs_option(what))
    return frame


def _crs_option(what: str) -> str:
    """How the CRS of a ``what`` is given (for messages)."""
    return _OPTIONS.get(what, _OPTIONS["permit register"])[1]


def _checked_crs(crs: Any, what: str = "permit register") -> Any:
    """``crs`` as a :class:`pyproj.CRS`, or a :class:`ConfigError` naming the value."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        return CRS.from_user_input(crs)
    except CRSError as exc:
        raise ConfigError(
            f"the {what}'s CRS {str(crs)!r} ({_crs_option(what)}) is not a CRS pyproj knows ({exc}); "
            "give an EPSG code such as 'EPSG:9210' (VN-2000 / TM-3 105-45) or 'EPSG:4326'"
        ) from None


def _guard(path: Path, read: Any, what: str) -> gpd.GeoDataFrame:
    try:
        frame: gpd.GeoDataFrame = read()
    except (OSError, ValueError, RuntimeError) as exc:
        if isinstance(exc, UnicodeDecodeError):
            raise
        from changedetect.io._unreadable import vector_reason

        raise RegisterReadError(f"{what} '{path}' cannot be read: {vector_reason(path, exc)}") from exc
    return frame


def _read_ogr(path: Path, layer: str | None, what: str) -> gpd.GeoDataFrame:
    import pyogrio

    try:
        kinds = {str(name): kind for name, kind in pyogrio.list_layers(path)}
    except Exception:  # noqa: BLE001 - unreadable: the read below says so
        kinds = None
    if kinds is not None:
        features = [name for name, kind in kinds.items() if kind is not None]
        if layer is None:  # its one feature layer (a GeoPackage may hold QGIS's layer_styles table too)
            if len(features) > 1:
                todo = (f"name the one to read with {_OPTIONS[what][2]}" if what in _OPTIONS else
                        f"write the one to read to a file of its own (ogr2ogr -f GPKG one_layer.gpkg {path} "
                        f"{features[0]})")
                raise RegisterReadError(f"{what} '{path}' has {len(features)} layers ({', '.join(features)}); {todo}")
            layer = features[0] if features else next(iter(kinds), None)
        elif layer not in kinds:
            raise RegisterReadError(f"{what} '{path}' has no layer {layer!r}; its layers: "
                                    f"{', '.join(kinds) or 'none'} (--layer)")
        if layer is not None and kinds[layer] is None:
            others = f"; its layers with geometry: {', '.join(features)} (--layer)" if features else ""
            raise RegisterReadError(
                f"{what} '{path}': layer '{layer}' has no geometry (a table without a geometry column){others}; "
                "give the layer that holds the permitted footprints")
    codec = _dbf_codec(path)
    if codec == "cp1258":  # decoded here: GDAL's iconv CP1258 drops each string's last character
        return _recoded(_guard(path, lambda: _read_bytes_as_latin1(path, layer), what), "cp1258")
    try:
        return _guard(path, lambda: gpd.read_file(path, layer=layer, engine="pyogrio", encoding=codec), what)
    except UnicodeDecodeError:
        log.info("%s: text is not all UTF-8; re-reading with the bad bytes escaped", path)
    frame = _recoded(_guard(path, lambda: _read_bytes_as_latin1(path, layer), what), "utf-8")
    if codec == "utf-8":  # a Shapefile without a .cpg: its code page may be the answer
        frame.attrs["text_hint"] = (
            f"or, if it is in a code page, write its number in '{path.with_suffix('.cpg').name}' beside the "
            "Shapefile (1258 for Windows Vietnamese, 1252 for Western European)")
    return frame


def _read_bytes_as_latin1(path: Path, layer: str | None) -> gpd.GeoDataFrame:
    frame: gpd.GeoDataFrame = gpd.read_file(path, layer=layer, engine="pyogrio", encoding="latin1")
    return frame


def _dbf_codec(path: Path) -> str | None:
    """How a Shapefile's text is decoded here: ``cp1258`` for a .cpg naming Windows Vietnamese,
    ``utf-8`` when neither a .cpg nor the DBF's header names a code page (GDAL would take
    ISO-8859-1, and Vietnamese UTF-8 came out as 'Sá» 161 ÄÆ°á»ng'), else None (GDAL's choice)."""
    if path.suffix.lower() != ".shp":
        return None
    cpg, dbf = _beside(path, ".cpg"), _beside(path, ".dbf")
    try:
        if cpg is not None:
            return "cp1258" if "1258" in cpg.read_text(errors="replace") else None
        header = b""
        if dbf is not None:
            with dbf.open("rb") as f:
                header = f.read(30)
    except OSError:
        return None
    return "utf-8" if len(header) == 30 and header[29] == 0 else None  # language driver id 0: none named


def _beside(path: Path, suffix: str) -> Path | None:
    """The file beside ``path`` with its stem and ``suffix`` in any case (``.cpg``, ``.CPG``)."""
    import glob

    return next((p for p in path.parent.glob(f"{glob.escape(path.stem)}.*") if p.suffix.lower() == suffix), None)


def _recoded(frame: gpd.GeoDataFrame, codec: str) -> gpd.GeoDataFrame:
    """A frame read as ISO-8859-1 (its bytes as they are) with its text and column names decoded as
    ``codec``; undecodable bytes kept escaped (lone surrogates) for validation to name the row."""
    import unicodedata

    def text(v: str) -> str:
        decoded = v.encode("latin1").decode(codec, "surrogateescape")
        return unicodedata.normalize("NFC", decoded) if codec == "cp1258" else decoded  # tones: combining

    geom = frame.geometry.name
    for col in frame.columns:
        if col != geom and (frame[col].dtype == object or pd.api.types.is_string_dtype(frame[col])):
            frame[col] = pd.Series([text(v) if isinstance(v, str) else v for v in frame[col].tolist()],
                                   index=frame.index, dtype=object)  # object: arrow strings cannot hold escapes

    def name(v: str) -> str:  # a DBF cuts a name at 10 bytes, maybe inside a letter's UTF-8: that letter goes
        decoded = v.encode("latin1").decode(codec, "ignore")
        return unicodedata.normalize("NFC", decoded) if codec == "cp1258" else decoded

    names = {c: name(c) for c in frame.columns if c != geom and isinstance(c, str) and name(c) != c}
    return frame.rename(columns=names) if names else frame


def _read_csv(path: Path, crs: Any, what: str) -> gpd.GeoDataFrame:
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with its BOM: Excel's "Unicode Text" / "CSV UTF-16"
        try:
            text = raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise PermitSchemaError(f"{what} '{path}' starts as UTF-16 text but does not decode as it ({exc}); "
                                    "re-save it as UTF-8 (Excel: 'CSV UTF-8')") from exc
    else:
        text = raw.decode("utf-8-sig" if raw.startswith(b"\xef\xbb\xbf") else "utf-8", "surrogateescape")
    # the csv module, not pandas: pandas re-encodes the text and cannot keep undecodable bytes
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=csv_delimiter(text.split("\n", 1)[0])))
    if not rows:
        raise PermitSchemaError(f"{what} '{path}' is empty (no header line)")
    header, width = rows[0], len(rows[0])
    body: list[list[str | None]] = []
    line_errors: dict[int, str] = {}
    for r in rows[1:]:
        if not any(v.strip() for v in r):  # a blank line, or one of only separators (Excel's ",,,,")
            continue
        if any(v.strip() for v in r[width:]):
            line_errors[len(body)] = (
                f"the line has {len(r)} fields but the header {width}: a value holding the separator "
                f"{csv_delimiter(text.split(chr(10), 1)[0])!r} must be in double quotes (\"12 Lê Lợi, Phường 5\")")
        body.append([(v if v != "" else None) for v in (r + [""] * width)[:width]])
    table = pd.DataFrame(body, columns=range(width), dtype=object)
    # columns without a name: dropped when empty (Excel's trailing ",,"), else named by their number
    keep = [j for j in range(width) if header[j].strip() or table[j].notna().any()]
    names = [header[j].strip() or f"column_{j + 1}" for j in keep]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise PermitSchemaError(f"{what} '{path}' has the column(s) {', '.join(repr(n) for n in twice)} more than "
                                "once in its header; rename or remove the copies")
    table = table[keep].set_axis(names, axis=1)
    lower = {str(c).lower(): c for c in table.columns}
    wkt_col = next((lower[c] for c in _WKT_COLUMNS if c in lower), None)
    errors: dict[int, str] = {}
    if wkt_col is not None:
        geoms, srids = [], set()
        for i, value in enumerate(table[wkt_col].tolist()):
            geom, srid, err = _parse_wkt(value)
            geoms.append(geom)
            if err:
                errors[i] = err
            if srid:
                srids.add(srid)
        if len(srids) > 1:
            raise PermitSchemaError(f"{what} '{path}': the WKT declares several SRIDs "
                                    f"({', '.join(map(str, sorted(srids)))}); transform the geometries to one CRS")
        # the file's own CRS (EWKT, .prj) wins; read_register names a different crs= in a warning
        found_crs = (f"EPSG:{srids.pop()}" if srids else None) or _prj_beside(path) or crs
        frame = gpd.GeoDataFrame(table.drop(columns=[wkt_col]), geometry=gpd.GeoSeries(geoms), crs=found_crs)
    else:
        pair = next(((lower[a], lower[b]) for a, b in _LONLAT if a in lower and b in lower), None)
        if pair is None:
            raise PermitSchemaError(
                f"{what} '{path}': no geometry column; a CSV needs a WKT column "
                f"({', '.join(_WKT_COLUMNS)}) or lon/lat columns; found {', '.join(map(str, table.columns))}"
            )
        xs = pd.to_numeric(table[pair[0]], errors="coerce")
        ys = pd.to_numeric(table[pair[1]], errors="coerce")
        for i, (x, y, vx, vy) in enumerate(zip(xs, ys, table[pair[0]], table[pair[1]], strict=True)):
            if pd.isna(x) or pd.isna(y):
                errors[i] = f"{pair[0]}/{pair[1]} {vx!r}/{vy!r} are not numbers"
        pts = [None if i in errors else shapely.Point(x, y) for i, (x, y) in enumerate(zip(xs, ys, strict=True))]
        frame = gpd.GeoDataFrame(table.drop(columns=list(pair)), geometry=gpd.GeoSeries(pts), crs=crs or "EPSG:4326")
    frame.attrs["geometry_errors"] = errors
    frame.attrs["line_errors"] = line_errors
    return frame


def _parse_wkt(value: Any) -> tuple[Any, int | None, str | None]:
    if value is None or not str(value).strip():
        return None, None, "missing geometry (empty WKT cell)"
    text = str(value)
    srid = None
    m = _EWKT.match(text)
    if m:
        srid, text = int(m.group(1)), m.group(2)
    try:
        return shapely.from_wkt(text), srid, None
    except shapely.errors.ShapelyError as exc:
        short = text if len(text) < 40 else text[:37] + "..."
        return None, srid, f"unparseable WKT {short!r} ({exc})"


def _prj_beside(path: Path) -> str | None:
    prj = path.with_suffix(".prj")
    return prj.read_text().strip() if prj.exists() else None


__all__ = ["RegisterReadError", "check_identifier", "datum_name", "datum_shift_unknown", "read_register", "towgs84_lost_hint",
           "unplaceable"]
