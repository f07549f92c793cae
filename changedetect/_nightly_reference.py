"""The nightly job's registration reference of each area: pinned in the state, and readable.

Every pair of an area is co-registered onto one acquisition of the area, its *reference*
(``pipeline.run(register_to=...)``), so that all nights' footprints lie on one grid.

- The first time an area is committed, the reference it used is **pinned** in
  ``STATE/state.json`` (``references[area] = {"path", "date", "sha256"}``, written with the
  rest of the state, atomically).  Later nights keep it, even when an older acquisition
  arrives late (a backfill), as long as a file with its checksum is in the catalog (at its
  path or, moved, at another one).  When it has vanished or its content changed, the night
  says so and falls back as below; the fallback is pinned at the next commit.
- Without a pin (a new area, or a state written before references were pinned) the reference
  is the area's **earliest readable** acquisition: candidates are checked in date order with a
  cheap read (header, block offsets, one pixel at two corners: :func:`unreadable_reason`), once
  per night each, until one passes.  Those that fail are *unreadable*: reported once, named,
  with what to do; the job leaves them out of the area's pairs (see ``changedetect.nightly``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from changedetect._nightly_catalog import Acquisition, _checksum, band_group
from changedetect._state import State, load_state
from changedetect.errors import ChangeDetectError, ConfigError

log = logging.getLogger("changedetect.nightly")

_KEYS = ("path", "date", "sha256")


@dataclass
class NightState(State):
    """The committed state plus each area's pinned reference (``references[area]``)."""

    references: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (a reader of the plain :class:`State` ignores ``references``)."""
        return {**super().to_json(), "references": self.references}


def load(state_dir: Path) -> NightState:
    """``STATE/state.json`` with its pinned references (none in a state written before they were)."""
    base = load_state(state_dir)
    path = state_dir / "state.json"
    refs = json.loads(path.read_text(encoding="utf-8")).get("references", {}) if path.exists() else {}
    if not isinstance(refs, dict) or not all(
            isinstance(r, dict) and all(isinstance(r.get(k), str) for k in _KEYS)
            and (isinstance(r.get("files", []), list) and all(isinstance(f, str) for f in r.get("files", [])))
            for r in refs.values()):
        raise ConfigError(f"nightly state file '{path}': 'references' must map each area to its "
                          "reference's path, date and sha256; remove the state directory to start over")
    return NightState(acquisitions=base.acquisitions, generation=base.generation, nights=base.nights,
                      checksums=base.checksums,
                      references={a: {k: r[k] for k in (*_KEYS, "files", "bands") if k in r} for a, r in refs.items()})


def record(acq: Acquisition) -> dict[str, Any]:
    """How a reference is pinned in the state (a band-per-file date with its band files)."""
    return {"path": acq.path, "date": acq.date, "sha256": acq.sha256, **({"files": list(acq.files)} if acq.files else {}),
            **({"bands": list(acq.bands)} if acq.named else {})}  # a STAC item's band names


def acquisition_unreadable(acq: Acquisition) -> str | None:
    """Why one of ``acq``'s files (each band file of a band-per-file date) cannot be read, naming
    it (:func:`unreadable_reason`), or None."""
    for path in acq.inputs:
        reason = unreadable_reason(path)
        if reason is not None:
            what = "scene classification (SCL)" if path == acq.scl else "band file"
            return reason if len(acq.inputs) == 1 else f"{acq.date}'s {what} {reason}"
    return None


def unreadable_reason(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as a raster, naming it (None when it can).

    The cheap check of :func:`changedetect.io._inspect.inspect_raster` (header, and a GeoTIFF's
    block offsets against the file's size), the read path's (:func:`changedetect.io._checks.check_raster`:
    GCPs or RPCs alone, a complex or palette band; a scene classification, ``*_SCL_20m.tif``, may carry
    its classes' colours, as ``open_series`` lets it), a CRS, then the pixel at two opposite corners of
    every band.
    """
    import rasterio
    from rasterio.windows import Window

    from changedetect.io._checks import check_raster
    from changedetect.io._inspect import inspect_raster
    from changedetect.io._names import is_scl

    try:
        meta = inspect_raster(path)
        check_raster(meta, bands=[] if is_scl(Path(path).stem) else None)  # as open_series refuses it
        if meta.crs is None:  # it could never be put on the area's grid: every night would fail the area
            return (f"'{path}' has no CRS, so it cannot be placed on the area's grid: set it (e.g. gdal_edit.py "
                    "-a_srs EPSG:32648) and deliver the file again")
        with rasterio.open(path) as ds:
            for col, row in ((0, 0), (ds.width - 1, ds.height - 1)):
                ds.read(window=Window(col, row, 1, 1))
    except ChangeDetectError as exc:  # names the file and what to do
        return str(exc)
    except Exception as exc:  # any failure means the pipeline could not read it either
        text = str(exc).strip().splitlines()
        return f"'{path}' cannot be read ({(text[0] if text else type(exc).__name__)[:300]})"
    return None


