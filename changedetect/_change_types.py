"""New, altered or demolished, from the images or an existing-buildings layer (private; for
:mod:`changedetect.vectorize`): :func:`change_types`, and :func:`window`, the pixel window
around a footprint that the presence rules and the nightly merge read too."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import rasterio.features
import shapely
import xarray as xr
from affine import Affine


def change_types(
    geoms: gpd.GeoSeries,
    *,
    before: xr.DataArray | None,
    after: xr.DataArray | None,
    buildings: gpd.GeoDataFrame | None,
    transform: Affine,
    shape: tuple[int, int],
) -> list[str]:
    """``new`` / ``altered`` / ``demolished`` for each footprint.

    From the images (``before`` and ``after`` on the probability grid), per
    footprint and image: *contrast* = (median brightness inside - median
    brightness of a ring 2-6 pixels around it) / the image's 2-98 % brightness
    range, and *built* = mostly not vegetation (NDVI < 0.2 with a ``nir`` band,
    else excess green 2g - r - b below 5 % of the range) and ``|contrast| > 0.08``.

    - A footprint whose contrast drops by more than 0.1 is ``demolished`` (roofs
      of dense cities stand out brighter than the ground around them; a cleared
      lot does not);
    - else with an existing-buildings layer: at least 20 % covered by existing
      buildings -> ``altered``, otherwise ``new``;
    - else built before and after -> ``altered``; otherwise ``new``.

    With neither images nor a buildings layer every footprint is ``new``.  A
    heuristic: on the generated sample city it is measured, not assumed
    (``docs/permits.md``).
    """
    n = len(geoms)
    b_built, b_con = _built(geoms, before, transform, shape) if before is not None else (None, None)
    a_built, a_con = _built(geoms, after, transform, shape) if after is not None else (None, None)
    gone = (a_con - b_con < -0.1) if a_con is not None and b_con is not None else np.zeros(n, bool)
    if buildings is not None and len(buildings):
        existing = buildings.to_crs(geoms.crs) if buildings.crs and geoms.crs else buildings
        tree = shapely.STRtree(np.asarray(existing.geometry.values))
        gi, bi = tree.query(np.asarray(geoms.values), predicate="intersects")
        cover = np.zeros(n)
        inter = shapely.area(shapely.intersection(np.asarray(geoms.values)[gi], tree.geometries[bi]))
        np.add.at(cover, gi, inter)
        was = cover >= 0.2 * geoms.area.to_numpy()
        if a_built is not None and b_con is None:
            gone = ~a_built
        return ["demolished" if g else "altered" if w else "new" for w, g in zip(was, gone, strict=True)]
    if b_built is None or a_built is None:
        return ["new"] * n
    return [
        "demolished" if g else "altered" if b and a else "new"
        for b, a, g in zip(b_built, a_built, gone, strict=True)
    ]


def _band_mean(pix: np.ndarray) -> np.ndarray:
    """``np.nanmean(pix, axis=0)`` without numpy's 'Mean of empty slice' warning where no band has data."""
    count = np.isfinite(pix).sum(axis=0)
    total = np.where(np.isfinite(pix), pix, 0).sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _median(values: np.ndarray) -> float:
    """``np.nanmedian`` without numpy's 'All-NaN slice' warning (NaN: no data)."""
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else float("nan")


def _built(geoms: gpd.GeoSeries, image: xr.DataArray, transform: Affine,
           shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Whether each footprint looks built in ``image`` (band, y, x), and its signed contrast."""
    from changedetect._detect_inputs import _canon
    from changedetect.types import band_names

    # by name, Sentinel-2's too (B04/B03/B02/B08): its first three bands are B01 (60 m aerosols), B02, B03;
    # a file's band descriptions where rioxarray numbered its bands
    bands = [_canon(b) for b in band_names(image)] if "band" in image.coords else []
    pick: dict[str, int] = {name: bands.index(name) for name in ("red", "green", "blue", "nir") if name in bands}
    rgb = [pick[c] for c in ("red", "green", "blue")] if all(c in pick for c in ("red", "green", "blue")) \
        else [0, 1, 2][: image.shape[0]]
    out = np.zeros(len(geoms), bool)
    con = np.zeros(len(geoms))
    if image.shape[-2:] != shape:
        from changedetect.errors import GeoreferenceError

        raise GeoreferenceError(
            f"the before/after image has {image.shape[-2]}x{image.shape[-1]} pixels and the probability "
            f"{shape[0]}x{shape[1]}: give images on the probability's grid (the co-registered dates, or a "
            "run's before_rgb.tif / after_rgb.tif)")
    if len(rgb) < 3 and not ("nir" in pick and "red" in pick):
        from changedetect.errors import ConfigError

        raise ConfigError(
            f"the before/after image has {image.shape[0]} band(s) ({', '.join(map(str, bands)) or 'unnamed'}): "
            "change types need its red, green and blue bands (or red and nir); give the co-registered dates "
            "or a run's before_rgb.tif / after_rgb.tif, not a probability raster")
    arr = image.data
    bright_all = np.asarray(arr[rgb, ::8, ::8], dtype=np.float32).mean(axis=0)
    lo, hi = np.nanpercentile(bright_all, [2, 98]) if np.isfinite(bright_all).any() else (0.0, 1.0)
    scale = max(float(hi - lo), 1e-6)
    px = abs(transform.a)
    for k, geom in enumerate(geoms.values):
        win = window(geom.buffer(6 * px).bounds, transform, shape)
        if win is None:
            continue
        (r0, r1), (c0, c1) = win
        pix = np.asarray(arr[:, r0:r1, c0:c1], dtype=np.float32)
        wt = transform @ Affine.translation(c0, r0)
        size = (r1 - r0, c1 - c0)
        inside = rasterio.features.geometry_mask([geom], size, wt, invert=True)
        ring = rasterio.features.geometry_mask([geom.buffer(6 * px)], size, wt, invert=True) & \
            ~rasterio.features.geometry_mask([geom.buffer(2 * px)], size, wt, invert=True)
        if inside.sum() < 4 or ring.sum() < 4:
            continue
        veg = _vegetation(pix, pick)
        not_veg = np.nanmean(veg[inside] < (0.2 if "nir" in pick else 0.05 * scale))
        bright = _band_mean(pix[rgb])  # NaN where no band has data (an aligned date's edge): no warning
        con[k] = (_median(bright[inside]) - _median(bright[ring])) / scale
        out[k] = bool(not_veg >= 0.5 and abs(con[k]) > 0.08)
    return out, con


def _vegetation(pix: np.ndarray, pick: dict[str, int]) -> np.ndarray:
    if "nir" in pick and "red" in pick:
        nir, red = pix[pick["nir"]], pix[pick["red"]]
        return (nir - red) / np.maximum(nir + red, 1e-6)
    r, g, b = (pix[pick.get(c, i)] for i, c in enumerate(("red", "green", "blue")))
    return 2 * g - r - b


def window(bounds: tuple[float, float, float, float], transform: Affine,
            shape: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]] | None:
    inv = ~transform
    cols, rows = zip(*(inv @ (x, y) for x in bounds[0::2] for y in bounds[1::2]), strict=True)
    r0, r1 = max(int(math.floor(min(rows))), 0), min(int(math.ceil(max(rows))), shape[0])
    c0, c1 = max(int(math.floor(min(cols))), 0), min(int(math.ceil(max(cols))), shape[1])
    return ((r0, r1), (c0, c1)) if r1 > r0 and c1 > c0 else None


__all__ = ["change_types", "window"]
