"""The nightly job: process what is new in a catalog, idempotently and crash-safely.

A *catalog* is a directory that receives acquisitions over time:

- each sub-folder is an **area** (``catalog/district12/...``) holding one file per
  date: GeoTIFF/COG with the date in the name (``YYYYMMDD`` or ``YYYY-MM-DD``),
  or STAC item JSON files with local assets (date from ``properties.datetime``; one data COG,
  or one asset per band, read as one date's band files, its SCL asset its cloud mask:
  :mod:`changedetect._nightly_stac`), or one file per band and date (``T32TPP_20180211_B02.tif``:
  one date's band files are one acquisition, a date still missing a band the run reads
  waits, a pair compares the bands its dates share;
  :func:`changedetect._nightly_catalog.band_group`);
- files directly in the catalog are grouped by their name with the date removed
  (``district12_20240115.tif`` -> area ``district12``).

Each night (``night``, default today) the job takes, per area, the acquisitions
dated on or before the night whose sha256 is not yet in the state, pairs each
with the previous acquisition of the area, and runs the chain
(:func:`changedetect.pipeline.run`) on those pairs only; areas run in parallel
on Dask distributed (a ``LocalCluster``, or the scheduler at ``scheduler``).  A processed
date whose Sentinel-2 scene classification (SCL, its cloud mask) arrived late or changed is
compared again, its pairs run once more (``reruns`` of the summary says which and why; what they
reported under what its SCL now masks, and no longer find, is withdrawn: :mod:`changedetect._withdraw_masked`); a state
written before SCL checksums is upgraded by the SCL files' modification times
(:mod:`changedetect._nightly_scl`).
It then writes ``OUT/violations-YYYY-MM-DD.gpkg``/``.csv`` (violations first
seen that night and open when it is committed: a night done again lists one of its own rows it withdraws in
``withdrawn-YYYY-MM-DD`` only), ``OUT/open_violations.gpkg`` (cumulative, stable ids
``<area>-<YYYYMMDD night>-<nnn>``), each also as GeoJSON and GeoParquet when ``config.output`` asks
(:mod:`changedetect._nightly_outputs`), and commits ``STATE/state.json``.  A night whose pair has a
same-season partner (a year before) also withdraws the earlier nights' violations reported
across seasons that the partner pair does not see (``OUT/withdrawn-YYYY-MM-DD.gpkg/.csv``: most
are shadows that moved with the seasons; :func:`changedetect._merge.withdraw_unconfirmed`).

Footprint ids follow structures from night to night: each area's footprints of
its latest pair are kept in ``STATE/footprints-<generation>.parquet``; each pair
gets as ``previous`` (:func:`changedetect.pipeline.run`) the most recent footprints
dated on or before its ``before`` date (those kept, or an earlier pair's of the
night), so a footprint overlapping one of them well keeps its ``footprint_id``.
The merge then treats a violation whose id was so carried over and that touches an
open one of the same area with that id as the same structure, even when its
outline grew; other violations are matched by IoU >= 0.5 only.

Every pair of an area is co-registered onto the area's reference: its earliest readable
acquisition, pinned in the state at the area's first commit and kept afterwards (a late,
older acquisition does not move it); unreadable files older than it are reported and left
out of the pairs (:mod:`changedetect._nightly_reference`).

Why it is crash-safe: every output is written atomically; each pair's run
lands in a work folder named by the checksums of its inputs and configuration
and is reused when complete; ids are a deterministic function of the committed
state and the night's results; the state file is replaced only after every
output, so a killed job's next run redoes exactly the uncommitted night.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import warnings
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from changedetect import _nightly_coverage as _coverage
from changedetect import _nightly_dask as _dask
from changedetect import _nightly_decisions as _decisions
from changedetect import _nightly_footprints as _footprints
from changedetect import _nightly_outputs as _outputs
from changedetect import _nightly_parcels as _parcels
from changedetect import _nightly_reference as _reference
from changedetect import _nightly_rematch as _rematch
from changedetect import _withdraw_masked
from changedetect._config_toml import stage_config
from changedetect._nightly_catalog import Acquisition, discover, plan_pairs
from changedetect._nightly_commit import (
    _already_done,
    _cleanup,
    _next_state,
    _pending,
    committed_dtypes,
    retyped,
)
from changedetect._nightly_inputs import (
    _check_datums,
    _check_not_before,
    _check_parcels,
    _check_shared_inputs,
    _copy_path,
    _night,
    _register_copy,
    _rejected_line,
    _remove_older_register_copies,
    _remove_stale_temporaries,
)
from changedetect._nightly_plan import IN_SUMMARY, plan_night
from changedetect._nightly_summary import NightlySummary
from changedetect._state import (
    checkpoint,
    save_state,
    sha256_frame,
    state_lock,
    write_text_atomic,
)
from changedetect.config import ParcelsConfig, PermitsConfig, PipelineConfig
from changedetect.errors import ChangeDetectError, DiskFullError, PermitRowWarning

log = logging.getLogger(__name__)

def _run_area(task: dict[str, Any]) -> dict[str, Any]:
    """Run the chain on the date pairs of one area (a Dask task; re-runnable, cached).

    Each pair gets the previous footprints :func:`~changedetect._nightly_plan.plan_night` chose for it (``pair["previous"]``:
    ``"committed"``, the work folder of an earlier pair of the night, or None) and records
    in ``pair["carried"]`` the footprint ids it carried over from them (the merge's
    same-id rule holds for those only).
    """
    with _dask.running(task):  # (an interrupted night waits for it)
        try:
            return _run_pairs(task)
        except DiskFullError as exc:  # said as it is (what to free, where to spill): see _compute
            return {"area": task["area"], "error": None, "runs": [], "disk_full_said": str(exc)}
        except OSError as exc:
            stop = _dask.disk_stop(exc)
            if stop is None:
                raise
            # a full disk (or a file-size limit) stops the night, as anywhere (exit 2, the state as it was):
            # handed back as a value, since the exception (chained to GDAL's) did not survive Dask's pickling
            # and came back as a bare Exception('OSError(28, ...)'), said as a bug, after the worker's traceback
            return {"area": task["area"], "error": None, "runs": [], "disk_full": stop}


def _run_pairs(task: dict[str, Any]) -> dict[str, Any]:
    from changedetect import pipeline

    config = PipelineConfig.from_dict(task["config"])
    # the night has its own outputs (its lists in the formats asked: :mod:`._nightly_outputs`)
    config = replace(config, output=replace(config.output, report=False, geojson=False, parquet=False))
    runs = []
    try:
        for pair in task["pairs"]:
            run_dir = Path(pair["run_dir"])
            previous = _previous_of(task, pair)
            if not (run_dir / "run.json").is_file():
                run_dir.mkdir(parents=True, exist_ok=True)  # (run removes a killed run's staging folder in it)
                manifest = run_dir.parent / f"{run_dir.name}.manifest.json"
                ref = pair.get("reference")  # the area's reference acquisition: one grid for every night
                partner = pair.get("partner")  # a same-season acquisition a year or more before AFTER
                extra = [d for d in (ref, partner, *pair.get("fill", ())) if d]  # fill: BEFORE's last clear view
                dates = [(d.get("files") or [d["path"]], d["date"], d.get("bands"))
                         for d in sorted({d["path"]: d for d in extra}.values(), key=lambda d: d["date"])]
                dates += [(pair.get("before_files") or [pair["before_path"]], pair["before"], pair.get("before_bands")),
                          (pair.get("after_files") or [pair["after_path"]], pair["after"], pair.get("after_bands"))]
                write_text_atomic(manifest, json.dumps(_manifest(dates)))
                # with a partner: (previous, new) + (partner, new), not counting what (partner, previous)
                # shows, which earlier nights reported with their own first-seen dates
                compare = [(pair["before"], pair["after"])] + ([(partner["date"], pair["after"])] if partner else [])
                with _dask.local_dask():
                    pipeline.run(manifest, permits=task["permits"], out=run_dir, config=config, overwrite=True,
                                 previous=previous, register_to=pair.get("register_to"),  # the area's reference
                                 pairs=compare, mask_pairs=[(partner["date"], pair["before"])] if partner else None,
                                 fill_from=[d["date"] for d in pair.get("fill", ())],
                                 parcels=task.get("parcels"))  # each violation's cadastral parcel
                checkpoint(f"pair {task['area']} {pair['before']}..{pair['after']} done")
            runs.append({**pair, "carried": _carried(run_dir, previous)})
    except Exception as exc:
        if _dask.abandoned(task):  # Ctrl-C gave the night up while this pair ran on: it failed
            return {"area": task["area"], "error": "interrupted", "runs": runs}  # for that, say nothing
        if not isinstance(exc, ChangeDetectError) or isinstance(exc, DiskFullError):  # a full disk stops the night
            raise
        log.error("area %s failed: %s", task["area"], exc, extra=IN_SUMMARY)
        _drop_empty_run(Path(pair["run_dir"]))  # nothing of the failed pair to reuse
        return {"area": task["area"], "error": str(exc), "runs": runs}
    return {"area": task["area"], "error": None, "runs": runs}


def _manifest(dates: list[tuple[list[str], str, list[str | None] | None]] | list[tuple[list[str], str]]
              ) -> list[dict[str, str]]:
    """A pair's manifest rows, one per file of each ``(files, date[, names])`` (a band-per-file date's
    band files, which :func:`changedetect.io.open_series` reads as one date's bands; a date's SCL, its
    cloud mask; ``names``: the files' band names where a STAC item gave them, written in the rows, the
    SCL's as ``SCL``).  When every date is band-per-file, only the bands they all have: an archive
    delivered with more bands than the feed (13 Sentinel-2 bands beside the 4 a model reads, L1C's
    B10 beside L2A) is compared on the bands its dates share, as every date of a series must have
    the same bands."""
    from changedetect._nightly_catalog import band_of
    from changedetect.io._names import is_scl

    rows = []  # (file, date, its name in the manifest, its band, whether it is the SCL)
    for d in dates:
        names = d[2] if len(d) > 2 and d[2] else [None] * len(d[0])
        rows += [(f, d[1], n, n or band_of(Path(f)), is_scl(n or Path(f).stem))
                 for f, n in zip(d[0], names, strict=True)]
    bands = [{b for _, day, _, b, scl in rows if day == d[1] and not scl} for d in dates]
    shared = set.intersection(*bands) if bands else set()
    keep = shared if shared and None not in shared else None  # a date of one multi-band file: all of it
    return [{"path": f, "date": date, **({"bands": n} if n else {})} for f, date, n, band, scl in rows
            if scl or keep is None or band in keep]


def _drop_empty_run(run_dir: Path) -> None:
    """Remove a failed pair's work folder, and its manifest, when the run left nothing in it."""
    try:
        run_dir.rmdir()
    except OSError:  # not empty (or gone)
        return
    Path(f"{run_dir}.manifest.json").unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # the area's folder, once empty
        run_dir.parent.rmdir()


