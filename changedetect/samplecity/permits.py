"""The sample permit register and the violations it implies (the truth file).

Each changed structure is given a *case* (what the register says about it), a
permit is written for that case, and the expected status is then derived from
the stored register by the documented rules (:func:`expected_status`), which
must give back the intended case.  Rules (as :mod:`changedetect.match`):

1. a permit *covers* a changed part when not revoked and their overlap is at
   least 10 % of the smaller of the two areas; none covers it: ``unlicensed``;
2. none of the covering permits has a type that allows the change (new:
   new_construction or extension; extension: new_construction, extension or
   renovation; demolition: demolition): ``type_mismatch``;
3. every fitting permit was issued after ``first_seen``: ``before_permit``;
4. every fitting permit expired (``valid_until``) before ``first_seen``: ``permit_expired``;
5. the part's area outside the valid fitting permits exceeds 10 m² and 10 % of
   their ``permitted_area_m2``: ``exceeds_permit``; otherwise ``permitted``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import affinity

from changedetect.samplecity.addresses import address_for
from changedetect.samplecity.changes import Change
from changedetect.samplecity.layout import City
from changedetect.samplecity.spec import IMAGE_EPSG, REGISTER_EPSG, CityConfig, along, rect

PERMIT_COLUMNS = ["permit_id", "permit_type", "issued_on", "valid_until", "permitted_area_m2", "address", "status", "geometry"]
TRUTH_COLUMNS = ["structure_id", "change_type", "first_seen", "expected_status", "permit_id", "note", "area_m2", "excess_area_m2"]
ALLOWED = {"new": ("new_construction", "extension"), "extension": ("new_construction", "extension", "renovation"), "demolition": ("demolition",)}
TOL_M2, TOL_PCT, MIN_OVERLAP = 10.0, 10.0, 0.1
_PREFIX = {"new_construction": "GPXD", "extension": "GPXD", "renovation": "GPSC", "demolition": "GPPD"}


@dataclass
class _Permit:
    ptype: str
    issued: dt.date
    valid: dt.date
    geom: shapely.Geometry  # local metres
    status: str
    address: str
    target: str = ""


def assign_cases(changes: list[Change], rng: np.random.Generator) -> dict[str, str]:
    """The intended status of every change: each violation kind at least once, most permitted."""
    news = [c for c in changes if c.change_type == "new"]
    houses = [c for c in news if c.lot is not None and "rebuilt" not in c.note]
    exts = [c for c in changes if c.change_type == "extension"]
    dems = [c for c in changes if c.change_type == "demolition"]
    cases: dict[str, str] = {}
    wanted = [
        (houses, "exceeds_permit"), (exts, "exceeds_permit"), (houses, "permit_expired"), (houses, "before_permit"),
        (houses, "unlicensed"), (exts, "unlicensed"), (houses, "type_mismatch"), (houses, "unlicensed_revoked"),
        (dems, "permitted"), (dems, "unlicensed"), (dems, "type_mismatch"), (exts, "before_permit"),
        (news, "permit_expired"),
    ]
    rebuilt = {id(c.lot) for c in news if "rebuilt" in c.note}
    for c in dems:
        if c.lot is not None and id(c.lot) in rebuilt:
            cases[c.sid] = "permitted"  # a rebuild's demolition is permitted (else the new permit would mismatch it)
    for pool, case in wanted:
        left = [c for c in pool if c.sid not in cases and "rebuilt" not in c.note]
        if left:
            cases[left[int(rng.integers(len(left)))].sid] = case
    for c in changes:
        if c.sid not in cases:
            cases[c.sid] = "permitted" if rng.random() < 0.8 or "rebuilt" in c.note else "unlicensed"
    return cases


def build_register(city: City, changes: list[Change], cases: dict[str, str], rng: np.random.Generator) -> gpd.GeoDataFrame:
    """The permit register (EPSG:9210) for ``changes`` under ``cases``, plus permits never built."""
    cfg = city.config
    dates = [a.date for a in cfg.acquisitions]
    permits: list[_Permit] = []
    for c in changes:
        case = cases[c.sid]
        seen, before = dates[c.date_index], dates[c.date_index - 1]
        addr = address_for(city, c.whole, c.after.kind if c.after is not None else "house", rng)
        if case == "unlicensed":
            continue
        ptype = {"new": "new_construction", "extension": "extension", "demolition": "demolition"}[c.change_type]
        if case == "type_mismatch":
            ptype = "renovation"
        geom = _permitted_geometry(c, case, rng)
        issued, valid = _dates_for(case, before, seen, cfg.register_date, rng)
        status = _status(case, valid, cfg.register_date, rng)
        permits.append(_Permit(ptype, issued, valid, geom, status, addr, c.sid))
    permits += _never_built(city, changes, rng)
    permits += _historical(city, changes, rng)
    return _frame(cfg, permits, rng)


def _permitted_geometry(c: Change, case: str, rng: np.random.Generator) -> shapely.Geometry:
    """The real footprint moved by a few decimetres, or a smaller one when the build exceeds it."""
    if case == "exceeds_permit":
        if c.change_type == "extension" and c.after is not None and c.before is not None:
            r = c.after.roofs[-1]
            keep = r.d * 0.2
            near = along((r.cx, r.cy), r.angle, -r.d / 2)
            small = rect(*along(near, r.angle, keep / 2), r.w, keep, r.angle)
            base = shapely.union(c.before.polygon, small).buffer(0.005, join_style="mitre").buffer(-0.005, join_style="mitre")
        else:
            assert c.after is not None
            r = c.after.roofs[0]
            d2 = r.d * rng.uniform(0.5, 0.6)
            base = rect(*along((r.cx, r.cy), r.angle, -(r.d - d2) / 2), r.w, d2, r.angle)
    else:
        base = c.whole
    return _jitter(base, rng)


def _jitter(geom: shapely.Geometry, rng: np.random.Generator, scale: float = 1.0) -> shapely.Geometry:
    g = affinity.rotate(geom, rng.uniform(-0.4, 0.4) * scale, origin="centroid")
    return affinity.translate(g, rng.uniform(-0.25, 0.25) * scale, rng.uniform(-0.25, 0.25) * scale)


def _dates_for(case: str, before: dt.date, seen: dt.date, register: dt.date, rng: np.random.Generator) -> tuple[dt.date, dt.date]:
    day = dt.timedelta(days=1)
    if case == "permit_expired":
        valid = before - int(rng.integers(20, 200)) * day
        return valid - int(rng.integers(300, 400)) * day, valid
    if case == "before_permit":
        issued = min(seen + int(rng.integers(15, 60)) * day, register - 3 * day)
        return issued, issued + 365 * day
    issued = before - int(rng.integers(10, 200)) * day
    valid = max(issued + int(rng.integers(365, 731)) * day, seen + 30 * day)
    return issued, valid


def _status(case: str, valid: dt.date, register: dt.date, rng: np.random.Generator) -> str:
    if case == "unlicensed_revoked":
        return "revoked"
    if case == "permit_expired":
        return "expired"
    if case == "before_permit":
        return "active"
    return "active" if valid >= register and rng.random() < 0.4 else "completed"


def _never_built(city: City, changes: list[Change], rng: np.random.Generator) -> list[_Permit]:
    """Permits for things that were never built (or never demolished) by the last date."""
    parts = [c.whole for c in changes]
    used = {id(c.lot) for c in changes if c.lot is not None}
    reg = city.config.register_date
    out: list[_Permit] = []

    def clear(g: shapely.Geometry) -> bool:
        return all(g.distance(p) > 1.5 for p in parts)

    vacant = [lot for lot in city.lots if lot.house is None and id(lot) not in used and clear(lot.polygon)]
    for lot in vacant[:3]:
        geom = _jitter(lot.polygon.buffer(-0.3, join_style="mitre"), rng)
        out.append(_unbuilt("new_construction", geom, address_for(city, geom, "house", rng), reg, rng))
    for front, angle, w, d in city.sites[:1]:
        geom = rect(*along(front, angle, d / 2), w - 4, d - 4, angle)
        if clear(geom):
            out.append(_unbuilt("new_construction", geom, address_for(city, geom, "warehouse", rng), reg, rng))
    homes = [lot for lot in city.lots if lot.house is not None and id(lot) not in used and clear(lot.polygon)]
    picks = [homes[int(i)] for i in rng.permutation(len(homes))[:3]] if homes else []
    for lot, ptype in zip(picks, ("extension", "demolition", "new_construction"), strict=False):
        assert lot.house is not None
        geom = _jitter(lot.polygon if ptype == "extension" else lot.house.polygon, rng)
        status = "revoked" if ptype == "new_construction" else ""
        out.append(_unbuilt(ptype, geom, address_for(city, geom, "house", rng), reg, rng, status=status))
    return out


def _unbuilt(ptype: str, geom: shapely.Geometry, addr: str, reg: dt.date, rng: np.random.Generator, *, status: str = "") -> _Permit:
    issued = reg - int(rng.integers(60, 700)) * dt.timedelta(days=1)
    valid = issued + 365 * dt.timedelta(days=1)
    status = status or ("active" if valid >= reg else "expired")
    return _Permit(ptype, issued, valid, geom, status, addr, "")


def _historical(city: City, changes: list[Change], rng: np.random.Generator) -> list[_Permit]:
    """Completed permits of years past for some unchanged buildings well away from every change."""
    parts = [c.whole for c in changes]
    changed = {c.before.bid for c in changes if c.before is not None}
    out = []
    for b in city.buildings:
        if b.bid in changed or rng.random() > 0.12:
            continue
        poly = b.polygon
        if any(poly.distance(p) < 2.0 for p in parts):
            continue
        issued = dt.date(int(rng.integers(2012, 2023)), int(rng.integers(1, 13)), int(rng.integers(1, 29)))
        ptype = "new_construction" if rng.random() < 0.8 else "renovation"
        geom = _jitter(poly, rng)
        out.append(_Permit(ptype, issued, issued + dt.timedelta(days=365), geom, "completed", address_for(city, geom, b.kind, rng)))
    return out


def _frame(cfg: CityConfig, permits: list[_Permit], rng: np.random.Generator) -> gpd.GeoDataFrame:
    """Number the permits by year of issue and store them in EPSG:9210 (centimetre coordinates)."""
    order = sorted(range(len(permits)), key=lambda i: (permits[i].issued, i))
    seq: dict[int, int] = {}
    rows = []
    for i in order:
        p = permits[i]
        seq[p.issued.year] = seq.get(p.issued.year, int(rng.integers(40, 300))) + int(rng.integers(1, 9))
        pid = f"{_PREFIX[p.ptype]}-{p.issued.year}-{seq[p.issued.year]:04d}"
        rows.append(
            {
                "permit_id": pid,
                "permit_type": p.ptype,
                "issued_on": p.issued.isoformat(),
                "valid_until": p.valid.isoformat(),
                "permitted_area_m2": round(float(p.geom.area), 1),
                "address": p.address,
                "status": p.status,
                "geometry": cfg.to_utm(p.geom),
                "target": p.target,
            }
        )
    frame = gpd.GeoDataFrame(pd.DataFrame(rows), geometry="geometry", crs=f"EPSG:{IMAGE_EPSG}").to_crs(REGISTER_EPSG)
    frame["geometry"] = shapely.set_precision(frame.geometry.values, 0.01)
    return frame.reset_index(drop=True)
