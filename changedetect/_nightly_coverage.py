"""How much of each area's scene the night's pairs could see (private; :mod:`changedetect.nightly`).

Each pair's run measures the share of the scene it compared: with data on both of its dates, and
where its BEFORE was filled from the last clear view, data on its AFTER (``compared_share`` of the
pair in its ``run.json``'s ``coverage``; ``coverage_both_dates`` for a run.json without it:
:func:`changedetect.pipeline.run`, on the pair's before and after dates, not the partner or the
reference, which only mask or register).  The
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
    """Area -> one ``{"before", "after", "coverage_both_dates", "compared_share", "filled_share", "clouds",
    "why"}`` per pair that ran to the end (in a failed area too: those before its failure), read from
    each pair's ``run.json``: the shares are its ``coverage`` entry of the pair (its
    ``coverage_both_dates`` for a run without one; None when a run of an older version did not measure
    it); ``compared_share``: the share the pair compared, where its BEFORE was filled from the last
    clear view that too (``coverage_both_dates`` for a run.json without it); ``filled_share``: the
    share compared against the clear view (0 when none; None when not measured); ``clouds``: date ->
    cloud share of the pair's dates whose Sentinel-2 SCL masked their clouds; ``why``: what masked
    the scene when the compared share is under :data:`LOW_COVERAGE`
    (:func:`changedetect.io.clouds.coverage_why`), else None. Areas without such a pair are left out."""
    out: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        for pair in result["runs"]:
            dates = (pair["before"], pair["after"])
            out.setdefault(result["area"], []).append({"before": pair["before"], "after": pair["after"],
                                                       **_read(pair["run_dir"], dates)})
    return dict(sorted(out.items()))


def _read(run_dir: str, dates: tuple[str, str]) -> dict[str, Any]:
    from changedetect._pipeline_coverage import compared_share, tiles_nodata

    try:
        doc = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))
        coverage = doc.get("coverage") or {}
        entry = next((p for p in coverage.get("pairs", []) if (p.get("before"), p.get("after")) == dates),
                     {"coverage_both_dates": doc.get("coverage_both_dates")})
        both, share = entry.get("coverage_both_dates"), compared_share(entry)
        scl = doc.get("clouds") or []
        clouds = masked_clouds(scl, dates)
        why = (coverage_why(scl, dates, tiles_nodata=tiles_nodata(coverage))
               if share is not None and share < LOW_COVERAGE else None)
        filled = entry.get("filled_share", None if share is None else 0.0)
        return {"coverage_both_dates": None if both is None else float(both), "compared_share": share,
                "filled_share": None if filled is None else float(filled), "clouds": clouds, "why": why}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {"coverage_both_dates": None, "compared_share": None, "filled_share": None, "clouds": {}, "why": None}


def low_coverage(coverage: dict[str, list[dict[str, Any]]]) -> list[str]:
    """One warning per pair that compared less than :data:`LOW_COVERAGE` of the scene (its
    ``compared_share``; ``coverage_both_dates`` for an entry without one), naming what masked it (its
    ``why``, :func:`changedetect.io.clouds.coverage_why`, as ``run``'s; the tiles' coverage when it has none)."""
    from changedetect._pipeline_coverage import compared_share, compared_words

    out = []
    for area, pairs in coverage.items():
        for c in pairs:
            share = compared_share(c)
            if share is None or share >= LOW_COVERAGE:
                continue
            why = c.get("why") or coverage_why([], ())
            out.append(f"area {area}: only {100 * share:.1f} % of the scene {compared_words(c)} "
                       f"(the pair {c['before']}..{c['after']}): no change can be seen "
                       f"elsewhere; {why}")
    return out


def record(summary: Any, results: list[dict[str, Any]]) -> None:
    """Put the night's pairs' coverage in ``summary`` (``coverage``), and its warnings (``warnings``,
    also logged: the CLI prints the summary's, the log's only with ``-v``)."""
    from changedetect._nightly_plan import IN_SUMMARY

    summary.coverage = pair_coverage(results)
    for message in low_coverage(summary.coverage) + unregistered(results):
        log.warning("%s", message, extra=IN_SUMMARY)
        summary.warnings.append(message)


def unregistered(results: list[dict[str, Any]]) -> list[str]:
    """One warning per date a pair compared without co-registering it (its ``run.json``'s
    ``unregistered``): the area's new violations of that pair may be misregistration, and the night's
    summary is where an operator reads it (``-q`` shows no log line)."""
    out = []
    for result in results:
        for pair in result["runs"]:
            try:
                doc = json.loads((Path(pair["run_dir"]) / "run.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            for u in doc.get("unregistered") or []:
                out.append(f"area {result['area']}: the {u['date']} acquisition could not be co-registered on "
                           f"{u['reference']} ({u['reason']}) and was compared as it lies (the pair "
                           f"{pair['before']}..{pair['after']}): its building edges can read as change; check the "
                           "tile's georeferencing before acting on the area's new violations")
    return out


__all__ = ["LOW_COVERAGE", "low_coverage", "pair_coverage", "record", "unregistered"]
