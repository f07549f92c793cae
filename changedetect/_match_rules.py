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

from changedetect._match_overlay import MAX_SUBJECT, Rings, intersection_areas, prepare

if TYPE_CHECKING:
    from changedetect.match import MatchConfig

log = logging.getLogger(__name__)

#: change kind -> permit types that allow it
ALLOWED_TYPES: dict[str, tuple[str, ...]] = {
    "new": ("new_construction", "extension"),
    # "altered" means built before and after: an extension, a renovation, a rebuild -- or a
    # partial demolition, which a demolition permit allows
    "altered": ("new_construction", "extension", "renovation", "demolition"),
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
    rf, rp = prepare(fpg, MAX_SUBJECT, convexity=False), prepare(pmg, MAX_SUBJECT)
    inter = np.full(len(fi), np.nan)
    inter[~point] = 0.0
    # the overlap of the bounding boxes bounds the overlap of the shapes: a pair whose boxes
    # overlap less than the covering threshold cannot count, and is not measured
    fb, pb = shapely.bounds(fpg)[fi], shapely.bounds(pmg)[pi]
    box_overlap = (np.clip(np.minimum(fb[:, 2], pb[:, 2]) - np.maximum(fb[:, 0], pb[:, 0]), 0, None)
                   * np.clip(np.minimum(fb[:, 3], pb[:, 3]) - np.maximum(fb[:, 1], pb[:, 1]), 0, None))
    measure = ~point & (box_overlap >= config.min_overlap_ratio * np.minimum(fp_area[fi], pm_area[pi]))
    inter[measure] = intersection_areas(fpg, pmg, fi[measure], pi[measure], rf, rp)
    inside = np.zeros(len(fi), bool)
    inside[point] = shapely.intersects(fpg[fi[point]], pmg[pi[point]])
    real = inside | (inter > 0)  # bounding boxes met; the shapes must too
    fi, pi, inter, point = fi[real], pi[real], inter[real], point[real]
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
    excess_counted = _excess(fpg, pmg, fp_area, fi, pi, inter, point, counted, n, rp)
    overlap = np.where(fp_area > 0, 1.0 - excess_counted / np.where(fp_area > 0, fp_area, 1), 0.0)
    overlap = np.where(_any(counted, fi, n), overlap, 0.0)
    excess_valid = _excess(fpg, pmg, fp_area, fi, pi, inter, point, valid, n, rp)
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
    inter: np.ndarray, point: np.ndarray, mask: np.ndarray, n: int, rp: Rings,
) -> np.ndarray:
    """Area of each footprint outside the union of its ``mask``-ed polygon permits (its area if none)."""
    poly = mask & ~point
    count = np.bincount(fi[poly], minlength=n)
    out = fp_area - np.bincount(fi[poly], weights=inter[poly], minlength=n)  # exact if permits are disjoint
    multi = np.flatnonzero(count > 1)
    if len(multi):
        sel = np.flatnonzero(poly & (count[fi] > 1))  # pairs of footprints with several permits
        g_f, g_p = fi[sel], pi[sel]
        a_idx, b_idx = _pairs_within_groups(g_f)
        if len(a_idx):
            overlap = intersection_areas(pmg, pmg, g_p[a_idx], g_p[b_idx], rp, rp)
            tangled = np.unique(g_f[a_idx][overlap > 1e-6])  # permits overlapping each other: exact union
            for f in tangled:
                parts = pmg[g_p[g_f == f]]
                out[f] = shapely.area(shapely.difference(fpg[f], shapely.union_all(parts)))
    only_points = (np.bincount(fi[mask & point], minlength=n) > 0) & (count == 0)
    out[only_points] = 0.0  # a point permit has no footprint: areas are compared in classify
    return out


