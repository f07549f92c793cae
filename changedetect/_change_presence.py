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
heuristic of :func:`changedetect._change_types.change_types` reads a roof standing out from
the ground around it; measured on the sample city in ``docs/permits.md``.
"""

from __future__ import annotations

import numpy as np
import rasterio.features
from affine import Affine

from changedetect._change_types import window as _window

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


__all__ = ["PRESENT", "RISE", "presence_means", "presence_types"]
