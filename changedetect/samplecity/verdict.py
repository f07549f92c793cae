"""The expected violation of every changed structure, derived from the stored register.

This is the truth :func:`changedetect.match.match` is tested against.  It
applies the rules written in :mod:`~.permits` (and ``docs/sample_city.md``) to
the *true* changed parts and to the register as stored (EPSG:9210, read back
into EPSG:32648 with pyproj's datum transformation), independently of the
matching code.
"""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import pandas as pd
import shapely

from changedetect.samplecity.permits import ALLOWED, MIN_OVERLAP, TOL_M2, TOL_PCT, TRUTH_COLUMNS
from changedetect.samplecity.spec import IMAGE_EPSG


def expected_status(
    part: shapely.Geometry, change_type: str, first_seen: dt.date, register: gpd.GeoDataFrame
) -> tuple[str, list[str], float]:
    """``(status, permit_ids, excess_m2)`` of one changed part (EPSG:32648) against ``register`` (EPSG:32648).

    ``permit_ids`` are the permits the status rests on, largest overlap first: the
    covering ones for ``type_mismatch``, the fitting ones otherwise (none for ``unlicensed``).
    """
    area = part.area
    hits = register.iloc[register.sindex.query(part, predicate="intersects")]
    overlaps = []
    for _, p in hits.iterrows():
        if p["status"] == "revoked":
            continue
        inter = shapely.area(shapely.intersection(part, p.geometry))
        if inter >= MIN_OVERLAP * min(area, p.geometry.area):
            overlaps.append((-inter, p["permit_id"], p))
    cover = [p for _, _, p in sorted(overlaps, key=lambda t: (t[0], t[1]))]  # the main (largest overlap) first
    if not cover:
        return "unlicensed", [], round(area, 2)
    fitting = [p for p in cover if p["permit_type"] in ALLOWED[change_type]]
    if not fitting:
        return "type_mismatch", [p["permit_id"] for p in cover], round(area, 2)
    seen = first_seen.isoformat()
    valid = [p for p in fitting if p["issued_on"] <= seen <= p["valid_until"]]
    ids = [p["permit_id"] for p in fitting]
    if not valid:
        if any(seen < p["issued_on"] for p in fitting):
            return "before_permit", ids, round(area, 2)
        return "permit_expired", ids, round(area, 2)
    outside = shapely.difference(part, shapely.union_all([p.geometry for p in valid])).area
    permitted = sum(float(p["permitted_area_m2"]) for p in valid)
    ids = [p["permit_id"] for p in valid]
    if outside > TOL_M2 and outside > TOL_PCT / 100.0 * permitted:
        return "exceeds_permit", ids, round(outside, 2)
    return "permitted", ids, round(outside, 2)


def truth_table(footprints: gpd.GeoDataFrame, register: gpd.GeoDataFrame, notes: dict[str, str]) -> pd.DataFrame:
    """One row per changed structure: the columns of ``permits/expected_violations.csv``.

    ``footprints`` are the changed parts (EPSG:32648) from :func:`~.truth.footprints`;
    ``notes`` adds a word on each structure's case.
    """
    reg = register.to_crs(IMAGE_EPSG)
    by_id = reg.set_index("permit_id")
    rows = []
    for _, f in footprints.iterrows():
        first = dt.date.fromisoformat(f["first_seen"])
        status, ids, excess = expected_status(f.geometry, f["change_type"], first, reg)
        rows.append(
            {
                "structure_id": f["structure_id"],
                "change_type": f["change_type"],
                "first_seen": f["first_seen"],
                "expected_status": status,
                "permit_id": ";".join(ids),
                "note": "; ".join(x for x in (notes.get(f["structure_id"], ""), _why(status, ids, excess, f["first_seen"], by_id)) if x),
                "area_m2": f["area_m2"],
                "excess_area_m2": excess,
            }
        )
    return pd.DataFrame(rows, columns=TRUTH_COLUMNS)


def _why(status: str, ids: list[str], excess: float, seen: str, by_id: pd.DataFrame) -> str:
    """A short human-readable reason for ``status``."""
    if not ids:
        return "no permit covers it"
    p = by_id.loc[ids[0]]
    if status == "type_mismatch":
        return f"only a {p['permit_type']} permit ({ids[0]}) covers it"
    if status == "before_permit":
        return f"first seen {seen}, {ids[0]} issued only on {p['issued_on']}"
    if status == "permit_expired":
        return f"{ids[0]} expired on {p['valid_until']}, first seen {seen}"
    if status == "exceeds_permit":
        return f"{excess:.1f} m2 built outside {ids[0]} (permitted {p['permitted_area_m2']:.1f} m2)"
    return f"{ids[0]} ({p['permit_type']}, {p['issued_on']} to {p['valid_until']}) covers it"
