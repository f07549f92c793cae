"""Fast overlap areas for :mod:`changedetect.match` (private).

GEOS's overlay (``shapely.intersection``) costs some 10-30 µs a pair; for the
100k-footprints x 1M-permits case that would be most of the run.  Permits and
regularised footprints are nearly always small simple polygons, for which the
area of the intersection follows from clipping one by the other
(Sutherland-Hodgman), vectorised here over all pairs at once in numpy.  The
clip polygon must be convex (the subject need not be: the degenerate edges the
algorithm leaves on a concave subject have no area); when only the subject is
convex the two swap roles.  Pairs that do not fit (holes, several parts,
neither convex, many vertices) go to GEOS.  Both paths agree to floating-point
precision (tested).

Each geometry is read from GEOS once (:func:`prepare`: one ``get_coordinates``
pass, which for a register of a million rows is the expensive part: the
candidates lie scattered in memory); areas, bounds, orientation and convexity
then come from those coordinates.  Rings are stored counter-clockwise, padded
to a common width by repeating their last vertex, so that the padding forms
zero-length edges that change no area, no bound and no clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import shapely

MAX_SUBJECT = 64
MAX_CLIP = 32
_CELLS = 131_072  # subject x clip vertices per clipping batch: the temporaries stay in the CPU cache
_COLUMNS = 32_768  # rings per batch where a dozen (width, n) temporaries would otherwise pile up


@dataclass
class Rings:
    """Polygons prepared for clipping (see :func:`prepare`), one column per geometry.

    ``x`` and ``y`` are ``(width, n)``: vertex slot first, so that the per-vertex loops of the
    clipper run over contiguous rows (numpy reduces slowly along a short last axis).
    """

    x: np.ndarray  # counter-clockwise exterior ring, padded with its last vertex
    y: np.ndarray
    n: np.ndarray  # vertex count of the ring (0 where not ``ok``)
    ok: np.ndarray  # a simple polygon (no hole, one part) of 3..max_vertices vertices
    area: np.ndarray  # area of every geometry (GEOS's where not ``ok``)
    bounds: np.ndarray  # (n, 4) minx, miny, maxx, maxy of every geometry
    kind: np.ndarray  # shapely's type id (a multipolygon of one part counts as a polygon)

    @cached_property
    def convex(self) -> np.ndarray:
        """``ok`` and convex: turns left (or goes straight) at every vertex."""
        out = np.zeros(len(self.n), bool)
        width = self.x.shape[0]
        full = self.ok & (self.n == width)  # no padding: the next vertex is the next row (the usual case)
        for group in (np.flatnonzero(full), np.flatnonzero(self.ok & ~full)):
            for lo in range(0, len(group), _COLUMNS):  # in slices: a dozen temporaries of this size
                self._convex_into(out, group[lo: lo + _COLUMNS])
        return out

    def _convex_into(self, out: np.ndarray, cols: np.ndarray) -> None:
        x, y, n = self.x[:, cols], self.y[:, cols], self.n[cols]
        i = np.arange(x.shape[0])[:, None]
        if n.min() == x.shape[0]:
            x1, y1 = np.roll(x, -1, axis=0), np.roll(y, -1, axis=0)
            x2, y2 = np.roll(x1, -1, axis=0), np.roll(y1, -1, axis=0)
        else:
            nxt = np.where(i + 1 < n[None, :], i + 1, 0)
            x1, y1 = np.take_along_axis(x, nxt, axis=0), np.take_along_axis(y, nxt, axis=0)
            x2, y2 = np.take_along_axis(x1, nxt, axis=0), np.take_along_axis(y1, nxt, axis=0)
        dx1, dy1, dx2, dy2 = x1 - x, y1 - y, x2 - x1, y2 - y1
        turn = dx1 * dy2 - dy1 * dx2
        scale = (np.abs(dx1) + np.abs(dy1)) * (np.abs(dx2) + np.abs(dy2)) + 1e-300
        out[cols] = ((turn >= -1e-9 * scale) | (i >= n[None, :])).all(axis=0)


def prepare(geoms: np.ndarray, max_vertices: int = MAX_SUBJECT) -> Rings:
    """Rings, vertex counts, areas and bounds of ``geoms`` from one pass over GEOS."""
    g = np.asarray(geoms, dtype=object)
    count = len(g)
    kind = shapely.get_type_id(g)
    multi = np.flatnonzero(kind == 6)
    if len(multi):  # a multipolygon of one part is that polygon
        g = g.copy()
        one = multi[shapely.get_num_geometries(g[multi]) == 1]
        g[one] = shapely.get_geometry(g[one], 0)
        kind[one] = 3
    rows = np.flatnonzero(kind == 3)
    coords, owner = shapely.get_coordinates(g[rows], return_index=True)
    cx, cy = np.ascontiguousarray(coords[:, 0]), np.ascontiguousarray(coords[:, 1])
    del coords
    per = np.bincount(owner, minlength=len(rows))
    start = np.cumsum(per) - per
    # one ring only: the first vertex comes back exactly once, at the end (a hole or a second
    # part would close the exterior earlier; a ring touching its own start would come back twice)
    first = start[owner]
    back = (cx == cx[first]) & (cy == cy[first])
    del first
    closes = np.zeros(len(rows), bool)
    closes[per > 0] = back[(start + per - 1)[per > 0]]
    nv = per - 1
    good = closes & (np.bincount(owner[back], minlength=len(rows)) == 2) & (nv >= 3) & (nv <= max_vertices)
    ok = np.zeros(count, bool)
    ok[rows[good]] = True
    n = np.zeros(count, np.intp)
    n[rows[good]] = nv[good]
    area = np.zeros(count)
    bounds = np.full((count, 4), np.nan)
    sub = np.flatnonzero(good)
    width = int(nv[sub].max()) if len(sub) else 0
    x, y = np.zeros((width, count)), np.zeros((width, count))
    i = np.arange(width)[:, None]
    for lo in range(0, len(sub), _COLUMNS):  # in slices: the (width, k) temporaries stay small
        part = sub[lo: lo + _COLUMNS]
        m, first = nv[part][None, :], start[part][None, :]
        src = first + np.minimum(i, m - 1)  # (width, k): padded with the last vertex
        rx, ry = cx[src], cy[src]
        lx, ly = rx - rx[0], ry - ry[0]  # near the polygon: UTM coordinates lose digits in products
        signed = 0.5 * (lx * np.roll(ly, -1, axis=0) - np.roll(lx, -1, axis=0) * ly).sum(axis=0)
        cw = np.flatnonzero(signed < 0)
        if len(cw):  # reverse the first n vertices, pad with the (new) last one
            rev = first[:, cw] + np.where(i < m[:, cw], m[:, cw] - 1 - i, 0)
            rx[:, cw], ry[:, cw] = cx[rev], cy[rev]
        cols = rows[part]
        x[:, cols], y[:, cols] = rx, ry
        area[cols] = np.abs(signed)
        bounds[cols] = np.stack([rx.min(axis=0), ry.min(axis=0), rx.max(axis=0), ry.max(axis=0)], axis=1)
    other = np.flatnonzero(~ok)
    if len(other):
        area[other] = shapely.area(g[other])
        bounds[other] = shapely.bounds(g[other])
    return Rings(x, y, n, ok, area, bounds, kind)


def intersection_areas(a: np.ndarray, b: np.ndarray, ia: np.ndarray, ib: np.ndarray,
                       ra: Rings | None = None, rb: Rings | None = None) -> np.ndarray:
    """``area(a[ia[k]] ∩ b[ib[k]])`` for each pair ``k``; ``ra``/``rb``: :func:`prepare`-d ``a``/``b``."""
    out = np.zeros(len(ia))
    if not len(ia):
        return out
    ra = ra if ra is not None else prepare(a)
    rb = rb if rb is not None else prepare(b)
    both = ra.ok[ia] & rb.ok[ib]
    b_clips = both & (rb.n[ib] <= MAX_CLIP)
    b_clips[b_clips] = rb.convex[ib[b_clips]]
    a_clips = both & ~b_clips & (ra.n[ia] <= MAX_CLIP)  # else the convex one clips
    if a_clips.any():
        a_clips[a_clips] = ra.convex[ia[a_clips]]
    for clips, (subj, s_idx), (clip, c_idx) in ((b_clips, (ra, ia), (rb, ib)), (a_clips, (rb, ib), (ra, ia))):
        sel = np.flatnonzero(clips)
        size = subj.n[s_idx[sel]] * clip.n[c_idx[sel]]
        bucket = np.ceil(np.log2(np.maximum(size, 1))).astype(int)  # similar sizes together
        for level in np.unique(bucket).tolist():
            group = sel[bucket == level]
            rows = max(256, _CELLS >> level)
            for lo in range(0, len(group), rows):
                idx = group[lo: lo + rows]
                ps, pc = s_idx[idx], c_idx[idx]
                ws, wc = int(subj.n[ps].max()), int(clip.n[pc].max())
                out[idx] = clip_area(subj.x[:ws, ps], subj.y[:ws, ps], subj.n[ps], clip.x[:wc, pc], clip.y[:wc, pc])
    slow = ~(b_clips | a_clips)
    if slow.any():
        out[slow] = shapely.area(shapely.intersection(np.asarray(a)[ia[slow]], np.asarray(b)[ib[slow]]))
    return out


def clip_area(sx: np.ndarray, sy: np.ndarray, ns: np.ndarray, cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    """Area of each subject ring (column) clipped by its convex clip ring.

    Rings are ``(width, m)`` counter-clockwise and padded with their last vertex (``ns``: the
    subject's vertex counts); a padded clip ring's zero-length edges clip nothing, and an
    edge that does not cut a subject leaves it as it is.
    """
    px, py, n = _clipped(sx, sy, ns, cx, cy, cx[0], cy[0])
    area = 0.5 * np.abs((px * np.roll(py, -1, axis=0) - np.roll(px, -1, axis=0) * py).sum(axis=0))
    area[n < 3] = 0.0
    return area


def clip_rings(sx: np.ndarray, sy: np.ndarray, ns: np.ndarray, cx: np.ndarray, cy: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each subject ring clipped by its convex clip ring, as rings again: ``(x, y, n)``."""
    ox, oy = cx[0], cy[0]
    px, py, n = _clipped(sx, sy, ns, cx, cy, ox, oy)
    return px + ox, py + oy, n


def _clipped(sx: np.ndarray, sy: np.ndarray, ns: np.ndarray, cx: np.ndarray, cy: np.ndarray,
             ox: np.ndarray, oy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sutherland-Hodgman over every edge of the clip rings, near ``(ox, oy)`` (UTM coordinates
    lose digits in the products)."""
    px, py, n = sx - ox, sy - oy, ns.copy()
    ax, ay = cx - ox, cy - oy
    ex, ey = np.roll(ax, -1, axis=0) - ax, np.roll(ay, -1, axis=0) - ay  # the last slot closes the ring
    for k in range(ax.shape[0]):
        px, py, n = _clip_edge(px, py, n, ax[k], ay[k], ex[k], ey[k])
    return px, py, n


def _clip_edge(px: np.ndarray, py: np.ndarray, n: np.ndarray, ax: np.ndarray, ay: np.ndarray,
               ex: np.ndarray, ey: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Sutherland-Hodgman step: each padded ring cut by the half-plane left of ``a + t e``."""
    width, m = px.shape
    slot = np.arange(width)[:, None]
    side = ex * (py - ay) - ey * (px - ax)
    inside = side >= 0
    # the last slot repeats the last vertex: the previous of slot 0
    prev_x, prev_y, side_p = np.roll(px, 1, axis=0), np.roll(py, 1, axis=0), np.roll(side, 1, axis=0)
    denom = side_p - side
    t = np.divide(side_p, denom, out=np.zeros_like(denom), where=denom != 0)
    valid = slot < n[None, :]
    emit_x = valid & (inside != np.roll(inside, 1, axis=0))  # the crossing, then ...
    emit_c = valid & inside  # ... the vertex
    count = emit_x.astype(np.intp) + emit_c
    end = count.copy()
    for j in range(1, width):
        end[j] += end[j - 1]
    n = end[-1]
    at = end - count  # where each slot's output starts
    new = max(int(n.max()), 1)
    qx, qy = np.zeros((new, m)), np.zeros((new, m))
    col = np.broadcast_to(np.arange(m), (width, m))
    r, c = at[emit_x], col[emit_x]
    qx[r, c] = (prev_x + t * (px - prev_x))[emit_x]
    qy[r, c] = (prev_y + t * (py - prev_y))[emit_x]
    r, c = (at + emit_x)[emit_c], col[emit_c]
    qx[r, c], qy[r, c] = px[emit_c], py[emit_c]
    last = np.maximum(n - 1, 0)
    pad = np.arange(new)[:, None] >= n[None, :]
    qx = np.where(pad, qx[last, np.arange(m)], qx)
    qy = np.where(pad, qy[last, np.arange(m)], qy)
    return qx, qy, n


def grow_convex(r: Rings, cols: np.ndarray, d: float) -> tuple[Rings, np.ndarray]:
    """The convex rings ``cols`` of ``r`` grown outwards by ``d`` (mitre joins), and which are usable.

    Each vertex moves along the bisector of its two edges' outward normals by
    ``d / (1 + cos)`` of their angle, so that both edges move out by exactly ``d``; a ring
    with a zero-length edge or a corner sharper than shapely's mitre limit (5) is flagged
    unusable (the caller falls back to ``shapely.buffer``).
    """
    x, y, n = r.x[:, cols], r.y[:, cols], r.n[cols]
    width = x.shape[0]
    i = np.arange(width)[:, None]
    m = np.maximum(n, 1)[None, :]
    prev, nxt = (i - 1) % m, (i + 1) % m
    ix, iy = x - np.take_along_axis(x, prev, axis=0), y - np.take_along_axis(y, prev, axis=0)
    ox, oy = np.take_along_axis(x, nxt, axis=0) - x, np.take_along_axis(y, nxt, axis=0) - y
    with np.errstate(divide="ignore", invalid="ignore"):
        li, lo = np.hypot(ix, iy), np.hypot(ox, oy)
        nix, niy, nox, noy = iy / li, -ix / li, oy / lo, -ox / lo  # outward normals (counter-clockwise rings)
        cos1 = 1.0 + nix * nox + niy * noy
        gx, gy = x + d * (nix + nox) / cos1, y + d * (niy + noy) / cos1
    valid = i < n[None, :]
    usable = r.ok[cols] & r.convex[cols] & np.where(valid, np.isfinite(gx) & (cos1 >= 2.0 / 25.0), True).all(axis=0)
    last = np.maximum(n - 1, 0)
    gx = np.where(valid, gx, gx[last, np.arange(len(cols))])  # padding: the last vertex again
    gy = np.where(valid, gy, gy[last, np.arange(len(cols))])
    gx, gy = np.nan_to_num(gx), np.nan_to_num(gy)
    k = len(cols)
    return Rings(gx, gy, np.where(usable, n, 0), usable, np.zeros(k), np.zeros((k, 4)), np.full(k, 3)), usable


__all__ = ["MAX_CLIP", "MAX_SUBJECT", "Rings", "clip_area", "clip_rings", "grow_convex", "intersection_areas", "prepare"]
