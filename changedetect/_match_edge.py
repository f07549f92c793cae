"""Edge tolerance of ``exceeds_permit`` for :mod:`changedetect.match` (private).

A footprint over the area tolerances as drawn is measured again against its permits grown
by ``MatchConfig.edge_tolerance_m``.  Convex permits (nearly all: lots and buildings are
rectangles) are grown and clipped in numpy (:mod:`changedetect._match_overlay`), one permit
directly and two by inclusion-exclusion; the rest goes to GEOS (``shapely.buffer`` with
mitre joins, then ``difference``).  Both give the same verdicts (tested against GEOS).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import shapely

from changedetect._match_overlay import MAX_CLIP, clip_area, clip_rings, grow_convex, prepare

if TYPE_CHECKING:
    from changedetect._match_rules import Permits
    from changedetect.match import MatchConfig


def beyond_edge(fpg: np.ndarray, pmg: np.ndarray, fi: np.ndarray, pi: np.ndarray, poly: np.ndarray,
                excess: np.ndarray, rows: np.ndarray, permitted: np.ndarray, config: MatchConfig) -> np.ndarray:
    """Whether each footprint still exceeds both tolerances outside its permits grown by the edge tolerance.

    ``fi``/``pi``: candidate pairs sorted by footprint; ``poly``: the pairs of a valid polygon
    permit.  Only the ``rows`` over the tolerances as drawn can change (the grown excess is
    never larger).  The band a permit gains by growing ``d`` holds at most ``d`` x its
    perimeter plus its corners' mitres (at most 5 d² each: shapely's mitre limit is 5): a row
    whose excess minus that bound still exceeds both tolerances keeps its verdict without any
    geometry; the others are measured.  Point permits have no outline and keep their verdict.
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


__all__ = ["beyond_edge"]


def attached_extensions(fpg: np.ndarray, kind: np.ndarray, seen: np.ndarray, pm: Permits, rows: np.ndarray,
                        config: MatchConfig) -> tuple[np.ndarray, np.ndarray]:
    """The extension permit each of ``rows`` (unlicensed footprints) is built against, or -1.

    A change that no permit covers but that touches the outline of an ``extension`` permit
    (within ``edge_tolerance_m``; it may overlap it by less than the covering ratio) valid on
    its first-seen date is read as that extension built beyond its permit: a footprint traced
    from imagery often catches only the part outside the drawn outline.  Demolitions, point
    and revoked permits never attach.  Returns ``(permit index per footprint, area outside it)``.
    """
    n = len(fpg)
    out, outside = np.full(n, -1, dtype=np.intp), np.zeros(n)
    rows = rows[kind[rows] != "demolished"]
    if not config.attach_to_extensions or not len(rows) or not len(pm):
        return out, outside
    types = pm.type_names[pm.type_code] if len(pm.type_names) else np.empty(0, object)
    poly = ~np.isin(shapely.get_type_id(pm.geometry), (0, 4))
    cand = np.flatnonzero((types == "extension") & ~pm.revoked & poly)
    if not len(cand):
        return out, outside
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
        return out, outside
    dist = shapely.distance(fpg[f], pm.geometry[p])
    order = np.lexsort((p, dist, f))  # per footprint: the nearest permit (ties: register order)
    f, p = f[order], p[order]
    first = np.r_[True, f[1:] != f[:-1]]
    f, p = f[first], p[first]
    out[f] = p
    outside[f] = shapely.area(shapely.difference(fpg[f], pm.geometry[p]))
    return out, outside
