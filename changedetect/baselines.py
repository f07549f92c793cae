"""Unsupervised baselines: change vector analysis (CVA) with Otsu's threshold.

CVA (Malila 1980) standardises every band of each date on its own (zero mean,
unit variance over the valid pixels, which removes most of a global
radiometric difference between the dates), takes the per-pixel difference
vector and its length (the *magnitude* of change).  Otsu's method (1979) picks
the threshold on the magnitude's histogram that maximises the between-class
variance.  :func:`cva_probability` turns the magnitude into a probability-like
map ``m / (m + t)``, monotone, 0 where nothing changed and exactly 0.5 at
Otsu's threshold ``t``, so the baseline runs in the same harness as the
networks (a pixel is "changed" when its value is >= 0.5).

Pure numpy: no model, no training data.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["cva_magnitude", "cva_probability", "otsu_threshold"]


def _standardise(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Each band of ``x`` (c, h, w) to zero mean, unit variance over ``valid`` pixels."""
    out = np.empty(x.shape, dtype=np.float32)
    for i, band in enumerate(x.astype(np.float64)):
        v = band[valid]
        mean = v.mean() if v.size else 0.0
        std = v.std() if v.size else 1.0
        out[i] = (band - mean) / (std if std > 0 else 1.0)
    return out


def cva_magnitude(before: ArrayLike, after: ArrayLike) -> np.ndarray:
    """Length of the change vector of per-band standardised images.

    Parameters
    ----------
    before, after
        ``(c, h, w)`` arrays of the same bands (numpy, or a stack's dates as
        ``xarray.DataArray`` ``(band, y, x)``); NaN marks no data.

    Returns
    -------
    np.ndarray
        ``(h, w)`` float32, NaN where either date has no data.
    """
    before, after = np.asarray(before), np.asarray(after)
    if before.shape != after.shape:
        raise ValueError(f"the two dates differ in shape: {before.shape} vs {after.shape}")
    valid = np.isfinite(before).all(axis=0) & np.isfinite(after).all(axis=0)
    diff = _standardise(after, valid) - _standardise(before, valid)
    mag = np.sqrt(np.square(diff).sum(axis=0)).astype(np.float32)
    mag[~valid] = np.nan
    return mag


def otsu_threshold(values: np.ndarray, *, bins: int = 256) -> float:
    """Otsu's threshold of the finite ``values`` (maximum between-class variance).

    Returns the lower edge of the upper class (values ``>= t`` form the upper class).
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0 or v.min() == v.max():
        return float(v.max()) if v.size else 0.0
    hist, edges = np.histogram(v, bins=bins)
    p = hist / hist.sum()
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)  # weight of the lower class [0..k]
    w1 = 1.0 - w0
    mu = np.cumsum(p * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu[-1] * w0 - mu) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = -1.0
    k = int(np.argmax(between[:-1]))
    return float(edges[k + 1])


def cva_probability(before: ArrayLike, after: ArrayLike) -> tuple[np.ndarray, float]:
    """CVA magnitude mapped to [0, 1) with Otsu's threshold at 0.5.

    Returns
    -------
    (prob, threshold)
        ``prob`` ``(h, w)`` float32 (NaN where no data) and Otsu's threshold on
        the magnitude.
    """
    mag = cva_magnitude(before, after)
    t = otsu_threshold(mag)
    t = t if t > 0 else float(np.finfo(np.float32).eps)
    prob = (mag / (mag + t)).astype(np.float32)
    return prob, t
