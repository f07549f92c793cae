"""Shapes and evidence for :mod:`changedetect.vectorize` (private).

- :func:`regularize`: building-like outlines;
- :func:`footprint_ids`: stable identifiers, and :func:`carry_ids`: the previous run's ids carried over by overlap;
- the change types live in :mod:`changedetect._change_types`.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Collection, Sequence

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

log = logging.getLogger(__name__)

#: Cell of the footprint-id grid, in degrees of EPSG:4326 (about 4.4 m north-south).
ID_CELL_DEG = 4e-5
#: :func:`carry_ids`: a new footprint takes a previous one's id at this IoU ...
CARRY_MIN_IOU = 0.5
#: ... or when their intersection covers this share of the smaller of the two.
CARRY_MIN_COVER = 0.8


def regularize(geom: BaseGeometry, *, rectangularity: float, tolerance: float, min_iou: float = 0.9) -> BaseGeometry:
    """A building-like outline for a pixel polygon.

    When the polygon fills at least ``rectangularity`` of its minimum rotated
    rectangle, the rectangle is returned, shrunk about its centre to the
    polygon's area (a staircase of pixels is a little larger than the wall it
    traces).  Otherwise the outline is rotated onto its dominant direction,
    simplified by ``tolerance`` and every edge snapped to that direction or its
    perpendicular, which keeps L-, T- and U-shaped buildings square.  A
    squared shape whose IoU with the traced outline is below ``min_iou`` is
    not used: the outline is only simplified (by ``tolerance``) instead.
    """
    if geom.is_empty or geom.geom_type != "Polygon" or geom.area <= 0:
        return geom
    if geom.interiors:  # courtyards (larger than max_hole_m2): square the outer walls, keep the holes
        outer = regularize(Polygon(geom.exterior), rectangularity=rectangularity, tolerance=tolerance,
                           min_iou=min_iou)
        shaped = outer.difference(shapely.union_all([Polygon(r) for r in geom.interiors]))
        simple = geom.simplify(tolerance, preserve_topology=True)
        return shaped if shaped.geom_type == "Polygon" and _iou(shaped, geom) >= min_iou else simple
    rect = geom.minimum_rotated_rectangle
    if rect.geom_type != "Polygon" or rect.area <= 0:
        return geom
    simple = geom.simplify(tolerance, preserve_topology=True)
    if geom.area / rect.area >= rectangularity:
        k = math.sqrt(geom.area / rect.area)
        shaped = shapely.affinity.scale(rect, xfact=k, yfact=k, origin=rect.centroid)
    else:
        angle = _dominant_angle(rect)
        centre = rect.centroid
        upright = shapely.affinity.rotate(geom, -angle, origin=centre, use_radians=False)
        squared = _orthogonalise(upright.simplify(tolerance, preserve_topology=True))
        if squared is None:
            return simple
        shaped = shapely.affinity.rotate(squared, angle, origin=centre, use_radians=False)
    # never trade the traced outline for a shape that disagrees with it
    return shaped if _iou(shaped, geom) >= min_iou else simple


def _iou(a: BaseGeometry, b: BaseGeometry) -> float:
    union = a.union(b).area
    return a.intersection(b).area / union if union > 0 else 0.0


def _dominant_angle(rect: Polygon) -> float:
    """Direction (degrees) of the longest side of a rectangle."""
    xy = np.asarray(rect.exterior.coords)[:3]
    sides = np.diff(xy, axis=0)
    longest = sides[np.argmax(np.hypot(sides[:, 0], sides[:, 1]))]
    return math.degrees(math.atan2(longest[1], longest[0]))


def _orthogonalise(poly: BaseGeometry) -> Polygon | None:
    """Snap each edge of an axis-near polygon to horizontal or vertical."""
    if poly.geom_type != "Polygon":
        return None
    pts = np.asarray(poly.exterior.coords)[:-1]
    if len(pts) < 4:
        return None
    n = len(pts)
    horizontal = [abs(pts[(i + 1) % n, 0] - pts[i, 0]) >= abs(pts[(i + 1) % n, 1] - pts[i, 1]) for i in range(n)]
    # merge runs of edges with the same direction, each run at its mean level
    out: list[tuple[float, float]] = []
    levels = []
    for i in range(n):
        a, b = pts[i], pts[(i + 1) % n]
        levels.append((a[1] + b[1]) / 2 if horizontal[i] else (a[0] + b[0]) / 2)
    for i in range(n):
        j = (i + 1) % n
        if horizontal[i] == horizontal[j]:
            continue
        # corner between edge i and edge j
        x = levels[j] if horizontal[i] else levels[i]
        y = levels[i] if horizontal[i] else levels[j]
        out.append((x, y))
    if len(out) < 4:
        return None
    squared = Polygon(out)
    return squared if squared.is_valid else None


def footprint_ids(geoms: gpd.GeoSeries) -> list[str]:
    """``F-`` + 10 hex digits of SHA-1 of the centroid's cell on a fixed EPSG:4326 grid.

    The centroid (taken in the frame's own, projected CRS) is reprojected to
    EPSG:4326 and rounded to cells of :data:`ID_CELL_DEG` degrees (about
    4.4 m x 4.4 m at Ho Chi Minh City), so the same structure vectorised again
    (a later run, another model, a polygon a pixel larger) keeps its id unless
    its centroid crosses a cell edge.  Two footprints of one run in the same
    cell get ``-2``, ``-3``, ... after the larger one.  To follow structures
    across runs reliably, give the previous run's footprints to :func:`carry_ids`.
    """
    return carry_ids(geoms, None)


def _cell_hashes(geoms: gpd.GeoSeries) -> list[str]:
    cen = shapely.centroid(np.asarray(geoms.values))  # planar in the CRS; fine for a building
    x, y = shapely.get_x(cen), shapely.get_y(cen)
    if geoms.crs is not None:
        tr = Transformer.from_crs(geoms.crs, CRS.from_epsg(4326), always_xy=True)
        lon, lat = tr.transform(x, y)
    else:
        lon, lat = x, y
    cells = np.floor(np.column_stack([lat, lon]) / ID_CELL_DEG).astype(np.int64)
    return ["F-" + hashlib.sha1(f"{a},{b}".encode()).hexdigest()[:10] for a, b in cells]


def carry_ids(
    new: gpd.GeoSeries,
    previous: gpd.GeoDataFrame | None,
    *,
    min_iou: float = CARRY_MIN_IOU,
    min_cover: float = CARRY_MIN_COVER,
    kinds: Sequence[str] | None = None,
    reserved: Collection[str] = (),
) -> list[str]:
    """Ids of the footprints ``new``, carried over from the ``previous`` run's footprints by overlap.

    A pair (new footprint, previous footprint) is a *candidate* when their IoU
    is at least ``min_iou`` or the intersection covers at least ``min_cover``
    of the smaller of the two (a structure that grew or shrank).  Candidates
    are assigned one-to-one, greedily by decreasing IoU (ties: larger cover,
    then position in the tables), and each assigned new footprint takes the
    previous footprint's ``footprint_id``.  So when a structure splits, the
    piece with the highest IoU keeps the id (the others get fresh ids); when
    structures merge, the merged footprint keeps the id of the one it overlaps
    best (the others' ids are not used again in this run).

    With ``kinds`` (the new footprints' ``change_type``) and a ``change_type`` column in
    ``previous``, a ``demolished`` footprint and one that is not are never candidates: a
    house demolished and the house later put up on its lot are two structures (two events,
    two ids), however much they overlap.  A missing kind on either side is no objection.

    Every other footprint gets the cell id of :func:`footprint_ids`; when that
    id is already taken (by a larger footprint of this run or by any id still
    present in ``previous``), it gets the first free ``-2``, ``-3``, ...  A
    footprint that does not overlap a previous one well therefore never takes
    its id, even when their centroids share a cell.  ``reserved``: ids already given to other
    footprints of this run, neither carried over nor reused.  ``previous`` is
    reprojected to the CRS of ``new``.  Without ``previous`` (``None`` or
    empty) the result is exactly :func:`footprint_ids`.

    Raises
    ------
    GeoreferenceError
        One of the two has a CRS and the other has none.
    ConfigError
        ``previous`` has no ``footprint_id`` column (a ``ValueError`` too).
    """
    n = len(new)
    if not n:
        return []
    out: list[str | None] = [None] * n
    taken: set[str] = set(reserved)
    if previous is not None and len(previous):
        prev_ids, prev_geoms, prev_kinds = _previous(previous, new.crs)
        taken |= set(prev_ids)
        new_kinds = [k if isinstance(k, str) else "" for k in kinds] if kinds is not None else None
        if new_kinds is not None and len(new_kinds) != n:
            raise ValueError(f"carry_ids: {len(new_kinds)} kinds for {n} footprints")
        for i, j in _assign(np.asarray(new.values), prev_geoms, prev_ids, min_iou=min_iou, min_cover=min_cover,
                            kinds=(new_kinds, prev_kinds) if new_kinds is not None and prev_kinds else None):
            if prev_ids[j] not in reserved:
                out[i] = prev_ids[j]
    base = _cell_hashes(new)
    for i in np.argsort(-shapely.area(np.asarray(new.values)), kind="stable"):  # larger first, any CRS
        if out[i] is not None:
            continue
        candidate, k = base[i], 1
        while candidate in taken:
            k += 1
            candidate = f"{base[i]}-{k}"
        taken.add(candidate)
        out[i] = candidate
    return [str(v) for v in out]


def check_previous(previous: gpd.GeoDataFrame, source: str = "the previous footprints", *,
                   require_crs: bool = True) -> gpd.GeoDataFrame:
    """``previous`` ready for :func:`carry_ids`: checked, rows without an id dropped, shapes made valid.

    Raises
    ------
    ConfigError
        No ``footprint_id`` column, or no CRS while ``require_crs`` (``source`` names the file
        in the message).
    """
    from changedetect.errors import ConfigError

    if "footprint_id" not in previous:
        raise ConfigError(f"{source} have no 'footprint_id' column (columns: "
                          f"{', '.join(map(str, previous.columns))}); give footprints written by "
                          "`changedetect vectorize` or `changedetect run`")
    if require_crs and previous.crs is None:
        raise ConfigError(f"{source} have no CRS; give footprints written by changedetect (they carry "
                          "one) or set it (GeoDataFrame.set_crs) before carrying ids over")
    ids = previous["footprint_id"]
    keep = ids.notna().to_numpy() & (ids.astype(str).str.strip() != "").to_numpy()
    keep &= ~(previous.geometry.isna().to_numpy() | previous.geometry.is_empty.to_numpy())
    if not keep.all():
        log.warning("%s: %d row(s) without a footprint_id or a shape ignored", source, int((~keep).sum()))
    out = previous.loc[keep]
    geoms = out.geometry.to_numpy()
    bad = ~shapely.is_valid(geoms)
    if bad.any():  # e.g. self-intersections from an edit in a GIS: intersections would raise
        out = out.set_geometry(np.where(bad, shapely.make_valid(geoms), geoms), crs=out.crs)
    return out


def _previous(previous: gpd.GeoDataFrame, crs: object) -> tuple[list[str], np.ndarray, list[str] | None]:
    """The previous footprints' ids, geometries in ``crs`` and change types (None without the column)."""
    from changedetect.errors import GeoreferenceError

    previous = check_previous(previous, require_crs=False)
    if (previous.crs is None) != (crs is None):
        raise GeoreferenceError("the previous footprints and the new ones do not both have a CRS; "
                                "set the missing one (GeoDataFrame.set_crs) before carrying ids over")
    if crs is not None and previous.crs != crs:
        previous = previous.to_crs(crs)
    ids = [str(v) for v in previous["footprint_id"]]
    kinds = ([str(v) if isinstance(v, str) else "" for v in previous["change_type"]]
             if "change_type" in previous else None)
    return ids, np.asarray(previous.geometry.values), kinds


def _assign(new: np.ndarray, prev: np.ndarray, prev_ids: list[str], *, min_iou: float,
            min_cover: float, kinds: tuple[list[str], list[str]] | None = None) -> list[tuple[int, int]]:
    """One-to-one (new index, previous index) pairs, greedy by IoU (see :func:`carry_ids`).

    One-to-one over ids too: a previous id given twice is carried over once.  ``kinds`` (new,
    previous change types): a ``demolished`` one and one that is not never pair ('' = unknown).
    """
    tree = shapely.STRtree(prev)  # missing and empty geometries are not indexed
    ni, pi = tree.query(new, predicate="intersects")
    if not len(ni):
        return []
    inter = shapely.area(shapely.intersection(new[ni], prev[pi]))
    a_new, a_prev = shapely.area(new[ni]), shapely.area(prev[pi])
    union = a_new + a_prev - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    smaller = np.minimum(a_new, a_prev)
    cover = np.divide(inter, smaller, out=np.zeros_like(inter), where=smaller > 0)
    ok = (inter > 0) & ((iou >= min_iou) | (cover >= min_cover))
    if kinds is not None:
        gone_new = np.array([k == "demolished" for k in kinds[0]])[ni]
        gone_prev = np.array([k == "demolished" for k in kinds[1]])[pi]
        known = (np.array([k != "" for k in kinds[0]])[ni]) & (np.array([k != "" for k in kinds[1]])[pi])
        ok &= ~known | (gone_new == gone_prev)
    ni, pi, iou, cover = ni[ok], pi[ok], iou[ok], cover[ok]
    pairs: list[tuple[int, int]] = []
    used_new: set[int] = set()
    used_ids: set[str] = set()
    for k in np.lexsort((pi, ni, -cover, -iou)):
        i, j = int(ni[k]), int(pi[k])
        if i in used_new or prev_ids[j] in used_ids:
            continue
        used_new.add(i)
        used_ids.add(prev_ids[j])
        pairs.append((i, j))
    return pairs


__all__ = ["CARRY_MIN_COVER", "CARRY_MIN_IOU", "ID_CELL_DEG", "carry_ids", "check_previous", "footprint_ids",
           "regularize"]
