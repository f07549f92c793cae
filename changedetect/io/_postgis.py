"""The PostGIS permit register: ``postgresql://`` URLs (see :mod:`changedetect.io.registers`).

Reads one table or one ``SELECT`` in a read-only session, values only ever as parameters;
shows a URL without its password (:func:`_safe_url`), and says in one line what to fix when
the server, the URL, the table or a geometry is not what it should be.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from changedetect.errors import ConfigError, PermitSchemaError, RegisterConnectionError

_IDENT = re.compile(r"[^\W\d]\w*\Z")  # an unquoted PostgreSQL name, Vietnamese letters included
_GEOM_NAMES = ("geometry", "geom", "the_geom", "wkb_geometry", "shape")
_PASSWORD_PARAM = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
#: (E)WKB type codes of the curved and other types GEOS does not read
_CURVED = {8: "CircularString", 9: "CompoundCurve", 10: "CurvePolygon", 11: "MultiCurve", 12: "MultiSurface",
           13: "Curve", 14: "Surface", 15: "PolyhedralSurface", 16: "TIN", 17: "Triangle"}
#: rows fetched from the server at a time
_BATCH = 10_000


def _split_url(url: str) -> tuple[str, str | None, str, bool]:
    """``(scheme, userinfo, rest, clean)`` as libpq splits a URL: the user info ends at the first
    ``@`` met before any ``/``.  ``clean`` is False when an ``@`` is left before the query string
    (a raw ``@`` or ``/`` in the password) or a ``%`` starts no escape: libpq would misread it."""
    scheme, _, rest = url.partition("://")
    end = next((i for i, ch in enumerate(rest) if ch in "@/"), len(rest))
    userinfo = None
    if rest[end:end + 1] == "@":
        userinfo, rest = rest[:end], rest[end + 1:]
    clean = "@" not in rest.partition("?")[0] and not _BAD_PERCENT.search(url)
    return scheme, userinfo, rest, clean


def _safe_url(url: str) -> str:
    """``url`` as messages and ``run.json`` show it: without its password (in the user info or a
    ``password=`` parameter); never raises, whatever the URL."""
    if "://" not in url:
        return url
    scheme, userinfo, rest, clean = _split_url(url)
    if not clean:  # where libpq would split it is unsure: show the host and database alone
        whole = url.partition("://")[2]
        head = whole.partition("?")[0]
        shown = "***@" + whole[head.rfind("@") + 1:] if "@" in head else whole
    elif userinfo is None:
        shown = rest
    else:
        user, colon, _ = userinfo.partition(":")
        shown = f"{user}{':***' if colon else ''}@{rest}"
    return _PASSWORD_PARAM.sub(r"\1***", f"{scheme}://{shown}")


def check_identifier(name: str) -> tuple[str, ...]:
    """Split ``schema.table`` and check each part is a plain SQL identifier.

    Raises
    ------
    ConfigError
        A part is not letters (Vietnamese ones too), digits and ``_``, starting with a
        letter or ``_``, of at most 63 bytes; the message gives the ``query=`` that reads it.
    """
    parts = tuple(name.split("."))
    if not 1 <= len(parts) <= 2 or not all(_IDENT.match(p) and len(p.encode()) <= 63 for p in parts):
        quoted = ".".join('"' + p.replace('"', '""') + '"' for p in parts)
        raise ConfigError(
            f"table {name!r} is not a plain [schema.]table name (letters, digits and _, not starting with a "
            f"digit); to read a table whose name has spaces or other characters, give "
            f"query='SELECT * FROM {quoted}' (--query; the name in double quotes, as psql writes it); "
            "to filter rows use query= with parameters"
        )
    return parts


def _check_query(query: str) -> str:
    body = query.strip().rstrip(";").strip()
    if not re.match(r"^(select|with)\b", body, re.IGNORECASE) or ";" in body:
        raise ConfigError(
            "query= must be one SELECT (or WITH ... SELECT) statement, with values passed as "
            "%(name)s placeholders and params=; got: " + (body[:60] + "..." if len(body) > 60 else body)
        )
    return body


def _one_line(exc: BaseException) -> str:
    """A database error as one line: libpq's own message, without its LINE/caret context."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return " ".join(str(primary or exc).split())


