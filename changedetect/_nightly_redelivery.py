"""A processed date delivered again with new content (private; :mod:`changedetect._nightly_plan`).

A corrected re-delivery keeps the file's name and changes its content (a tile delivered 15 m off, then
corrected): its checksum is new, so the date is a new acquisition.  Judged a re-delivery, its two pairs
(with the dates before and after it) run again, and so does each processed pair that read it without
comparing it, as its same-season partner or a fill date (:func:`changedetect._nightly_plan._reading_reruns`,
as for a late SCL), and the open violations of theirs that the pair, compared again, no longer finds are
withdrawn (:func:`changedetect._withdraw_masked.withdraw_replaced`; as a fill date, only where the pair
filled from it); the night's warnings name what changed.

- A date of one file: the file processed before under its path, for the same date.
- A date of several files (a band-per-file date, a STAC item's band assets: :func:`changedetect.
  _nightly_catalog.band_group`), whose checksum covers all of them: a file the date had when it was last
  compared (its record's ``"files"``, each file's sha256 by its path: :attr:`~changedetect._nightly_catalog.
  Acquisition.file_sha256`) that now has other content under the same path, among the bands a pair's run
  reads (``reads``: :func:`changedetect._nightly_plan._bands_read`; None, every band).  A band added (a NIR
  file after the RGB ones), one removed, or one the run does not read changed, is no re-delivery: no band
  the pairs compared changed; the date is new all the same (its pair with the date before runs, as before).
  Its SCL is no band file: a late or changed SCL is :mod:`changedetect._nightly_scl`'s.

A record written before the files' checksums were kept has no ``"files"``: that date is not judged (as
before).  Such a record is completed (:func:`settled`) the first night its date's checksum is still the
one it was compared with, when each file is known to be as it was then; a STAC item first known by one
asset (:func:`changedetect._nightly_plan._stac_upgrades`) has none either, and its upgrade is no
re-delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from changedetect._nightly_catalog import Acquisition


@dataclass(frozen=True)
class Redelivery:
    """A new acquisition judged a re-delivery."""

    #: the night's warning line
    warning: str
    #: the files of a date of several files whose content changed (``()`` for a date of one file)
    files: tuple[str, ...] = ()


_DOES = ("its pairs with the dates before and after it (and those that read it as their same-season partner or a "
         "fill date) are compared again, and the open violations of those pairs "
         "that the new {what} no longer {verb} are withdrawn (the replaced file's, a mis-georeferenced delivery's "
         "artefacts)")


def replaced(area: str, new: list[Acquisition], processed: dict[str, dict[str, Any]],
             reads: set[str] | None = None) -> dict[str, Redelivery]:
    """Checksum -> :class:`Redelivery`, per new acquisition of ``area`` that was processed before with other
    content (see the module docstring; ``reads``: the bands a pair's run reads, canonical names)."""
    before = {rec.get("path"): rec for rec in processed.values()}
    out = {}
    for q in new:
        if len(q.files) > 1:
            changed, night = _changed_files(q, processed, reads)
            if changed:
                names = ", ".join(f"'{f}'" for f in changed)
                many = len(changed) > 1
                out[q.sha256] = Redelivery(
                    f"area {area}: {q.date}'s band file{'s' if many else ''} {names} {'have' if many else 'has'} new "
                    f"content since night {night}: " + _DOES.format(what="files" if many else "file",
                                                                    verb="show" if many else "shows"),
                    tuple(changed))
            continue
        if len(q.item_files) > 1:  # an item known before by one asset: its upgrade, not that file's content
            continue
        rec = before.get(q.path)
        if rec is not None and rec.get("date") == q.date:
            out[q.sha256] = Redelivery(f"area {area}: '{q.path}' ({q.date}) has new content since night "
                                       f"{rec.get('night', '?')}: " + _DOES.format(what="file", verb="shows"))
    return out


def _changed_files(q: Acquisition, processed: dict[str, dict[str, Any]],
                   reads: set[str] | None) -> tuple[list[str], str]:
    """The files of ``q`` (a date of several files) read by the run whose content differs from the last
    record of its date, and that record's night; ``[]`` when no such record has its files' checksums."""
    from changedetect._detect_inputs import _canon

    paths = set(q.files)
    mine = [r for r in processed.values() if r.get("date") == q.date and (
        r.get("path") in paths or isinstance(r.get("files"), dict) and paths & set(r["files"]))]
    if not mine:
        return [], "?"
    night = max(str(r.get("night", "")) for r in mine)
    last = [r for r in mine if str(r.get("night", "")) == night]  # two versions one night (a night run again):
    if not all(isinstance(r.get("files"), dict) for r in last):  # a file either had is not changed
        return [], night  # a record from before the files' checksums were kept: not judged
    had: dict[str, set[str]] = {}
    for r in last:
        for path, digest in r["files"].items():
            had.setdefault(str(path), set()).add(str(digest))
    bands = dict(zip(q.files, q.bands, strict=False))
    changed = [f for f, digest in q.file_sha256.items() if f in had and digest not in had[f]
               and (reads is None or f not in bands or _canon(bands[f]) in reads)]
    return changed, night


def settled(acqs: list[Acquisition], processed: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Checksum -> its files' checksums (``"files"``), for the processed dates of several files whose record
    was written before they were kept: the date's checksum is the one it was compared with, so each of its
    files is as it was then.  Committed whatever the area's outcome (a fact of the catalog)."""
    return {q.sha256: q.file_sha256 for q in acqs if q.file_sha256 and q.sha256 in processed
            and not isinstance(processed[q.sha256].get("files"), dict)}


__all__ = ["Redelivery", "replaced", "settled"]
