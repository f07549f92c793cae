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
from changedetect._report_reasons import coverage_why as said_why
from changedetect._report_reasons import scl_class
from changedetect._report_text import TEXT, num
from changedetect.io.clouds import LOW_COVERAGE, coverage_why


def from_run(run: Mapping[str, Any]) -> dict[str, Any] | None:
    """The report's coverage from a ``run.json`` document: its ``coverage`` and ``clouds``; from one
    written before ``coverage`` (2026-12), its first and last dates' ``coverage_both_dates`` as the
    one pair; None when it has neither."""
    clouds = list(run.get("clouds") or [])
    if isinstance(run.get("coverage"), Mapping):
        return {**run["coverage"], "clouds": clouds, "unregistered": list(run.get("unregistered") or []),
                "warnings": list(run.get("warnings") or [])}
    share, info = run.get("coverage_both_dates"), run.get("report_info") or {}
    if share is None or "before" not in info or "after" not in info:
        return None
    return {"pairs": [{"before": info["before"], "after": info["after"], "coverage_both_dates": share,
                       "low": share < LOW_COVERAGE}], "dates": [], "clouds": clouds}


def _pct(value: Any, lang: str = "en") -> str:
    return "–" if value is None else num(f"{100 * float(value):.1f}", lang) + " %"


def _scl(cloud: Mapping[str, Any] | None, lang: str = "en") -> str:
    """What a date's SCL masked: ``75 % (no data (0) 75 %)``; ``not masked`` (``--no-cloud-mask``)."""
    t = TEXT[lang]
    if cloud is None:
        return t["cov.no_scl"]
    if not cloud.get("masked"):
        return t["cov.not_masked"].format(pct=f"{100 * float(cloud.get('cloud_share', 0.0)):.0f}")
    classes = sorted(((float(v), str(k)) for k, v in (cloud.get("masked_classes") or {}).items() if float(v) >= 0.0005),
                     reverse=True)
    detail = ", ".join(f"{_pct(v, lang)} {scl_class(k, lang)}" for v, k in classes)
    return _pct(cloud.get("masked_share", 0.0), lang) + (f" ({detail})" if detail else "")


def clear_view(pair: Mapping[str, Any], lang: str = "en") -> str:
    """How much of what a pair compared was compared against the last clear view, where its BEFORE
    had no data (``filled_share``, ``filled_from``: :func:`changedetect._pipeline_coverage.coverage_of`):
    ``72.0 % compared, 30 % of it against the clear view of 2024-01-15`` ("" when none was)."""
    filled, share = float(pair.get("filled_share") or 0.0), compared_share(pair)
    if filled <= 0 or not share:
        return ""
    t = TEXT[lang]
    by_date = dict(pair.get("filled_from") or {})
    views = (t["cov.and"].join(str(d) for d in by_date) if len(by_date) < 2 else
             ", ".join(f"{d} ({100 * float(v) / share:.0f} %)" for d, v in by_date.items()))
    return t["cov.clear_view"].format(share=num(f"{100 * share:.1f}", lang), filled=f"{100 * filled / share:.0f}",
                                      views=views or t["cov.earlier"], before=pair["before"])


def _said(warning: Mapping[str, Any], t: Mapping[str, str]) -> dict[str, Any]:
    """A run.json warning's fields for the report's line, its ``hint`` in the report's language (a model
    made for such pixels, or where the models are listed) when it names the model (``fits``)."""
    if "fits" not in warning:
        return dict(warning)
    fits = str(warning.get("fits") or "")
    return {**warning, "hint": t["cov.hint_model"].format(fits=fits) if fits else t["cov.hint_models"]}


def section(coverage: Mapping[str, Any] | None, lang: str = "en") -> str:
    """The report's coverage section (escaped) in ``lang``, or "" without a coverage."""
    if not coverage or not coverage.get("pairs"):
        return ""
    e, t = html.escape, TEXT[lang]
    clouds: Sequence[Mapping[str, Any]] = coverage.get("clouds") or []
    nodata = {str(d["date"]): float(d["tiles_nodata_share"]) for d in coverage.get("dates") or []
              if d.get("tiles_nodata_share") is not None}
    rows = []
    for p in coverage["pairs"]:
        share, low = compared_share(p), bool(p.get("low"))
        marked = ' class="low"' if low else ""
        why = (f'<span class="low-flag">{e(t["cov.low"].format(pct=f"{100 * LOW_COVERAGE:.0f}"))}</span> '
               + e(said_why(coverage_why(clouds, (p["before"], p["after"]), tiles_nodata=nodata), lang))) if low else ""
        clear = clear_view(p, lang)
        why = " ".join(w for w in (e(clear), why) if w)
        rows.append(f'<tr{marked}><td>{e(str(p["before"]))} → {e(str(p["after"]))}</td>'
                    f'<td class="pct">{e(_pct(share, lang))}</td><td>{why}</td></tr>')
    by_date = {str(c.get("date")): c for c in clouds}
    dates = [f'<tr><td>{e(str(d["date"]))}</td><td class="pct">{e(_pct(d.get("valid_share"), lang))}</td>'
             f'<td>{e(_scl(by_date.get(str(d["date"])), lang))}</td>'
             f'<td class="pct">{e(_pct(d.get("tiles_nodata_share"), lang))}</td></tr>'
             for d in coverage.get("dates") or []]
    head = "".join(f"<th>{e(t[k])}</th>" for k in ("cov.date", "cov.with_data", "cov.masked", "cov.tiles_nodata"))
    date_table = (f"<table><tr>{head}</tr>" + "".join(dates) + "</table>") if dates else ""
    unaligned = "".join(f'<p class="unregistered"><span class="low-flag">{e(t["cov.unregistered"].format(**u))}</span></p>'
                        for u in coverage.get("unregistered") or [])
    unaligned += "".join(f'<p class="unregistered model-fit"><span class="low-flag">'
                         f'{e(t["cov.warn_" + str(m["kind"])].format(**_said(m, t)))}</span></p>'
                         for m in coverage.get("warnings") or [] if "cov.warn_" + str(m.get("kind")) in t)
    return (f'<section class="coverage"><h2>{e(t["cov.heading"])}</h2>{unaligned}<p class="note">{e(t["cov.note"])}</p>'
            f'<table><tr><th>{e(t["cov.pair"])}</th><th>{e(t["cov.compared"])}</th><th></th></tr>'
            + "".join(rows) + "</table>" + date_table + "</section>")


__all__ = ["clear_view", "from_run", "section"]
