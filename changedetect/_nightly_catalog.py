"""The nightly job's catalog: acquisitions found by area, and the pairs to run.

See :mod:`changedetect.nightly` for the catalog's layout (one folder per area, or
files grouped by their name without the date; GeoTIFF/COG with the date in the
name, or STAC item JSON files pointing at one local COG).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from changedetect._state import sha256_file
from changedetect.errors import TileReadError

log = logging.getLogger("changedetect.nightly")

_DATE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")
_RASTER = {".tif", ".tiff"}


@dataclass(frozen=True)
class Acquisition:
    """One date of one area: the raster to read, its date and checksum."""

    area: str
    date: str
    path: str
    sha256: str


def _date_in_name(name: str) -> str | None:
    m = _DATE.search(name)
    if not m:
        return None
    try:
        return dt.date(int(m[1]), int(m[2]), int(m[3])).isoformat()
    except ValueError:
        return None


def _stac_item(path: Path) -> tuple[str, Path] | None:
    """``(date, data file)`` of a STAC item JSON pointing at one local COG, else None."""
    try:
        item = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(item, dict) or item.get("type") != "Feature" or not isinstance(item.get("assets"), dict):
        return None
    try:  # a malformed item (properties or an asset not an object, a datetime not a string) is no item
        when = str((item.get("properties") or {}).get("datetime") or "")
        date = when[:10] if re.match(r"\d{4}-\d{2}-\d{2}", when) else _date_in_name(path.name)
        assets = [a for a in item["assets"].values()
                  if Path(str(a.get("href", ""))).suffix.lower() in _RASTER
                  and ("data" in (a.get("roles") or ["data"]) or "visual" in (a.get("roles") or []))]
    except (AttributeError, TypeError):
        return None
    if date is None or not assets:
        return None
    href = str(assets[0]["href"]).removeprefix("file://")
    return date, (path.parent / href).resolve() if not Path(href).is_absolute() else Path(href)


def _checksum(path: Path, known: dict[str, list[Any]] | None) -> str:
    """sha256 of ``path``, reusing ``known[path] = [size, mtime_ns, sha256]`` when the file is unchanged."""
    st = path.stat()
    key = str(path)
    if known is not None and key in known and known[key][:2] == [st.st_size, st.st_mtime_ns]:
        return str(known[key][2])
    digest = sha256_file(path)
    if known is not None:
        known[key] = [st.st_size, st.st_mtime_ns, digest]
    return digest


def discover(catalog: str | Path, *, night: str | None = None, known: dict[str, list[Any]] | None = None,
             problems: list[str] | None = None) -> dict[str, list[Acquisition]]:
    """Acquisitions of a catalog by area (dated on or before ``night`` when given).

    ``known`` caches checksums by path, size and modification time (updated in place),
    so that a large catalog is not read again every night.  A dated entry whose data file is
    missing or cannot be read (a STAC item delivered before its COG, a broken link, no
    permission) is left out, its message appended to ``problems`` (logged when None): one such
    file must not stop every area of the catalog.
    """
    catalog = Path(catalog).absolute()  # the pairs run from their work folders: no relative paths
    if not catalog.is_dir():
        raise TileReadError(f"catalog '{catalog}' is not a directory")
    entries: list[tuple[str, Path]] = []
    for item in sorted(catalog.iterdir()):
        if item.name.startswith("."):
            continue
        if item.is_dir():
            entries += [(item.name, f) for f in sorted(item.iterdir()) if not f.name.startswith(".")]
        else:
            key = _DATE.sub("", item.stem).strip("_-. ") or "default"
            entries.append((key, item))
    areas: dict[str, dict[str, Acquisition]] = {}  # area -> data path -> acquisition
    for area, f in entries:
        found: tuple[str | None, Path] | None = _stac_item(f) if f.suffix.lower() == ".json" else (
            (_date_in_name(f.name), f) if f.suffix.lower() in _RASTER else None)
        date, data = found if found is not None else (None, f)
        if date is None:
            if f.suffix.lower() in _RASTER | {".json"}:
                log.warning("catalog: skipping '%s' (no date in its name or STAC item)", f)
            continue
        if night is not None and date > night:
            continue
        try:
            if not Path(data).is_file():
                raise FileNotFoundError(f"'{data}' does not exist")
            digest = _checksum(Path(data), known)
        except OSError as exc:
            message = (f"catalog: '{f}' left out tonight, its data cannot be read ({exc}); it is picked up "
                       "once the file is there and readable")
            if problems is None:
                log.warning("%s", message)
            else:
                problems.append(message)
            continue
        mine = areas.setdefault(area, {})
        if str(data) not in mine or f.suffix.lower() == ".json":  # a COG beside its STAC item: the item's date
            mine[str(data)] = Acquisition(area, date, str(data), digest)
    return {a: sorted(acqs.values(), key=lambda q: (q.date, q.path)) for a, acqs in areas.items()}


def plan_pairs(acqs: list[Acquisition], processed: dict[str, dict[str, str]]) -> tuple[list[Acquisition], list[tuple[Acquisition, Acquisition]]]:
    """The new acquisitions of an area and the (previous, new) pairs to run."""
    new = [q for q in acqs if q.sha256 not in processed]
    known = {q.sha256: q for q in acqs}
    pairs = []
    for q in new:
        earlier = [p for p in known.values() if p.date < q.date]
        if earlier:
            pairs.append((max(earlier, key=lambda p: (p.date, p.path)), q))
    return new, pairs


__all__ = ["Acquisition", "discover", "plan_pairs"]
