"""Relative radiometric normalisation on pseudo-invariant pixels.

For each band, ``ref ~= gain * mov + offset`` is fitted by weighted orthogonal
regression on pixels that did not change.  Which pixels did not change is found
iteratively, as in IR-MAD (Canty and Nielsen 2008): the residuals of all bands,
each scaled by its robust standard deviation, are summed as a chi-squared
statistic, and each pixel's weight is its probability of no change
(``1 - F_chi2(z, n_bands)``); the fit and the weights are updated until they settle.
Changed roofs, new buildings, clouds and shadows get weights near zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
from scipy import stats

from changedetect._dask_cull import compute
from changedetect._registration.windows import place_windows

_MAD = 1.4826
#: A band whose fit correlates less than this on its pseudo-invariant pixels is not normalised.
MIN_CORRELATION = 0.5


@dataclass(frozen=True)
class Radiometry:
    """A per-band linear normalisation ``ref ~= gain * mov + offset``.

    Attributes
    ----------
    gain, offset
        One value per band.
    invariant_fraction
        Share of the sampled pixels with a no-change weight above 0.5.
    n_pixels
        Pixels used in the fit.
    unfitted
        Bands left as they are (gain 1, offset 0): on their pseudo-invariant pixels the fit explained
        little (weighted correlation under :data:`MIN_CORRELATION`, or a gain not above 0), as when
        clouds cover most of the date.
    """

    gain: tuple[float, ...]
    offset: tuple[float, ...]
    invariant_fraction: float
    n_pixels: int
    unfitted: tuple[int, ...] = ()

    @classmethod
    def identity(cls, n_bands: int) -> Radiometry:
        """No change (gain 1, offset 0)."""
        return cls((1.0,) * n_bands, (0.0,) * n_bands, 1.0, 0)

    def apply(self, mov: np.ndarray) -> np.ndarray:
        """``(band, ...)`` array normalised to the reference."""
        g = np.asarray(self.gain, dtype=np.float32).reshape((-1,) + (1,) * (mov.ndim - 1))
        o = np.asarray(self.offset, dtype=np.float32).reshape(g.shape)
        return mov * g + o


def normalize_radiometry(
    ref: np.ndarray,
    mov: np.ndarray,
    *,
    iterations: int = 20,
    max_pixels: int = 200_000,
    seed: int = 0,
) -> Radiometry:
    """Fit the per-band gain and offset that map ``mov`` onto ``ref`` on pseudo-invariant pixels.

    Parameters
    ----------
    ref, mov
        ``(band, h, w)`` (or ``(band, n)``) arrays of the same shape, already aligned; NaN is ignored.
    iterations
        Reweighting iterations at most (stops when the weights settle).
    max_pixels
        A random sample of at most this many valid pixels is used.
    seed
        Seed of that sample.

    Returns
    -------
    Radiometry
    """
    ref = np.asarray(ref, dtype=np.float64)
    mov = np.asarray(mov, dtype=np.float64)
    if ref.shape != mov.shape:
        raise ValueError(f"normalize_radiometry needs arrays of one shape, got {ref.shape} and {mov.shape}")
    n_bands = ref.shape[0]
    y = ref.reshape(n_bands, -1)
    x = mov.reshape(n_bands, -1)
    valid = np.isfinite(y).all(axis=0) & np.isfinite(x).all(axis=0)
    idx = np.flatnonzero(valid)
    if idx.size < 50:
        return Radiometry.identity(n_bands)
    if idx.size > max_pixels:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_pixels, replace=False))
    y, x = y[:, idx], x[:, idx]
    gain, offset = _robust_start(x, y)
    weights = np.ones(idx.size)
    for _ in range(iterations):
        resid = y - gain[:, None] * x - offset[:, None]
        scale = _MAD * np.median(np.abs(resid - np.median(resid, axis=1, keepdims=True)), axis=1)
        scale = np.maximum(scale, 1e-9 * (np.abs(y).mean(axis=1) + 1))
        chi2 = ((resid / scale[:, None]) ** 2).sum(axis=0)
        new = stats.chi2.sf(chi2, df=n_bands)
        gain, offset = _orthogonal_fit(x, y, new)
        if np.max(np.abs(new - weights)) < 1e-3:
            weights = new
            break
        weights = new
    frac = float(np.mean(weights > 0.5))
    # the fit of a date mostly under cloud is the cloud's (gain ~0, or of any sign): leave such bands alone
    corr = _correlation(x, y, weights)
    bad = ~((corr >= MIN_CORRELATION) & (gain > 0))
    gain, offset = np.where(bad, 1.0, gain), np.where(bad, 0.0, offset)
    unfitted = tuple(int(b) for b in np.flatnonzero(bad & np.isfinite(corr)))  # a constant band (alpha) is no news
    return Radiometry(tuple(map(float, gain)), tuple(map(float, offset)), frac, int(idx.size), unfitted)


def _correlation(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted correlation of ``x`` and ``y``, band by band (NaN where either is constant)."""
    sw = max(float(w.sum()), 1e-12)
    dx = x - ((x * w).sum(axis=1) / sw)[:, None]
    dy = y - ((y * w).sum(axis=1) / sw)[:, None]
    den = np.sqrt((w * dx * dx).sum(axis=1) * (w * dy * dy).sum(axis=1))
    return np.where(den > 0, (w * dx * dy).sum(axis=1) / np.maximum(den, 1e-300), np.nan)


