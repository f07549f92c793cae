"""What a night commits and leaves behind (private; :mod:`changedetect.nightly`): the next state
(:func:`_next_state`), the cleanup after the commit (:func:`_cleanup`), a night already committed with
nothing to do again (:func:`_already_done`: its outputs restored only), and the register's numeric columns
typed as committed (:func:`committed_dtypes`, :func:`retyped`)."""

from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from changedetect import _nightly_footprints as _footprints
from changedetect import _nightly_outputs as _outputs
from changedetect._nightly_catalog import Acquisition
from changedetect._nightly_plan import _safe
from changedetect._nightly_reference import NightState
from changedetect._nightly_summary import NightlySummary

log = logging.getLogger("changedetect.nightly")  # (the job's logger, as before this module)


def _already_done(current: NightState, state_dir: Path, out_dir: Path, summary: NightlySummary,
                  formats: tuple[str, ...] = _outputs.DEFAULT_FORMATS) -> NightlySummary:
    """Nothing new for a night already committed: only restore outputs that went missing (and remove the
    night's in a format no longer asked: :func:`changedetect._nightly_outputs.restore_outputs`)."""
    import geopandas as gpd

    violations = gpd.read_parquet(current.violations_path(state_dir))
    withdrawn = (gpd.read_parquet(current.withdrawn_path(state_dir)) if current.withdrawn_path(state_dir).is_file()
                 else None)
    if withdrawn is not None:
        withdrawn = withdrawn[withdrawn["withdrawn"] == summary.night]
    summary.outputs = _outputs.restore_outputs(violations, out_dir, summary.night, withdrawn, formats=formats)
    summary.new_violations = 0
    summary.open_violations = len(violations)
    summary.pending = _pending(violations)
    log.info("night %s: nothing new", summary.night)
    return summary


def _pending(violations: Any) -> int:
    """How many open violations await a same-season check (``same_sun == "pending"``)."""
    return int((violations["same_sun"] == "pending").sum()) if "same_sun" in violations else 0


def committed_dtypes(current: NightState, state_dir: Path) -> dict[str, np.dtype[Any]]:
    """Column -> dtype of the numeric columns of the committed withdrawn table and open register (their
    Parquet schema; the register's where both have one): what the night's frames are typed back to
    (:func:`retyped`).  ``{}`` before the first commit."""
    if not current.generation:
        return {}
    import pyarrow as pa
    import pyarrow.parquet as pq

    out: dict[str, np.dtype[Any]] = {}
    for path in (current.withdrawn_path(state_dir), current.violations_path(state_dir)):
        if path.is_file():
            out |= {f.name: np.dtype(f.type.to_pandas_dtype()) for f in pq.read_schema(path)
                    if pa.types.is_floating(f.type) or pa.types.is_integer(f.type)}
    return out


def retyped(frame: Any, dtypes: dict[str, np.dtype[Any]]) -> Any:
    """``frame`` with each ``object`` column that holds only numbers (and nulls) typed as ``dtypes`` says (an
    integer type only without nulls); the other columns as they are.

    A safety net only: no path is known to need it.  It was written for the merge
    (:func:`changedetect._merge.merge_night`), which concatenated the committed register with a night's empty
    frame of new rows (a night done again, a pair that found nothing new): pandas then made the register's
    numbers ``object`` (``String`` in the CSV's ``.csvt``, a ``float32`` ``confidence`` back as ``float64``:
    ``0.9103000164031982``, in the state for good).  The merge now keeps an empty side's dtypes out
    (:func:`changedetect._merge._stacked`); with it, over tests/test_nightly.py and tests/test_review_nightly_*.py
    (197 tests, 2026-12-02 07:22 UTC) this changed a column in its own unit test only.  It stays for a frame
    that the night's later steps (withdrawals, the register matched again, the decisions, the parcels) might
    build from an empty ``object`` one; a column it types was degraded there, and the log says which."""
    out = frame
    for col, dtype in dtypes.items():
        if col not in frame or frame[col].dtype != object:
            continue
        values = frame[col]
        known = values[values.notna()]
        if not all(isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_)
                   for v in known) or (dtype.kind in "iu" and len(known) < len(values)):
            continue
        out = out.copy() if out is frame else out
        log.debug("column %s typed back to %s (an object column of numbers: a frame built from an empty one)", col,
                  dtype)
        out[col] = pd.to_numeric(values.where(values.notna(), np.nan)).astype(dtype)
    return out


