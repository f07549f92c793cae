"""The evidence and the rules of :func:`changedetect.match.match` (private).

Everything is computed on arrays of candidate pairs ``(fi, pi)`` (footprint
index, permit index), sorted by footprint and then by decreasing overlap, so
that "the main permit of a footprint" is the first pair of its group.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from pyproj.transformer import TransformerGroup

from changedetect._match_edge import attached_extensions, beyond_edge
from changedetect._match_lots import judge as _judge_lots
from changedetect._match_lots import lot_outlines
from changedetect._match_overlay import Rings, intersection_areas, prepare
from changedetect._match_reasons import describe as _what
from changedetect._match_reasons import fmt0 as _fmt0
from changedetect._match_reasons import reasons as _reasons

if TYPE_CHECKING:
    from changedetect.match import MatchConfig

log = logging.getLogger(__name__)
_Geo = TypeVar("_Geo", gpd.GeoDataFrame, gpd.GeoSeries)

#: change kind -> permit types that allow it
ALLOWED_TYPES: dict[str, tuple[str, ...]] = {
    "new": ("new_construction", "extension"),
    # "altered" means built before and after: an extension, a renovation, a rebuild -- or a
    # partial demolition, which a demolition permit allows
    "altered": ("new_construction", "extension", "renovation", "demolition"),
    "demolished": ("demolition",),
}


def reproject(gdf: _Geo, crs: CRS) -> _Geo:
    """``gdf`` (a GeoDataFrame or a GeoSeries) in ``crs``, datum shift included.

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
class Footprints:
    """The footprints as arrays, in the working CRS, their attributes normalised."""

    geometry: np.ndarray
    first_seen: np.ndarray  # datetime64[ns], NaT where unknown
    kind: np.ndarray  # "new", "altered" or "demolished"
    crs: CRS
    #: the last date it was not there yet (datetime64[ns], NaT where unknown): it changed after it
    before: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.before is None:
            self.before = np.full(len(self.geometry), np.datetime64("NaT"), dtype="datetime64[ns]")

    def __len__(self) -> int:
        return len(self.geometry)


@dataclass
class Permits:
    """The candidate permits as arrays, in the working CRS, their attributes normalised."""

    geometry: np.ndarray
    permit_id: np.ndarray  # str
    type_code: np.ndarray  # index into type_names
    type_names: np.ndarray  # distinct permit types, stripped and in lower case
    revoked: np.ndarray
    issued_on: np.ndarray  # datetime64[ns], NaT where unknown
    valid_until: np.ndarray
    permitted_area_m2: np.ndarray

    def __len__(self) -> int:
        return len(self.geometry)


@dataclass
class Evidence:
    """Per-footprint evidence (arrays of length n) and the candidate pairs."""

    area_m2: np.ndarray
    overlap_ratio: np.ndarray
    excess_area_m2: np.ndarray
    permit_ids: np.ndarray
    fi: np.ndarray
    pi: np.ndarray
    inter: np.ndarray
    counted: np.ndarray
    revoked_cover: np.ndarray
    compatible: np.ndarray
    before: np.ndarray
    after: np.ndarray
    valid: np.ndarray
    point: np.ndarray  # per candidate permit: a point (or multipoint) permit
    #: per candidate permit: a polygon whose outline is a lot, not the building (``MatchConfig.lot_ratio``)
    lot: np.ndarray | None = None
    outline_m2: np.ndarray | None = None  # per candidate permit: its outline's area (0 for a point)
    #: per footprint with a valid lot permit: its area outside its valid permits' other outlines
    off_outlines: np.ndarray | None = None


