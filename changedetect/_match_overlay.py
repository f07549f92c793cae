"""Fast overlap areas for :mod:`changedetect.match` (private).

GEOS's overlay (``shapely.intersection``) costs some 30 µs a pair; for the
100k-footprints x 1M-permits case that is most of the run.  Permits and
regularised footprints are nearly always small convex or simple polygons, for
which the area of the intersection follows from clipping one by the other
(Sutherland-Hodgman), vectorised here over all pairs at once in numpy.  The
clip polygon must be convex (the subject need not be: the degenerate edges the
algorithm leaves on a concave subject have no area).  Pairs that do not fit
(holes, several parts, a non-convex permit, many vertices) go to GEOS.  Both
paths agree to floating-point precision (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

MAX_SUBJECT = 64
MAX_CLIP = 32
_CHUNK = 32_768


@dataclass
class Rings:
    """Polygons prepared for clipping: padded counter-clockwise rings (see :func:`rings`)."""

    xy: np.ndarray
    n: np.ndarray
    ok: np.ndarray
    convex: np.ndarray


def prepare(geoms: np.ndarray, max_vertices: int = MAX_CLIP, *, convexity: bool = True) -> Rings:
    """:func:`rings` plus convexity (only clip polygons need it), computed once per geometry."""
    xy, n, ok = rings(geoms, max_vertices)
    return Rings(xy, n, ok, ok & _convex(xy, n) if convexity else np.zeros(len(n), bool))


def intersection_areas(a: np.ndarray, b: np.ndarray, ia: np.ndarray, ib: np.ndarray,
                       ra: Rings | None = None, rb: Rings | None = None) -> np.ndarray:
    """``area(a[ia[k]] ∩ b[ib[k]])`` for each pair ``k``; ``ra``/``rb``: :func:`prepare`-d ``a``/``b``."""
    out = np.zeros(len(ia))
    if not len(ia):
        return out
    ra = ra if ra is not None else prepare(a, MAX_SUBJECT, convexity=False)
    rb = rb if rb is not None else prepare(b, MAX_CLIP)
    fast = np.flatnonzero(ra.ok[ia] & rb.convex[ib] & (rb.n[ib] <= MAX_CLIP))
    for start in range(0, len(fast), _CHUNK):
        idx = fast[start: start + _CHUNK]
        pa, pb = ia[idx], ib[idx]
        vs, vc = int(ra.n[pa].max()), int(rb.n[pb].max())
        out[idx] = clip_area(ra.xy[pa, :vs], ra.n[pa], rb.xy[pb, :vc], rb.n[pb])
    slow = np.ones(len(ia), bool)
    slow[fast] = False
    if slow.any():
        out[slow] = shapely.area(shapely.intersection(np.asarray(a)[ia[slow]], np.asarray(b)[ib[slow]]))
    return out


def rings(geoms: np.ndarray, max_vertices: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exterior rings as padded ``(n, width, 2)`` counter-clockwise arrays, vertex counts, usable flags."""
    g = np.asarray(geoms, dtype=object)
    kind = shapely.get_type_id(g)
    multi = np.flatnonzero(kind == 6)
    if len(multi):
        g = g.copy()
        one = multi[shapely.get_num_geometries(g[multi]) == 1]
        g[one] = shapely.get_geometry(g[one], 0)
        kind = shapely.get_type_id(g)
    ok = kind == 3
    ok[ok] = (shapely.get_num_interior_rings(g[ok]) == 0) & ~shapely.is_empty(g[ok])
    counts = np.zeros(len(g), dtype=np.intp)
    if not ok.any():
        return np.zeros((len(g), 0, 2)), counts, ok
    coords, owner = shapely.get_coordinates(g[ok], return_index=True)  # no holes: the exterior ring
    per = np.bincount(owner, minlength=int(ok.sum()))
    n = per - 1  # the closing vertex repeats the first
    rows = np.flatnonzero(ok)
    ok[rows] = (n >= 3) & (n <= max_vertices)
    width = int(min(max_vertices, n[ok[rows]].max())) if ok.any() else 0
    starts = np.concatenate([[0], np.cumsum(per)[:-1]])
    pos = np.arange(len(owner)) - starts[owner]
    keep = (pos < n[owner]) & ok[rows][owner]
    xy = np.zeros((len(g), width, 2))
    xy[rows[owner[keep]], pos[keep]] = coords[keep]
    counts[rows] = np.where(ok[rows], n, 0)
    clockwise = _signed_area(xy, counts) < 0
    if clockwise.any():
        i = np.arange(width)[None, :]
        c = counts[clockwise][:, None]
        rev = np.where(i < c, c - 1 - i, i)
        xy[clockwise] = np.take_along_axis(xy[clockwise], rev[..., None], axis=1)
    return xy, counts, ok


