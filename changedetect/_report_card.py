"""One violation's card in the inspectors' report (private; :mod:`changedetect.report` lays the
cards out): the status and its reason, the chips, the evidence and the coordinates."""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def _known(value: Any) -> bool:
    """Whether ``value`` is a date or text, not missing."""
    return fmt(value) != "–" and str(value).strip() != ""


def fmt(value: Any, unit: str = "", digits: int = 2) -> str:
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
        return f"{value:,.{digits}f}{unit}"
    return f"{value}{unit}"


def _coords(geom: Any, crs: Any) -> tuple[str, str]:
    from pyproj import CRS, Transformer

    if geom is None or geom.is_empty:
        return "–", "–"
    p = geom.representative_point()
    if crs and CRS.from_user_input(crs).is_geographic:  # degrees: 1e-6 is ~0.1 m; west and south by letter
        working = (f"{abs(p.x):.6f} {'E' if p.x >= 0 else 'W'}, {abs(p.y):.6f} {'N' if p.y >= 0 else 'S'} "
                   f"({CRS.from_user_input(crs).to_string()})")
    else:  # eastings and northings
        working = f"{p.x:,.1f} E, {p.y:,.1f} N ({CRS.from_user_input(crs).to_string()})" if crs else f"{p.x:.1f}, {p.y:.1f}"
    if crs is None:
        return "–", working
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(p.x, p.y)
    latlon = f"{abs(lat):.6f}° {'N' if lat >= 0 else 'S'}, {abs(lon):.6f}° {'E' if lon >= 0 else 'W'}"
    return latlon, working


#: the nightly register's ``same_sun`` column, for inspectors (absent or empty: no row)
SAME_SUN = {
    "pending": "pending: seen between two seasons, where shadows move; the next date of the same "
               "season confirms or withdraws it",
    "confirmed": "confirmed under the same sun",
    "not needed": "not needed (both dates of one season)",
}


def _text(row: Any, column: str) -> str:
    """``row``'s ``column`` as stripped text ('' when missing)."""
    value = row.get(column)
    return str(value).strip() if _known(value) else ""


def parcel_text(row: Any) -> str | None:
    """The parcel a violation stands on (``changedetect run --parcels``): 'sheet 12, parcel 345 (tờ 12,
    thửa 345)' or its id, with its address unless the card's Address row shows it, its land use and its
    share of the building; None without one."""
    pid = _text(row, "parcel_id")
    if not pid:
        return None
    sheet, no = _text(row, "parcel_sheet"), _text(row, "parcel_no")
    text = f"sheet {sheet}, parcel {no} (tờ {sheet}, thửa {no})" if sheet and no else pid
    if sheet and no and pid != f"{sheet}/{no}":
        text += f", id {pid}"
    share = row.get("parcel_share")
    if isinstance(share, float | int | np.floating | np.integer) and math.isfinite(float(share)):
        text += f": {100 * float(share):.0f} % of the building"
    if _text(row, "address") and _text(row, "parcel_address"):  # else the Address row shows the parcel's
        text += f"; {_text(row, 'parcel_address')}"
    if _text(row, "parcel_land_use"):
        text += f"; land use {_text(row, 'parcel_land_use')}"
    return text


def _address_rows(row: Any) -> list[tuple[str, str | None]]:
    """The Address (the matched permits', else the parcel's), the parcel and a building across parcels."""
    address = _text(row, "address")
    rows: list[tuple[str, str | None]] = [
        ("Address", address or (f"{_text(row, 'parcel_address')} (the parcel's)" if _text(row, "parcel_address")
                                else None)),
        ("Parcel", parcel_text(row)),
    ]
    crossed = row.get("parcels_crossed")
    if isinstance(crossed, int | float | np.integer | np.floating) and math.isfinite(float(crossed)) \
            and int(crossed) >= 2:
        rows.append(("Across parcels", f"built across {int(crossed)} parcels (a lot boundary): check whose "
                                       "land it stands on"))
    return rows


def card(number: int, row: Any, crs: Any, chips: Mapping[str, str], labels: Mapping[str, str]) -> str:
    e = html.escape
    status = str(row.get("status", ""))
    latlon, working = _coords(row.geometry, crs)
    permits = str(row.get("permit_ids", "") or "").strip() or "none"
    evidence: list[tuple[str, str | None]] = [
        ("Area", fmt(row.get("area_m2"), " m²", 1)),
        ("Excess area", fmt(row.get("excess_area_m2"), " m²", 1)),
        ("Overlap with permit", fmt(row.get("overlap_ratio"), "", 2)),
        ("Confidence", fmt(row.get("confidence"), "", 2)),
        ("First seen", fmt(row.get("first_seen"))),
        # the last image without it (run's before_date): it changed between the two
        ("Not yet there on", fmt(row.get("before_date")) if _known(row.get("before_date")) else None),
        ("Change type", fmt(row.get("change_type"))),
        ("Matched permits", permits),
        *_address_rows(row),
        ("Lat / lon", latlon),
        ("Working CRS", working),
        ("Violation id", fmt(row.get("violation_id"))),
        ("Same-sun check", SAME_SUN.get(str(row.get("same_sun") or ""))),
    ]
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in evidence if v is not None)
    figs = "".join(
        f'<figure><img src="{src}" alt="{e(labels[key])} image of violation {number}">'
        f"<figcaption>{e(labels[key])}</figcaption></figure>"
        for key, src in chips.items()
    )
    return (
        f'<section class="card status-{e(status)}" id="v{number}">'
        f'<h2><span class="num">{number}</span> <span class="badge badge-{e(status)}">'
        f"{e(status.replace('_', ' '))}</span> {e(fmt(row.get('violation_id')))}</h2>"
        f'<p class="reason">{e(str(row.get("reason", "") or ""))}</p>'
        f'<div class="body"><div class="chips">{figs}</div><table class="evidence">{rows}</table></div></section>'
    )


__all__ = ["SAME_SUN", "card", "fmt", "parcel_text"]
