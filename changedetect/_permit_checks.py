"""Row-level checks of a permit register (used by :mod:`changedetect.permits`).

Each check looks at one column of one row and returns either a clean value or
the reason it is unusable, so that the caller can report *every* bad row with
its row number, column and reason in one pass.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from changedetect._permit_schema import DATE_FORMAT_HUMAN

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]00:00(:00(\.0+)?)?)?$")
_DMY_RE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$")
_SURROGATES = re.compile("[\ud800-\udfff\ufffd]")


@dataclass(frozen=True)
class Problem:
    """One problem of a register: a row (1-based, ``None`` for the whole register), a column, a reason."""

    row: int | None
    column: str | None
    reason: str
    permit_id: str | None = None

    def __str__(self) -> str:
        where = "register" if self.row is None else f"row {self.row}"
        pid = f" (permit_id {self.permit_id!r})" if self.permit_id else ""
        col = f", column '{self.column}'" if self.column else ""
        return f"{where}{pid}{col}: {self.reason}"


def isnull(value: Any) -> bool:
    """``None``, NaN, NaT, ``pd.NA`` or a blank string."""
    if value is None or value is pd.NaT or value is pd.NA:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, np.datetime64) and np.isnat(value):
        return True
    return isinstance(value, str) and not value.strip()


def check_text(value: Any) -> tuple[str | None, str | None]:
    """A text value as ``str``, or why it is not valid UTF-8 text."""
    if isnull(value):
        return None, None
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8"), None
        except UnicodeDecodeError as exc:
            return None, (
                f"text is not valid UTF-8 (byte 0x{value[exc.start]:02x} at position {exc.start} "
                f"of {shown(value)}); re-save the register as UTF-8"
            )
    text = str(value)
    bad = _SURROGATES.search(text)
    if bad:
        return None, (
            f"text is not valid UTF-8 (undecodable byte at position {bad.start()} of {shown(text)}); "
            "re-save the register as UTF-8"
        )
    return text, None


def shown(value: Any, limit: int = 40) -> str:
    """``repr`` of a value for a message, UTF-8-safe and cut to ``limit`` characters."""
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "...'"


def check_choice(value: Any, allowed: tuple[str, ...], column: str) -> tuple[str | None, str | None]:
    """A normalised choice (lower case, spaces and dashes to ``_``) or why it is not allowed."""
    text, err = check_text(value)
    if err:
        return None, err
    if text is None:
        return None, f"missing {column} (allowed: {', '.join(allowed)})"
    norm = re.sub(r"[\s\-]+", "_", text.strip().lower())
    if norm not in allowed:
        return None, f"unknown {column} {shown(text)} (allowed: {', '.join(allowed)})"
    return norm, None


def check_date(value: Any, column: str) -> tuple[dt.date | None, str | None]:
    """A ``datetime.date`` or why the value is not a date in ``YYYY-MM-DD`` form."""
    if isnull(value):
        return None, f"missing {column} (expected a date {DATE_FORMAT_HUMAN})"
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date(), None
    if isinstance(value, dt.date):
        return value, None
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).date(), None
    text, err = check_text(value)
    if err or text is None:
        return None, err
    text = text.strip()
    if _DATE_RE.match(text):
        try:
            return dt.date.fromisoformat(text[:10]), None
        except ValueError:
            pass
    return None, f"{shown(text)} is not a date (expected {DATE_FORMAT_HUMAN}, e.g. 2024-03-31){_dmy_hint(text)}"


def _dmy_hint(text: str) -> str:
    """What a ``dd/mm/yyyy`` date (as written in Vietnam) is in ISO form, for the message."""
    m = _DMY_RE.match(text)
    if m is None:
        return ""
    a, b, year = (int(g) for g in m.groups())
    forms = {}
    for day, month, order in ((a, b, "day/month/year"), (b, a, "month/day/year")):
        try:
            forms[order] = dt.date(year, month, day).isoformat()
        except ValueError:
            continue
    if len(set(forms.values())) == 1:
        (order, iso), *_ = forms.items()
        return f"; {'write it ' if a == b else f'as {order}, write it '}{iso}"
    if len(forms) == 2:
        return f"; as day/month/year, write it {forms['day/month/year']} (as month/day/year: {forms['month/day/year']})"
    return ""


def check_area(value: Any) -> tuple[float | None, str | None]:
    """A positive finite float or why not."""
    if isnull(value):
        return None, "missing permitted_area_m2 (expected a number of square metres > 0)"
    try:
        area = float(value.decode() if isinstance(value, bytes) else value)
    except (TypeError, ValueError, UnicodeDecodeError):
        text = str(value).strip()
        comma = re.fullmatch(r"\d+,\d+", text)  # Excel in a Vietnamese (or French) locale: 86,8
        hint = "" if not comma else (
            f"; a decimal comma? write it {text.replace(',', '.')}" if len(text.split(",")[1]) != 3 else
            f"; write it {text.replace(',', '.')} (a decimal comma) or {text.replace(',', '')} (a thousands separator)")
        return None, f"{shown(value)} is not a number (expected square metres > 0){hint}"
    if not math.isfinite(area) or area <= 0:
        return None, f"{area:g} is not a positive area (expected square metres > 0)"
    return area, None


def check_geometry(value: Any) -> tuple[BaseGeometry | None, str | None, str | None]:
    """``(geometry, error, repair_note)``: a clean polygonal (or point) geometry.

    Invalid polygons are repaired with :func:`shapely.make_valid`; the note
    says what was wrong.  What cannot be made polygonal is an error.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None, "missing geometry", None
    if not isinstance(value, BaseGeometry):
        return None, f"geometry {shown(value)} is not a geometry", None
    if value.is_empty:
        return None, "empty geometry", None
    kind = value.geom_type
    if kind in ("Point", "MultiPoint"):
        return value, None, None
    note = None
    geom = value
    if not geom.is_valid:
        why = shapely.is_valid_reason(geom)
        geom = shapely.make_valid(geom)
        note = f"invalid geometry ({why}) repaired with make_valid"
    if geom.geom_type == "GeometryCollection":
        parts = [g for g in geom.geoms if g.geom_type in ("Polygon", "MultiPolygon")]
        geom = shapely.union_all(parts) if parts else shapely.Polygon()
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        if note:
            return None, f"invalid geometry ({note.split('(')[1].split(')')[0]}) cannot be repaired into a polygon", None
        return None, f"geometry is a {kind}; expected Polygon or MultiPolygon", None
    if geom.is_empty or geom.area <= 0:
        return None, "geometry has no area (cannot be repaired into a polygon)", None
    return geom, None, note


__all__ = [
    "Problem", "check_area", "check_choice", "check_date", "check_geometry", "check_text", "isnull", "shown",
]
