"""The raster half of :func:`changedetect.vectorize.vectorize` (private): hysteresis,
morphological clean-up and tracing, strip by strip with an overlap, and the merge of the
pieces cut by strip seams."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import rasterio.features
import shapely
import xarray as xr
from affine import Affine
from scipy import ndimage

if TYPE_CHECKING:
    from changedetect.vectorize import VectorizeConfig


def first_seen_days(first_seen: xr.DataArray | None, shape: tuple[int, int]) -> xr.DataArray | None:
    if first_seen is None:
        return None
    if first_seen.shape != shape:
        from changedetect.errors import GeoreferenceError

        raise GeoreferenceError(f"the first-seen raster has {first_seen.shape[0]}x{first_seen.shape[1]} pixels and "
                                f"the probability {shape[0]}x{shape[1]}: give the first-seen raster written with this "
                                "probability (detect --series writes both on one grid)")
    return first_seen


def _days_block(days: xr.DataArray, r0: int, r1: int) -> np.ndarray:
    block = np.asarray(days[r0:r1].values)
    if np.issubdtype(block.dtype, np.datetime64):
        out = block.astype("datetime64[D]").astype("int64").astype(np.float64)
        out[np.isnat(block)] = np.nan
        return out
    return block.astype(np.float64)


def hysteresis(prob: np.ndarray, high: float, low: float) -> np.ndarray:
    """Pixels >= ``low`` that are 8-connected to a pixel >= ``high``."""
    weak = prob >= low
    labels, n = ndimage.label(weak, structure=np.ones((3, 3), bool))
    keep = np.zeros(n + 1, bool)
    keep[np.unique(labels[prob >= high])] = True
    keep[0] = False
    return keep[labels]


def clean_mask(mask: np.ndarray, config: VectorizeConfig, pixel_m2: float,
               kinds: np.ndarray | None = None) -> np.ndarray:
    """Opening, closing (:func:`close_within`, with ``kinds``), and small holes filled."""
    if config.opening_px:
        mask = ndimage.binary_opening(mask, structure=_disk(config.opening_px))
    if config.closing_px:
        mask = close_within(mask, config.closing_px, kinds)
    holes = ndimage.binary_fill_holes(mask) & ~mask
    if holes.any() and config.max_hole_m2 > 0:
        lab, n = ndimage.label(holes)
        sizes = ndimage.sum_labels(holes, lab, np.arange(1, n + 1)) * pixel_m2
        small = np.concatenate([[False], sizes < config.max_hole_m2])
        mask = mask | small[lab]
    return mask


def change_kinds(before: np.ndarray, after: np.ndarray, delta: float = 0.5) -> np.ndarray:
    """``(y, x)`` int8 from a building segmenter's before/after probabilities: +1 where a
    building appeared (``after - before >= delta``), -1 where one went, 0 elsewhere or NaN."""
    with np.errstate(invalid="ignore"):
        d = np.asarray(after, dtype=np.float32) - np.asarray(before, dtype=np.float32)
        return np.where(d >= delta, 1, np.where(d <= -delta, -1, 0)).astype(np.int8)


def close_within(mask: np.ndarray, r: int, kinds: np.ndarray | None = None) -> np.ndarray:
    """Morphological closing (a disk of radius ``r``) that fills notches and cracks but does not
    join a building that appeared to one that went: with ``kinds`` (:func:`change_kinds`), a
    pixel the closing adds is dropped when objects (8-connected) of both kinds lie within
    ``2 r`` of it (an object's kind: the mean of ``kinds`` over it, at +-0.5 or beyond).  A
    plain closing bridges any gap up to ``2 r`` pixels wide: on the sample city a new
    extension took a moved winter shadow a pixel beside it (a "building" gone, to the
    segmenter) and came out too large for its permit (``exceeds_permit``).  A crack through
    one demolished house is still closed.

    >>> m = np.zeros((7, 9), bool); m[1:6, 1:4] = m[1:6, 5:8] = True  # a one-pixel gap
    >>> k = np.zeros(m.shape, np.int8); k[:, :4] = 1; k[:, 5:] = -1  # new | gone
    >>> int(close_within(m, 1, k)[3, 4]), int(close_within(m, 1, np.abs(k))[3, 4])
    (0, 1)
    """
    closed = ndimage.binary_closing(mask, structure=_disk(r)) | mask
    added = closed & ~mask
    if kinds is None or not added.any():
        return closed
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n < 2:
        return closed
    mean = ndimage.mean(kinds.astype(np.float32), labels, np.arange(1, n + 1))
    size = 4 * r + 1
    near = [ndimage.maximum_filter(np.concatenate([[False], sel])[labels], size=size, mode="constant")
            for sel in (mean >= 0.5, mean <= -0.5)]
    return closed & ~(added & near[0] & near[1])


def _disk(r: int) -> np.ndarray:
    y, x = np.ogrid[-r: r + 1, -r: r + 1]
    return (x * x + y * y) <= r * r + r  # a plus for r=1, a rounded square beyond


def trace_strip(prob: xr.DataArray, days: xr.DataArray | None, r0: int, transform: Affine, pixel_m2: float,
                config: VectorizeConfig,
                presence: tuple[xr.DataArray, xr.DataArray] | None = None) -> list[dict]:
    """Polygons of the rows [r0, r0 + strip_rows), computed on the strip plus its overlap
    (``presence``: a segmenter's before/after building probabilities, :func:`close_within`)."""
    height = prob.shape[0]
    r1 = min(r0 + config.strip_rows, height)
    e0, e1 = max(r0 - config.strip_overlap, 0), min(r1 + config.strip_overlap, height)
    p = np.nan_to_num(np.asarray(prob[e0:e1].values, dtype=np.float32), nan=0.0)
    if p.size and float(p.max()) > 1.5:  # a percent or 0..255 raster (not a noisy 1.01): everything passes
        from changedetect.errors import ConfigError

        raise ConfigError(f"the change probability reaches {float(p.max()):g}: not a probability in [0, 1] "
                          "(a percentage or an 8-bit image?)")
    config = config.for_probability(prob)  # a threshold of None: the probability's own
    assert config.threshold is not None
    low = config.threshold if config.low_threshold is None else config.low_threshold
    kinds = None if presence is None else change_kinds(np.asarray(presence[0][e0:e1].values),
                                                       np.asarray(presence[1][e0:e1].values))
    mask = clean_mask(hysteresis(p, config.threshold, low), config, pixel_m2, kinds)[r0 - e0: r1 - e0]
    if not mask.any():
        return []
    core = p[r0 - e0: r1 - e0]
    labels, n = ndimage.label(mask)  # 4-connected, as rasterio.features.shapes below
    idx = np.arange(1, n + 1)
    sums = ndimage.sum_labels(core, labels, idx)
    counts = ndimage.sum_labels(mask, labels, idx)
    maxes = ndimage.maximum(core, labels, idx)
    seen = _median_days(_days_block(days, r0, r1), labels, n) if days is not None else np.full(n, np.nan)
    wt = transform @ Affine.translation(0, r0)
    out = []
    for geom, value in rasterio.features.shapes(labels.astype(np.int32), mask=mask, transform=wt, connectivity=4):
        k = int(value) - 1
        out.append({"geometry": shapely.geometry.shape(geom), "strip": r0, "sum": float(sums[k]),
                    "count": float(counts[k]), "max": float(maxes[k]), "days": float(seen[k])})
    return out


def _median_days(days: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, np.nan)
    ok = (labels > 0) & np.isfinite(days)
    if not ok.any():
        return out
    lab, val = labels[ok], days[ok]
    order = np.lexsort((val, lab))
    lab, val = lab[order], val[order]
    starts = np.searchsorted(lab, np.arange(1, n + 1))
    ends = np.searchsorted(lab, np.arange(1, n + 1), side="right")
    for k in np.flatnonzero(ends > starts):
        out[k] = val[(starts[k] + ends[k] - 1) // 2]
    return out


def merge_seams(pieces: list[dict]) -> list[dict]:
    """Dissolve pieces of different strips that share an edge (union-find over an STRtree)."""
    if not pieces:
        return []
    geoms = np.array([p["geometry"] for p in pieces], dtype=object)
    strips = np.array([p["strip"] for p in pieces])
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    cand = (a < b) & (strips[a] != strips[b])
    a, b = a[cand], b[cand]
    shared = shapely.length(shapely.intersection(geoms[a], geoms[b])) > 0
    parent = np.arange(len(pieces))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return int(i)

    for i, j in zip(a[shared], b[shared], strict=True):
        ri, rj = root(int(i)), root(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    groups: dict[int, list[int]] = {}
    for i in range(len(pieces)):
        groups.setdefault(root(i), []).append(i)
    merged = []
    for members in groups.values():
        if len(members) == 1:
            merged.append(pieces[members[0]])
            continue
        parts = [pieces[m] for m in members]
        biggest = max(parts, key=lambda q: q["count"])
        merged.append({
            "geometry": shapely.union_all([q["geometry"] for q in parts]),
            "sum": sum(q["sum"] for q in parts), "count": sum(q["count"] for q in parts),
            "max": max(q["max"] for q in parts), "days": biggest["days"],
        })
    return merged