def overlap_evidence(
    fp: Footprints, pm: Permits, fi: np.ndarray, pi: np.ndarray, config: MatchConfig
) -> Evidence:
    """Overlap, type fit and date fit of every candidate pair; overlap and excess per footprint."""
    fpg, pmg = fp.geometry, pm.geometry
    rf, rp = prepare(fpg), prepare(pmg)  # one pass over each geometry: rings, areas, bounds
    fp_area, pm_area = rf.area, rp.area
    pm_point = np.isin(rp.kind, (0, 4))
    point = pm_point[pi]
    inter = np.full(len(fi), np.nan)
    inter[~point] = 0.0
    # the overlap of the bounding boxes bounds the overlap of the shapes: a pair whose boxes
    # overlap less than the covering threshold cannot count, and is not measured
    fb, pb = rf.bounds, rp.bounds
    box_overlap = (np.clip(np.minimum(fb[fi, 2], pb[pi, 2]) - np.maximum(fb[fi, 0], pb[pi, 0]), 0, None)
                   * np.clip(np.minimum(fb[fi, 3], pb[pi, 3]) - np.maximum(fb[fi, 1], pb[pi, 1]), 0, None))
    measure = ~point & (box_overlap >= config.min_overlap_ratio * np.minimum(fp_area[fi], pm_area[pi]))
    inter[measure] = intersection_areas(fpg, pmg, fi[measure], pi[measure], rf, rp)
    inside = np.zeros(len(fi), bool)
    inside[point] = shapely.intersects(fpg[fi[point]], pmg[pi[point]])
    real = inside | (inter > 0)  # bounding boxes met; the shapes must too
    fi, pi, inter, point = fi[real], pi[real], inter[real], point[real]
    order = np.lexsort((-np.nan_to_num(inter, nan=np.inf), fi))  # stable: ties keep the permit order
    fi, pi, inter, point = fi[order], pi[order], inter[order], point[order]
    smaller = np.minimum(fp_area[fi], pm_area[pi])
    covers = point | (inter >= config.min_overlap_ratio * smaller)
    revoked = pm.revoked[pi]
    counted = covers & ~revoked
    codes, kinds = pd.factorize(fp.kind)
    allowed = np.array([[t in ALLOWED_TYPES[k] for t in pm.type_names.tolist()] for k in kinds.tolist()],
                       dtype=bool).reshape(len(kinds), len(pm.type_names))
    compatible = counted & allowed[codes[fi], pm.type_code[pi]]
    seen = fp.first_seen[fi]
    before = compatible & (seen < pm.issued_on[pi])
    # expired only when the change came after the expiry: after the last date without it when that
    # is known (a permit that ran out between that date and first_seen may have covered the work)
    absent = fp.before[fi] if fp.before is not None else np.full(len(fi), np.datetime64("NaT"), "datetime64[ns]")
    until = pm.valid_until[pi]
    known = ~np.isnat(absent) & (np.isnat(seen) | (absent < seen))  # a before_date not before first_seen: ignored
    after = compatible & np.where(known, absent >= until, seen > until)
    valid = compatible & ~before & ~after
    n = len(fp)
    excess_counted = _excess(fpg, pmg, fp_area, fi, pi, inter, point, counted, n, rp)
    overlap = np.where(fp_area > 0, 1.0 - excess_counted / np.where(fp_area > 0, fp_area, 1), 0.0)
    overlap = np.where(_any(counted, fi, n), overlap, 0.0)
    excess_valid = _excess(fpg, pmg, fp_area, fi, pi, inter, point, valid, n, rp)
    # what no valid permit allows: all of it when no permit is valid (expired, not yet issued, wrong type)
    excess = np.where(_any(valid, fi, n), excess_valid, fp_area)
    lot = lot_outlines(rp.area, pm.permitted_area_m2, pm_point, config)
    with_lot = _any(valid & lot[pi], fi, n)
    other = valid & ~lot[pi] & with_lot[fi]  # the other outlines of footprints with a lot: their own rule
    off_outlines = _excess(fpg, pmg, fp_area, fi, pi, inter, point, other & ~point, n, rp)
    rank = np.lexsort((np.arange(len(fi)), ~compatible, ~valid, fi))  # valid first, then fitting, then overlap
    permit_ids = _joined(fi[rank][counted[rank]], pm.permit_id[pi[rank][counted[rank]]], n)
    return Evidence(fp_area, np.clip(overlap, 0, 1), np.maximum(excess, 0.0), permit_ids, fi, pi, inter,
                    counted, covers & revoked, compatible, before, after, valid, pm_point, lot,
                    np.where(pm_point, 0.0, rp.area), off_outlines)


