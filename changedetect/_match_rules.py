"""The evidence and the rules of :func:`changedetect.match.match` (private).

Everything is computed on arrays of candidate pairs ``(fi, pi)`` (footprint
index, permit index), sorted by footprint and then by decreasing overlap, so
that "the main permit of a footprint" is the first pair of its group.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from pyproj.transformer import TransformerGroup

if TYPE_CHECKING:
    from changedetect.match import MatchConfig

log = logging.getLogger(__name__)

#: change kind -> permit types that allow it
ALLOWED_TYPES: dict[str, tuple[str, ...]] = {
    "new": ("new_construction", "extension"),
    "altered": ("new_construction", "extension", "renovation"),
    "demolished": ("demolition",),
}
_KIND_WORD = {"new": "new building", "altered": "altered building", "demolished": "demolition"}


def reproject(gdf: gpd.GeoDataFrame, crs: CRS) -> gpd.GeoDataFrame:
    """``gdf`` in ``crs``, datum shift included.

    pyproj (PROJ) chooses, for each coordinate, the most accurate operation
    whose area of use contains it (for VN-2000 around Ho Chi Minh City: the
    Mekong-delta Helmert transformation); that is what ``to_crs`` does.  When
    the datums differ and PROJ knows no transformation at all ("ballpark"),
    positions can be hundreds of metres off: that is logged as a warning.
    """
    src = CRS.from_user_input(gdf.crs)
    if src == crs:
        return gdf.copy()
    if src.datum != crs.datum:
        ops = TransformerGroup(src, crs, always_xy=True).transformers
        if not ops or all("ballpark" in t.description.lower() for t in ops):
            log.warning("no datum transformation known from %s to %s: positions may be off by "
                        "hundreds of metres", src.name, crs.name)
        else:
            log.info("reprojecting %d features %s -> %s (e.g. %s)", len(gdf), src.name, crs.name,
                     ops[0].description)
    return gdf.to_crs(crs)


@dataclass
class Evidence:
    """Per-footprint evidence (arrays of length n) and the candidate pairs."""

    area_m2: np.ndarray
    overlap_ratio: np.ndarray
    excess_area_m2: np.ndarray
    permit_ids: list[str]
    fi: np.ndarray
    pi: np.ndarray
    inter: np.ndarray
    counted: np.ndarray
    revoked_cover: np.ndarray
    compatible: np.ndarray
    before: np.ndarray
    after: np.ndarray
    valid: np.ndarray


def overlap_evidence(
    fp: gpd.GeoDataFrame, pm: gpd.GeoDataFrame, fi: np.ndarray, pi: np.ndarray, config: MatchConfig
) -> Evidence:
    """Overlap, type fit and date fit of every candidate pair; overlap and excess per footprint."""
    fpg = np.asarray(fp.geometry.values)
    pmg = np.asarray(pm.geometry.values)
    fp_area = shapely.area(fpg)
    pm_area = shapely.area(pmg)
    point = np.isin(shapely.get_type_id(pmg[pi]), (0, 4))
    inter = np.where(point, np.nan, shapely.area(shapely.intersection(fpg[fi], pmg[pi])))
    order = np.lexsort((-np.nan_to_num(inter, nan=np.inf), fi))
    fi, pi, inter, point = fi[order], pi[order], inter[order], point[order]
    smaller = np.minimum(fp_area[fi], pm_area[pi])
    covers = point | (inter >= config.min_overlap_ratio * smaller)
    revoked = pm["status"].to_numpy()[pi] == "revoked"
    counted = covers & ~revoked
    kinds = fp["change_type"].to_numpy()[fi]
    ptypes = pm["permit_type"].to_numpy()[pi]
    fit = np.array([t in ALLOWED_TYPES[k] for k, t in zip(kinds, ptypes, strict=True)], dtype=bool)
    compatible = counted & fit
    seen = fp["first_seen"].to_numpy()[fi]
    before = compatible & (seen < pm["issued_on"].to_numpy()[pi])
    after = compatible & (seen > pm["valid_until"].to_numpy()[pi])
    valid = compatible & ~before & ~after
    n = len(fp)
    excess_counted = _excess(fpg, pmg, fp_area, fi, pi, inter, point, counted, n)
    overlap = np.where(fp_area > 0, 1.0 - excess_counted / np.where(fp_area > 0, fp_area, 1), 0.0)
    overlap = np.where(_any(counted, fi, n), overlap, 0.0)
    excess_valid = _excess(fpg, pmg, fp_area, fi, pi, inter, point, valid, n)
    # what no valid permit allows: all of it when no permit is valid (expired, not yet issued, wrong type)
    excess = np.where(_any(valid, fi, n), excess_valid, fp_area)
    ids = pm["permit_id"].astype(str).to_numpy()
    permit_ids = [""] * n
    rank = np.lexsort((np.arange(len(fi)), ~compatible, ~valid, fi))  # valid first, then fitting, then overlap
    for f, p in zip(fi[rank][counted[rank]].tolist(), pi[rank][counted[rank]].tolist(), strict=True):
        permit_ids[f] = f"{permit_ids[f]},{ids[p]}" if permit_ids[f] else ids[p]
    return Evidence(fp_area, np.clip(overlap, 0, 1), np.maximum(excess, 0.0), permit_ids, fi, pi, inter,
                    counted, covers & revoked, compatible, before, after, valid)


def _any(mask: np.ndarray, fi: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(fi[mask], minlength=n) > 0


def _excess(
    fpg: np.ndarray, pmg: np.ndarray, fp_area: np.ndarray, fi: np.ndarray, pi: np.ndarray,
    inter: np.ndarray, point: np.ndarray, mask: np.ndarray, n: int,
) -> np.ndarray:
    """Area of each footprint outside the union of its ``mask``-ed polygon permits (its area if none)."""
    poly = mask & ~point
    count = np.bincount(fi[poly], minlength=n)
    out = fp_area.copy()
    single = poly & (count[fi] == 1)
    out[fi[single]] = fp_area[fi[single]] - inter[single]
    for f in np.flatnonzero(count > 1):
        parts = pmg[pi[poly & (fi == f)]]
        out[f] = shapely.area(shapely.difference(fpg[f], shapely.union_all(parts)))
    only_points = (np.bincount(fi[mask & point], minlength=n) > 0) & (count == 0)
    out[only_points] = 0.0  # a point permit has no footprint: areas are compared in classify
    return out


def _first(mask: np.ndarray, fi: np.ndarray, n: int) -> np.ndarray:
    """Index of the first ``mask``-ed pair of each footprint (largest overlap), -1 if none."""
    out = np.full(n, -1, dtype=np.intp)
    idx = np.flatnonzero(mask)
    uniq, first = np.unique(fi[idx], return_index=True)
    out[uniq] = idx[first]
    return out


def classify(
    fp: gpd.GeoDataFrame, pm: gpd.GeoDataFrame, ev: Evidence, config: MatchConfig
) -> tuple[np.ndarray, list[str]]:
    """The status of each footprint (see :mod:`changedetect.match` for the precedence) and a reason."""
    n = len(fp)
    fi, pi = ev.fi, ev.pi
    area_pm = pm["permitted_area_m2"].to_numpy(dtype=float)
    point = np.isin(shapely.get_type_id(np.asarray(pm.geometry.values)), (0, 4))
    # permitted area of the valid permits, and point permits' share of the excess
    permitted = np.bincount(fi[ev.valid], weights=area_pm[pi[ev.valid]], minlength=n)
    pt_valid = ev.valid & point[pi]
    has_poly = np.bincount(fi[ev.valid & ~point[pi]], minlength=n) > 0
    pt_area = np.bincount(fi[pt_valid], weights=area_pm[pi[pt_valid]], minlength=n)
    excess = np.where(has_poly, ev.excess_area_m2, np.maximum(ev.area_m2 - pt_area, 0.0))
    excess = np.where(_any(ev.valid, fi, n), excess, ev.excess_area_m2)
    ev.excess_area_m2 = excess
    over = (excess > config.tolerance_m2) & (excess > config.tolerance_pct / 100.0 * permitted)
    any_counted, any_compat, any_valid = (_any(m, fi, n) for m in (ev.counted, ev.compatible, ev.valid))
    any_before = _any(ev.before, fi, n)
    status = np.select(
        [~any_counted, ~any_compat, ~any_valid & any_before, ~any_valid, over],
        ["unlicensed", "type_mismatch", "before_permit", "permit_expired", "exceeds_permit"],
        default="permitted",
    ).astype(object)
    main = {
        "type_mismatch": _first(ev.counted, fi, n), "before_permit": _first(ev.before, fi, n),
        "permit_expired": _first(ev.after, fi, n), "exceeds_permit": _first(ev.valid, fi, n),
        "permitted": _first(ev.valid, fi, n),
    }
    revoked = _first(ev.revoked_cover, fi, n)
    reasons = [
        _reason(str(s), i, fp, pm, ev, main, revoked, permitted[i], config) for i, s in enumerate(status)
    ]
    return status, reasons


def _reason(
    status: str, i: int, fp: gpd.GeoDataFrame, pm: gpd.GeoDataFrame, ev: Evidence, main: dict[str, np.ndarray],
    revoked: np.ndarray, permitted: float, config: MatchConfig,
) -> str:
    kind = str(fp["change_type"].iat[i])
    what = f"{_KIND_WORD[kind]} of {ev.area_m2[i]:.0f} m²"
    seen = fp["first_seen"].iat[i]
    seen_s = "" if pd.isna(seen) else pd.Timestamp(seen).date().isoformat()
    if status == "unlicensed":
        if revoked[i] >= 0:
            return f"{what}: only a revoked permit ({pm['permit_id'].iat[ev.pi[revoked[i]]]}) covers it"
        return f"{what}: no permit covers it"
    p = ev.pi[main[status][i]]
    pid, ptype = pm["permit_id"].iat[p], pm["permit_type"].iat[p]
    issued = pd.Timestamp(pm["issued_on"].iat[p]).date().isoformat()
    until = pd.Timestamp(pm["valid_until"].iat[p]).date().isoformat()
    if status == "type_mismatch":
        need = " or ".join(ALLOWED_TYPES[kind])
        return f"{what} under a {ptype} permit ({pid}); it needs a {need} permit"
    if status == "before_permit":
        return f"{what} first seen {seen_s}, before permit {pid} was issued on {issued}"
    if status == "permit_expired":
        return f"{what} first seen {seen_s}, after permit {pid} expired on {until}"
    excess = ev.excess_area_m2[i]
    pct = 100.0 * excess / permitted if permitted > 0 else float("inf")
    if status == "exceeds_permit":
        return (f"built {ev.area_m2[i]:.0f} m² against a permit for {permitted:.0f} m² ({pid}): "
                f"{excess:.0f} m² ({pct:.0f}%) outside the permitted footprint")
    return (f"{what} within permit {pid} ({ptype}, valid {issued} to {until}); "
            f"{excess:.0f} m² outside, within tolerance ({config.tolerance_m2:g} m² or {config.tolerance_pct:g}%)")


__all__ = ["ALLOWED_TYPES", "Evidence", "classify", "overlap_evidence", "reproject"]
