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
rather than the tiles.  It also carries into the night's warnings what each pair's run warned of about
its result (``run.json``'s ``unregistered`` and ``warnings``: a register with no permit near, a model made for
other pixels; :func:`run_warnings`), and gives the area's night report its pairs' coverage section
(:func:`report_coverage`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from changedetect.io.clouds import LOW_COVERAGE, coverage_why, masked_clouds

log = logging.getLogger("changedetect.nightly")


def pair_coverage(results: list[dict[str, Any]],
                  docs: Mapping[str, dict[str, Any]] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Area -> one ``{"before", "after", "coverage_both_dates", "compared_share", "filled_share", "clouds",
    "why"}`` per pair that ran to the end (in a failed area too: those before its failure), read from
    each pair's ``run.json``: the shares are its ``coverage`` entry of the pair (its
    ``coverage_both_dates`` for a run without one; None when a run of an older version did not measure
    it); ``compared_share``: the share the pair compared, where its BEFORE was filled from the last
    clear view that too (``coverage_both_dates`` for a run.json without it); ``filled_share``: the
    share compared against the clear view (0 when none; None when not measured); ``clouds``: date ->
    cloud share of the pair's dates whose Sentinel-2 SCL masked their clouds; ``why``: what masked
    the scene when the compared share is under :data:`LOW_COVERAGE`
    (:func:`changedetect.io.clouds.coverage_why`), else None. Areas without such a pair are left out.
    ``docs``: the pairs' ``run.json`` by run folder, when read already (:func:`run_docs`)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        for pair in result["runs"]:
            dates = (pair["before"], pair["after"])
            out.setdefault(result["area"], []).append({"before": pair["before"], "after": pair["after"],
                                                       **_read(_doc(docs, pair["run_dir"]), dates)})
    return dict(sorted(out.items()))


def _read(doc: dict[str, Any], dates: tuple[str, str]) -> dict[str, Any]:
    from changedetect._pipeline_coverage import compared_share, tiles_nodata

    try:
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

    docs = run_docs(results)  # each pair's run.json read once, for the three
    summary.coverage = pair_coverage(results, docs)
    for message in low_coverage(summary.coverage) + unregistered(results, docs) + run_warnings(results, docs):
        log.warning("%s", message, extra=IN_SUMMARY)
        summary.warnings.append(message)


def unregistered(results: list[dict[str, Any]], docs: Mapping[str, dict[str, Any]] | None = None) -> list[str]:
    """One warning per area and date its pairs compared without co-registering it (each ``run.json``'s
    ``unregistered``), naming the pairs (a date is the AFTER of one pair and the BEFORE of the next: one
    line, not two, since 2026-12-03): the area's new violations of those pairs may be misregistration, and
    the night's summary is where an operator reads it (``-q`` shows no log line).  ``docs``: as
    :func:`pair_coverage`'s."""
    out = []
    for result in results:
        said: dict[tuple[str, str], tuple[dict[str, Any], list[str]]] = {}  # (date, reference) -> (first, pairs)
        for pair in result["runs"]:
            for u in _doc(docs, pair["run_dir"]).get("unregistered") or []:
                first, pairs = said.setdefault((str(u["date"]), str(u["reference"])), (u, []))
                pairs.append(f"{pair['before']}..{pair['after']}")
        for u, pairs in said.values():
            out.append(f"area {result['area']}: the {u['date']} acquisition could not be co-registered on "
                       f"{u['reference']} ({u['reason']}) and was compared as it lies "
                       f"({_which(pairs, len(result['runs']))}): its building edges can read as change; check "
                       "the tile's georeferencing before acting on the area's new violations")
    return out


def run_warnings(results: list[dict[str, Any]], docs: Mapping[str, dict[str, Any]] | None = None) -> list[str]:
    """What the night's pairs' runs warned of about their result (each ``run.json``'s ``warnings``: a
    model that does not suit the imagery, a register with no permit near the footprints or none at all:
    :func:`changedetect.pipeline.run`), once per area and kind (a panchromatic date: once per date), not
    once per pair: ``area X: <the first pair's message> (<which of the area's pairs tonight>)``.  Each such
    run exits as usual with violations that cannot be trusted (another district's register: every
    building ``unlicensed``), and the night's summary is where an operator reads it (``-q`` shows no log
    line; before 2026-12-03 the night said nothing of it).  ``docs``: as :func:`pair_coverage`'s."""
    out = []
    for result in results:
        runs = result["runs"]
        said: dict[tuple[str, str], tuple[str, list[str]]] = {}  # (kind, date) -> (message, pairs)
        for pair in runs:
            for w in _doc(docs, pair["run_dir"]).get("warnings") or []:
                if not isinstance(w, dict) or not w.get("message"):
                    continue
                key = (str(w.get("kind")), str(w.get("date", "")) if w.get("kind") == "panchromatic" else "")
                message, pairs = said.setdefault(key, (str(w["message"]), []))
                if f"{pair['before']}..{pair['after']}" not in pairs:
                    pairs.append(f"{pair['before']}..{pair['after']}")
        for message, pairs in said.values():
            out.append(f"area {result['area']}: {message} ({_which(pairs, len(runs))})")
    return out


def _which(pairs: list[str], runs: int) -> str:
    """The pairs that warned among the area's ``runs`` of the night: ``the pair A..B``, ``both of its 2 pairs
    tonight: A..B, B..C``, ``2 of its 5 pairs tonight: A..B, C..D``, at most 3 named."""
    if len(pairs) == 1 and runs == 1:
        return f"the pair {pairs[0]}"
    named = ", ".join(pairs[:3]) + (f" and {len(pairs) - 3} more" if len(pairs) > 3 else "")
    counted = ("both" if runs == 2 else "all") if len(pairs) == runs else str(len(pairs))
    return f"{counted} of its {runs} pairs tonight: {named}" if runs > 1 else f"the pair {named}"


def report_coverage(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The night report's coverage section for an area's pairs of the night (``runs``), as ``changedetect
    run``'s report has its own (:func:`changedetect._report_coverage.from_run` of each pair's ``run.json``):
    each pair compared (a same-season partner's too) and each date once, and at its top the flagged lines of
    what the runs warned of (a register with no permit near, a model made for other pixels, a date not
    co-registered), each once; None when no pair's ``run.json`` has a coverage."""
    from changedetect._report_coverage import from_run

    merged: dict[str, list[Any]] = {"pairs": [], "dates": [], "clouds": [], "unregistered": [], "warnings": []}
    keys: dict[str, Any] = {"pairs": lambda p: (p.get("before"), p.get("after")), "dates": lambda d: d.get("date"),
                            "clouds": lambda c: c.get("date"), "unregistered": lambda u: (u.get("date"), u.get("reference")),
                            "warnings": lambda w: (w.get("kind"), w.get("date") if w.get("kind") == "panchromatic" else None)}
    for pair in runs:
        coverage = from_run(_run_json(pair["run_dir"])) or {}
        for name, key in keys.items():
            seen = {key(v) for v in merged[name]}
            merged[name] += [v for v in coverage.get(name) or [] if isinstance(v, dict) and key(v) not in seen]
    return merged if merged["pairs"] else None


def run_docs(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each of the night's pairs' ``run.json`` by its run folder (``{}`` where it cannot be read), read once for
    :func:`pair_coverage`, :func:`unregistered` and :func:`run_warnings` (each read every one before 2026-12-03)."""
    return {pair["run_dir"]: _run_json(pair["run_dir"]) for result in results for pair in result["runs"]}


def _doc(docs: Mapping[str, dict[str, Any]] | None, run_dir: str) -> dict[str, Any]:
    """A pair's ``run.json`` from ``docs``, or read when they do not hold it."""
    return docs[run_dir] if docs is not None and run_dir in docs else _run_json(run_dir)


def _run_json(run_dir: str) -> dict[str, Any]:
    """A pair's ``run.json``, or ``{}`` when it cannot be read."""
    try:
        doc = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


__all__ = ["LOW_COVERAGE", "low_coverage", "pair_coverage", "record", "report_coverage", "run_warnings",
           "unregistered"]
