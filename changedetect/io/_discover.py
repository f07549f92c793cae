"""Find the files and dates of a series, whatever shape the input has (no raster is opened here).

Each input becomes a list of :class:`Entry` (one file, its date, optional band
names and where the date came from, for error messages).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from changedetect.errors import TileReadError, TimeSeriesError
from changedetect.io._names import (
    PLAIN_IMAGE_SUFFIXES,
    RASTER_SUFFIXES,
    date_from_name,
    parse_date,
    read_dates_txt,
)
from changedetect.io.atomic import is_temp_name

PathLike = str | os.PathLike[str]

_MANIFEST_NAMES = ("manifest.json", "manifest.csv")
_PATH_KEYS = ("path", "file", "filename", "href", "uri")
_DATE_KEYS = ("date", "datetime", "acquired", "acquisition_date")
_LIST_KEYS = ("tiles", "items", "scenes", "files", "dates", "images")
_SKIP_ROLES = {"thumbnail", "overview", "metadata", "visual"}
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".7z")


@dataclass
class Entry:
    """One file of a series: its date (``None`` when unknown), band names if given, and provenance."""

    path: Path
    date: dt.date | None
    bands: list[str] | None = None
    origin: str = "file name"
    #: ``bands`` is a STAC asset's key standing in for the name of its one band (no ``eo:bands``): a file
    #: of several bands then keeps its own names, as a folder read does
    bands_from_key: bool = False


@dataclass
class Discovery:
    """What :func:`discover` found: the kind of input and its entries."""

    kind: str
    entries: list[Entry]
    source: str


def discover(source: PathLike | Sequence[PathLike], *, pattern: str | None = None) -> Discovery:
    """Turn any accepted input into entries (see :func:`changedetect.io.open_series`)."""
    if isinstance(source, list | tuple):
        if not source:
            raise TileReadError("an empty list of tiles was given; pass at least one file")
        entries = []
        for item in map(Path, map(_local, source)):
            if item.is_dir() or item.suffix.lower() in (".json", ".csv"):
                entries += discover(item, pattern=pattern).entries  # STAC items, manifests, folders
            else:
                entries.append(_from_name(item, pattern))
        names = [Path(str(item)).name for item in source]  # errors name the files, not only how many
        shown = ", ".join(names[:3]) + (f", ... ({len(names) - 3} more)" if len(names) > 3 else "")
        return Discovery("list", _plain_image_dates(entries), f"{len(source)} paths ({shown})")
    path = Path(_local(source))  # type: ignore[arg-type]  # a str or PathLike here
    if not path.exists():
        raise TileReadError(
            f"'{path}' does not exist; pass a folder of tiles, a manifest (.csv/.json), a STAC item or a raster file"
        )
    if path.is_dir():
        return _from_directory(path, pattern)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return Discovery("manifest", _from_csv(path), str(path))
    if suffix == ".json":
        return _from_json(path)
    return Discovery("file", _plain_image_dates([_from_name(path, pattern)]), str(path))


def _local(source: PathLike) -> PathLike:
    """``source``, refused with a line saying what to do when it is a GDAL virtual path (``/vsizip/``,
    ``/vsicurl/``): changedetect reads local files (Path would also fold its ``//``)."""
    text = os.fspath(source)
    if text.startswith("/vsi"):
        kind = text[1:].split("/", 1)[0]
        what = ("unzip the archive and give the folder of tiles" if kind in ("vsizip", "vsitar", "vsigzip", "vsi7z")
                else "download the files and give their local folder")
        raise TileReadError(f"'{text}' is a GDAL virtual path ({kind}), and changedetect reads local files: {what}")
    return source


def _from_name(path: Path, pattern: str | None) -> Entry:
    return Entry(path=path, date=date_from_name(path.name, pattern))


def _raster_files(folder: Path) -> list[Path]:
    """The raster files of ``folder``; a link among them whose target is gone is an error naming it (left
    out without a word, its date would be missing from the series)."""
    named = [p for p in folder.iterdir()
             if p.suffix.lower() in RASTER_SUFFIXES and not p.name.startswith(".") and not is_temp_name(p)]
    for p in named:
        if p.is_symlink() and not p.exists():
            raise TileReadError(
                f"'{p}' is a symbolic link to '{os.readlink(p)}', which does not exist (a drive not mounted, or "
                "a file moved or deleted): restore its target, or remove the link to leave that file out"
            )
    return sorted(p for p in named if p.is_file())


def _from_directory(folder: Path, pattern: str | None) -> Discovery:
    dates_txt = folder / "dates.txt"
    date_dirs = sorted((p for p in folder.glob("imgs_*") if p.is_dir()), key=_trailing_number)
    if dates_txt.is_file() and date_dirs:
        return Discovery(
            "sentinel2", _from_sentinel2_city(folder, dates_txt, date_dirs), str(folder)
        )
    for name in _MANIFEST_NAMES:
        if (folder / name).is_file():
            found = discover(folder / name, pattern=pattern)
            return Discovery(found.kind, found.entries, str(folder))
    files = _raster_files(folder)
    if not files:
        items = sorted(p for p in folder.glob("*.json") if _is_stac_item(_load_json(p)))
        if items:
            return Discovery(
                "stac",
                [e for item in items for e in _from_stac_item(_load_json(item), item)],
                str(folder),
            )
        archives = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in _ARCHIVE_SUFFIXES)
        unzip = f" (it holds the archive '{archives[0]}': unzip it and give the folder of tiles)" if archives else ""
        raise TileReadError(
            f"folder '{folder}' holds no raster files ({', '.join(RASTER_SUFFIXES)}), no manifest "
            f"and no STAC items; point at the folder that holds the tiles{unzip}"
        )
    entries = [_from_name(p, pattern) for p in files]
    known = _dates_from_parent(folder)
    if known is not None:
        for entry in entries:
            entry.date, entry.origin = known, f"{folder.parent / 'dates.txt'}"
    return Discovery("directory", _plain_image_dates(entries), str(folder))