def _previous_of(task: dict[str, Any], pair: dict[str, Any]) -> Any:
    """The previous footprints of a pair: the committed ones, an earlier pair's file, or None."""
    if pair.get("previous") == "committed":
        return task.get("committed")
    if pair.get("previous"):
        return Path(pair["previous"]) / "footprints.gpkg"
    return None


def _carried(run_dir: Path, previous: Any) -> list[str]:
    """The footprint ids of a pair's run that it carried over from ``previous`` (sorted).

    New ids avoid those of ``previous`` (``docs/permits.md``), so an id found in both was carried.
    """
    if previous is None:
        return []
    import geopandas as gpd

    before = previous if not isinstance(previous, str | Path) else gpd.read_file(
        previous, columns=["footprint_id"], ignore_geometry=True)
    mine = gpd.read_file(run_dir / "footprints.gpkg", columns=["footprint_id"], ignore_geometry=True)
    return sorted(set(mine["footprint_id"].astype(str)) & set(before["footprint_id"].astype(str)))


def _compute(tasks: list[dict[str, Any]], *, scheduler: str | None, workers: int | None) -> list[dict[str, Any]]:
    """Run the area tasks on Dask distributed; results in the order of ``tasks`` (Ctrl-C: :mod:`._nightly_dask`)."""
    results = _dask.compute(_run_area, tasks, scheduler=scheduler, workers=workers)
    for result in results:
        if result.get("disk_full"):
            raise OSError(*result["disk_full"])
        if result.get("disk_full_said"):
            raise DiskFullError(result["disk_full_said"])
    return results


