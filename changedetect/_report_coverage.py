"""What the scene's pairs could compare, in the inspectors' report (private; :mod:`changedetect.report`).

A violation list is only as complete as the scene its pairs saw: where a cloud its Sentinel-2 SCL
masked, the SCL's no data or a tile that does not reach left a date without data, no change was
looked for.  :func:`section` shows, from ``run.json`` (``coverage`` and ``clouds``: see
:mod:`changedetect._pipeline_coverage`), each compared pair's share with data on both dates (pairs
under :data:`~changedetect.io.clouds.LOW_COVERAGE` marked, with what masked them) and each date's
share with data, what its SCL masked (by class) and the tiles' own no data.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from changedetect._pipeline_coverage import compared_share
from changedetect.io.clouds import LOW_COVERAGE, coverage_why


def from_run(run: Mapping[str, Any]) -> dict[str, Any] | None:
    """The report's coverage from a ``run.json`` document: its ``coverage`` and ``clouds``; from one
    written before ``coverage`` (2026-12), its first and last dates' ``coverage_both_dates`` as the
    one pair; None when it has neither."""
    clouds = list(run.get("clouds") or [])
    if isinstance(run.get("coverage"), Mapping):
        return {**run["coverage"], "clouds": clouds}
    share, info = run.get("coverage_both_dates"), run.get("report_info") or {}
    if share is None or "before" not in info or "after" not in info:
        return None
    return {"pairs": [{"before": info["before"], "after": info["after"], "coverage_both_dates": share,
                       "low": share < LOW_COVERAGE}], "dates": [], "clouds": clouds}


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * float(value):.1f} %"


def _scl(cloud: Mapping[str, Any] | None) -> str:
    """What a date's SCL masked: ``75 % (no data (0) 75 %)``; ``not masked`` (``--no-cloud-mask``)."""
    if cloud is None:
        return "no SCL"
    if not cloud.get("masked"):
        return f"not masked ({100 * float(cloud.get('cloud_share', 0.0)):.0f} % cloud read as data)"
    classes = sorted(((float(v), str(k)) for k, v in (cloud.get("masked_classes") or {}).items() if float(v) >= 0.0005),
                     reverse=True)
    detail = ", ".join(f"{100 * v:.1f} % {k}" for v, k in classes)
    return _pct(cloud.get("masked_share", 0.0)) + (f" ({detail})" if detail else "")


def clear_view(pair: Mapping[str, Any]) -> str:
    """How much of what a pair compared was compared against the last clear view, where its BEFORE
    had no data (``filled_share``, ``filled_from``: :func:`changedetect._pipeline_coverage.coverage_of`):
    ``72.0 % compared, 30 % of it against the clear view of 2024-01-15`` ("" when none was)."""
    filled, share = float(pair.get("filled_share") or 0.0), compared_share(pair)
    if filled <= 0 or not share:
        return ""
    by_date = dict(pair.get("filled_from") or {})
    views = (" and ".join(str(d) for d in by_date) if len(by_date) < 2 else
             ", ".join(f"{d} ({100 * float(v) / share:.0f} %)" for d, v in by_date.items()))
    return (f"{100 * share:.1f} % compared, {100 * filled / share:.0f} % of it against the clear view of "
            f"{views or 'an earlier date'} ({pair['before']} had no data there).")


def section(coverage: Mapping[str, Any] | None) -> str:
    """The report's coverage section (escaped), or "" without a coverage."""
    if not coverage or not coverage.get("pairs"):
        return ""
    e = html.escape
    clouds: Sequence[Mapping[str, Any]] = coverage.get("clouds") or []
    nodata = {str(d["date"]): float(d["tiles_nodata_share"]) for d in coverage.get("dates") or []
              if d.get("tiles_nodata_share") is not None}
    rows = []
    for p in coverage["pairs"]:
        share, low = compared_share(p), bool(p.get("low"))
        marked = ' class="low"' if low else ""
        why = (f'<span class="low-flag">LOW: under {100 * LOW_COVERAGE:.0f} %</span> '
               + e(coverage_why(clouds, (p["before"], p["after"]), tiles_nodata=nodata))) if low else ""
        clear = clear_view(p)
        why = " ".join(w for w in (e(clear), why) if w)
        rows.append(f'<tr{marked}><td>{e(str(p["before"]))} → {e(str(p["after"]))}</td>'
                    f'<td class="pct">{e(_pct(share))}</td><td>{why}</td></tr>')
    by_date = {str(c.get("date")): c for c in clouds}
    dates = [f'<tr><td>{e(str(d["date"]))}</td><td class="pct">{e(_pct(d.get("valid_share")))}</td>'
             f'<td>{e(_scl(by_date.get(str(d["date"]))))}</td><td class="pct">{e(_pct(d.get("tiles_nodata_share")))}</td></tr>'
             for d in coverage.get("dates") or []]
    date_table = ("<table><tr><th>Date</th><th>With data</th><th>Masked by its Sentinel-2 SCL</th>"
                  "<th>No data in the tiles</th></tr>" + "".join(dates) + "</table>") if dates else ""
    return ('<section class="coverage"><h2>What was compared</h2>'
            '<p class="note">Each compared pair of dates, with the share of the scene that has data on both '
            "(a cloud masked by the date's Sentinel-2 scene classification, SCL, or no data in the tiles is no "
            "data; where a pair's earlier date had none, its later date was compared against the last clear view "
            "before it, and that counts as compared). Outside it no change was looked for: no violation there "
            "means not checked, not clean.</p>"
            "<table><tr><th>Pair</th><th>Compared</th><th></th></tr>" + "".join(rows) + "</table>"
            + date_table + "</section>")


__all__ = ["clear_view", "from_run", "section"]
