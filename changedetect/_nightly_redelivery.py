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

A record written before the files' checksums were kept has no ``"files"``, nor has the record of a date
compared as one band file (its checksum is that file's): its files are those the checksum cache of the night
before knew (``cached``: the state's ``checksums``, by path, read before tonight's catalog), when their
checksums give the record's (:func:`_files_then`); else the date is not judged (a state without the cache,
or one whose cached files have changed since).  Until 2026-12-03 such a date was never judged: a band file of
a state written before the files' checksums, changed on its first night, or a date first compared as one
band file that gained the others while that one changed, left the replaced band's artefacts open.  Such a
record is completed (:func:`settled`) the first night its date's checksum is still the one it was compared
with, when each file is known to be as it was then; a STAC item first known by one asset
(:func:`changedetect._nightly_plan._stac_upgrades`) has none either, and its upgrade is no re-delivery.
A date first delivered as one multi-band file, later as band files, is not judged: the one file's checksum
says nothing of its bands, and it is gone.
"""

from __future__ import annotations

from collections.abc import Mapping
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
             reads: set[str] | None = None, cached: Mapping[str, str] | None = None) -> dict[str, Redelivery]:
    """Checksum -> :class:`Redelivery`, per new acquisition of ``area`` that was processed before with other
    content (see the module docstring; ``reads``: the bands a pair's run reads, canonical names; ``cached``:
    each file's sha256 by its path as the state's checksum cache had it before tonight)."""
    before = {rec.get("path"): rec for rec in processed.values()}
    out = {}
    for q in new:
        if len(q.files) > 1:
            changed, night = _changed_files(q, processed, reads, cached or {})
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


def _changed_files(q: Acquisition, processed: dict[str, dict[str, Any]], reads: set[str] | None,
                   cached: Mapping[str, str]) -> tuple[list[str], str]:
    """The files of ``q`` (a date of several files) read by the run whose content differs from the last
    record of its date, and that record's night; ``[]`` when no such record's files' checksums are known."""
    from changedetect._detect_inputs import _canon

    paths = set(q.files)
    mine = [(sha, r) for sha, r in processed.items() if r.get("date") == q.date and (
        r.get("path") in paths or isinstance(r.get("files"), dict) and paths & set(r["files"]))]
    if not mine:
        return [], "?"
    night = max(str(r.get("night", "")) for _, r in mine)
    had: dict[str, set[str]] = {}
    for sha, r in mine:  # two versions one night (a night run again): a file either had is not changed
        if str(r.get("night", "")) != night:
            continue
        files = r["files"] if isinstance(r.get("files"), dict) else _files_then(sha, r, q, cached)
        if files is None:
            return [], night  # its files' checksums unknown: not judged
        for path, digest in files.items():
            had.setdefault(str(path), set()).add(str(digest))
    bands = dict(zip(q.files, q.bands, strict=False))
    changed = [f for f, digest in q.file_sha256.items() if f in had and digest not in had[f]
               and (reads is None or f not in bands or _canon(bands[f]) in reads)]
    return changed, night


def _files_then(sha: str, record: dict[str, Any], q: Acquisition, cached: Mapping[str, str]) -> dict[str, str] | None:
    """The files' checksums of a record that has none (``sha``: its checksum): those of ``q``'s files the
    checksum cache of the night before knew (``cached``), or the record's one file, when they give its checksum
    as :func:`changedetect._nightly_catalog.band_group` computes it; None when neither does."""
    from changedetect._state import sha256_json

    bands = dict(zip(q.files, q.bands, strict=False))
    for files in ([f for f in q.files if f in cached], [str(record.get("path"))]):
        if not files or any(f not in cached or f not in bands for f in files):
            continue
        digests = [cached[f] for f in files]
        digest = digests[0] if len(files) == 1 else sha256_json([[bands[f], d] for f, d in zip(files, digests,
                                                                                                strict=True)])
        if digest == sha:
            return dict(zip(files, digests, strict=True))
    return None


def settled(acqs: list[Acquisition], processed: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Checksum -> its files' checksums (``"files"``), for the processed dates of several files whose record
    was written before they were kept: the date's checksum is the one it was compared with, so each of its
    files is as it was then.  Committed whatever the area's outcome (a fact of the catalog)."""
    return {q.sha256: q.file_sha256 for q in acqs if q.file_sha256 and q.sha256 in processed
            and not isinstance(processed[q.sha256].get("files"), dict)}


__all__ = ["Redelivery", "replaced", "settled"]
