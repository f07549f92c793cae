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

#: Sentinel-2 L2A's scene classification layer: a file whose stem ends ``_SCL`` / ``_SCL_20m``, or a band
#: named ``SCL`` (a band description, a manifest's or a STAC asset's name); the date's cloud mask, not a band.
S2_SCL_RE = re.compile(r"(?:^|[_\-.])SCL(?:_[126]0m)?$", re.IGNORECASE)

#: A Sentinel-2 name of the format before December 2016 (``S2A_OPER_MSI_L1C_TL_EPA__20160809T015434_A000162_
#: T32TPP_B02``, ``S2A_OPER_PRD_MSIL1C_PDMC_20160809T..._R022_V20150704T101337_20150704T101337``): its first
#: date is when the file was made (a reprocessing can be years later), not when the image was taken; a
#: product's sensing start follows ``_V`` (its validity start), a tile's is not in its name at all.
S2_OLD_RE = re.compile(r"^S2[A-D]_OPER_", re.IGNORECASE)
S2_OLD_SENSED_RE = re.compile(r"_V(\d{8})T\d{6}", re.IGNORECASE)

#: Sentinel-2 MSI bands in their conventional order, with their nominal resolution in metres.
S2_BANDS: dict[str, int] = {
    "B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20,
    "B08": 10, "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20,
}  # fmt: skip

#: A Landsat product id (``LC09_L2SP_125052_20240115_20240117_02_T1``: sensor and satellite, level,
#: path/row, acquisition date, processing date, collection, tier) and the file's part after it.
LANDSAT_RE = re.compile(r"^L([COTEM])(0[4-9])_L[12][A-Z]{2}_\d{6}_\d{8}_\d{8}_\d{2}_(?:T1|T2|RT)_(.+)$",
                        re.IGNORECASE)
#: The band files of a Landsat product: ``SR_B5`` / ``ST_B10`` (Level-2), ``B5`` (Level-1).
_LANDSAT_BAND_RE = re.compile(r"^(?:S[RT]_)?B(\d{1,2})$", re.IGNORECASE)
#: Landsat band numbers -> names (STAC's common names; ``nir`` as the models name it), OLI/TIRS
#: (Landsat 8, 9) and TM/ETM+ (Landsat 4, 5, 7).
LANDSAT_OLI: dict[int, str] = {
    1: "coastal", 2: "blue", 3: "green", 4: "red", 5: "nir", 6: "swir16", 7: "swir22", 8: "pan",
    9: "cirrus", 10: "lwir11", 11: "lwir12",
}  # fmt: skip
LANDSAT_TM: dict[int, str] = {1: "blue", 2: "green", 3: "red", 4: "nir", 5: "swir16", 6: "lwir", 7: "swir22", 8: "pan"}


def landsat_product(path: Path) -> bool:
    """Whether ``path``'s stem is a Landsat product id followed by a band or side product."""
    return LANDSAT_RE.match(path.stem) is not None


def landsat_band(path: Path) -> tuple[str, int, float] | None:
    """Name, band number and nominal resolution (m: 30, the panchromatic band 15) of a Landsat band
    file (``LC09_L2SP_125052_20240115_20240117_02_T1_SR_B5.TIF``: ``("nir", 5, 30.0)``), or ``None``
    (another file, or a product's QA and atmospheric side products: ``_QA_PIXEL``, ``_SR_QA_AEROSOL``)."""
    match = LANDSAT_RE.match(path.stem)
    band = _LANDSAT_BAND_RE.match(match.group(3)) if match else None
    if match is None or band is None:
        return None
    table = LANDSAT_OLI if match.group(1).upper() in "CO" else LANDSAT_TM
    number = int(band.group(1))
    name = table.get(number)
    return None if name is None else (name, number, 15.0 if name == "pan" else 30.0)


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
    if S2_OLD_RE.match(name):  # its first date is the processing date: OSCD pisa's 2015-07-04 read as 2016-08-09
        sensed = S2_OLD_SENSED_RE.search(name)
        return parse_date(sensed.group(1)) if sensed else None
    for match in DATE_RE.finditer(name):
        try:
            return dt.date(int(match.group(1)), int(match.group(3)), int(match.group(4)))
        except ValueError:  # e.g. 20241399: not a date, keep looking
            continue
    return None


def undated_note(name: str) -> str:
    """Why the file name ``name`` gives no date, when it looks as if it did: an old-format Sentinel-2 name
    (:data:`S2_OLD_RE`) holds its processing date, not its acquisition date; "" otherwise."""
    if not S2_OLD_RE.match(name):
        return ""
    made = next((d for m in DATE_RE.finditer(name) if (d := parse_date("".join(m.group(1, 3, 4)))) is not None), None)
    return (" (an old-format Sentinel-2 name, S2A_OPER_...: its date" + (f", {made}," if made else "")
            + " is when the file was made, not when the image was taken; the product's metadata"
            " (MTD_*.xml, SENSING_TIME) or the delivery says that)")


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
    """The Sentinel-2 band token ending ``path``'s stem (``B02``, ``B8A``), normalised, or ``None``
    (also for a Landsat product's file: its ``_SR_B5`` is Landsat's NIR, not Sentinel-2's red edge)."""
    match = None if landsat_product(path) else S2_BAND_RE.search(path.stem)
    if match is None:
        return None
    token = match.group(1).upper()
    return token if token == "B8A" else f"B{int(token[1:]):02d}"


def is_scl(name: str) -> bool:
    """Whether a band name or file stem is Sentinel-2 L2A's scene classification (``SCL``, ``scl``,
    ``T32TPP_20180211T101021_SCL_20m``)."""
    return S2_SCL_RE.search(str(name).strip()) is not None


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
    "LANDSAT_RE",
    "PLAIN_IMAGE_SUFFIXES",
    "RASTER_SUFFIXES",
    "S2_BANDS",
    "S2_SCL_RE",
    "band_sort_key",
    "date_from_name",
    "is_scl",
    "landsat_band",
    "landsat_product",
    "parse_date",
    "read_dates_txt",
    "s2_band",
    "undated_note",
]