def run_nightly(
    catalog: str | Path,
    *,
    permits: str | Path,
    state: str | Path,
    out: str | Path,
    night: str | dt.date | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    config: PipelineConfig | Mapping[str, Any] | None = None,
    parcels: str | Path | None = None,
    decisions: str | Path | None = None,
) -> NightlySummary:
    """Process the catalog's new acquisitions of one night (see the module docstring).

    ``parcels``: a cadastral parcel layer file or ``postgresql://`` URL, read with ``config.parcels``'
    options, that each pair's run gives every violation the parcel of (:func:`changedetect.pipeline.run`'s
    ``parcels``): the night's lists, the open register and the report's cards carry its columns; the open
    violations of earlier nights get the layer's parcel too, where they have none or it gives another
    (:func:`changedetect._nightly_parcels.with_current_parcels`).  Its content, like the register's, is part of
    each pair's work-folder key.

    ``decisions``: the inspectors' decisions (a CSV, a table OGR reads or a ``postgresql://`` URL;
    :mod:`changedetect._nightly_decisions`): ``false_alarm`` and ``resolved`` violations are withdrawn and not
    opened again, ``confirmed`` ones carry their decision.  Read and checked before the lock (a ``decided_on``
    with a zone: its day in ``config.permits.timezone``, the city's); a night already committed with other
    decisions is done again.

    Raises
    ------
    ConfigError
        ``night`` is not a date, is later than tomorrow, or is before the last night committed without
        being one of the nights committed, or is such a night and has new work (a committed night with
        nothing new may be run again; today's, when ``night`` is None, is then the last night committed).
    LockedError
        Another run holds ``STATE/lock``.
    GeoreferenceError
        The register or the parcel layer is on a datum PROJ cannot take to a planned pair's imagery
        (:func:`changedetect._nightly_inputs._check_datums`): said once, before any pair runs.
    """
    night_s = _night(night)
    state_dir, out_dir = Path(state), Path(out)
    if Path(permits).is_file():  # the pairs run from their work folders (and maybe on other hosts)
        permits = Path(permits).absolute()
    if parcels is not None and Path(parcels).is_file():
        parcels = Path(parcels).absolute()
    config = PipelineConfig() if config is None else stage_config(config, PipelineConfig, call="run_nightly", table="")
    with warnings.catch_warnings(record=True) as said:  # a lenient register's rejected rows: in the summary too
        warnings.simplefilter("always")
        register = _check_shared_inputs(permits, config)  # once, before any area: one message, not one per area
    rejected = [_rejected_line(str(w.message)) for w in said if issubclass(w.category, PermitRowWarning)
                and " rejected " in str(w.message).splitlines()[0]]
    for w in said:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    layer = _check_parcels(parcels, config)  # likewise
    decided_rows = None if decisions is None else _decisions.read_decisions(  # ConfigError: the row
        decisions, timezone=config.permits.timezone)  # a timestamptz's day in the city's zone, as the register's
    decisions_key = _decisions.checksum(decided_rows)
    decisions_name = None if decided_rows is None else decided_rows.attrs.get("source", str(decisions))
    with state_lock(state_dir):
        _remove_stale_temporaries(state_dir, out_dir, state_dir / "register")
        current = _reference.load(state_dir)
        today, night_s = night_s, _check_not_before(night_s, current.nights, given=night is not None)
        summary = NightlySummary(night=night_s)
        if night_s != today:  # -q shows no log line: in the night's summary too
            summary.warnings.append(f"the last night committed, {night_s}, is later than today, {today}, by this "
                                    "machine's clock: it is the night run again")
        summary.warnings += rejected  # -q shows no log line: the night's summary is what an operator reads
        committed = _footprints.load(state_dir, current.generation)
        key = sha256_frame(register)
        copies = []  # (frame, key, name): written once the night is planned and its layers' datums checked
        if not Path(permits).is_file():  # a database: read once a night, the pairs read tonight's copy
            permits, config = _copy_path(state_dir, key), replace(config, permits=PermitsConfig())
            copies.append((register, key, "register"))
        parcels_key = None if layer is None else sha256_frame(layer)  # names the work folders too
        if parcels is not None and parcels_key is not None and not Path(parcels).is_file():
            # a database layer: read once a night too, the pairs read tonight's copy
            parcels = _copy_path(state_dir, parcels_key, "parcels")
            config = replace(config, parcels=ParcelsConfig())
            copies.append((layer, parcels_key, "parcels"))
        scl_records: dict[str, dict[str, str]] = {}
        scl_settled: dict[str, dict[str, str]] = {}  # a legacy state's SCL decisions: committed in any case
        file_records: dict[str, dict[str, dict[str, str]]] = {}  # a legacy state's files' checksums: likewise
        tasks, new_by_area = plan_night(catalog, current, state_dir, str(permits), config, night_s, summary,
                                        committed, register_key=key, scl_records=scl_records,
                                        scl_settled=scl_settled, file_records=file_records,
                                        parcels=None if parcels is None else str(parcels), parcels_key=parcels_key)
        _check_not_before(night_s, current.nights, given=night is not None,
                          work=bool(new_by_area or summary.reruns))  # a late delivery for an earlier night
        _check_datums(tasks, register, layer)  # as `run` does before any work: once, not once per area
        for frame, frame_key, name in copies:
            _register_copy(frame, frame_key, state_dir, name=name)
        checkpoint("planned")
        matched = _rematch.stamp(key, config.match)  # the last night done again for another register too
        if not new_by_area and night_s in current.nights and not _decisions.due(current.nights, night_s, decisions_key) \
                and not _rematch.again(current.nights, night_s, matched):  # a no-op
            waits = [_decisions.waiting(night_s, current.nights)] if decisions_key and current.nights[night_s].get(
                "decisions") != decisions_key else []  # the decisions wait for the next night, and so does
            for line in waits + _rematch.waiting(current.nights, night_s, matched):  # the register
                summary.warnings.append(line)
                log.warning("%s", line, extra=IN_SUMMARY)
            return _already_done(current, state_dir, out_dir, summary, config.output.formats)
        # a night done again without --decisions keeps those it was committed with (the state holds them)
        decisions_key = decisions_key or (current.nights.get(night_s) or {}).get("decisions")
        results = _compute(tasks, scheduler=scheduler, workers=workers)
        _coverage.record(summary, results)
        from changedetect import _merge

        edges = _parcels.edge_tolerances(results)  # the earlier rows follow tonight's register (and parcels)
        decided = _decisions.load(decided_rows, night_s, current, state_dir)  # the inspectors'
        done = _decisions.committed_ids(current, state_dir, night_s)  # a night done again: its own rows matched again
        violations, withdrawn = _merge.merge_and_withdraw(
            current, state_dir, results, night_s, permits=str(permits), share=config.detect.same_sun_share,
            season_days=config.detect.season_days,
            rematch=_rematch.bound(current.nights, register, night_s, config.match, key, edges, done),
            decided=decided, committed=done)  # a night done again: its own committed rows may be withdrawn
        if layer is not None:  # the open rows carry tonight's layer's parcel, those opened before it too
            violations = _parcels.with_current_parcels(violations, layer, night_s, tolerances=edges,
                                                       default_m=config.match.edge_tolerance_m or 0.0, committed=done)
        typed = committed_dtypes(current, state_dir)  # a night without new rows: its numbers as committed
        violations, withdrawn = retyped(violations, typed), retyped(withdrawn, typed)
        ok_areas = {r["area"] for r in results if not r["error"]}
        summary.failed = {r["area"]: r["error"] for r in results if r["error"]}
        idle = (set(new_by_area) | set(scl_records)) - {t["area"] for t in tasks}  # nothing to run: ok
        new_state = _next_state(current, new_by_area, ok_areas | idle, night_s, violations, summary.references,
                                scl_records, scl_settled, record=_rematch.record(
                                    current.nights, matched, edges, current.generation + 1)
                                | ({"decisions": decisions_key} if decisions_key else {}), file_records=file_records)
        _merge.write_generation(violations, new_state.violations_path(state_dir))
        everything = _merge.withdrawn_table(current, state_dir, withdrawn,
                                            set(violations["violation_id"].astype(str)))  # (some reopened)
        if len(everything):  # kept in the state: the night's file can be restored, and added to
            _merge.write_generation(everything, new_state.withdrawn_path(state_dir))
        _footprints.save(_footprints.next_table(committed, results), state_dir, new_state.generation)
        checkpoint("generation written")
        night_withdrawn = everything[everything["withdrawn"] == night_s] if len(everything) else withdrawn
        summary.suppressed, unknown = _decisions.summarised(decided, violations, everything, decisions_name)
        summary.reopened = [] if decided.reopened is None else sorted(
            set(decided.reopened["violation_id"].astype(str)) & set(violations["violation_id"].astype(str)))
        for line in unknown:  # a decision on an id this state does not know: a typo, another state's id
            log.warning("%s", line, extra=IN_SUMMARY)
        summary.warnings += unknown
        summary.outputs = _outputs.write_outputs(violations, out_dir, night_s, night_withdrawn,
                                                  formats=config.output.formats)
        checkpoint("outputs written")
        summary.outputs.update(_outputs.write_night_reports(violations, results, out_dir, night_s,
                                                            night_withdrawn, report=config.report))
        checkpoint("reports written")
        save_state(state_dir, new_state)
        _remove_older_register_copies(state_dir, permits, parcels)
        checkpoint("state committed")
        _cleanup(state_dir, new_state, results)
        # a night done again: its rows of the earlier commit were reported then (`done`), not new tonight
        summary.new_violations = int(((violations["night"] == night_s)
                                      & ~violations["violation_id"].astype(str).isin(done)).sum())
        summary.withdrawn = withdrawn["violation_id"].astype(str).tolist()
        summary.withdrawn_reasons = _withdraw_masked.reasons(withdrawn)
        summary.status_changed = _rematch.changed_tonight(violations, night_s)
        summary.open_violations = len(violations)
        summary.pending = _pending(violations)
    log.info("night %s: %s", night_s, summary.to_dict())
    return summary


__all__ = ["Acquisition", "NightlySummary", "discover", "plan_pairs", "run_nightly"]