def _next_state(current: NightState, new_by_area: dict[str, list[Acquisition]], ok_areas: set[str], night: str,
                violations: Any, references: dict[str, dict[str, Any]],
                scl_records: dict[str, dict[str, str]] | None = None,
                scl_settled: dict[str, dict[str, str]] | None = None,
                record: dict[str, Any] | None = None,
                file_records: dict[str, dict[str, dict[str, str]]] | None = None) -> NightState:
    """The state to commit: a successful area's new acquisitions (with their SCL's checksum, ``""``
    for none), the SCL checksums of its dates compared again or upgraded (``scl_records``:
    :mod:`changedetect._nightly_scl`), and its reference pinned; a new date of several files with each
    file's checksum (``"files"``: :mod:`changedetect._nightly_redelivery`); any area's upgrade of a record
    written before SCL checksums (``scl_settled``), so that a failed night does not decide it again, and of
    one written before the files' checksums (``file_records``);
    ``record``: what the night's record keeps besides its counts (:func:`changedetect._nightly_rematch.record`)."""
    acquisitions = {a: {k: dict(r) for k, r in v.items()} for a, v in current.acquisitions.items()}
    for area, new in new_by_area.items():
        if area in ok_areas:
            acquisitions.setdefault(area, {}).update(
                {q.sha256: {"path": q.path, "date": q.date, "night": night, "scl": q.scl_sha256 or "",
                            **({"files": q.file_sha256} if q.file_sha256 else {})} for q in new})
    settled = [(area, records) for area, records in (scl_settled or {}).items()]  # any area: decided once
    done = [(area, records) for area, records in (scl_records or {}).items() if area in ok_areas]
    for area, records in [*settled, *done]:
        for sha, scl in records.items():
            if sha in acquisitions.get(area, {}):
                acquisitions[area][sha]["scl"] = scl
    for area, files_of in (file_records or {}).items():  # any area: a fact of the catalog
        for sha, files in files_of.items():
            if sha in acquisitions.get(area, {}):
                acquisitions[area][sha]["files"] = dict(files)
    nights = dict(current.nights)
    nights[night] = {"new_violations": int((violations["night"] == night).sum()),
                     "open_violations": len(violations), **(record or {})}
    checksums = {k: v for k, v in current.checksums.items() if Path(k).exists()}  # filled by discover()
    pinned = dict(current.references)
    for area, ref in sorted(references.items()):
        if area in ok_areas and pinned.get(area) != ref:
            log.info("area %s: registration reference pinned: %s (%s)", area, ref["path"], ref["date"])
            pinned[area] = ref
    return NightState(acquisitions=acquisitions, generation=current.generation + 1, nights=nights,
                      checksums=checksums, references=pinned)


def _cleanup(state_dir: Path, state: NightState, results: list[dict[str, Any]]) -> None:
    """Remove older generations and the committed pairs' work folders (safe to skip)."""
    keep = {state.violations_path(state_dir).name, _footprints.path(state_dir, state.generation).name,
            state.withdrawn_path(state_dir).name}
    for old in [*state_dir.glob("violations-*.parquet"), *state_dir.glob("footprints-*.parquet"),
                *state_dir.glob("withdrawn-*.parquet")]:
        if old.name not in keep:
            old.unlink(missing_ok=True)
    failed = {_safe(r["area"]) for r in results if r["error"]}  # their complete pairs are reused next run
    for r in results:
        if r["error"]:
            continue
        for pair in r["runs"]:
            # the whole area folder: also the pairs of an earlier, failed attempt whose inputs have since
            # changed (their keys will never come again)
            area_dir = Path(pair["run_dir"]).parent
            if area_dir.name not in failed:
                shutil.rmtree(area_dir, ignore_errors=True)
                continue
            shutil.rmtree(pair["run_dir"], ignore_errors=True)
            Path(f"{pair['run_dir']}.manifest.json").unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # the area's folder, once empty (not while a pair is left)
                area_dir.rmdir()


__all__ = ["_already_done", "_cleanup", "_next_state", "_pending", "committed_dtypes", "retyped"]
