"""The nightly job's catalog: acquisitions found by area, and the pairs to run.

See :mod:`changedetect.nightly` for the catalog's layout (one folder per area, or
files grouped by their name without the date; GeoTIFF/COG with the date in the
name, or STAC item JSON files pointing at one local COG).  One-band files named by
their band (Sentinel-2's ``T32TPP_20180211_B02.tif``, a Landsat product's ``..._SR_B5.TIF``,
read as :func:`changedetect.io.open_series` reads them) are grouped: one date's band files
of an area are one acquisition, whose checksum covers every one of them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from changedetect._state import sha256_file, sha256_json
from changedetect.errors import TileReadError
from changedetect.io._names import (
    LANDSAT_RE,
    S2_AUX_RE,
    S2_BAND_RE,
    band_sort_key,
    is_scl,
    landsat_band,
    landsat_product,
    s2_band,
)

log = logging.getLogger("changedetect.nightly")

_DATE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")
_RASTER = {".tif", ".tiff"}


@dataclass(frozen=True)
class Acquisition:
    """One date of one area: the raster to read, its date and checksum.

    A date delivered as one file per band has its band files in ``files`` (in band order; ``path``
    is the first) and their bands in ``bands``; its ``sha256`` covers them all (:func:`band_group`).
    ``scl``: its Sentinel-2 scene classification beside it (``*_SCL_20m.tif`` beside its band files
    or its one raster), which its pair's run reads as the date's cloud mask; not in ``sha256``.
    """

    area: str
    date: str
    path: str
    sha256: str
    files: tuple[str, ...] = ()
    bands: tuple[str, ...] = ()
    scl: str | None = None

    @property
    def paths(self) -> tuple[str, ...]:
        """Every image file of the acquisition (its band files, or its one raster)."""
        return self.files or (self.path,)

    @property
    def inputs(self) -> tuple[str, ...]:
        """What a run reads of the date: :attr:`paths` and its SCL."""
        return (*self.paths, *([self.scl] if self.scl else []))


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


def band_of(path: Path) -> str | None:
    """The band a one-band file holds by its name, as :func:`changedetect.io.open_series` names it
    (Sentinel-2's ``B02``, ``B8A``; a Landsat product's ``SR_B5`` as ``nir``), else None."""
    landsat = landsat_band(path)
    return s2_band(path) or (landsat[0] if landsat else None)


def _side_product(path: Path) -> bool:
    """A Sentinel-2 L2A side product (``_SCL``, ``_AOT``, ...) or a Landsat product's QA file:
    left out of a date that has band files, as :func:`changedetect.io.open_series` leaves them out."""
    return S2_AUX_RE.search(path.stem) is not None or (landsat_product(path) and landsat_band(path) is None)


def _area_of(path: Path) -> str:
    """The area of a file lying directly in the catalog: its name without its band and dates.

    A Landsat product's file (``LC09_L2SP_125052_20240109_..._02_T1_SR_B5.TIF``) belongs to its WRS-2
    path/row (``125052``), whichever satellite or collection tier delivered it, so that LC08's and
    LC09's dates of one scene are one series; Level-1 files (digital numbers, not reflectance) are
    another series of it (``125052_L1``).
    """
    stem = path.stem
    landsat = LANDSAT_RE.match(stem)
    if landsat is not None:
        level, path_row = stem.split("_")[1:3]
        return path_row if level[1] != "1" else f"{path_row}_L1"
    band = S2_BAND_RE.search(stem) or S2_AUX_RE.search(stem)
    if band is not None:
        stem = stem[:band.start()]
    return _DATE.sub("", stem).strip("_-. ") or "default"


def _band_order(path: Path) -> tuple[int, str, str]:
    landsat = landsat_band(path)
    return (landsat[1], "", path.name) if landsat else (*band_sort_key(s2_band(path) or ""), path.name)


def band_group(area: str, date: str, files: list[Path], known: dict[str, list[Any]] | None) -> Acquisition:
    """One date's band files as one acquisition: files in band order; its checksum is the sha256 of
    the ``[band, file's sha256]`` list in that order (a single band file keeps its own checksum), so
    a band file changed, added or removed makes the date a new acquisition, and the order in which
    the files arrived does not matter.

    Raises
    ------
    TileReadError
        Two files of the date hold one band (two tiles of one date in one area), naming them.
    OSError
        A band file cannot be read.
    """
    files = sorted(files, key=_band_order)
    names = [band_of(f) or "" for f in files]
    dupes = sorted({n for n in names if names.count(n) > 1}, key=band_sort_key)
    if dupes:
        twice = [f"'{f}'" for f, n in zip(files, names, strict=True) if n == dupes[0]]
        raise TileReadError(
            f"area {area}: {date} has {len(twice)} files for band {dupes[0]} ({', '.join(twice)}): one date of "
            "an area is one scene, so put each tile in an area folder of its own (or mosaic the tiles into "
            "one file per band); the date is left out until then")
    digests = [_checksum(f, known) for f in files]
    digest = digests[0] if len(files) == 1 else sha256_json([list(x) for x in zip(names, digests, strict=True)])
    return Acquisition(area, date, str(files[0]), digest, tuple(map(str, files)), tuple(names))


def incomplete(area: str, acqs: list[Acquisition], processed: dict[str, Any],
               reads: Collection[str] | None = None) -> dict[str, str]:
    """The new band-per-file dates of an area that lack a band some other date of the area has
    (its bands still arriving): path -> one line naming the date and the missing bands.  They are
    left for a later night, as a STAC item whose COG has not arrived; a date with more bands than
    the others is not incomplete (its pair will say which bands differ).  ``reads``: the bands the
    run reads (canonical names, :func:`changedetect._detect_inputs._canon`); only those count, so
    that an archive delivered with more bands than the feed (13 Sentinel-2 bands, L1C's B10) does
    not hold every later date back (None: every band counts)."""
    from changedetect._detect_inputs import _canon

    groups = [q for q in acqs if q.bands]
    out = {}
    for q in groups:
        if q.sha256 in processed:
            continue
        others = [p for p in groups if p.date != q.date]
        missing = sorted({b for p in others for b in p.bands if reads is None or _canon(b) in reads}
                         - set(q.bands), key=band_sort_key)
        if not missing:
            continue
        example = next(p for p in others if missing[0] in p.bands)
        where = example.files[example.bands.index(missing[0])]
        out[q.path] = (f"area {area}: {q.date} is incomplete, missing {', '.join(missing)} (which the area's other "
                       f"dates have, e.g. '{where}'): only {', '.join(q.bands)} are there ('{q.path}'"
                       f"{', ...' if len(q.files) > 1 else ''}); it is left out tonight and taken up on the first "
                       "night they are there")
    return out


def discover(catalog: str | Path, *, night: str | None = None, known: dict[str, list[Any]] | None = None,
             problems: list[str] | None = None) -> dict[str, list[Acquisition]]:
    """Acquisitions of a catalog by area (dated on or before ``night`` when given).

    ``known`` caches checksums by path, size and modification time (updated in place),
    so that a large catalog is not read again every night.  A dated entry whose data file is
    missing or cannot be read (a STAC item delivered before its COG, a broken link, no
    permission) is left out, its message appended to ``problems`` (logged when None): one such
    file must not stop every area of the catalog.  One date's band files of an area are one
    acquisition (:func:`band_group`; its side products left out); a date with two files for one
    band is left out the same way.
    """
    catalog = Path(catalog).absolute()  # the pairs run from their work folders: no relative paths
    if not catalog.is_dir():
        raise TileReadError(f"catalog '{catalog}' is not a directory")

    def problem(message: str) -> None:
        if problems is None:
            log.warning("%s", message)
        else:
            problems.append(message)

    entries: list[tuple[str, Path]] = []
    for item in sorted(catalog.iterdir()):
        if item.name.startswith("."):
            continue
        if item.is_dir():
            entries += [(item.name, f) for f in sorted(item.iterdir()) if not f.name.startswith(".")]
        else:
            entries.append((_area_of(item), item))
    areas: dict[str, dict[str, Acquisition]] = {}  # area -> data path -> acquisition
    bands: dict[tuple[str, str], list[Path]] = {}  # (area, date) -> its band files
    side: dict[tuple[str, str], list[Path]] = {}  # (area, date) -> side products (L2A SCL, Landsat QA)
    dated: list[tuple[str, Path, str, Path]] = []
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
        if f.suffix.lower() in _RASTER and band_of(f) is not None:
            bands.setdefault((area, date), []).append(f)
        elif f.suffix.lower() in _RASTER and _side_product(f):
            side.setdefault((area, date), []).append(f)
        else:
            dated.append((area, f, date, Path(data)))
    scls = _scls(side, bands, dated)
    for (area, date), files in side.items():
        if (area, date) in bands or (area, date) in scls:
            rest = [f for f in files if f != scls.get((area, date))]
            if rest:
                log.info("area %s, %s: leaving out side products %s", area, date, ", ".join(f.name for f in rest))
        else:  # no band files beside it: a raster like any other
            dated += [(area, f, date, f) for f in files]
    for area, f, date, data in dated:
        try:
            if not data.is_file():
                raise FileNotFoundError(f"'{data}' does not exist")
            digest = _checksum(data, known)
        except OSError as exc:
            problem(f"catalog: '{f}' left out tonight, its data cannot be read ({exc}); it is picked up "
                    "once the file is there and readable")
            continue
        mine = areas.setdefault(area, {})
        if str(data) not in mine or f.suffix.lower() == ".json":  # a COG beside its STAC item: the item's date
            scl = scls.get((area, date))
            mine[str(data)] = Acquisition(area, date, str(data), digest, scl=str(scl) if scl else None)
    for (area, date), files in sorted(bands.items()):
        try:
            acq = band_group(area, date, files, known)
        except TileReadError as exc:
            problem(str(exc))
            continue
        except OSError as exc:
            problem(f"catalog: area {area}, {date}: left out tonight, a band file cannot be read ({exc}); it is "
                    "picked up once its files are there and readable")
            continue
        if (area, date) in scls:
            acq = replace(acq, scl=str(scls[(area, date)]))
        areas.setdefault(area, {})[acq.path] = acq
    return {a: sorted(acqs.values(), key=lambda q: (q.date, q.path)) for a, acqs in areas.items()}


def _scls(side: dict[tuple[str, str], list[Path]], bands: dict[tuple[str, str], list[Path]],
          dated: list[tuple[str, Path, str, Path]]) -> dict[tuple[str, str], Path]:
    """``(area, date) -> its one SCL file`` among its side products, where the date has band files
    or one other raster (a stacked file, a STAC item's COG) for it to mask."""
    rasters: dict[tuple[str, str], set[Path]] = {}
    for area, _, date, data in dated:
        rasters.setdefault((area, date), set()).add(data)
    out = {}
    for key, files in side.items():
        found = [f for f in files if is_scl(f.stem)]
        if len(found) == 1 and (key in bands or len(rasters.get(key, ())) == 1):
            out[key] = found[0]
    return out


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


__all__ = ["Acquisition", "band_group", "band_of", "discover", "incomplete", "plan_pairs"]
