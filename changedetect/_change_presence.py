"""``change_type`` from building presence before and after (private; :func:`changedetect.vectorize.vectorize`).

A single-date building segmenter (``models/vhr-building/buildings/``) gives, for each date,
the probability that a pixel is a building.  Averaged inside a footprint, before (``b``) and
after (``a``):

- ``demolished`` when ``b - a >= RISE`` and ``b >= PRESENT`` (a building, then much less of one);
- ``new`` when ``a - b >= RISE`` and ``b < PRESENT`` (little building before, much more after),
  or when neither date looks built (weak evidence: the default kind);
- ``altered`` otherwise: built on at least one date with no clear rise or fall (an extension
  over a roof, a rebuild, a partial demolition; also a crossing of 0.5 by less than ``RISE``).

This reads what each date shows, whatever the roof's colour, where the brightness-contrast
heuristic of :func:`changedetect._vectorize_shapes.change_types` reads a roof standing out from
the ground around it; measured on the sample city in ``docs/permits.md``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import rasterio.features
from affine import Affine

from changedetect._vectorize_shapes import _window

#: least rise (or fall) of the mean building probability for new (or demolished)
RISE = 0.3
#: mean building probability from which a footprint counts as built on a date
PRESENT = 0.5


def presence_means(geoms: np.ndarray, prob: np.ndarray, transform: Affine) -> np.ndarray:
    """Mean of ``prob`` (y, x) inside each footprint; NaN where it covers no pixel centre."""
    shape = (int(prob.shape[0]), int(prob.shape[1]))
    out = np.full(len(geoms), np.nan)
    for k, geom in enumerate(geoms):
        win = _window(geom.bounds, transform, shape)
        if win is None:
            continue
        (r0, r1), (c0, c1) = win
        inside = rasterio.features.geometry_mask([geom], (r1 - r0, c1 - c0), transform @ Affine.translation(c0, r0),
                                                 invert=True)
        values = np.asarray(prob[r0:r1, c0:c1], dtype=np.float32)[inside]
        values = values[np.isfinite(values)]
        if values.size:
            out[k] = float(values.mean())
    return out


def presence_around(geoms: np.ndarray, image: Any, seg: Any, transform: Affine, *,
                    margin_px: int = 64) -> np.ndarray:
    """Mean building probability inside each footprint on one date, running the segmenter ``seg``
    (a loaded model fed the date twice) on a window around each footprint only.

    ``image`` is the date ``(band, y, x)`` (dask-backed is fine: only the windows are read); it is
    normalised with statistics of the whole date, as :func:`changedetect.detect.detect_pair`
    does, so a window sees what the whole scene would.  Memory and time follow the footprints,
    not the scene.  NaN where a footprint covers no pixel centre.
    """
    from changedetect._detect_engine import _STATS_PIXELS, _sample_stats, resolve_bands
    from changedetect.detect import _band_names

    card = seg.card
    idx = resolve_bands(_band_names(image), list(card.bands), aliases=dict(card.band_aliases or {}),
                        source="the building segmenter's input")
    shape = (int(image.sizes["y"]), int(image.sizes["x"]))
    step = max(1, int(np.ceil(np.sqrt(shape[0] * shape[1] / _STATS_PIXELS))))
    stats = _sample_stats(card, np.asarray(image.isel(band=idx, y=slice(None, None, step),
                                                       x=slice(None, None, step)).values, dtype=np.float32))
    out = np.full(len(geoms), np.nan)
    for k, geom in enumerate(geoms):
        win = _window(geom.bounds, transform, shape)
        if win is None:
            continue
        (r0, r1), (c0, c1) = win
        inside = rasterio.features.geometry_mask([geom], (r1 - r0, c1 - c0), transform @ Affine.translation(c0, r0),
                                                 invert=True)
        if not inside.any():
            continue
        top, bottom = max(r0 - margin_px, 0), min(r1 + margin_px, shape[0])
        left, right = max(c0 - margin_px, 0), min(c1 + margin_px, shape[1])
        x = np.asarray(image.isel(band=idx, y=slice(top, bottom), x=slice(left, right)).values, dtype=np.float32)
        prob = seg.predict(x, x, stats_before=stats, stats_after=stats)
        out[k] = float(prob[r0 - top:r1 - top, c0 - left:c1 - left][inside].mean())
    return out


def presence_types(before: np.ndarray, after: np.ndarray, fallback: list[str]) -> list[str]:
    """The kind of each footprint from its mean building probability ``before`` and ``after``
    (``fallback``, the image heuristic's kind, where either is NaN)."""
    out = []
    for b, a, f in zip(before.tolist(), after.tolist(), fallback, strict=True):
        if not (np.isfinite(b) and np.isfinite(a)):
            out.append(f)
        elif b - a >= RISE and b >= PRESENT:
            out.append("demolished")
        elif (a - b >= RISE and b < PRESENT) or max(a, b) < PRESENT:
            out.append("new")
        else:
            out.append("altered")
    return out


__all__ = ["PRESENT", "RISE", "presence_around", "presence_means", "presence_types"]