def _trailing_number(path: Path) -> tuple[int, str]:
    match = re.search(r"(\d+)$", path.name)
    return (int(match.group(1)) if match else 0, path.name)


def _from_sentinel2_city(folder: Path, dates_txt: Path, date_dirs: list[Path]) -> list[Entry]:
    dates = read_dates_txt(dates_txt)
    if len(dates) != len(date_dirs):
        raise TimeSeriesError(
            f"'{dates_txt}' lists {len(dates)} dates but '{folder}' has {len(date_dirs)} image folders "
            f"({', '.join(d.name for d in date_dirs)}); list one date per imgs_N folder as 'date_N: YYYYMMDD'"
        )
    entries = []
    for date, date_dir in zip(dates, date_dirs, strict=True):
        files = _raster_files(date_dir)
        if not files:
            raise TileReadError(f"'{date_dir}' holds no band files (*_B02.tif, ...)")
        entries += [Entry(path=p, date=date, origin=f"{dates_txt}") for p in files]
    return entries


def _dates_from_parent(folder: Path) -> dt.date | None:
    """The date of an OSCD ``imgs_N`` folder from ``../dates.txt``."""
    match = re.fullmatch(r"imgs_(\d+)", folder.name)
    dates_txt = folder.parent / "dates.txt"
    if match is None or not dates_txt.is_file():
        return None
    dates = read_dates_txt(dates_txt)
    index = int(match.group(1)) - 1
    return dates[index] if 0 <= index < len(dates) else None