def _read_postgis(
    url: str, *, table: str | None, query: str | None, params: Mapping[str, Any] | tuple[Any, ...] | None,
    timezone: str | None = None,
) -> tuple[gpd.GeoDataFrame, str]:
    try:
        import psycopg
        from psycopg import sql
    except ImportError:
        raise ConfigError(
            f"reading the permit register {_safe_url(url)} needs psycopg, which is not installed: "
            "pip install 'changedetect[postgis]'"
        ) from None

    if (table is None) == (query is None):
        raise ConfigError("a postgresql:// register needs exactly one of a table or a query: --table or --query on the "
                          "command line (table or query in the [permits] table of --config; table= or query= in Python)")
    if not _split_url(url)[3]:
        raise ConfigError(
            f"the URL of the permit register {_safe_url(url)} has a character in its user name or password "
            "that must be percent-encoded ('@' as %40, '/' as %2F, '%' as %25, ':' as %3A, '?' as %3F, "
            "'#' as %23: python3 -c 'import urllib.parse,getpass; print(urllib.parse.quote(getpass.getpass(), "
            "safe=\"\"))'), or leave the password out of the URL and set PGPASSWORD or a ~/.pgpass line"
        )
    stmt: Any
    if table is not None:
        stmt = sql.SQL("SELECT * FROM {}").format(sql.Identifier(*check_identifier(table)))
        name = f"{_safe_url(url)} table={table}"
    else:
        stmt = sql.SQL(_check_query(str(query)))  # type: ignore[arg-type]  # checked: one SELECT
        name = f"{_safe_url(url)} query"
    try:
        conn = psycopg.connect(url, connect_timeout=10)
    except psycopg.Error as exc:
        raise RegisterConnectionError(
            f"cannot connect to the permit register {_safe_url(url)}: {_one_line(exc)}; "
            "check the host, port, database, user and password (PGPASSWORD, ~/.pgpass) and that the "
            "server is running"
        ) from exc
    try:
        conn.read_only = True
        with conn.cursor() as cur:
            if timezone is not None:  # a timestamptz date is the day in this zone, not the server's
                _set_timezone(conn, cur, timezone, name)
            cur.execute("SELECT oid FROM pg_type WHERE typname = %s", ("geometry",))
            geom_oids = {r[0] for r in cur.fetchall()}
            if not geom_oids:
                raise PermitSchemaError(f"permit register {name}: the database has no PostGIS extension")
            rows = _execute(conn, cur, stmt, params, timezone, name)
            try:
                columns = [d.name for d in rows.description or []]
                types = [d.type_code for d in rows.description or []]
                frame = _frame_from_batches(columns, types, _batches(rows), geom_oids, name,
                                            lambda srid: _crs_of(cur, srid, name))
            finally:
                rows.close()
    except psycopg.Error as exc:
        raise PermitSchemaError(f"permit register {name}: the database refused the read: {_one_line(exc)}") from exc
    finally:
        conn.close()
    return frame, name


