"""The nightly job's catalog: acquisitions found by area, and the pairs to run.

See :mod:`changedetect.nightly` for the catalog's layout (one folder per area, or
files grouped by their name without the date; GeoTIFF/COG with the date in the
name, or STAC item JSON files with local assets).  One-band files named by
their band (Sentinel-2's ``T32TPP_20180211_B02.tif``, a Landsat product's ``..._SR_B5.TIF``,
read as :func:`changedetect.io.open_series` reads them) are grouped: one date's band files
of an area are one acquisition, whose checksum covers every one of them.  So are a STAC item's
band assets (one file per band, :mod:`changedetect._nightly_stac`), named by the item; its SCL
asset is the date's cloud mask.  A date's SCL has a checksum of its own (``scl_sha256``), kept
apart from the date's: :mod:`changedetect._nightly_scl` compares a date again when it changes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from changedetect._nightly_stac import Item, read_item
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
    or its one raster, a STAC item's SCL asset), which its pair's run reads as the date's cloud mask;
    not in ``sha256`` (a state keeps the dates it knows), but checksummed on its own in ``scl_sha256``
    (:mod:`changedetect._nightly_scl`).  ``named``: ``bands`` were given by a STAC item, not read
    from the file names, so a pair's manifest names them (:meth:`rows`).  ``item_files``: a STAC item's
    every raster asset, by which a state written when the job read its first asset alone knows the date.
    ``digests``: each of ``files``' own sha256, in their order (:attr:`file_sha256`).
    """

    area: str
    date: str
    path: str
    sha256: str
    files: tuple[str, ...] = ()
    bands: tuple[str, ...] = ()
    scl: str | None = None
    scl_sha256: str | None = None
    named: bool = False
    item_files: tuple[str, ...] = ()
    digests: tuple[str, ...] = ()

    @property
    def file_sha256(self) -> dict[str, str]:
        """Each band file's sha256 by its path, for a date of several files (a band-per-file date, a STAC
        item's band assets), as the state records it (:mod:`changedetect._nightly_redelivery`); ``{}`` for
        one file, whose checksum is the date's (and for one built without them)."""
        if len(self.files) < 2 or len(self.digests) != len(self.files):
            return {}
        return dict(zip(self.files, self.digests, strict=True))

    @property
    def paths(self) -> tuple[str, ...]:
        """Every image file of the acquisition (its band files, or its one raster)."""
        return self.files or (self.path,)

    @property
    def inputs(self) -> tuple[str, ...]:
        """What a run reads of the date: :attr:`paths` and its SCL."""
        return (*self.paths, *([self.scl] if self.scl else []))

    def band_names(self) -> list[str | None]:
        """The band name a pair's manifest gives each of :attr:`inputs` (``SCL`` for the SCL), where a
        STAC item named them; None where the file's name or its own descriptions say it."""
        if not self.named:
            return [None] * len(self.inputs)
        return [*self.bands, *(["SCL"] if self.scl else [])]


def _date_in_name(name: str) -> str | None:
    m = _DATE.search(name)
    if not m:
        return None
    try:
        return dt.date(int(m[1]), int(m[2]), int(m[3])).isoformat()
    except ValueError:
        return None


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


def band_group(area: str, date: str, files: list[Path], known: dict[str, list[Any]] | None,
               names: list[str] | None = None) -> Acquisition:
    """One date's band files as one acquisition: files in band order; its checksum is the sha256 of
    the ``[band, file's sha256]`` list in that order (a single band file keeps its own checksum), so
    a band file changed, added or removed makes the date a new acquisition, and the order in which
    the files arrived does not matter.  ``names``: the files' bands as a STAC item names them, in
    band order (the acquisition is then ``named``); else read from the file names.

    Raises
    ------
    TileReadError
        Two files of the date hold one band (two tiles of one date in one area), naming them.
    OSError
        A band file cannot be read.
    """
    if names is None:
        files = sorted(files, key=_band_order)
    given, names = names is not None, names or [band_of(f) or "" for f in files]
    dupes = sorted({n for n in names if names.count(n) > 1}, key=band_sort_key)
    if dupes:
        twice = [f"'{f}'" for f, n in zip(files, names, strict=True) if n == dupes[0]]
        raise TileReadError(
            f"area {area}: {date} has {len(twice)} files for band {dupes[0]} ({', '.join(twice)}): one date of "
            "an area is one scene, so put each tile in an area folder of its own (or mosaic the tiles into "
            "one file per band); the date is left out until then")
    digests = [_checksum(f, known) for f in files]
    digest = digests[0] if len(files) == 1 else sha256_json([list(x) for x in zip(names, digests, strict=True)])
    return Acquisition(area, date, str(files[0]), digest, tuple(map(str, files)), tuple(names), named=given,
                       digests=tuple(digests))


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