@dataclass
class Choice:
    """An area's reference for one night, and what the night must report about it."""

    reference: Acquisition | None
    #: path -> one-line message, for the acquisitions that failed the check tonight
    unreadable: dict[str, str] = field(default_factory=dict)
    #: the pinned reference vanished or changed, or is re-pinned as its STAC item (one line), else None
    warning: str | None = None


def choose(area: str, acqs: list[Acquisition], pinned: dict[str, Any] | None,
           checksums: dict[str, list[Any]] | None, checked: dict[str, str | None]) -> Choice:
    """The reference of ``area`` tonight: the pinned one if still there, else the earliest readable.

    ``acqs`` are the area's acquisitions in date order; ``checksums`` the state's cache (updated
    when the pinned file, dated after the night, must be checksummed here); ``checked`` caches
    :func:`unreadable_reason` by path for the night.
    """
    warning = None
    if pinned is not None:
        same = [q for q in acqs if q.sha256 == pinned["sha256"]]
        if same:
            return Choice(same[0])
        item = _item_of(pinned, acqs)
        if item is not None:
            return Choice(item, warning=(
                f"area {area}: its registration reference '{pinned['path']}' ({pinned['date']}) is one asset of a "
                "STAC item, pinned when the job read an item's first asset alone; tonight's pairs are registered "
                f"onto the item as it is now read, its {len(item.paths)} band asset(s) ({', '.join(item.bands)}), "
                "which becomes the area's reference when the night is committed"))
        where = Path(pinned["path"])
        if pinned.get("files"):  # a band-per-file date, dated after the night
            files = [Path(f) for f in pinned["files"]]
            if all(f.is_file() for f in files):
                again = band_group(area, pinned["date"], files, checksums, pinned.get("bands"))
                if again.sha256 == pinned["sha256"]:
                    return Choice(again)
        elif where.is_file() and _checksum(where, checksums) == pinned["sha256"]:  # dated after the night
            return Choice(Acquisition(area, pinned["date"], pinned["path"], pinned["sha256"]))
        what = "has changed (another checksum)" if where.is_file() else "is no longer in the catalog"
        warning = f"area {area}: its registration reference '{pinned['path']}' ({pinned['date']}) {what}"
    unreadable, found = {}, None
    for q in acqs:
        if q.path not in checked:
            checked[q.path] = acquisition_unreadable(q)
        reason = checked[q.path]
        if reason is None:
            found = q
            break
        unreadable[q.path] = (f"area {area}: {reason}. It is left out of the area's pairs and is not its "
                              "registration reference; a good copy will be a new acquisition (or remove the "
                              "file from the catalog)")
    if warning is not None:
        warning += (f"; tonight's pairs are registered onto '{found.path}' ({found.date}), which becomes the "
                    "area's reference when the night is committed (earlier nights' footprints were "
                    "registered onto the old one)" if found is not None else
                    "; no other acquisition of the area is readable")
    return Choice(found, unreadable, warning)


def _item_of(pinned: dict[str, Any], acqs: list[Acquisition]) -> Acquisition | None:
    """The acquisition read from the STAC item one of whose assets is a reference pinned by a version
    that read an item's first asset alone (``aot``, ``visual``, one band; a pin without ``files``): the
    item's band assets now, which a pair reads (that one file beside them would be a date of other
    bands, and fail the area).  None when the pin is no such asset."""
    if pinned.get("files"):
        return None
    return next((q for q in acqs if q.item_files and q.date == pinned["date"] and pinned["path"] in q.item_files),
                None)


__all__ = ["Choice", "NightState", "acquisition_unreadable", "choose", "load", "record", "unreadable_reason"]