def _execute(conn: Any, cur: Any, stmt: Any, params: Any, timezone: str | None, name: str) -> Any:
    """Run the read in a server-side cursor, whose rows then come :data:`_BATCH` at a time
    (a city's whole register never sits twice in memory, as libpq's result and as rows).

    A statement ``DECLARE`` refuses (a data-modifying ``WITH``, say) is run again in ``cur``,
    a client-side cursor, whose error (or rows) is then what the caller gets: the same
    one-line messages as an unbatched read."""
    import psycopg

    server = conn.cursor(name="changedetect_register")
    try:
        cur.execute("SELECT set_config('cursor_tuple_fraction', '1', true)")  # all rows are read: plan for them
        server.execute(stmt, params)
        return server
    except psycopg.Error:
        server.close()
        conn.rollback()
        if timezone is not None:  # the rollback undid it
            _set_timezone(conn, cur, timezone, name)
    try:
        cur.execute(stmt, params)
    except psycopg.errors.UndefinedTable as exc:
        conn.rollback()
        raise PermitSchemaError(
            f"permit register {name}: the database refused the read: {_one_line(exc)}; check table= "
            "(--table, [schema.]name; a name is case-sensitive)"
            + _tables_there(cur)) from exc
    except psycopg.ProgrammingError as exc:
        if exc.sqlstate is not None:  # the server's: the caller's one line
            raise
        raise ConfigError(  # psycopg's, before anything is sent
            f"permit register {name}: the query's placeholders and params= do not agree "
            f"({_one_line(exc)}); each %(name)s needs a value in params= (--param name=VALUE), "
            "and a literal % in the query is written %%") from None
    return cur


