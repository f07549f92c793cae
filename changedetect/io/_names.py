"""Dates and band names found in file names (private helpers of :mod:`changedetect.io`)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

#: ``20240131``, ``2024-01-31``, ``2024_01_31``, ``20171107T105229`` (not inside a longer number).
DATE_RE = re.compile(r"(?<!\d)((?:19|20)\d{2})([-_.]?)(\d{2})\2(\d{2})(?!\d)")

#: Sentinel-2 band tokens at the end of a file stem: ``..._B02``, ``..._B8A``, or L2A's ``..._B02_10m``.
S2_BAND_RE = re.compile(r"(?:^|[_\-.])(B(?:0?[1-9]|1[0-2]|8A))(?:_[126]0m)?$", re.IGNORECASE)

#: Sentinel-2 L2A products that lie beside the band files (aerosol, water vapour, true colour,
#: scene classification, cloud and snow probabilities): not bands of the image.
S2_AUX_RE = re.compile(r"(?:^|[_\-.])(AOT|WVP|TCI|SCL|CLD|SNW|CLDPRB|SNWPRB)(?:_[126]0m)?$", re.IGNORECASE)

#: Sentinel-2 MSI bands in their conventional order, with their nominal resolution in metres.
S2_BANDS: dict[str, int] = {
    "B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20,
    "B08": 10, "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20,
}  # fmt: skip

#: Extensions scanned in a directory (lower case).
RASTER_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".jp2", ".vrt")
#: Extensions of images without georeferencing (benchmark folders).
PLAIN_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def date_from_name(name: str, pattern: str | None = None) -> dt.date | None:
    r"""The first valid calendar date in ``name``, or ``None``.

    Parameters
    ----------
    name
        A file name (or stem).
    pattern
        Optional regular expression; the groups named ``year``, ``month`` and ``day``
        (any order: ``(?P<day>\d{2})-(?P<month>\d{2})-(?P<year>\d{4})`` for ``15-01-2024``),
        else the group named ``date`` (else group 1, else the whole match) holding the date as
        ``YYYYMMDD`` or ``YYYY-MM-DD``.

    Raises
    ------
    TimeSeriesError
        ``pattern`` is not a valid regular expression, or it matches text that is not a date.
    """
    if pattern is not None:
        match = date_pattern(pattern).search(name)
        if match is None:
            return None
        groups = match.groupdict()
        if all(groups.get(k) for k in ("year", "month", "day")):
            text = f"{groups['year']}-{groups['month']}-{groups['day']}"
            found = parse_date(f"{int(groups['year']):04d}{int(groups['month']):02d}{int(groups['day']):02d}")
        else:
            text = groups.get("date") or (match.group(1) if match.groups() else match.group(0))
            found = parse_date(text)
        if found is None:
            from changedetect.errors import TimeSeriesError

            raise TimeSeriesError(
                f"the date pattern {pattern!r} finds {text!r} in the file name '{name}', which is not "
                + ("a calendar date (year-month-day)" if "year" in groups else "a date as YYYYMMDD or YYYY-MM-DD")
                + "; for other orders name the parts: "
                r"'(?P<day>\d{2})-(?P<month>\d{2})-(?P<year>\d{4})' reads 15-01-2024"
            )
        return found
    for match in DATE_RE.finditer(name):
        try:
            return dt.date(int(match.group(1)), int(match.group(3)), int(match.group(4)))
        except ValueError:  # e.g. 20241399: not a date, keep looking
            continue
    return None


def date_pattern(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled, or a :class:`~changedetect.errors.TimeSeriesError` naming it and the regex error."""
    from changedetect.errors import TimeSeriesError

    try:
        return re.compile(pattern)
    except re.error as exc:
        raise TimeSeriesError(
            f"the date pattern {pattern!r} (--pattern / pattern=) is not a valid regular expression: {exc}; "
            r"e.g. '(?P<date>\d{8})' finds 20240131"
        ) from None


def parse_date(text: str) -> dt.date | None:
    """Parse ``YYYYMMDD``, ``YYYY-MM-DD`` or an ISO datetime (``2024-01-31T10:00:00Z``)."""
    text = str(text).strip()
    digits = re.sub(r"[-_./]", "", text[:10])
    if len(digits) >= 8 and digits[:8].isdigit():
        try:
            return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
        except ValueError:
            return None
    return None


def s2_band(path: Path) -> str | None:
    """The Sentinel-2 band token ending ``path``'s stem (``B02``, ``B8A``), normalised, or ``None``."""
    match = S2_BAND_RE.search(path.stem)
    if match is None:
        return None
    token = match.group(1).upper()
    return token if token == "B8A" else f"B{int(token[1:]):02d}"


def band_sort_key(name: str) -> tuple[int, str]:
    """Order Sentinel-2 bands B01..B08, B8A, B09..B12; other names after them, by name."""
    order = list(S2_BANDS)
    return (order.index(name), "") if name in S2_BANDS else (len(order), name)


def read_dates_txt(path: Path) -> list[dt.date]:
    """Dates listed in an OSCD ``dates.txt`` (``date_1: 20161130`` one per line), in order."""
    dates: list[tuple[int, dt.date]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(":")
        if not value:
            continue
        date = parse_date(value)
        number = re.search(r"(\d+)\s*$", key)
        if date is not None:
            dates.append((int(number.group(1)) if number else len(dates) + 1, date))
    return [d for _, d in sorted(dates)]


__all__ = [
    "DATE_RE",
    "PLAIN_IMAGE_SUFFIXES",
    "RASTER_SUFFIXES",
    "S2_BANDS",
    "band_sort_key",
    "date_from_name",
    "parse_date",
    "read_dates_txt",
    "s2_band",
]
