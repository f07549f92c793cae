"""The inspectors' decisions file (private; :mod:`changedetect._nightly_decisions`, ``--decisions``): read and
checked before the night's lock, one error naming the file, the row and the column.

A CSV as an office saves it: UTF-8 with or without Excel's BOM, ``,`` or ``;`` (or a tab); UTF-16 with its BOM
(Excel's "Unicode Text"); or, not being UTF-8, Windows-1258 (what Excel's plain "CSV" writes on a Vietnamese
Windows), read so with a warning.  Or any table OGR reads, with or without geometry, or a ``postgresql://`` URL.
Dates are ``YYYY-MM-DD`` or the Vietnamese ``DD/MM/YYYY`` (``01/02/2025`` is the 1st of February); one with a
time of day and a zone (a PostGIS ``timestamptz``, ``2025-02-03T20:00:00+00:00``) is its calendar day in the city's
time zone when one is named (``[permits] timezone``, as the register's dates), else in its own zone.
"""

from __future__ import annotations

import codecs
import contextlib
import datetime as dt
import io
import logging
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from changedetect.errors import ConfigError, PermitSchemaError, RegisterReadError

log = logging.getLogger("changedetect._merge")

#: the decisions, each with the words accepted for it (compared without case, accents or spaces)
WORDS = {"confirmed": ("confirmed", "xác nhận"), "false_alarm": ("false_alarm", "báo động nhầm"),
         "resolved": ("resolved", "đã xử lý")}
#: the file's columns: those it needs, then those it may have
NEEDED, OPTIONAL = ("violation_id", "decision", "decided_on"), ("inspector", "note")
WHAT = "decisions file"
#: the files read as text tables (a CSV, Excel's "Unicode Text" .txt)
TEXT_SUFFIXES = (".csv", ".txt", ".tsv")


def _folded(word: str) -> str:
    """``word`` without case, accents or separators (``Báo động nhầm`` -> ``bao_dong_nham``)."""
    plain = unicodedata.normalize("NFD", word.strip().lower().replace("đ", "d"))
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return "_".join(plain.replace("-", " ").replace("_", " ").split())


_DECISION = {_folded(w): d for d, words in WORDS.items() for w in words}


#: at most this many bad rows are listed in the one error (the count says how many there are)
MAX_SAID = 20


def read_decisions(source: str | Path, *, timezone: str | None = None) -> pd.DataFrame:
    """The decisions of ``source`` (a CSV, any table OGR reads, with or without geometry, or a
    ``postgresql://`` URL whose table is ``decisions``, or the one named after ``#``): one row per
    ``violation_id`` with ``decision`` (its code, :data:`WORDS`), ``decided_on`` (``YYYY-MM-DD``),
    ``inspector``, ``note`` and ``row`` (its data row, 1-based, for messages); ``attrs["source"]`` names the
    source for messages.  Where one id has several rows the latest decision counts.  ``timezone``: the city's
    (IANA name, ``[permits] timezone``): a ``decided_on`` with a time of day and a zone is its day there
    (:func:`_date`); a ``postgresql://`` source's session is set to it, as the register's.

    Raises
    ------
    ConfigError
        A column is missing, a decision word or a date cannot be read, an id is empty, or two rows give one
        id different decisions on one date: the file, the row(s), the column and what to do.  ``timezone`` is
        not a time zone.
    RegisterReadError
        The file cannot be read.
    """
    _zone(timezone)  # an unknown zone: one line before the file is read
    name, raw = _read(str(source), timezone)
    lower = {str(c).strip().lower(): c for c in raw.columns}
    missing = [c for c in NEEDED if c not in lower]
    if missing:
        raise ConfigError(f"{WHAT} '{name}' has no column {', '.join(map(repr, missing))}; its columns: "
                          f"{', '.join(map(str, raw.columns)) or 'none'}; it needs {', '.join(NEEDED)} "
                          f"({', '.join(OPTIONAL)} optional)")
    csv = name.lower().endswith(TEXT_SUFFIXES)
    rows, errors = [], []
    for k, rec in enumerate(raw.to_dict("records"), start=1):
        at = f"{WHAT} '{name}', row {k}" + (f" (line {k + 1})" if csv else "")
        def get(col: str, rec: dict[Any, Any] = rec) -> str:
            value = rec.get(lower[col]) if col in lower else None
            return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()
        vid, word = get("violation_id"), get("decision")
        if not vid and not word and not get("decided_on"):
            continue  # a blank line
        try:  # every bad row said at once, as the register's are (one at a time, each fix met the next)
            if not vid:
                raise ConfigError(f"{at}: 'violation_id' is empty; give the id of open_violations.gpkg")
            decision = _DECISION.get(_folded(word))
            if decision is None:
                accepted = ", ".join(w for words in WORDS.values() for w in words)
                raise ConfigError(f"{at}: 'decision' {word!r} is not a decision; write one of {accepted}")
            rows.append({"violation_id": vid, "decision": decision,
                         "decided_on": _date(rec.get(lower["decided_on"]), at, timezone),
                         "inspector": get("inspector"), "note": get("note"), "row": k})
        except ConfigError as exc:
            errors.append(str(exc))
    if len(errors) == 1:
        raise ConfigError(errors[0])
    if errors:
        shown = "\n  ".join(errors[:MAX_SAID])
        more = f"\n  ... and {len(errors) - MAX_SAID} more" if len(errors) > MAX_SAID else ""
        raise ConfigError(f"{WHAT} '{name}': {len(errors)} rows cannot be read; fix them all:\n  {shown}{more}")
    out = _one_per_id(pd.DataFrame(rows, columns=[*NEEDED, *OPTIONAL, "row"]), name)
    out.attrs["source"] = name  # (a database's URL without its password)
    return out


