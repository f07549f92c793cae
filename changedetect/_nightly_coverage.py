"""How much of each area's scene the night's pairs could see (private; :mod:`changedetect.nightly`).

Each pair's run measures the share of the scene with data on both of its dates
(``coverage_both_dates`` in its ``run.json``: :func:`changedetect.pipeline.run`, on the pair's
before and after dates, not the partner or the reference, which only mask or register).  The
night's summary gives it per area and pair, and warns, as ``run`` does, when it is under half:
a delivery cut by a swath edge or a nodata band looks like a quiet night otherwise.  The warning
names what masked the scene in ``run``'s words (:func:`changedetect.io.clouds.coverage_why`: the
classes the dates' SCL masked, from ``run.json``'s ``clouds``, and the tiles' own no data, from its
``coverage`` dates), so an SCL that masked its no data, saturated pixels or cloud shadows is named
rather than the tiles.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from changedetect.io.clouds import LOW_COVERAGE, coverage_why, masked_clouds

log = logging.getLogger("changedetect.nightly")


def pair_coverage(results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Area -> one ``{"before", "after", "coverage_both_dates", "clouds", "why"}`` per pair that ran to
    the end (in a failed area too: those before its failure), read from each pair's ``run.json``:
    the share is its ``coverage`` entry of the pair (its ``coverage_both_dates`` for a run without
    one; None when a run of an older version did not measure it); ``clouds``: date -> cloud share
    of the pair's dates whose Sentinel-2 SCL masked their clouds; ``why``: what masked the scene
    when under :data:`LOW_COVERAGE` (:func:`changedetect.io.clouds.coverage_why`), else None. Areas
    without such a pair are left out."""
    out: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        for pair in result["runs"]:
            dates = (pair["before"], pair["after"])
            share, clouds, why = _read(pair["run_dir"], dates)
            out.setdefault(result["area"], []).append(
                {"before": pair["before"], "after": pair["after"], "coverage_both_dates": share, "clouds": clouds,
                 "why": why})
    return dict(sorted(out.items()))


def _read(run_dir: str, dates: tuple[str, str]) -> tuple[float | None, dict[str, float], str | None]:
    from changedetect._pipeline_coverage import tiles_nodata

    try:
        doc = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))
        coverage = doc.get("coverage") or {}
        value = next((p.get("coverage_both_dates") for p in coverage.get("pairs", [])
                      if (p.get("before"), p.get("after")) == dates), doc.get("coverage_both_dates"))
        scl = doc.get("clouds") or []
        clouds = masked_clouds(scl, dates)
        share = None if value is None else float(value)
        why = (coverage_why(scl, dates, tiles_nodata=tiles_nodata(coverage))
               if share is not None and share < LOW_COVERAGE else None)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None, {}, None
    return share, clouds, why


def low_coverage(coverage: dict[str, list[dict[str, Any]]]) -> list[str]:
    """One warning per pair with data on both dates over less than :data:`LOW_COVERAGE` of the scene,
    naming what masked it (its ``why``, :func:`changedetect.io.clouds.coverage_why`, as ``run``'s; the
    tiles' coverage when it has none)."""
    out = []
    for area, pairs in coverage.items():
        for c in pairs:
            share = c["coverage_both_dates"]
            if share is None or share >= LOW_COVERAGE:
                continue
            why = c.get("why") or coverage_why([], ())
            out.append(f"area {area}: only {100 * share:.1f} % of the scene has data on both {c['before']} "
                       f"and {c['after']} (the pair {c['before']}..{c['after']}): no change can be seen "
                       f"elsewhere; {why}")
    return out


def record(summary: Any, results: list[dict[str, Any]]) -> None:
    """Put the night's pairs' coverage in ``summary`` (``coverage``), and its warnings (``warnings``,
    also logged: the CLI prints the summary's, the log's only with ``-v``)."""
    from changedetect._nightly_plan import IN_SUMMARY

    summary.coverage = pair_coverage(results)
    for message in low_coverage(summary.coverage):
        log.warning("%s", message, extra=IN_SUMMARY)
        summary.warnings.append(message)


__all__ = ["LOW_COVERAGE", "low_coverage", "pair_coverage", "record"]
