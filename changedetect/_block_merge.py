"""The pieces of one structure that blocks could not hold whole, joined (private; H122).

A structure wider than a block grown to its cap (:data:`changedetect._pipeline_blocks.GROW_CAP`)
is traced by each block whose core holds its piece's representative point, each piece marked
``cut_by_block``.  Every block reads at least ``halo_px`` past its core, so the pieces of
neighbouring blocks overlap around their seam: kept as they are, they are two footprints, two
violations, of one structure.  Here the pieces of different blocks that overlap (by more than a
sliver: :data:`MIN_SHARED`; two cut pieces that only touch too) are one footprint: their union, still marked.  Footprints of one block never
join each other (its tracing keeps them apart), nor a rebuild (a footprint of its own over its
lot's demolition, :func:`changedetect._pipeline_steps.with_rebuilds`) with one that is not.

The joined footprint's columns: ``area_m2`` the union's (in the pieces' own metres per CRS unit),
``prob_mean`` the pieces' means weighted by their areas, ``prob_max`` the largest, ``first_seen``
the earliest piece's with its ``before_date`` (the structure stood, in part, from then), and
``change_type``, ``model`` and the rest the largest piece's: its kind is read from more of the
structure than any other piece's.  Its ``footprint_id`` is the one the whole scene's run gives an
outline (:func:`changedetect._vectorize_shapes.carry_ids`: carried over from the previous run's
footprint it overlaps well, else its centroid's cell), never another footprint's of this run."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import geopandas as gpd

    from changedetect._vectorize_config import VectorizeConfig

log = logging.getLogger("changedetect.pipeline")

#: the footprints' column that marks one a block could not hold whole (written only when there is one)
CUT = "cut_by_block"
#: private columns of the blocks' footprints until they are joined: the block that kept each, and
#: whether it is a rebuild's
BLOCK, REBUILD = "_block", "_rebuild"
#: the share of the smaller of two footprints of different blocks that they must have in common to be
#: pieces of one structure (a cut piece overlaps its neighbour's over the seam's whole margin)
MIN_SHARED = 0.1


def structures(geoms: np.ndarray, blocks: np.ndarray, cut: np.ndarray | None = None,
               rebuild: np.ndarray | None = None) -> np.ndarray:
    """A label per footprint, the same for those of one structure: footprints of different
    ``blocks`` (and the same ``rebuild`` flag) that overlap (by more than :data:`MIN_SHARED` of the
    smaller), one of them ``cut``, or that touch,
    both cut; transitively.  ``cut`` None: any two of different blocks that overlap (the rows a
    block dropped, whose cut it does not keep: only pieces of a structure overlap across blocks)."""
    import shapely

    n = len(geoms)
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    touch = cut is not None
    cut = np.ones(n, dtype=bool) if cut is None else np.asarray(cut, dtype=bool)
    rebuild = np.zeros(n, dtype=bool) if rebuild is None else np.asarray(rebuild, dtype=bool)
    if n and cut.any():
        left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
        ok = (left < right) & (blocks[left] != blocks[right]) & (rebuild[left] == rebuild[right])
        ok &= cut[left] | cut[right]
        left, right = left[ok], right[ok]
        # pieces of one structure overlap by the seam's margin (halo_px across the structure); a
        # house beside a cut structure may overlap its piece by a sliver (the outlines' simplification
        # moves an edge by up to a pixel): that is not one structure
        shared = shapely.area(shapely.intersection(geoms[left], geoms[right]))
        join = shared > MIN_SHARED * np.minimum(shapely.area(geoms[left]), shapely.area(geoms[right]))
        if touch:
            join |= cut[left] & cut[right]
        for i, j in zip(left[join], right[join], strict=True):
            parent[root(int(i))] = root(int(j))
    return np.array([root(i) for i in range(n)], dtype=np.int64)


def join_cut(footprints: gpd.GeoDataFrame, previous: gpd.GeoDataFrame | None,
             config: VectorizeConfig) -> gpd.GeoDataFrame:
    """``footprints`` (largest first, with :data:`CUT`, :data:`BLOCK` and :data:`REBUILD`) with the
    pieces of each structure a block cut joined into one footprint (see the module); ``config``: the
    :class:`~changedetect.config.VectorizeConfig` (``carry_min_iou``, ``carry_min_cover``)."""
    import geopandas as gpd
    import pandas as pd
    import shapely

    from changedetect._vectorize_shapes import carry_ids

    geoms = np.asarray(footprints.geometry.values)
    labels = structures(geoms, footprints[BLOCK].to_numpy(), footprints[CUT].to_numpy(dtype=bool),
                        footprints[REBUILD].to_numpy(dtype=bool))
    sizes = np.bincount(labels, minlength=len(labels))
    joined = sizes[labels] > 1
    if not joined.any():
        return footprints
    taken = set(footprints.loc[~joined, "footprint_id"].astype(str))
    rows, kinds = [], 0
    for label in dict.fromkeys(labels[joined].tolist()):  # largest piece first, as the frame is
        part = footprints[labels == label]
        row = part.iloc[[0]].copy()  # the largest piece: its columns, types and kind
        union = shapely.make_valid(shapely.union_all(np.asarray(part.geometry.values)))
        per_unit = float(part["area_m2"].sum()) / max(float(shapely.area(np.asarray(part.geometry.values)).sum()),
                                                      1e-12)
        weights = part["area_m2"].to_numpy(dtype=float)
        row["area_m2"] = round(float(shapely.area(union)) * per_unit, 2)
        row["prob_mean"] = np.float32(round(float(np.average(part["prob_mean"].to_numpy(dtype=float),
                                                             weights=weights if weights.sum() > 0 else None)), 4))
        row["prob_max"] = np.float32(part["prob_max"].max())
        if "first_seen" in part and part["first_seen"].notna().any():
            earliest = pd.to_datetime(part["first_seen"]).idxmin()
            for column in ("first_seen", "before_date"):
                if column in part:
                    row[column] = part.at[earliest, column]
        row[CUT] = True
        row = row.set_geometry([union], crs=footprints.crs)
        fid = carry_ids(row.geometry, previous, min_iou=config.carry_min_iou, min_cover=config.carry_min_cover,
                        kinds=[str(row["change_type"].iloc[0])], reserved=taken)[0]
        taken.add(fid)
        rows.append(row.assign(footprint_id=fid))
        kinds += part["change_type"].nunique() > 1
    out = pd.concat([footprints[~joined], *rows], ignore_index=True)
    out = out.sort_values("area_m2", ascending=False, kind="stable").reset_index(drop=True)
    log.info("blocks: %d piece(s) of %d structure(s) cut by a block joined into one footprint each%s",
             int(joined.sum()), len(rows),
             f" ({kinds} of them typed by their largest piece where the pieces differ)" if kinds else "")
    return gpd.GeoDataFrame(out, geometry="geometry", crs=footprints.crs)


__all__ = ["BLOCK", "CUT", "MIN_SHARED", "REBUILD", "join_cut", "structures"]