def _read(source: str, timezone: str | None = None) -> tuple[str, pd.DataFrame]:
    """``(name for messages, the rows as they are)``."""
    if source.startswith(("postgresql://", "postgres://")):
        from changedetect.io._postgis import check_identifier
        from changedetect.io.registers import read_register

        url, _, table = source.partition("#")
        table = table or "decisions"
        try:
            frame, name = read_register(url, table=table, what=WHAT, timezone=timezone)
        except PermitSchemaError as exc:  # the reader wants a geometry column; a plain table has none
            if "no geometry column" not in str(exc):
                raise
            ident = ".".join('"' + part.replace('"', '""') + '"' for part in check_identifier(table))
            frame, _ = read_register(url, query=f"SELECT *, NULL::geometry AS geom FROM {ident}", what=WHAT,
                                     timezone=timezone)
            name = f"{_safe(url)} table={table}"
        geom = getattr(frame, "_geometry_column_name", None)  # (a table without geometry has none)
        return name, pd.DataFrame(frame).drop(columns=[c for c in [geom] if c in frame])
    path = Path(source)
    if not path.is_file():
        raise RegisterReadError(f"{WHAT} '{source}' does not exist; check the path (--decisions)")
    try:
        if path.suffix.lower() in TEXT_SUFFIXES:
            return source, pd.read_csv(io.StringIO(_text(path)), dtype=str, keep_default_na=False, sep=None,
                                       engine="python")
        import pyogrio

        return source, pd.DataFrame(pyogrio.read_dataframe(path, read_geometry=False))
    except (UnicodeDecodeError, ValueError, OSError, pd.errors.ParserError) as exc:
        raise RegisterReadError(f"{WHAT} '{source}' cannot be read ({exc}); give a CSV (in Excel: Save As 'CSV "
                                "UTF-8 (Comma delimited)'), a GeoPackage or another table GDAL reads") from None
    except Exception as exc:  # noqa: BLE001 - pyogrio's errors: one line, not a traceback
        raise RegisterReadError(f"{WHAT} '{source}' cannot be read ({exc})") from None


def _text(path: Path) -> str:
    """A text table's characters (NFC): UTF-16 with its BOM (Excel's "Unicode Text"), UTF-8 with or without
    its BOM, else Windows-1258 (Excel's plain "CSV" on a Vietnamese Windows), with a warning."""
    raw = path.read_bytes()
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = raw.decode("utf-16")
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            try:
                text = raw.decode("cp1258")
            except UnicodeDecodeError:
                raise exc from None
            log.warning("%s '%s' is not UTF-8 (byte 0x%02x at %d): read as Windows-1258, the code page of Excel's "
                        "'CSV (Comma delimited)' on a Vietnamese Windows; check the inspectors' names in the lists, "
                        "or save it as 'CSV UTF-8 (Comma delimited)'", WHAT, path, raw[exc.start], exc.start)
    return unicodedata.normalize("NFC", text)


def _safe(url: str) -> str:
    from changedetect.io._postgis import _safe_url

    return _safe_url(url)


def _zone(timezone: str | None) -> Any:
    """The city's time zone (None for none), or one :class:`ConfigError` for a name that is not one."""
    if not timezone:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{WHAT}: unknown time zone {timezone!r} for 'decided_on'; give the city's IANA time zone "
                          "name, e.g. Asia/Ho_Chi_Minh ([permits] timezone / --permits-timezone)") from None


def _date(value: Any, at: str, timezone: str | None = None) -> str:
    """``decided_on`` as ``YYYY-MM-DD`` (ISO, or Vietnamese ``DD/MM/YYYY``; a date or timestamp as it is).  One with
    a time of day and a zone (a ``timestamptz``, ISO text with an offset or ``Z``) is its day in ``timezone`` (the
    city's) when one is given, else in its own zone; one without a zone is the day written."""
    if isinstance(value, str) and len(value.strip()) > 10:  # ISO text with a time of day (and maybe a zone)
        with contextlib.suppress(ValueError):  # not ISO with a time: read as text below
            dt.date.fromisoformat(value.strip()[:10])
            value = pd.Timestamp(value.strip())
    if isinstance(value, dt.date | pd.Timestamp) and not pd.isna(value):
        if isinstance(value, dt.datetime) and value.tzinfo is not None and (zone := _zone(timezone)) is not None:
            value = value.astimezone(zone)
        return (value.date() if isinstance(value, dt.datetime) else value).isoformat()
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(text[:10] if fmt == "%Y-%m-%d" else text, fmt).date().isoformat()
        except ValueError:
            continue
    raise ConfigError(f"{at}: 'decided_on' {text!r} is not a date; write it as YYYY-MM-DD (2025-02-03) or "
                      "DD/MM/YYYY (03/02/2025)")


def _one_per_id(rows: pd.DataFrame, name: str) -> pd.DataFrame:
    """The latest decision of each id; two different decisions of one id on one date are an error."""
    for (vid, day), same in rows.groupby(["violation_id", "decided_on"], sort=True):
        if same["decision"].nunique() > 1:
            said = ", ".join(f"row {r} {d}" for r, d in zip(same["row"], same["decision"], strict=True))
            raise ConfigError(f"{WHAT} '{name}': violation_id {vid!r} has different decisions on {day} ({said}); "
                              "keep the one that stands")
    latest = rows.sort_values(["violation_id", "decided_on", "row"], kind="stable")
    return latest.drop_duplicates("violation_id", keep="last").reset_index(drop=True)


__all__ = ["NEEDED", "OPTIONAL", "WHAT", "WORDS", "read_decisions"]