def _robust_start(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gain from the ratio of interquartile ranges, offset through the medians."""
    qx = np.percentile(x, [25, 50, 75], axis=1)
    qy = np.percentile(y, [25, 50, 75], axis=1)
    spread_x = np.maximum(qx[2] - qx[0], 1e-12)
    gain = (qy[2] - qy[0]) / spread_x
    return gain, qy[1] - gain * qx[1]


def _orthogonal_fit(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted orthogonal (total least squares) regression of ``y`` on ``x``, band by band."""
    sw = max(float(w.sum()), 1e-12)
    mx = (x * w).sum(axis=1) / sw
    my = (y * w).sum(axis=1) / sw
    dx, dy = x - mx[:, None], y - my[:, None]
    sxx = (w * dx * dx).sum(axis=1) / sw
    syy = (w * dy * dy).sum(axis=1) / sw
    sxy = (w * dx * dy).sum(axis=1) / sw
    safe = np.where(np.abs(sxy) > 1e-15, sxy, 1e-15)
    gain = (syy - sxx + np.sqrt((syy - sxx) ** 2 + 4 * sxy**2)) / (2 * safe)
    return gain, my - gain * mx


def fit_radiometry_sampled(ref: da.Array, warped: da.Array, *, n_windows: int = 16, size: int = 256,
                           cover: np.ndarray | None = None, mov: da.Array | None = None, fld: Any = None,
                           order: int = 3) -> Radiometry:
    """Fit the normalisation on a sample of windows (the whole image when it is small), those mostly on
    no data moved onto data (``cover``: where both dates have it, coarse).  With ``mov`` (the date
    before its warp) and ``fld`` (its :class:`~changedetect._registration.field.ShiftField`), a large
    image's windows are warped from reads of ``mov`` (:func:`~changedetect._registration.warp.warp_window`),
    not sliced from ``warped``: slicing a lazy warp builds its overlap graph over the whole grid."""
    from changedetect._registration.warp import warp_window, window_span

    _, h, w = ref.shape
    if h * w <= 2048 * 2048:
        return normalize_radiometry(*compute(ref, warped))
    n = int(np.sqrt(n_windows))
    rows = np.linspace(0, h - size, n).round().astype(int)
    cols = np.linspace(0, w - size, n).round().astype(int)
    origins = place_windows([(r, c) for r in rows for c in cols], (h, w), size, cover)
    if mov is not None and fld is not None:  # every read in one call of dask: each slices a large graph
        spans = [window_span((h, w), fld, r, r + size, c, c + size) for r, c in origins]
        reads = compute(*[ref[:, r:r + size, c:c + size] for r, c in origins],
                        *[mov[:, a:b, c:d] for a, b, c, d in spans])
        refs = reads[:len(origins)]
        movs = [warp_window(mov, fld, r, r + size, c, c + size, order=order, read=read)
                for (r, c), read in zip(origins, reads[len(origins):], strict=True)]
    else:
        pairs = [(ref[:, r:r + size, c:c + size], warped[:, r:r + size, c:c + size]) for r, c in origins]
        computed = compute(*[p for pair in pairs for p in pair])
        refs, movs = computed[0::2], list(computed[1::2])
    a = np.concatenate([x.reshape(x.shape[0], -1) for x in refs], axis=1)
    b = np.concatenate([x.reshape(x.shape[0], -1) for x in movs], axis=1)
    return normalize_radiometry(a, b)