def _batches(cur: Any) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of ``cur``, :data:`_BATCH` at a time."""
    while batch := cur.fetchmany(_BATCH):
        yield batch


def _set_timezone(conn: Any, cur: Any, timezone: str, name: str) -> None:
    """The session's ``TimeZone`` (psycopg then gives ``timestamptz`` values in it), or one
    :class:`ConfigError` for a zone the server does not know."""
    import psycopg

    try:
        cur.execute("SELECT set_config('TimeZone', %s, false)", (str(timezone),))
    except (psycopg.errors.InvalidParameterValue, psycopg.errors.DataException) as exc:
        conn.rollback()
        raise ConfigError(
            f"permit register {name}: unknown time zone {timezone!r} ({_one_line(exc)}); give the city's "
            "IANA time zone name, e.g. Asia/Ho_Chi_Minh (timezone= / [permits] timezone / --permits-timezone)"
        ) from None


def _crs_of(cur: Any, srid: int, name: str) -> Any:
    """The CRS of an SRID as the database defines it (spatial_ref_sys): its EPSG code, else its WKT or
    PROJ text (a city's own VN-2000 definition), else a :class:`PermitSchemaError`."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    cur.execute("SELECT auth_name, auth_srid, srtext, proj4text FROM spatial_ref_sys WHERE srid = %s", (srid,))
    row = cur.fetchone()
    tries = [f"EPSG:{srid}"] if row is None else [
        f"{row[0]}:{row[1]}" if row[0] and row[1] else None, row[2], row[3]]
    for text in tries:
        if text and text.strip():
            try:
                return CRS.from_user_input(text)
            except CRSError:
                continue
    where = "is not in the database's spatial_ref_sys" if row is None else "is defined in spatial_ref_sys as no CRS pyproj reads"
    raise PermitSchemaError(
        f"permit register {name}: the geometries' SRID {srid} {where}; transform them to a known CRS "
        "(ST_Transform(geom, 9210) for VN-2000 / TM-3 105-45) or fix its spatial_ref_sys row")


def _tables_there(cur: Any, limit: int = 10) -> str:
    """``; tables with a geometry column here: ...`` (PostGIS's geometry_columns), or ``''``."""
    try:
        cur.execute("SELECT DISTINCT f_table_schema, f_table_name FROM geometry_columns ORDER BY 1, 2")
        found = [f"{s}.{t}" for s, t in cur.fetchall()]
    except Exception:  # noqa: BLE001 - only a hint
        return ""
    if not found:
        return "; the database has no table with a geometry column"
    more = f" and {len(found) - limit} more" if len(found) > limit else ""
    return f"; tables with a geometry column here: {', '.join(found[:limit])}{more}"


def _frame_from_batches(
    columns: list[str], types: list[int], batches: Iterable[list[tuple[Any, ...]]], geom_oids: set[int],
    name: str, crs_of: Callable[[int], Any],
) -> gpd.GeoDataFrame:
    """The register from its rows, read batch by batch: each batch's (E)WKB is parsed and let go
    at once, its other values kept; ``attrs["geometry_errors"]`` maps a row's index in the whole
    result to why its geometry is unreadable."""
    import numpy as np

    geom_cols = [c for c, t in zip(columns, types, strict=True) if t in geom_oids]
    if not geom_cols:
        raise PermitSchemaError(
            f"permit register {name}: the result has no geometry column (columns: {', '.join(columns)}); "
            "a geography column must be cast: query='SELECT *, COLUMN::geometry AS geom FROM ...'")
    gcol = next((c for n in _GEOM_NAMES for c in geom_cols if c.lower() == n), None)
    if gcol is None and len(geom_cols) > 1:
        raise PermitSchemaError(
            f"permit register {name}: several geometry columns ({', '.join(geom_cols)}) and none is called "
            f"geom or geometry; name the permitted footprints: query='SELECT *, {geom_cols[-1]} AS geom FROM ...'")
    gcol = gcol or geom_cols[0]
    at = columns.index(gcol)
    keep = [i for i, c in enumerate(columns) if c not in geom_cols]
    parts: list[Any] = []
    errors: dict[int, str] = {}
    rows: list[tuple[Any, ...]] = []
    for batch in batches:
        geoms_b, errors_b = _geometries([r[at] for r in batch], gcol)
        errors.update((len(rows) + i, why) for i, why in errors_b.items())
        parts.append(geoms_b)
        rows.extend(tuple(r[i] for i in keep) for r in batch)
    geoms = np.concatenate(parts) if parts else np.full(0, None, dtype=object)
    srids = {int(s) for g, s in zip(geoms, shapely.get_srid(geoms), strict=True) if g is not None}
    if len(srids) > 1:
        raise PermitSchemaError(f"permit register {name}: geometries have several SRIDs "
                                f"({', '.join(map(str, sorted(srids)))}); transform them to one (ST_Transform)")
    crs = crs_of(srids.pop()) if len(srids) == 1 and 0 not in srids else None
    geoms = shapely.set_srid(geoms, 0)
    attrs = pd.DataFrame.from_records(rows, columns=[columns[i] for i in keep]).astype(object)
    frame = gpd.GeoDataFrame(attrs, geometry=gpd.GeoSeries(geoms), crs=crs)
    frame.attrs["geometry_errors"] = errors
    return frame


def _geometries(values: list[Any], column: str) -> tuple[Any, dict[int, str]]:
    """(E)WKB values (hex text or bytes, ``None`` for NULL) as shapely geometries, and why each
    unreadable one is (row index -> reason): a curved type GEOS cannot read, a broken value."""
    import numpy as np

    out = np.full(len(values), None, dtype=object)
    present = [i for i, v in enumerate(values) if v is not None]
    try:
        out[present] = shapely.from_wkb([values[i] for i in present])
        return out, {}
    except (shapely.errors.ShapelyError, NotImplementedError, TypeError, ValueError):
        pass  # one by one, to name the rows
    errors: dict[int, str] = {}
    for i in present:
        try:
            out[i] = shapely.from_wkb(values[i])
        except (shapely.errors.ShapelyError, NotImplementedError, TypeError, ValueError) as exc:
            kind = _CURVED.get(_wkb_type(values[i]) or 0)
            errors[i] = (
                f"geometry is a {kind}, which GEOS cannot read; read the register with query="
                f"'SELECT *, ST_CurveToLine({column}) AS geometry FROM ...' (arcs as line segments)"
                if kind else f"unreadable geometry ({exc})")
    return out, errors


def _wkb_type(value: Any) -> int | None:
    """The geometry type code of an (E)WKB value (ISO Z/M codes and EWKB flags removed)."""
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else bytes(value)
        code: int = struct.unpack("<I" if raw[0] == 1 else ">I", raw[1:5])[0]
    except (ValueError, TypeError, IndexError, struct.error):
        return None
    return (code & 0x0FFFFFFF) % 1000


__all__ = ["check_identifier"]