def _feature(path: Path) -> str | None:
    """What a JSON that :func:`read_item` did not take is meant as, when it holds imagery: ``"Feature"`` (a
    malformed STAC item) or ``"FeatureCollection"`` (an item collection, which this catalog does not read),
    both said; None for a catalog's own file (``catalog.json``, ``collection.json``), passed over."""
    if path.suffix.lower() != ".json":
        return None
    try:
        kind = json.loads(path.read_text(encoding="utf-8")).get("type")
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        return None
    return kind if kind in ("Feature", "FeatureCollection") else None


def discover(catalog: str | Path, *, night: str | None = None, known: dict[str, list[Any]] | None = None,
             problems: list[str] | None = None) -> dict[str, list[Acquisition]]:
    """Acquisitions of a catalog by area (dated on or before ``night`` when given).

    ``known`` caches checksums by path, size and modification time (updated in place),
    so that a large catalog is not read again every night.  A dated entry whose data file is
    missing or cannot be read (a STAC item delivered before its COG, a broken link, no
    permission) is left out, its message appended to ``problems`` (logged when None): one such
    file must not stop every area of the catalog.  One date's band files of an area are one
    acquisition (:func:`band_group`; its side products left out); a date with two files for one
    band is left out the same way, and so is a date of two acquisitions (:func:`_one_per_date`).
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
    items = {f: read_item(f) for _, f in entries if f.suffix.lower() == ".json"}
    # an item's files are read through it: not loose files of their own (a COG beside its item: the item's date)
    through_items = {p for it in items.values() if it is not None for p in it.files}
    groups: list[tuple[str, str, Item]] = []  # items with one file per band
    item_scls: dict[tuple[str, str], Path] = {}
    item_files: dict[tuple[str, str], tuple[str, ...]] = {}  # (area, date) -> every raster its item names
    for area, f in entries:
        if f in through_items or f.resolve() in through_items:
            continue
        stac = items.get(f)
        date = (stac.date if stac is not None else None) or (
            _date_in_name(f.name) if f.suffix.lower() in _RASTER or stac is not None else None)
        if date is None:
            # in the night's warnings (-q shows no log line): a raster, or a STAC item without a date; a JSON
            # that is no item (a STAC catalog.json or collection.json, any other file) is no acquisition
            if f.suffix.lower() in _RASTER:
                problem(f"catalog: '{f}' is skipped every night: no date in its name; rename it with its acquisition "
                        f"date, like '{area}_20240131{f.suffix.lower()}' (YYYYMMDD), or give it a STAC item with its "
                        "datetime")
            elif (kind := "Feature" if stac is not None else _feature(f)) == "FeatureCollection":
                problem(f"catalog: '{f}' is skipped every night: an item collection; the nightly catalog reads one "
                        "STAC item per file: save each item as its own file")
            elif kind is not None:
                problem(f"catalog: '{f}' is skipped every night: a STAC item this job cannot read (its "
                        "properties.datetime, or an asset whose href is a raster, is missing or malformed); fix the "
                        "item")
            continue
        if night is not None and date > night:
            continue
        if stac is not None:
            item_files[(area, date)] = tuple(map(str, stac.rasters))
            if len(stac.assets) > 1:
                groups.append((area, date, stac))
            else:
                dated.append((area, f, date, stac.assets[0][1]))
            if stac.scl is not None:
                item_scls[(area, date)] = stac.scl
        elif band_of(f) is not None:
            bands.setdefault((area, date), []).append(f)
        elif _side_product(f):
            side.setdefault((area, date), []).append(f)
        else:
            dated.append((area, f, date, f))
    scls = {**_scls(side, bands, dated, [(a, d) for a, d, _ in groups]), **item_scls}
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
        scl = scls.get((area, date))
        areas.setdefault(area, {})[str(data)] = Acquisition(area, date, str(data), digest,
                                                            scl=str(scl) if scl else None,
                                                            item_files=item_files.get((area, date), ()))
    per_band = [(area, date, files, None) for (area, date), files in sorted(bands.items())] + [
        (area, date, [f for _, f in item.assets], [n for n, _ in item.assets]) for area, date, item in groups]
    for area, date, files, names in per_band:
        try:
            acq = band_group(area, date, files, known, names)
        except TileReadError as exc:
            problem(str(exc))
            continue
        except OSError as exc:
            problem(f"catalog: area {area}, {date}: left out tonight, a band file cannot be read ({exc}); it is "
                    "picked up once its files are there and readable")
            continue
        if (area, date) in scls:
            acq = replace(acq, scl=str(scls[(area, date)]))
        acq = replace(acq, item_files=item_files.get((area, date), ()))
        areas.setdefault(area, {})[acq.path] = acq
    return {a: sorted(_with_scl_checksums(_one_per_date(a, acqs.values(), problem), known, problem),
                      key=lambda q: (q.date, q.path)) for a, acqs in areas.items()}


def _one_per_date(area: str, acqs: Iterable[Acquisition], problem: Callable[[str], None]) -> list[Acquisition]:
    """``acqs`` without the dates that have more than one acquisition (two tiles of one date, or a date delivered
    twice under two names), each said in one line: one date of an area is one scene, as :func:`band_group` has
    it for a date with two files for one band.  Until 2026-12-03 both were compared with the date before (their
    pairs had the same dates) and a later date with the last by name alone; one of them delivered again then
    withdrew what the other's pair reported (:func:`changedetect._withdraw_masked.withdraw_replaced` takes a
    pair's rows by its dates)."""
    by_date: dict[str, list[Acquisition]] = {}
    for q in acqs:
        by_date.setdefault(q.date, []).append(q)
    out = []
    for date, same in sorted(by_date.items()):
        if len(same) == 1:
            out += same
            continue
        names = [f"'{q.path}'" + (f" (and its {len(q.files) - 1} other band files)" if len(q.files) > 1 else "")
                 for q in sorted(same, key=lambda q: q.path)]
        problem(f"area {area}: {date} has {len(same)} files ({', '.join(names)}): one date of an area is one "
                "scene, so put each tile in an area folder of its own (or mosaic the tiles into one file, or remove "
                "the one not to be compared); the date is left out until then")
    return out


