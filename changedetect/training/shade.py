"""Deep shadow laid over a training pair: change must still be seen in the shade.

A tall neighbour's shadow covers a low house on winter dates.  In the generated training
cities a change whose footprint is dark on both dates of its pair is so rare that none of the
2,367 changed chips of the 0.3.0 fine-tune has one (mean brightness inside the change under
0.7 of the chip's median on both dates; measured 2026-11-30, ``docs/models.md``), and the
sample city's extension S032 (in shade on both dates) and demolition S041 (in shade after)
are exactly what that network misses.  :func:`shade_pair` darkens a rotated rectangle the
size of a neighbour's shadow to 21-45 % of its light (bluer: shade is lit by the sky, as the
generator draws it) with a soft edge, on both dates, on one date only, or slightly moved
between them (another sun), over a changed structure half the time and anywhere else the
other half, so that "a shadow came" is never itself a cue for change.  The label is kept.

Images are float32 ``(3, h, w)`` in ``[0, 1]``; the label ``(h, w)`` bool.
"""

from __future__ import annotations

import numpy as np
from numpy.random import Generator
from scipy import ndimage as ndi

#: share of the light a shadow keeps (the sample city's generator: 21-40 %)
KEEP = (0.21, 0.45)


def shadow_mask(shape: tuple[int, int], centre: tuple[float, float], extent: float,
                rng: Generator) -> np.ndarray:
    """A soft rotated rectangle (float32 0..1) around ``centre`` (row, col), sides 0.8-2 x ``extent``."""
    h, w = shape
    side = max(extent, 12.0)
    length, width = side * rng.uniform(0.8, 2.0), side * rng.uniform(0.8, 2.0)
    angle = rng.uniform(0, np.pi)
    cy = centre[0] + rng.uniform(-0.3, 0.3) * side
    cx = centre[1] + rng.uniform(-0.3, 0.3) * side
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (yy - cy) * np.cos(angle) + (xx - cx) * np.sin(angle)
    v = -(yy - cy) * np.sin(angle) + (xx - cx) * np.cos(angle)
    inside = (np.abs(u) <= length / 2) & (np.abs(v) <= width / 2)
    return ndi.gaussian_filter(inside.astype(np.float32), 0.7)


def _darken(x: np.ndarray, soft: np.ndarray, rng: Generator) -> np.ndarray:
    keep = float(rng.uniform(*KEEP))
    tint = keep * np.array([1.0, rng.uniform(1.0, 1.1), rng.uniform(1.1, 1.35)], np.float32)
    factor = 1 - soft[None] * (1 - np.minimum(tint, 1.0)[:, None, None])
    return (x * factor).astype(np.float32)


def _aimed_shadow(target: np.ndarray, rng: Generator) -> np.ndarray:
    """A soft shadow over one connected part of ``target`` half the time, anywhere the other half."""
    shape = (int(target.shape[0]), int(target.shape[1]))
    comps, n = ndi.label(target)
    if n and rng.random() < 0.5:
        k = int(rng.integers(1, n + 1))
        rows, cols = np.nonzero(comps == k)
        centre = (float(rows.mean()), float(cols.mean()))
        extent = float(max(np.ptp(rows), np.ptp(cols)) + 1)
    else:
        centre = (float(rng.uniform(0, shape[0])), float(rng.uniform(0, shape[1])))
        extent = float(rng.uniform(16, 60))
    return shadow_mask(shape, centre, extent, rng)


def shade_image(x: np.ndarray, buildings: np.ndarray, rng: Generator) -> np.ndarray:
    """One date with one deep shadow, over a building half the time (for the single-date building
    segmenter: a roof in shade is still a roof, and dark ground is not one).  Multiplicative, so
    ``x`` may be in any unit (DN, reflectance, 0-1)."""
    return _darken(np.asarray(x, np.float32), _aimed_shadow(buildings, rng), rng)


def shade_pair(a: np.ndarray, b: np.ndarray, label: np.ndarray, rng: Generator
               ) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` with one deep shadow laid over them (see the module docstring)."""
    soft = _aimed_shadow(label, rng)
    u = rng.random()
    if u < 0.4:  # the same sun on both dates
        return _darken(a, soft, rng), _darken(b, soft, rng)
    if u < 0.6:  # another sun: the shadow moved a little
        dy, dx = (float(v) for v in rng.uniform(-4, 4, 2))
        moved = np.clip(ndi.shift(soft, (dy, dx), order=1, mode="constant"), 0, 1)
        return _darken(a, soft, rng), _darken(b, moved, rng)
    if u < 0.8:
        return _darken(a, soft, rng), b
    return a, _darken(b, soft, rng)


__all__ = ["KEEP", "shade_image", "shade_pair", "shadow_mask"]