def _plain_image_dates(entries: list[Entry]) -> list[Entry]:
    """PNG/JPEG pairs without dates: take ``dates.txt`` beside them (OSCD ``pair/``), else leave ``None``."""
    if not entries or any(e.date is not None for e in entries):
        return entries
    if not all(e.path.suffix.lower() in PLAIN_IMAGE_SUFFIXES for e in entries):
        return entries
    folder = entries[0].path.parent
    for dates_txt in (folder / "dates.txt", folder.parent / "dates.txt"):
        if dates_txt.is_file():
            dates = read_dates_txt(dates_txt)
            if len(dates) == len(entries):
                for entry, date in zip(entries, dates, strict=True):
                    entry.date, entry.origin = date, str(dates_txt)
                break
    return entries


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TimeSeriesError(
            f"'{path}' is not valid JSON ({exc}); expected a manifest or a STAC item"
        ) from exc


def _is_stac_item(doc: Any) -> bool:
    return (
        isinstance(doc, dict)
        and doc.get("type") == "Feature"
        and isinstance(doc.get("assets"), dict)
    )


def _from_json(path: Path) -> Discovery:
    doc = _load_json(path)
    if _is_stac_item(doc):
        return Discovery("stac", _from_stac_item(doc, path), str(path))
    if isinstance(doc, dict) and doc.get("type") == "FeatureCollection":
        features = [f for f in doc.get("features", []) if _is_stac_item(f)]
        return Discovery("stac", [e for f in features for e in _from_stac_item(f, path)], str(path))
    rows = doc
    default_bands = None
    if isinstance(doc, dict):
        default_bands = doc.get("bands") if isinstance(doc.get("bands"), list) else None
        rows = next((doc[k] for k in _LIST_KEYS if isinstance(doc.get(k), list | dict)), None)
        if isinstance(rows, dict):  # {"2024-01-31": "tile.tif", ...}
            rows = [{"date": k, "path": v} for k, v in rows.items()]
    if not isinstance(rows, list):
        raise TimeSeriesError(
            f"manifest '{path}' is neither a list of {{path, date, bands}} objects, an object with one "
            f"of the lists {', '.join(_LIST_KEYS)}, nor a STAC item"
        )
    entries = [_manifest_row(row, path, i) for i, row in enumerate(rows, 1)]
    for entry in entries:
        if entry.bands is None and default_bands:
            entry.bands = _names(default_bands)
    return Discovery("manifest", entries, str(path))


def csv_delimiter(header: str) -> str:
    """The field separator of a CSV from its header line: ``,``, or ``;`` / tab where the header holds
    more of them (Excel writes ``;`` where the decimal mark is a comma, as in Vietnamese settings)."""
    return max((",", ";", "\t"), key=header.count)


def _from_csv(path: Path) -> list[Entry]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            header = fh.readline()
            fh.seek(0)
            reader = csv.DictReader(fh, delimiter=csv_delimiter(header))
            rows = [
                {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()} for row in reader
            ]
    except UnicodeDecodeError as exc:
        raise TimeSeriesError(
            f"manifest '{path}' is not UTF-8 text ({exc}); save it as UTF-8 (Excel: 'CSV UTF-8')"
        ) from None
    if not rows:
        raise TimeSeriesError(f"manifest '{path}' has no rows; expected columns path,date[,bands]")
    columns = list(rows[0])
    for keys, what in ((_PATH_KEYS, "path"), (_DATE_KEYS, "date")):
        if not any(k in columns for k in keys):
            raise TimeSeriesError(f"manifest '{path}' has no '{what}' column (columns: "
                                  f"{', '.join(c for c in columns if c) or 'none'}); expected path,date[,bands]")
    # rows are numbered as a spreadsheet shows them: the header is line 1, the first row line 2
    return [_manifest_row(row, path, i, line=True) for i, row in enumerate(rows, 2)]


