"""Planning one night of the nightly job (private; :mod:`changedetect.nightly`): which pairs
each area runs, with which previous footprints, registration reference and same-season
partner, and in which work folder."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from changedetect import _nightly_footprints as _footprints
from changedetect import _nightly_redelivery as _redelivery
from changedetect import _nightly_reference as _reference
from changedetect import _nightly_scl as _scl
from changedetect._nightly_catalog import Acquisition, discover, incomplete, plan_pairs
from changedetect._nightly_reference import NightState
from changedetect._state import sha256_file, sha256_json
from changedetect.config import PipelineConfig

if TYPE_CHECKING:
    from changedetect.nightly import NightlySummary

log = logging.getLogger("changedetect.nightly")
#: ``extra`` of the log records whose message is also in the night's summary (``warnings``,
#: ``failed``): the CLI prints the summary and leaves these out unless ``--verbose``.
IN_SUMMARY = {"in_summary": True}


def plan_night(catalog: str | Path, current: NightState, state_dir: Path, permits: str, config: PipelineConfig,
               night: str, summary: NightlySummary,
               committed: Any = None, register_key: str | None = None,
               scl_records: dict[str, dict[str, str]] | None = None,
               scl_settled: dict[str, dict[str, str]] | None = None,
               parcels: str | None = None, parcels_key: str | None = None,
               file_records: dict[str, dict[str, dict[str, str]]] | None = None,
               ) -> tuple[list[dict[str, Any]], dict[str, list[Acquisition]]]:
    """The areas' tasks.

    A processed date whose SCL is new or changed is compared again: its pairs are planned as a new
    date's, named in ``summary.reruns``; the SCL checksums to commit with each area go to
    ``scl_records`` (:mod:`changedetect._nightly_scl`), and those a state written before SCL
    checksums is upgraded with, committed whatever the area's outcome, to ``scl_settled``; likewise the
    files' checksums that records written before them are completed with, to ``file_records``
    (:func:`changedetect._nightly_redelivery.settled`).  A rerun
    pair whose second date is that of the area's committed footprints gets them as ``previous``
    (they are its own earlier run's), so its structures keep their ids.

    Each pair's previous footprints are the most recent set dated on or before its ``before``
    date: the area's committed ones (dated by their pair's ``after``) or those of an earlier
    pair of the night (its ``after``; on a tie, the night's pair), or none.  A pair's work
    folder is named by a checksum of its inputs, the register, the configuration and that
    choice (the committed footprints' checksum, or the chosen pair's folder name), so a
    complete run is reused only when all of these are the same.  With a cadastral parcel layer
    (``parcels``, which each pair's run reads; ``parcels_key``: :func:`~changedetect._state.sha256_frame`
    of the loaded layer) its content is part of the key too, so a changed layer computes again.

    Each area with new acquisitions gets its registration reference
    (:func:`changedetect._nightly_reference.choose`: the pinned one, else the earliest readable,
    recorded in ``summary.references`` to be pinned at the commit).  The acquisitions found
    unreadable on the way are reported (``summary.warnings``) and left out of the pairs: a new
    acquisition is paired with the previous one that is not among them; being new, they are
    committed with the area (they take part in no pair).
    """
    # the register's content (``register_key``, :func:`~changedetect._state.sha256_frame` of the loaded
    # register: a Shapefile's .dbf, a PostGIS table) names the work folders, so a night resumed after
    # the register changed computes again; else the file's checksum (or the URL)
    permits_key = register_key or (sha256_file(permits) if Path(permits).is_file() else permits)
    cfg = config.to_dict()
    tasks, new_by_area = [], {}
    checked: dict[str, str | None] = {}  # the readability check: once a night per file
    problems: list[str] = []
    # each file's sha256 as the night before knew it (discover updates the cache): the files of a record
    # written without their checksums (:func:`changedetect._nightly_redelivery._files_then`)
    cached = {p: str(v[2]) for p, v in current.checksums.items() if isinstance(v, list | tuple) and len(v) > 2}
    found = discover(catalog, night=night, known=current.checksums, problems=problems)
    for message in problems:
        log.warning("%s", message, extra=IN_SUMMARY)
    summary.warnings += problems
    if not found:  # a wrong --catalog path, or a feed that never delivered: say so, it is not a quiet night
        message = (f"catalog '{catalog}' holds no acquisitions dated on or before {night} (GeoTIFFs with a "
                   "date in their name, or STAC items, in it or in one folder per area): check --catalog")
        log.warning("%s", message, extra=IN_SUMMARY)
        summary.warnings.append(message)
    card = _model_card(config)
    state_file = state_dir / "state.json"
    committed_at = state_file.stat().st_mtime if state_file.is_file() else None
    for area, acqs in found.items():
        processed = current.processed(area)
        reads = _bands_read(card, config, acqs)
        waiting = incomplete(area, acqs, processed, reads)  # a band-per-file date whose bands are still arriving
        for message in waiting.values():
            log.warning("%s", message, extra=IN_SUMMARY)
        summary.warnings += waiting.values()
        acqs = [q for q in acqs if q.path not in waiting]
        scl = _scl.changes(acqs, processed, committed_at)  # a late or replaced SCL: its date again
        if scl_records is not None and scl.record:
            scl_records[area] = scl.record
        if scl_settled is not None and scl.settled:
            scl_settled[area] = scl.settled
        if file_records is not None and (files := _redelivery.settled(acqs, processed)):
            file_records[area] = files
        if scl.adopted:
            message = _scl.adopted_warning(area, scl.adopted, state_file)
            log.warning("%s", message, extra=IN_SUMMARY)
            summary.warnings.append(message)
        if all(q.sha256 in processed for q in acqs) and not scl.rerun:
            continue
        choice = _reference.choose(area, acqs, current.references.get(area), current.checksums, checked)
        new = [q for q in acqs if q.sha256 not in processed]
        unreadable = {**choice.unreadable, **_unreadable_new(area, new, choice, checked)}
        replaced = _redelivery.replaced(area, [q for q in new if q.path not in unreadable], processed, reads,
                                        cached)
        for redelivered in replaced.values():
            log.warning("%s", redelivered.warning, extra=IN_SUMMARY)
            summary.warnings.append(redelivered.warning)
        for message in unreadable.values():
            log.error("%s", message, extra=IN_SUMMARY)
        if choice.warning:
            log.warning("%s", choice.warning, extra=IN_SUMMARY)
        summary.warnings += [*unreadable.values(), *([choice.warning] if choice.warning else [])]
        usable = sorted((q for q in acqs if q.path not in unreadable), key=lambda q: (q.date, q.path))
        usable, pairs = _readable_befores(area, usable, processed, checked, summary.warnings)
        # a late SCL's date, and a file delivered again: both pairs it took part in run again (a new date alone
        # gets its pair with the date before; the first date of an area, none)
        again = _scl.rerun_pairs(usable, set(scl.rerun) | set(replaced))
        # ... and the processed pairs that read such a date as their same-season partner or a fill date
        again += _reading_reruns(usable, processed, set(scl.rerun) | set(replaced), config, checked,
                                 summary.warnings)
        pairs = sorted({(a.path, b.path): (a, b) for a, b in [*pairs, *again]}.values(),
                       key=lambda ab: (ab[1].date, ab[1].path, ab[0].date))
        summary.reruns += [{"area": area, "date": q.date, "reason": scl.rerun[q.sha256]}
                           for q in acqs if q.sha256 in scl.rerun]
        summary.reruns += _stac_upgrades(area, new, processed)
        new_by_area[area] = new
        summary.new_acquisitions += len(new)
        summary.areas.append(area)
        first = choice.reference  # every pair is registered onto it (but a pair that contains it)
        if first is not None:
            summary.references[area] = _reference.record(first)
        if not pairs:
            continue
        summary.pairs += len(pairs)
        mine = _footprints.of_area(committed, area)
        # (date, what the pair gets as previous, its part of the work folder's key)
        sets = [] if mine is None else [(str(mine["after"].max()), "committed", _footprints.checksum(mine))]
        runs = []
        for a, b in pairs:
            reference = None if first is None or first.path in (a.path, b.path) else _where(first)
            partner = _season_partner(usable, a, b, config.detect.season_days, checked, summary.warnings)
            fill = _fill_dates(usable, a, config, checked)  # the last clear view: read, not compared
            chosen: tuple[str, str | None, str] = ("", None, _footprints.checksum(None))
            rerun = a.sha256 in processed and b.sha256 in processed  # its own earlier run's footprints: theirs
            for candidate in sets:
                if (candidate[0] <= a.date or rerun and candidate[1] == "committed" and candidate[0] == b.date) \
                        and candidate[0] >= chosen[0]:
                    chosen = candidate
            masks = [q.scl_sha256 for q in (a, b, partner, *fill) if q is not None and q.scl_sha256]
            key = sha256_json([a.sha256, b.sha256, permits_key, cfg, chosen[2]]
                              + ([first.sha256] if first is not None and reference else [])
                              + ([partner.sha256] if partner is not None else [])
                              + ([["fill", *(q.sha256 for q in fill)]] if fill else [])
                              + ([["scl", *masks]] if masks else [])  # a late SCL: another run
                              + ([["parcels", parcels_key]] if parcels is not None else []))[:16]
            run_dir = str(state_dir / "work" / _safe(area) / key)
            runs.append({"before": a.date, "after": b.date, "before_path": a.path, "after_path": b.path,
                         "before_files": list(a.inputs), "after_files": list(b.inputs),
                         "before_bands": a.band_names(), "after_bands": b.band_names(),
                         "run_dir": run_dir, "previous": chosen[1], "reference": reference,
                         "register_to": None if first is None else first.date,
                         "partner": None if partner is None else _where(partner),
                         "fill": [_where(q) for q in fill],
                         # its dates whose file came again with new content: what it no longer finds is withdrawn
                         "replaced": [q.date for q in (a, b) if q.sha256 in replaced],
                         # its partner's and fill dates' (read, not compared: a processed pair run again), likewise
                         "replaced_partner": partner.date if rerun and partner is not None
                         and partner.sha256 in replaced else None,
                         "replaced_fill": [q.date for q in fill if rerun and q.sha256 in replaced],
                         # ... and, for a date of several files, which of them (date -> their paths)
                         "replaced_files": {q.date: list(replaced[q.sha256].files)
                                            for q in (a, b, *fill, *([partner] if partner is not None else []))
                                            if q.sha256 in replaced and replaced[q.sha256].files},
                         # its dates whose SCL came late: what it reported under them may be withdrawn
                         "scl_rerun": {q.date: scl.rerun[q.sha256] for q in (a, b) if rerun and q.sha256 in scl.rerun},
                         # its fill dates whose SCL came late: what it compared against their clouds, likewise
                         "scl_fill": {q.date: scl.rerun[q.sha256] for q in fill if rerun and q.sha256 in scl.rerun}})
            sets.append((b.date, run_dir, key))
        tasks.append({"area": area, "permits": permits, "config": cfg, "committed": mine, "pairs": runs,
                      "parcels": parcels})
    return tasks, new_by_area


def _readable_befores(area: str, usable: list[Acquisition], processed: dict[str, Any],
                      checked: dict[str, str | None], warnings: list[str]
                      ) -> tuple[list[Acquisition], list[tuple[Acquisition, Acquisition]]]:
    """``plan_pairs`` on ``usable`` without the processed dates that would be a pair's BEFORE but fail
    the readability check (``checked`` caches it for the night): one found unreadable when it arrived
    is committed and stays in the catalog, and a new date after it would be compared with it, its run
    failing (and its area with it) every night; the new date is compared with the latest date that can
    be read instead, and the night says so once (a warning naming the file)."""
    while True:
        _, pairs = plan_pairs(usable, processed)
        bad = []
        for a, _b in pairs:
            if a.sha256 in processed:
                if a.path not in checked:
                    checked[a.path] = _reference.acquisition_unreadable(a)
                if checked[a.path] is not None:
                    bad.append(a)
        if not bad:
            return usable, pairs
        for a in bad:
            warnings.append(f"area {area}: {checked[a.path]} (the {a.date} acquisition, processed on an earlier "
                            "night). The night's new date is compared with the latest date before it that can "
                            "be read; replace or remove the file")
            log.warning("%s", warnings[-1], extra=IN_SUMMARY)
        usable = [q for q in usable if q not in bad]


def _reading_reruns(usable: list[Acquisition], processed: dict[str, Any], rerun: set[str], config: PipelineConfig,
                    checked: dict[str, str | None], warnings: list[str]) -> list[tuple[Acquisition, Acquisition]]:
    """The processed consecutive pairs that read a date compared again (``rerun``: its SCL late or changed,
    or its file delivered again with new content, :func:`changedetect._nightly_redelivery.replaced`, a new
    checksum of a date processed before) beside their own two, as they are planned tonight: as a fill date
    (:func:`_fill_dates`: their BEFORE's no data was filled from that date, its clouds read as ground, or
    the replaced file's pixels) or as their same-season partner (:func:`_season_partner`: their partner
    pair decided, and their mask pair hid, what its clouds, or the replaced file, showed).  They run again
    with its cloud mask, or the new file, as its own pairs do (:func:`_nightly_scl.rerun_pairs`)."""
    if not rerun:
        return []
    # a date delivered again is one of the pairs as they were compared, under its new checksum
    done = sorted((q for q in usable if q.sha256 in processed or q.sha256 in rerun), key=lambda q: (q.date, q.path))
    out = []
    for a, b in zip(done, done[1:], strict=False):
        if a.date < b.date and b.sha256 not in rerun and a.sha256 not in rerun:
            partner = _season_partner(usable, a, b, config.detect.season_days, checked, warnings)
            reads = [*_fill_dates(usable, a, config, checked), *([partner] if partner is not None else [])]
            if any(q.sha256 in rerun for q in reads):
                out.append((a, b))
    return out


def _fill_dates(usable: list[Acquisition], a: Acquisition, config: PipelineConfig,
                checked: dict[str, str | None]) -> list[Acquisition]:
    """The area's dates just before a pair's BEFORE ``a`` (``[detect] fill_dates`` of them, none left out
    between) that its run fills ``a``'s no data from (``[detect] fill_masked_before``): read, never
    compared; none when filling is off.  A date that fails the readability check (``checked`` caches it
    for the night; one found unreadable when it arrived is committed and stays in the catalog) is passed
    over, as the pairs pass over it: the run would fail reading it."""
    if not config.detect.fill_masked_before or config.detect.fill_dates <= 0:
        return []
    out: list[Acquisition] = []
    for q in reversed([q for q in usable if q.date < a.date]):
        if len(out) == config.detect.fill_dates:
            break
        if q.path not in checked:
            checked[q.path] = _reference.acquisition_unreadable(q)
        if checked[q.path] is None:
            out.insert(0, q)
    return out


def _unreadable_new(area: str, new: list[Acquisition], choice: _reference.Choice,
                    checked: dict[str, str | None]) -> dict[str, str]:
    """The night's new acquisitions that fail the cheap readability check (path -> message;
    ``checked`` caches the check for the night): left out of the pairs, as an unreadable
    reference candidate is, instead of failing their area night after night."""
    out = {}
    for q in new:
        if q.path in choice.unreadable or (choice.reference is not None and q.path == choice.reference.path):
            continue
        if q.path not in checked:
            checked[q.path] = _reference.acquisition_unreadable(q)
        if checked[q.path] is not None:
            out[q.path] = (f"area {area}: {checked[q.path]}. It is left out of the area's pairs; a good copy "
                           "will be a new acquisition (or remove the file from the catalog)")
    return out


def _season_partner(usable: list[Acquisition], a: Acquisition, b: Acquisition, season_days: int | None,
                    checked: dict[str, str | None], warnings: list[str]) -> Acquisition | None:
    """The same-season partner of the pair ``(a, b)`` (:func:`changedetect.detect.season_partner`
    over the area's acquisitions up to ``a``, then ``b``, as ``changedetect run`` pairs a
    series: none when ``a`` itself is a year before ``b``), or None.  A partner that fails the
    readability check (``checked`` caches it for the night) is passed over for the next one,
    with a warning logged and added to ``warnings`` (the night's, once each)."""
    import numpy as np

    from changedetect.detect import season_partner

    candidates = [q for q in usable if q.date < a.date]
    while season_days is not None and candidates:
        times = np.array([q.date for q in candidates] + [a.date, b.date], dtype="datetime64[D]")
        i = season_partner(times, len(candidates) + 1, season_days)
        if i is None:
            return None
        q = candidates[i]
        if q.path not in checked:
            checked[q.path] = _reference.acquisition_unreadable(q)
        if checked[q.path] is None:
            return q
        message = f"not comparing {q.path} as the same-season partner of {b.path}: {checked[q.path]}"
        log.warning("%s", message, extra=IN_SUMMARY)
        if message not in warnings:
            warnings.append(message)
        candidates = candidates[:i] + candidates[i + 1:]
    return None


def _model_card(config: PipelineConfig) -> Any:
    """The change model's card, or None when it cannot be read here (the pairs' runs say why)."""
    from changedetect.errors import ChangeDetectError
    from changedetect.weights import find_model, read_card

    try:
        return read_card(find_model(config.detect.model))
    except (ChangeDetectError, OSError):
        return None


def _bands_read(card: Any, config: PipelineConfig, acqs: list[Acquisition]) -> set[str] | None:
    """The bands of an area's band-per-file dates that a pair's run reads after co-registration
    (canonical names), as :func:`changedetect._pipeline_bands.chain_bands` picks them from the
    bands its dates have; None (every band counts) without a card or where the run would read
    every band."""
    from changedetect._detect_inputs import _canon
    from changedetect._pipeline_bands import chain_bands

    names = sorted({b for q in acqs for b in q.bands})
    used = None if card is None or not names else chain_bands(names, [card], config.report.rgb_bands)
    return None if used is None else {_canon(b) for b in used}


def _where(q: Acquisition) -> dict[str, Any]:
    """An acquisition as a pair's task names it: its path and date (and a band-per-file date's files,
    or its SCL beside it: :attr:`~changedetect._nightly_catalog.Acquisition.inputs`; a STAC item's
    band names)."""
    return {"path": q.path, "date": q.date, **({"files": list(q.inputs)} if q.files or q.scl else {}),
            **({"bands": q.band_names()} if q.named else {}), **({"scl": q.scl} if q.scl else {})}


def _stac_upgrades(area: str, new: list[Acquisition], processed: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """The new STAC items of several band assets that the state knew by their first asset alone (an
    earlier version read only that one): said in the night's ``reruns``, as they are compared again."""
    out = []
    for q in new:
        old = [r for r in processed.values() if q.named and r.get("date") == q.date
               and r.get("path") in (q.item_files or q.files)]  # its first asset: a band, aot, visual ...
        if old:
            out.append({"area": area, "date": q.date, "reason": (
                f"its STAC item is now read with its {len(q.files)} band assets ({', '.join(q.bands)}); an earlier "
                f"version read only '{old[0]['path']}'")})
    return out


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)