def _pairs_within_groups(group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(a, b)``, ``a < b``, of the elements of each run of equal, sorted ``group`` values."""
    if len(group) < 2:
        return np.empty(0, np.intp), np.empty(0, np.intp)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    sizes = np.diff(np.r_[starts, len(group)])
    a_out, b_out = [], []
    for size in np.unique(sizes[sizes > 1]):
        firsts = starts[sizes == size]
        ia, ib = np.triu_indices(int(size), k=1)
        a_out.append((firsts[:, None] + ia[None, :]).ravel())
        b_out.append((firsts[:, None] + ib[None, :]).ravel())
    if not a_out:
        return np.empty(0, np.intp), np.empty(0, np.intp)
    return np.concatenate(a_out), np.concatenate(b_out)


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
    quoted = np.full(n, -1, dtype=np.intp)  # the permit each reason quotes
    for s, first in (*main.items(), ("unlicensed", revoked)):
        sel = (status == s) & (first >= 0)
        quoted[sel] = ev.pi[first[sel]]
    need = np.unique(quoted[quoted >= 0])  # strings only for the quoted permits, not all candidates
    ctx = _Context(
        kind=fp["change_type"].tolist(), seen=_iso(fp["first_seen"]),
        pid=dict(zip(need.tolist(), pm["permit_id"].take(need).astype(str).tolist(), strict=True)),
        ptype=dict(zip(need.tolist(), pm["permit_type"].take(need).tolist(), strict=True)),
        issued=dict(zip(need.tolist(), _iso(pm["issued_on"].take(need)), strict=True)),
        until=dict(zip(need.tolist(), _iso(pm["valid_until"].take(need)), strict=True)),
    )
    area, excess_l, perm_l = ev.area_m2.tolist(), excess.tolist(), permitted.tolist()
    reasons = [_reason(s, i, ctx, q, area[i], excess_l[i], perm_l[i], config)
               for i, (s, q) in enumerate(zip(status.tolist(), quoted.tolist(), strict=True))]
    return status, reasons


@dataclass
class _Context:
    """Plain Python lists of what the reasons quote (fast to index)."""

    kind: list[str]
    seen: list[str]
    pid: dict[int, str]
    ptype: dict[int, str]
    issued: dict[int, str]
    until: dict[int, str]


def _iso(values: pd.Series) -> list[str]:
    days = pd.to_datetime(values).to_numpy().astype("datetime64[D]")
    return ["" if t == "NaT" else t for t in days.astype(str).tolist()]


def _reason(status: str, i: int, c: _Context, p: int, area: float, excess: float, permitted: float,
            config: MatchConfig) -> str:
    kind = c.kind[i]
    what = f"{_KIND_WORD[kind]} of {area:.0f} m²"
    if status == "unlicensed":
        if p >= 0:
            return f"{what}: only a revoked permit ({c.pid[p]}) covers it"
        return f"{what}: no permit covers it"
    pid, ptype = c.pid[p], c.ptype[p]
    if status == "type_mismatch":
        need = " or ".join(ALLOWED_TYPES[kind])
        return f"{what} under a {ptype} permit ({pid}); it needs a {need} permit"
    if status == "before_permit":
        return f"{what} first seen {c.seen[i]}, before permit {pid} was issued on {c.issued[p]}"
    if status == "permit_expired":
        return f"{what} first seen {c.seen[i]}, after permit {pid} expired on {c.until[p]}"
    pct = 100.0 * excess / permitted if permitted > 0 else float("inf")
    if status == "exceeds_permit":
        return (f"built {area:.0f} m² against a permit for {permitted:.0f} m² ({pid}): "
                f"{excess:.0f} m² ({pct:.0f}%) outside the permitted footprint")
    return (f"{what} within permit {pid} ({ptype}, valid {c.issued[p]} to {c.until[p]}); "
            f"{excess:.0f} m² outside, within tolerance ({config.tolerance_m2:g} m² or {config.tolerance_pct:g}%)")


__all__ = ["ALLOWED_TYPES", "Evidence", "classify", "overlap_evidence", "reproject"]