def _with_scl_checksums(acqs: Iterable[Acquisition], known: dict[str, list[Any]] | None,
                        problem: Callable[[str], None]) -> list[Acquisition]:
    """``acqs`` with their SCL's checksum; an SCL that cannot be read is left out of its date tonight
    (one problem line): the date is compared again once it can be (:mod:`changedetect._nightly_scl`)."""
    out = []
    for q in acqs:
        if q.scl is not None:
            try:
                q = replace(q, scl_sha256=_checksum(Path(q.scl), known))
            except OSError as exc:
                problem(f"catalog: area {q.area}, {q.date}: its scene classification (SCL) '{q.scl}' cannot be "
                        f"read ({exc}); the date goes on without its cloud mask tonight and is compared again "
                        "once the SCL is readable")
                q = replace(q, scl=None)
        out.append(q)
    return out


def _scls(side: dict[tuple[str, str], list[Path]], bands: dict[tuple[str, str], list[Path]],
          dated: list[tuple[str, Path, str, Path]], items: list[tuple[str, str]]) -> dict[tuple[str, str], Path]:
    """``(area, date) -> its one SCL file`` among its side products, where the date has band files
    or one other raster (a stacked file, a STAC item's COG or its band assets) for it to mask."""
    rasters: dict[tuple[str, str], set[Path]] = {}
    for area, _, date, data in dated:
        rasters.setdefault((area, date), set()).add(data)
    out = {}
    for key, files in side.items():
        found = [f for f in files if is_scl(f.stem)]
        if len(found) == 1 and (key in bands or key in items or len(rasters.get(key, ())) == 1):
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