def _manifest_row(row: Any, manifest: Path, number: int, *, line: bool = False) -> Entry:
    where = f"manifest '{manifest}', {'line' if line else 'row'} {number}"
    if not isinstance(row, dict):
        raise TimeSeriesError(f"{where}: expected an object with 'path' and 'date', got {row!r}")
    row = {str(k).lower(): v for k, v in row.items()}
    href = next((row[k] for k in _PATH_KEYS if row.get(k)), None)
    if not isinstance(href, str):
        raise TimeSeriesError(
            f"{where}: no 'path' as text (found keys: {', '.join(sorted(row)) or 'none'}; path {href!r})"
        )
    raw_date = next((row[k] for k in _DATE_KEYS if row.get(k)), None)
    date = parse_date(str(raw_date)) if raw_date is not None else None
    if date is None:
        raise TimeSeriesError(
            f"{where}: date {raw_date!r} is missing or not a date (expected YYYY-MM-DD or YYYYMMDD)"
        )
    named = date_from_name(Path(href).name)
    if named is not None and named != date:  # two rows' dates swapped, or a copy-paste: said, the manifest's used
        logging.getLogger("changedetect.io").warning(
            "%s: date %s, but the file name '%s' says %s: are two rows' dates swapped? the manifest's date is "
            "used", where, date.isoformat(), Path(href).name, named.isoformat())
    bands = row.get("bands") or row.get("band")
    if bands and not isinstance(bands, str | list):
        raise TimeSeriesError(f"{where}: bands {bands!r} is neither a list of names nor 'a;b;c'")
    return Entry(
        path=_resolve(href, manifest),
        date=date,
        bands=_names(bands) if bands else None,
        origin=where,
    )


def _names(bands: Any) -> list[str]:
    """Band names from ``"a;b;c"``, ``["a", "b"]`` or ``[{"name": "a"}, ...]``."""
    if isinstance(bands, str):
        return [b for b in re.split(r"[;|,\s]+", bands) if b]
    return [
        str(b.get("name") or b.get("common_name")) if isinstance(b, dict) else str(b) for b in bands
    ]


def _resolve(href: str, relative_to: Path) -> Path:
    if re.match(r"^(https?|s3|gs)://", href):
        raise TileReadError(
            f"'{relative_to}' points at a remote file '{href}'; download it and point at the local copy"
        )
    href = href.removeprefix("file://")
    path = Path(href)
    return path if path.is_absolute() else (relative_to.parent / path)


def _from_stac_item(item: dict[str, Any], path: Path) -> list[Entry]:
    props = item.get("properties") or {}
    raw = props.get("datetime") or props.get("start_datetime")
    date = parse_date(raw) if raw else None
    where = f"STAC item '{item.get('id', path.name)}' in '{path}'"
    if date is None:
        raise TimeSeriesError(f"{where} has no usable properties.datetime ({raw!r})")
    assets = [
        (key, a)
        for key, a in item["assets"].items()
        if _is_raster_asset(a) and not (_SKIP_ROLES & set(a.get("roles", [])))
    ]
    if any("data" in a.get("roles", []) for _, a in assets):
        assets = [(k, a) for k, a in assets if "data" in a.get("roles", [])]
    if not assets:
        raise TileReadError(f"{where} has no raster data assets (GeoTIFF/COG hrefs)")
    entries = []
    for key, asset in assets:
        names = [b.get("name") or b.get("common_name") if isinstance(b, dict) else b
                 for b in asset.get("eo:bands") or []]
        named = bool(names) and all(names)
        bands = [str(n) for n in names] if named else [key]
        if not isinstance(asset.get("href"), str):
            raise TileReadError(f"{where}: asset '{key}' has no href; give the path of its file")
        entries.append(
            Entry(path=_resolve(asset["href"], path), date=date, bands=bands, origin=where, bands_from_key=not named)
        )
    return entries


def _is_raster_asset(asset: dict[str, Any]) -> bool:
    media = str(asset.get("type", "")).lower()
    href = str(asset.get("href", "")).lower()
    return "tiff" in media or "jp2" in media or href.endswith((".tif", ".tiff", ".jp2", ".vrt"))


__all__ = ["Discovery", "Entry", "csv_delimiter", "discover"]
