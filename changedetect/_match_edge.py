"""What happens at a permit's edge, for :mod:`changedetect.match` (private).

:func:`beyond_edge`: the edge tolerance of ``exceeds_permit``.  :func:`attached_extensions`:
changes no permit covers, built against the outline of extension permits.

A footprint over the area tolerances as drawn is measured again against its permits grown
by ``MatchConfig.edge_tolerance_m``.  Convex permits (nearly all: lots and buildings are
rectangles) are grown and clipped in numpy (:mod:`changedetect._match_overlay`), one permit
directly and two by inclusion-exclusion; the rest goes to GEOS (``shapely.buffer`` with
mitre joins, then ``difference``).  Both give the same verdicts (tested against GEOS).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import shapely

from changedetect._match_overlay import MAX_CLIP, clip_area, clip_rings, grow_convex, prepare

if TYPE_CHECKING:
    from changedetect._match_rules import Permits
    from changedetect.match import MatchConfig


def beyond_edge(fpg: np.ndarray, pmg: np.ndarray, fi: np.ndarray, pi: np.ndarray, poly: np.ndarray,
                excess: np.ndarray, rows: np.ndarray, permitted: np.ndarray, config: MatchConfig,
                allowance: np.ndarray | None = None) -> np.ndarray:
    """Whether each footprint still exceeds both tolerances outside its permits grown by the edge tolerance.

    ``fi``/``pi``: candidate pairs sorted by footprint; ``poly``: the pairs of a valid polygon
    permit.  Only the ``rows`` over the tolerances as drawn can change (the grown excess is
    never larger).  The band a permit gains by growing ``d`` holds at most ``d`` x its
    perimeter plus its corners' mitres (at most 5 d² each: shapely's mitre limit is 5): a row
    whose excess minus that bound still exceeds both tolerances keeps its verdict without any
    geometry; the others are measured.  Point permits have no outline and keep their verdict.
    ``allowance`` (per footprint, m²): what other permits allow besides these outlines (the permitted
    area of lots, :mod:`changedetect._match_lots`), taken off the area measured outside them; ``excess``
    is then already net of it.
    """
    keep = np.ones(len(fpg), bool)
    d = config.edge_tolerance_m or 0.0
    if d <= 0 or not rows.any():
        return keep
    sel = poly & rows[fi]
    fi, pi = fi[sel], pi[sel]
    geoms = pmg[pi]
    corners = shapely.get_num_coordinates(geoms) - shapely.get_num_geometries(geoms)  # rings repeat their start
    bound = np.bincount(fi, weights=d * shapely.length(geoms) + 5.0 * d * d * corners, minlength=len(fpg))
    limit = np.maximum(config.tolerance_m2, config.tolerance_pct / 100.0 * permitted)
    if allowance is not None:  # outside minus allowance > limit
        excess, limit = excess + allowance, limit + allowance
    doubt = np.flatnonzero(rows & (excess - bound <= limit))
    if not len(doubt):
        return keep
    first = np.searchsorted(fi, doubt)  # fi is sorted
    count = np.bincount(fi, minlength=len(fpg))[doubt]
    slow = np.ones(len(doubt), bool)
    for k in (1, 2):  # one or two convex permits: grown and clipped in numpy
        sub = np.flatnonzero(count == k)
        if not len(sub):
            continue
        rf = prepare(fpg[doubt[sub]])
        grown, ok = [], rf.ok.copy()
        for j in range(k):
            g, usable = grow_convex(prepare(pmg[pi[first[sub] + j]], max_vertices=MAX_CLIP), np.arange(len(sub)), d)
            grown.append(g)
            ok &= usable & g.convex
        c = np.flatnonzero(ok)
        if not len(c):
            continue
        sx, sy, sn = rf.x[:, c], rf.y[:, c], rf.n[c]
        inside = sum(clip_area(sx, sy, sn, g.x[:, c], g.y[:, c]) for g in grown)
        if k == 2:  # minus what both grown permits cover
            x1, y1, n1 = clip_rings(sx, sy, sn, grown[0].x[:, c], grown[0].y[:, c])
            inside = inside - clip_area(x1, y1, n1, grown[1].x[:, c], grown[1].y[:, c])
        keep[doubt[sub[c]]] = rf.area[c] - inside > limit[doubt[sub[c]]]
        slow[sub[c]] = False
    doubt, first, count = doubt[slow], first[slow], count[slow]
    if not len(doubt):
        return keep
    rest = fpg[doubt].copy()  # each footprint minus its grown permits, one rank at a time
    for k in range(int(count.max())):
        sub = np.flatnonzero(count > k)
        rest[sub] = shapely.difference(rest[sub], shapely.buffer(pmg[pi[first[sub] + k]], d, join_style="mitre"))
    keep[doubt] = shapely.area(rest) > limit[doubt]
    return keep


#: an overbuild larger than this share of the permitted area is not read as that extension
MAX_ATTACHED_SHARE = 0.5


@dataclass
class Attached:
    """Footprints measured against the extension permits they are built against."""

    rows: np.ndarray  # footprint indices
    quoted: np.ndarray  # per row: the nearest permit (ties: smallest permit_id)
    permit_ids: np.ndarray  # per row: the attached permits, comma-joined, nearest first
    outside: np.ndarray  # per row: area outside their union as drawn (m²)
    permitted: np.ndarray  # per row: their permitted areas, summed


def attached_extensions(fpg: np.ndarray, kind: np.ndarray, seen: np.ndarray, pm: Permits, rows: np.ndarray,
                        config: MatchConfig) -> Attached:
    """Which of ``rows`` (unlicensed footprints) are extensions built beyond their permit.

    A new or altered change that no permit covers but that touches the outline of one or
    more ``extension`` permits (within ``edge_tolerance_m``; it may overlap them by less
    than the covering ratio) valid on its first-seen date is read as that extension built
    beyond its permit -- a footprint traced from imagery often catches only the part
    outside the drawn outline -- when (1) what lies outside the permits grown by the edge
    tolerance exceeds both tolerances and (2) what lies outside them as drawn is at most
    :data:`MAX_ATTACHED_SHARE` of their permitted area (a whole neighbouring house against
    a small extension permit is not that extension).  Otherwise the footprint stays
    unlicensed: the rule never makes a footprint ``permitted``.  Demolitions, point and
    revoked permits, and permits without a permitted area never attach.
    """
    empty = Attached(np.empty(0, np.intp), np.empty(0, np.intp), np.empty(0, object), np.empty(0), np.empty(0))
    rows = rows[kind[rows] != "demolished"]
    if not config.attach_to_extensions or not len(rows) or not len(pm):
        return empty
    types = pm.type_names[pm.type_code] if len(pm.type_names) else np.empty(0, object)
    poly = ~np.isin(shapely.get_type_id(pm.geometry), (0, 4))
    cand = np.flatnonzero((types == "extension") & ~pm.revoked & poly & np.isfinite(pm.permitted_area_m2))
    if not len(cand):
        return empty
    d = config.edge_tolerance_m or 0.0
    tree = shapely.STRtree(pm.geometry[cand])
    if d > 0:
        r, c = tree.query(fpg[rows], predicate="dwithin", distance=d)
    else:
        r, c = tree.query(fpg[rows], predicate="intersects")
    f, p = rows[r], cand[c]
    s = seen[f]
    ok = ~((s < pm.issued_on[p]) | (s > pm.valid_until[p]))  # NaT compares False: unknown dates fit
    f, p = f[ok], p[ok]
    if not len(f):
        return empty
    dist = shapely.distance(fpg[f], pm.geometry[p])
    order = np.lexsort((pm.permit_id[p].astype(str), dist, f))  # nearest first, then by permit_id
    f, p = f[order], p[order]
    starts = np.flatnonzero(np.r_[True, f[1:] != f[:-1]])
    ends = np.r_[starts[1:], len(f)]
    foot = f[starts]
    unions = np.array([shapely.union_all(pm.geometry[p[a:b]]) for a, b in zip(starts, ends, strict=True)],
                      dtype=object)
    outside = shapely.area(shapely.difference(fpg[foot], unions))
    beyond = (shapely.area(shapely.difference(fpg[foot], shapely.buffer(unions, d, join_style="mitre")))
              if d > 0 else outside)
    permitted = np.add.reduceat(pm.permitted_area_m2[p], starts)
    keep = ((beyond > config.tolerance_m2) & (beyond > config.tolerance_pct / 100.0 * permitted)
            & (outside <= MAX_ATTACHED_SHARE * permitted))
    ids = np.array([",".join(pm.permit_id[p[a:b]].astype(str)) for a, b in zip(starts, ends, strict=True)],
                   dtype=object)
    return Attached(foot[keep], p[starts][keep], ids[keep], outside[keep], permitted[keep])


__all__ = ["MAX_ATTACHED_SHARE", "Attached", "attached_extensions", "beyond_edge"]
