"""How much of each footprint lies on which parcel (private: :func:`changedetect.parcels.with_parcels`).

Vectorised as :mod:`changedetect._match_inputs` matches permits: an STRtree built on the smaller of
the two sets; when the layer is in another CRS the footprints' boxes are taken to it for the search,
so that only the candidate parcels are reprojected (datum shift included), never a city's whole
layer; the exact overlaps are measured in metres with shapely's vectorised intersection.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS, Transformer

from changedetect._match_inputs import working_crs
from changedetect._match_rules import reproject
from changedetect.io.geo import metres_per_unit


def overlay(footprints: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame,
            tolerance: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per footprint: the row of the parcel holding its largest share (-1: none; a tie, within
    :data:`TIE`, goes to the earlier row), that share (0-1), and how many parcels hold at least
    :data:`~changedetect.parcels.CROSS_SHARE` (of the whole footprint) and
    :data:`~changedetect.parcels.CROSS_M2` of it shrunk by ``tolerance`` metres (1 at least when
    it is on a parcel)."""
    from changedetect.parcels import CROSS_M2, CROSS_SHARE

    n = len(footprints)
    best, share = np.full(n, -1, dtype=np.intp), np.zeros(n)
    if not n or not len(parcels):
        return best, share, np.zeros(n, dtype=np.int64)
    work = working_crs(footprints)  # where match measures them: m² of the ground
    fp = _valid(np.asarray(reproject(footprints.geometry, work).values))
    fi, pi, candidates, rows = _candidates(fp, parcels, work)
    inter = shapely.area(shapely.intersection(fp[fi], candidates[pi]))
    area = shapely.area(fp)[fi]
    pair_share = np.divide(inter, area, out=np.zeros_like(inter), where=area > 0)
    on = inter > 0
    cand, whole = candidates[pi[on]], area[on]
    fi, pi, inter, pair_share = fi[on], rows[pi[on]], inter[on], pair_share[on]
    # a tie within TIE of the largest share goes to the earlier row: a footprint half on each of two lots
    # measures 0.5 and 0.4999999999 once reprojected, and its parcel must not depend on the CRS it came in
    top = np.zeros(n)
    np.maximum.at(top, fi, pair_share)
    tied = pair_share >= top[fi] - TIE
    order = np.lexsort((pi, ~tied, fi))  # by footprint, the (tied) largest shares first, then the earlier row
    first = order[np.unique(fi[order], return_index=True)[1]]
    best[fi[first]] = pi[first]
    share[fi[first]] = np.clip(pair_share[first], 0.0, 1.0)
    # what lies on a parcel beyond the outline's positional uncertainty
    core = inter if tolerance <= 0 else shapely.area(shapely.intersection(
        shapely.buffer(fp, -tolerance, join_style="mitre")[fi], cand))
    crossed = np.bincount(fi[(core >= CROSS_M2) & (core >= CROSS_SHARE * whole)], minlength=n)
    # a footprint on a parcel stands on one at least (its core may be gone: narrower than twice the tolerance)
    return best, share, np.maximum(crossed, best >= 0).astype(np.int64)


#: shares closer than this are a tie (areas measured after a reprojection differ in their last digits)
TIE = 1e-6


def _valid(geoms: np.ndarray) -> np.ndarray:
    """``geoms`` with the invalid ones made valid (a bow-tie's intersection would raise)."""
    bad = ~shapely.is_valid(geoms) & ~shapely.is_missing(geoms)
    if bad.any():
        geoms = geoms.copy()
        geoms[bad] = shapely.make_valid(geoms[bad])
    return geoms


def _candidates(fp: np.ndarray, parcels: gpd.GeoDataFrame,
                work: CRS) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pairs ``(fi, pi)`` of a footprint and a candidate parcel whose boxes meet (exactly intersecting
    ones when the layer is in ``work``), the candidates in ``work`` (``pi`` indexes them) and their
    rows in the layer."""
    own = CRS.from_user_input(parcels.crs)
    geoms = np.asarray(parcels.geometry.values)
    predicate: str | None = None
    if own == work:
        query, predicate = fp, "intersects"
    else:  # the corners of each footprint's box bound it in the layer's CRS (grown by about half a metre)
        margin = 0.5 / 111_000 if own.is_geographic else 0.5 / metres_per_unit(own)
        b = shapely.bounds(fp)
        xs, ys = b[:, [0, 2, 2, 0]].ravel(), b[:, [1, 1, 3, 3]].ravel()
        tx, ty = Transformer.from_crs(work, own, always_xy=True).transform(xs, ys)
        tx, ty = np.asarray(tx).reshape(-1, 4), np.asarray(ty).reshape(-1, 4)
        query = shapely.box(tx.min(axis=1) - margin, ty.min(axis=1) - margin,
                            tx.max(axis=1) + margin, ty.max(axis=1) + margin)
    if len(query) <= len(geoms):  # the tree on the smaller set (building costs more than querying)
        gi, fi = shapely.STRtree(query).query(geoms, predicate=predicate)
    else:
        fi, gi = shapely.STRtree(geoms).query(query, predicate=predicate)
    rows, pi = np.unique(gi, return_inverse=True)
    picked = gpd.GeoSeries(geoms[rows], crs=own)
    candidates = _valid(np.asarray((picked if own == work else reproject(picked, work)).values))
    return fi, pi, candidates, rows