def _joined(group: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """The ``values`` of each run of equal, sorted ``group`` values, comma-joined ("" for none)."""
    out = np.full(n, "", dtype=object)
    if not len(group):
        return out
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    sizes = np.diff(np.r_[starts, len(group)])
    joined = values[starts].copy()
    for k in range(1, int(sizes.max())):  # the k-th value of every run that has one
        more = np.flatnonzero(sizes > k)
        joined[more] = joined[more] + "," + values[starts[more] + k]
    out[group[starts]] = joined
    return out


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
        # permits whose boxes overlap (neighbours of a cadastre only touch) may overlap each other
        ba, bb = rp.bounds[g_p[a_idx]], rp.bounds[g_p[b_idx]]
        meet = ((np.minimum(ba[:, 2], bb[:, 2]) > np.maximum(ba[:, 0], bb[:, 0]))
                & (np.minimum(ba[:, 3], bb[:, 3]) > np.maximum(ba[:, 1], bb[:, 1])))
        a_idx, b_idx = a_idx[meet], b_idx[meet]
        if len(a_idx):
            overlap = intersection_areas(pmg, pmg, g_p[a_idx], g_p[b_idx], rp, rp)
            tangled = np.unique(g_f[a_idx][overlap > 1e-6])  # permits overlapping each other: exact union
            for f in tangled.tolist():
                lo, hi = np.searchsorted(g_f, [f, f + 1])
                out[f] = shapely.area(shapely.difference(fpg[f], shapely.union_all(pmg[g_p[lo:hi]])))
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
    """Index of the first ``mask``-ed pair of each footprint (largest overlap), -1 if none (``fi`` sorted)."""
    out = np.full(n, -1, dtype=np.intp)
    idx = np.flatnonzero(mask)
    f = fi[idx]
    first = np.r_[True, f[1:] != f[:-1]] if len(f) else np.zeros(0, bool)
    out[f[first]] = idx[first]
    return out


def _first_by(mask: np.ndarray, key: np.ndarray, fi: np.ndarray, n: int) -> np.ndarray:
    """As :func:`_first`, the pair of smallest ``key`` first (ties: the largest overlap)."""
    idx = np.flatnonzero(mask)
    idx = idx[np.lexsort((key[idx], fi[idx]))]  # stable
    out = np.full(n, -1, dtype=np.intp)
    f = fi[idx]
    first = np.r_[True, f[1:] != f[:-1]] if len(f) else np.zeros(0, bool)
    out[f[first]] = idx[first]
    return out


def classify(fp: Footprints, pm: Permits, ev: Evidence, config: MatchConfig) -> tuple[np.ndarray, np.ndarray]:
    """The status of each footprint (see :mod:`changedetect.match` for the precedence) and a reason."""
    n = len(fp)
    fi, pi = ev.fi, ev.pi
    area_pm = pm.permitted_area_m2
    point = ev.point
    # permitted area of the valid permits, and point permits' share of the excess
    permitted = np.bincount(fi[ev.valid], weights=area_pm[pi[ev.valid]], minlength=n)
    pt_valid = ev.valid & point[pi]
    has_poly = np.bincount(fi[ev.valid & ~point[pi]], minlength=n) > 0
    pt_area = np.bincount(fi[pt_valid], weights=area_pm[pi[pt_valid]], minlength=n)
    excess = np.where(has_poly, ev.excess_area_m2, np.maximum(ev.area_m2 - pt_area, 0.0))
    excess = np.where(_any(ev.valid, fi, n), excess, ev.excess_area_m2)
    ev.excess_area_m2 = excess
    over = (excess > config.tolerance_m2) & (excess > config.tolerance_pct / 100.0 * permitted)
    over &= beyond_edge(fp.geometry, pm.geometry, ev.fi, ev.pi, ev.valid & ~ev.point[ev.pi], ev.excess_area_m2,
                        has_poly & over, permitted, config)
    # a permit drawn as its lot: the building's area against the permitted area too (_match_lots)
    excess, over, lots = _judge_lots(fp.geometry, pm.geometry, pm, ev, excess, over, permitted, pt_area, config)
    ev.excess_area_m2 = excess
    any_counted, any_compat, any_valid = (_any(m, fi, n) for m in (ev.counted, ev.compatible, ev.valid))
    any_before = _any(ev.before, fi, n)
    code = np.select([~any_counted, ~any_compat, ~any_valid & any_before, ~any_valid, over],
                     [0, 1, 2, 3, 4], default=5)
    status = _STATUSES[code]
    first_valid = _first(ev.valid, fi, n)
    # dates: the earliest-issued / latest-expiring fitting permit decides, whatever the register's row order
    main = (_first(ev.revoked_cover, fi, n), _first(ev.counted, fi, n), _first_by(ev.before, pm.issued_on[pi].astype(np.int64), fi, n),
            _first_by(ev.after, -pm.valid_until[pi].astype(np.int64), fi, n), first_valid, first_valid)
    quoted = np.full(n, -1, dtype=np.intp)  # the permit each reason quotes
    for c, first in enumerate(main):
        sel = (code == c) & (first >= 0)
        quoted[sel] = pi[first[sel]]
    att = attached_extensions(fp.geometry, fp.kind, fp.first_seen, pm,
                              np.flatnonzero((code == 0) & (quoted < 0)), config)
    a = att.rows
    if len(a):  # extensions built beyond their permits: exceeds_permit, with those permits as evidence
        permitted[a], excess[a] = att.permitted, att.outside
        ev.overlap_ratio[a] = np.clip(1.0 - att.outside / np.maximum(ev.area_m2[a], 1e-9), 0, 1)
        ev.permit_ids[a] = att.permit_ids
        code[a], quoted[a] = 4, att.quoted
        status = _STATUSES[code]
    by_points = ~has_poly & _any(ev.valid, fi, n)  # judged on its point permits' permitted area alone
    reasons = _reasons(fp, pm, code, quoted, ev.area_m2, excess, permitted, config, lots, ev.outline_m2,
                       by_points)
    pct = _fmt0(100.0 * att.outside / np.maximum(att.permitted, 1e-9))
    for k, w, ids, e, r in zip(a.tolist(), _what(fp.kind[a], ev.area_m2[a]), att.permit_ids.tolist(),
                               _fmt0(att.outside), pct, strict=True):
        reasons[k] = (f"{w} built against the outline of extension permit(s) {ids} ({permitted[k]:.0f} m² "
                      f"permitted), which cover little of it: {e} m² ({r}%) outside")
    return status, reasons


#: the statuses in order of precedence (as in :data:`changedetect.match.STATUSES`)
_STATUSES = np.array(["unlicensed", "type_mismatch", "before_permit", "permit_expired", "exceeds_permit",
                      "permitted"], dtype=object)


__all__ = ["ALLOWED_TYPES", "Evidence", "Footprints", "Permits", "classify", "overlap_evidence", "reproject"]
