"""One violation's card in the inspectors' report (private; :mod:`changedetect.report` lays the
cards out): the status and its reason, the chips, the evidence and the coordinates."""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from changedetect._report_text import TEXT, num, term


def _known(value: Any) -> bool:
    """Whether ``value`` is a date or text, not missing."""
    return fmt(value) != "–" and str(value).strip() != ""


def fmt(value: Any, unit: str = "", digits: int = 2, lang: str = "en") -> str:
    """``value`` for the page: dates ISO, floats with ``digits`` decimals in ``lang``'s way, "–" when missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    try:
        import pandas as pd

        if value is pd.NaT or (not isinstance(value, str | bytes) and pd.isna(value)):
            return "–"
        if isinstance(value, pd.Timestamp | dt.datetime):
            return value.date().isoformat()
    except (TypeError, ValueError):
        pass
    if isinstance(value, float | np.floating):
        return num(f"{value:,.{digits}f}", lang) + unit
    return f"{value}{unit}"


def _coords(geom: Any, crs: Any, lang: str = "en") -> tuple[str, str]:
    """Lat/lon and the working CRS's coordinates, with the decimal point a GPS or a GIS takes (in
    Vietnamese without the thousands' commas, which read there as decimal marks)."""
    from pyproj import CRS, Transformer

    if geom is None or geom.is_empty:
        return "–", "–"
    p = geom.representative_point()
    if crs and CRS.from_user_input(crs).is_geographic:  # degrees: 1e-6 is ~0.1 m; west and south by letter
        working = (f"{abs(p.x):.6f} {'E' if p.x >= 0 else 'W'}, {abs(p.y):.6f} {'N' if p.y >= 0 else 'S'} "
                   f"({CRS.from_user_input(crs).to_string()})")
    else:  # eastings and northings
        sep = "" if lang == "vi" else ","
        working = f"{p.x:{sep}.1f} E, {p.y:{sep}.1f} N ({CRS.from_user_input(crs).to_string()})" if crs else f"{p.x:.1f}, {p.y:.1f}"
    if crs is None:
        return "–", working
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(p.x, p.y)
    latlon = f"{abs(lat):.6f}° {'N' if lat >= 0 else 'S'}, {abs(lon):.6f}° {'E' if lon >= 0 else 'W'}"
    return latlon, working


#: the nightly register's ``same_sun`` column, for inspectors (absent or empty: no row)
SAME_SUN = {k[len("same_sun."):]: v for k, v in TEXT["en"].items() if k.startswith("same_sun.")}


def _text(row: Any, column: str) -> str:
    """``row``'s ``column`` as stripped text ('' when missing)."""
    value = row.get(column)
    return str(value).strip() if _known(value) else ""


def parcel_text(row: Any, lang: str = "en") -> str | None:
    """The parcel a violation stands on (``changedetect run --parcels``): 'sheet 12, parcel 345 (tờ 12,
    thửa 345)' or its id, with its address unless the card's Address row shows it, its land use and its
    share of the building; None without one."""
    pid = _text(row, "parcel_id")
    if not pid:
        return None
    t = TEXT[lang]
    sheet, no = _text(row, "parcel_sheet"), _text(row, "parcel_no")
    text = t["parcel.sheet_no"].format(sheet=sheet, no=no) if sheet and no else pid
    if sheet and no and pid != f"{sheet}/{no}":
        text += t["parcel.id"].format(id=pid)
    share = row.get("parcel_share")
    if isinstance(share, float | int | np.floating | np.integer) and math.isfinite(float(share)):
        text += t["parcel.share"].format(pct=f"{100 * float(share):.0f}")
    if _text(row, "address") and _text(row, "parcel_address"):  # else the Address row shows the parcel's
        text += f"; {_text(row, 'parcel_address')}"
    if _text(row, "parcel_land_use"):
        text += t["parcel.land_use"].format(use=_text(row, "parcel_land_use"))
    return text


def _address_rows(row: Any, lang: str) -> list[tuple[str, str | None]]:
    """The Address (the matched permits', else the parcel's), the parcel and a building across parcels."""
    t = TEXT[lang]
    address, parcels = _text(row, "address"), _text(row, "parcel_address")
    rows: list[tuple[str, str | None]] = [
        (t["card.address"], address or (t["card.parcels_address"].format(address=parcels) if parcels else None)),
        (t["card.parcel"], parcel_text(row, lang)),
    ]
    crossed = row.get("parcels_crossed")
    if isinstance(crossed, int | float | np.integer | np.floating) and math.isfinite(float(crossed)) \
            and int(crossed) >= 2:
        rows.append((t["card.across"], t["card.across_text"].format(n=int(crossed))))
    return rows


def card(number: int, row: Any, crs: Any, chips: Mapping[str, str], labels: Mapping[str, str],
         lang: str = "en") -> str:
    """One violation's ``<section>`` in ``lang`` (:mod:`changedetect._report_text`)."""
    from changedetect._report_reasons import reason

    e, t = html.escape, TEXT[lang]
    status = str(row.get("status", ""))
    latlon, working = _coords(row.geometry, crs, lang)
    permits = str(row.get("permit_ids", "") or "").strip() or t["card.no_permit"]
    same_sun = str(row.get("same_sun") or "")
    change = row.get("change_type")
    evidence: list[tuple[str, str | None]] = [
        (t["card.area"], fmt(row.get("area_m2"), " m²", 1, lang)),
        (t["card.excess"], fmt(row.get("excess_area_m2"), " m²", 1, lang)),
        (t["card.overlap"], fmt(row.get("overlap_ratio"), "", 2, lang)),
        (t["card.confidence"], fmt(row.get("confidence"), "", 2, lang)),
        (t["card.first_seen"], fmt(row.get("first_seen"))),
        # the last image without it (run's before_date): it changed between the two
        (t["card.not_yet"], fmt(row.get("before_date")) if _known(row.get("before_date")) else None),
        (t["card.change_type"], term(lang, "change", change) if lang != "en" and _known(change) else fmt(change)),
        (t["card.permits"], permits),
        *_address_rows(row, lang),
        (t["card.latlon"], latlon),
        (t["card.working_crs"], working),
        (t["card.violation_id"], fmt(row.get("violation_id"))),
        (t["card.same_sun"], t.get(f"same_sun.{same_sun}") if same_sun else None),
        # run in blocks: a structure larger than a block could grow to hold (changedetect._pipeline_blocks)
        (t["card.cut"], t["card.cut_text"] if str(row.get("cut_by_block")).lower() in ("true", "1") else None),
    ]
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in evidence if v is not None)
    figs = "".join(
        f'<figure><img src="{src}" alt="{e(t["chip_alt"].format(label=labels[key], n=number))}">'
        f"<figcaption>{e(labels[key])}</figcaption></figure>"
        for key, src in chips.items()
    )
    why = str(row.get("reason", "") or "")
    return (
        f'<section class="card status-{e(status)}" id="v{number}">'
        f'<h2><span class="num">{number}</span> <span class="badge badge-{e(status)}">'
        f"{e(term(lang, 'status', status))}</span> {e(fmt(row.get('violation_id')))}</h2>"
        f'<p class="reason">{e(why if lang == "en" else reason(why, lang))}</p>'
        f'<div class="body"><div class="chips">{figs}</div><table class="evidence">{rows}</table></div></section>'
    )


__all__ = ["SAME_SUN", "card", "fmt", "parcel_text"]
