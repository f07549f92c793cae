"""A date's Sentinel-2 scene classification (SCL) that arrives or changes after the date was compared
(private; :mod:`changedetect.nightly`).

The SCL is the date's cloud mask, not part of its checksum (``sha256``: the state keeps knowing its
dates); its own checksum (``Acquisition.scl_sha256``) is recorded with the date in the state
(``acquisitions[area][sha256]["scl"]``: the SCL's sha256, ``""`` when the date had none).  L2A side
products often land a night after their bands, and may be reprocessed: a processed date whose SCL
is new (recorded ``""``) or changed is **compared again**, its pairs (the previous date -> it, it ->
the next date, and each pair that took it as its same-season partner or filled its BEFORE's no data
from it: :func:`changedetect._nightly_plan._reading_reruns`) run once more with its cloud mask, and the
night's summary names it and why (``reruns``).  An SCL that vanishes makes no rerun (no new information); the record keeps the last.

A state written before SCL checksums has records without ``"scl"``: it cannot say whether a date's
SCL was there when the date was compared.  Neither rerunning every date of a city nor ignoring a
truly late SCL is right, so the files' modification times decide, once per date:

- an SCL written after a time by which its date had been compared, while none of its date's image
  files was, is taken as arrived late: the date is compared again (a rerun, as above).  Two such
  times are known: the state's last commit (``state.json``'s time), and the end of the day of the
  night that processed the date (its record's ``"night"``, local midnight after it: a night's run,
  ``--night`` today by default, is over by then).  The second is the one that sees an SCL that came
  a few nights before the upgrade: ``state.json`` is rewritten every night, even with nothing new,
  so the last commit alone took such an SCL as older than its date's comparison;
- otherwise (an older SCL, or a date whose files were all written again, as when a catalog is copied
  to another disk: its bands then postdate both times) the SCL is taken as there when the date was
  compared: its checksum is recorded, nothing runs, and one warning line per area names those dates,
  saying how to compare one again.  An SCL that came the same day as its date's night, after the
  run, is late only by the last commit (the upgrade's night follows that night at once).

Either way the record then has its ``"scl"`` and later nights compare checksums only: the decision
is committed even when the area fails that night (``SclChanges.settled``: ``""`` for a late SCL, so the
next night still compares its date again, as the failed night rewrote ``state.json`` and a second
decision by the modification times would take the SCL as older than the last commit).  Reruns add no
second row for a building already open: the night's merge takes a violation overlapping an open one
(IoU >= 0.5) for the same building, as for a rewritten file (:func:`changedetect._merge.merge_night`);
what the first run reported under what the SCL now masks, and the rerun no longer finds, is withdrawn
(each rerun pair's ``scl_rerun``: :mod:`changedetect._withdraw_masked`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from changedetect._nightly_catalog import Acquisition


@dataclass
class SclChanges:
    """What an area's SCLs ask of tonight."""

    #: sha256 of each processed date to compare again -> why (one line)
    rerun: dict[str, str] = field(default_factory=dict)
    #: sha256 of each processed date -> the SCL checksum to record at the commit
    record: dict[str, str] = field(default_factory=dict)
    #: the legacy dates whose SCL is taken as there when they were compared (one warning names them)
    adopted: list[str] = field(default_factory=list)
    #: sha256 of each legacy processed date -> what its record gets whether or not its area succeeds
    #: tonight: ``""`` (compared without an SCL) for a late one, its checksum for an adopted one
    settled: dict[str, str] = field(default_factory=dict)


def changes(acqs: list[Acquisition], processed: dict[str, dict[str, Any]], committed_at: float | None) -> SclChanges:
    """The processed dates of an area (``acqs``) whose SCL is new or changed since they were compared,
    and the SCL checksums to record.  ``committed_at``: ``state.json``'s modification time (seconds),
    which, with the night of each legacy record, dates its SCL (see the module docstring)."""
    out = SclChanges()
    for q in acqs:
        record = processed.get(q.sha256)
        if record is None:
            continue
        now = q.scl_sha256 or ""
        if "scl" in record:
            if now and now != record["scl"]:
                what = "arrived after" if not record["scl"] else "changed since"
                out.rerun[q.sha256] = (f"its scene classification (SCL) '{q.scl}' {what} it was compared: its "
                                       "pairs run again with its cloud mask")
                out.record[q.sha256] = now
            continue
        out.record[q.sha256] = out.settled[q.sha256] = now
        if not now:
            continue
        if _late(q, [committed_at, _night_over(record.get("night"))]):
            out.settled[q.sha256] = ""  # a failed night leaves it to be compared again the next
            out.rerun[q.sha256] = (f"its scene classification (SCL) '{q.scl}' arrived after it was compared "
                                   f"(written after the night {record.get('night', '?')} that compared it was over, "
                                   "or after the state's last commit, its bands before): its pairs run again with "
                                   "its cloud mask")
        else:
            out.adopted.append(q.date)
    return out


def _late(q: Acquisition, compared_by: list[float | None]) -> bool:
    """A legacy date's SCL was written after one of ``compared_by`` (times by which the date had been
    compared), and none of its image files was."""
    if q.scl is None:
        return False
    try:
        scl, images = Path(q.scl).stat().st_mtime, [Path(f).stat().st_mtime for f in q.paths]
    except OSError:
        return False
    return any(t is not None and scl > t and all(m <= t for m in images) for t in compared_by)


def _night_over(night: Any) -> float | None:
    """The end of a night's day (local midnight after it, seconds), by which its run had compared
    what it processed; None for a record without a night."""
    try:
        day = dt.date.fromisoformat(str(night))
    except ValueError:
        return None
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time()).timestamp()


def adopted_warning(area: str, dates: list[str], state_file: Path) -> str:
    """The one line naming an area's legacy dates whose SCL is taken as there when they were compared."""
    shown = ", ".join(sorted(dates)[:5]) + (f" and {len(dates) - 5} more" if len(dates) > 5 else "")
    return (f"area {area}: the state, written before the nightly job kept each SCL's checksum, does not say "
            f"whether the scene classification (SCL) of {shown} was there when compared; their SCL files are "
            "older than the nights that compared them (or came with their bands), so they are taken as there and "
            "not compared again. To compare one again with its cloud mask, remove its entry under 'acquisitions' in "
            f"'{state_file}' while no night runs")


def rerun_pairs(acqs: list[Acquisition], rerun: set[str]) -> list[tuple[Acquisition, Acquisition]]:
    """The pairs of the dates compared again: (the previous date, it) and (it, the next date), the
    pairs they took part in (``acqs``: the area's usable acquisitions)."""
    ordered = sorted(acqs, key=lambda p: (p.date, p.path))
    pairs = []
    for i, q in enumerate(ordered):
        if q.sha256 not in rerun:
            continue
        earlier = [p for p in ordered[:i] if p.date < q.date]
        later = [p for p in ordered[i + 1:] if p.date > q.date]
        pairs += [*([(earlier[-1], q)] if earlier else []), *([(q, later[0])] if later else [])]
    return pairs


__all__ = ["SclChanges", "adopted_warning", "changes", "rerun_pairs"]