def _next(n: np.ndarray, width: int) -> np.ndarray:
    i = np.arange(width)[None, :]
    return np.where(i + 1 < n[:, None], i + 1, 0)


def _signed_area(xy: np.ndarray, n: np.ndarray) -> np.ndarray:
    if xy.shape[1] == 0:
        return np.zeros(len(xy))
    nxt = np.take_along_axis(xy, _next(n, xy.shape[1])[..., None], axis=1)
    valid = np.arange(xy.shape[1])[None, :] < n[:, None]
    cross = xy[..., 0] * nxt[..., 1] - nxt[..., 0] * xy[..., 1]
    return 0.5 * np.where(valid, cross, 0.0).sum(axis=1)


def _convex(xy: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Whether each counter-clockwise ring turns left (or goes straight) at every vertex."""
    width = xy.shape[1]
    nxt = np.take_along_axis(xy, _next(n, width)[..., None], axis=1)
    nxt2 = np.take_along_axis(nxt, _next(n, width)[..., None], axis=1)
    d1, d2 = nxt - xy, nxt2 - nxt
    turn = d1[..., 0] * d2[..., 1] - d1[..., 1] * d2[..., 0]
    scale = np.abs(d1).sum(-1) * np.abs(d2).sum(-1) + 1e-300
    valid = np.arange(width)[None, :] < n[:, None]
    return np.asarray(np.where(valid, turn >= -1e-9 * scale, True).all(axis=1), dtype=bool)


def clip_area(subject: np.ndarray, ns: np.ndarray, clip: np.ndarray, nc: np.ndarray) -> np.ndarray:
    """Area of each subject polygon clipped by its convex, counter-clockwise clip polygon."""
    m = len(subject)
    rows = np.arange(m)
    poly, n = subject.copy(), ns.copy()
    for k in range(clip.shape[1]):
        active = k < nc
        a = clip[:, k]
        b = clip[rows, np.where(active, (k + 1) % np.maximum(nc, 1), 0)]
        width = poly.shape[1]
        idx = np.arange(width)[None, :]
        valid = idx < n[:, None]
        prev_i = np.where(idx == 0, np.maximum(n - 1, 0)[:, None], idx - 1)
        prev = np.take_along_axis(poly, prev_i[..., None], axis=1)
        e = (b - a)[:, None, :]
        side_c = e[..., 0] * (poly[..., 1] - a[:, None, 1]) - e[..., 1] * (poly[..., 0] - a[:, None, 0])
        side_p = e[..., 0] * (prev[..., 1] - a[:, None, 1]) - e[..., 1] * (prev[..., 0] - a[:, None, 0])
        inc = (side_c >= 0) | ~active[:, None]
        inp = (side_p >= 0) | ~active[:, None]
        denom = side_p - side_c
        t = np.divide(side_p, denom, out=np.zeros_like(denom), where=denom != 0)
        cross_pt = prev + t[..., None] * (poly - prev)
        emit_x = valid & (inc != inp)
        emit_c = valid & inc
        out = np.stack([cross_pt, poly], axis=2).reshape(m, 2 * width, 2)
        mask = np.stack([emit_x, emit_c], axis=2).reshape(m, 2 * width)
        n = mask.sum(axis=1)
        r, c = np.nonzero(mask)  # row-major: each row's points stay in order
        pos = np.arange(len(r)) - np.repeat(np.cumsum(n) - n, n)
        poly = np.zeros((m, max(int(n.max()) if m else 0, 1), 2))
        poly[r, pos] = out[r, c]
    area = np.abs(_signed_area(poly, n))
    area[n < 3] = 0.0
    return area


__all__ = ["Rings", "clip_area", "intersection_areas", "prepare", "rings"]
