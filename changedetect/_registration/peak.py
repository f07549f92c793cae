"""The correlation peak: how much it stands out, and where its maximum lies to a fraction of a pixel.

Of a phase-only correlation surface (:func:`~changedetect._registration.shift.phase_correlation`):
the peak-to-second-peak ratio and robust SNR of the integer peak (:func:`_peak_stats`), a parabola
through it (:func:`_parabola_fit`), and the sub-pixel maximum of the band-limited surface by Newton's
method on its exact derivatives (:func:`_newton_peak`), or by an upsampled DFT (:func:`_refine`).
"""

from __future__ import annotations

import functools

import numpy as np

from changedetect._registration.kernels import order_statistics

#: Spread, in cycles per pixel, of the Gaussian band weight under which the sub-pixel peak is located.
BAND_SIGMA = 0.12


def _refine(product: np.ndarray, shape: tuple[int, int], shifts: np.ndarray, factor: int,
            region: int) -> tuple[np.ndarray, bool]:
    """Move ``shifts`` to the maximum of the correlation surface upsampled ``factor`` times around it.

    The matrix-product DFT of Guizar-Sicairos et al. (2008), on the Hermitian half-spectrum of
    a real surface (``product`` from ``rfft2``): ``Re(K_rows @ product @ K_cols.T)`` with the
    non-edge columns counted twice.  Computed with ``np.einsum``, without BLAS: these products
    are tiny, and a multi-threaded BLAS on a busy machine spends far longer synchronising its
    threads than computing.  Also returns whether the maximum is inside the region (not on its edge).
    """
    h, w = shape
    shifts = np.round(shifts * factor) / factor
    centre = float(np.fix(region / 2.0))
    steps = (np.arange(region) - centre) / factor
    fu, fv = np.fft.fftfreq(h), np.fft.rfftfreq(w)
    weight = _hermitian(w)
    k_rows = np.exp(2j * np.pi * (shifts[0] + steps)[:, None] * fu[None, :]).astype(np.complex64)
    k_cols = (np.exp(2j * np.pi * (shifts[1] + steps)[:, None] * fv[None, :]) * weight).astype(np.complex64)
    surface = np.einsum("ah,hr->ar", k_rows, np.einsum("hw,rw->hr", product, k_cols)).real
    sub = np.unravel_index(int(np.argmax(surface)), surface.shape)
    inside = all(0 < int(i) < region - 1 for i in sub)
    return shifts + (np.array(sub, dtype=np.float64) - centre) / factor, inside


def _hermitian(w: int) -> np.ndarray:
    """How many times each ``rfft`` column of a real ``w``-wide image counts in the full spectrum."""
    weight = np.full(w // 2 + 1, 2.0)
    weight[0] = 1.0
    if w % 2 == 0:
        weight[-1] = 1.0
    return weight


@functools.lru_cache(maxsize=32)
def _band(n: int, sigma: float) -> np.ndarray:
    """The band-limiting weight ``exp(-f² / 2σ²)`` of the ``n`` FFT frequencies ``f`` of an axis, truncated
    at 3σ as every Gaussian here (read-only)."""
    f = np.fft.fftfreq(n)
    out = np.where(np.abs(f) <= 3.0 * sigma, np.exp(-0.5 * (f / sigma) ** 2), 0.0)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=16)
def _newton_axes(h: int, w: int, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Of the half-spectrum's frequencies inside the band: ``2πi f`` of the rows' and the ``rfft`` columns',
    their weights in the band-limited surface (the Gaussian; the columns' also counting the Hermitian half
    twice), the rows' indices and the number of columns (the first ones) (read-only)."""
    rows = np.flatnonzero(_band(h, sigma) > 0)
    cols = int(np.count_nonzero(_band(w, sigma)[: w // 2 + 1] > 0))
    tu = 2j * np.pi * np.fft.fftfreq(h)[rows]
    tv = 2j * np.pi * np.fft.rfftfreq(w)[:cols]
    out = (tu, tv, _band(h, sigma)[rows], (_band(w, sigma)[: w // 2 + 1] * _hermitian(w))[:cols], rows)
    for a in out:
        a.flags.writeable = False
    return (*out, cols)


def _newton_peak(product: np.ndarray, shape: tuple[int, int], guess: np.ndarray, *, sigma: float = BAND_SIGMA,
                 max_iter: int = 8, tol: float = 1e-2) -> np.ndarray | None:
    """The maximum near ``guess`` (rows, columns) of the band-limited correlation surface, by Newton's method.

    The surface is the phase-only correlation with each frequency ``(u, v)`` of the normalised
    cross-power spectrum ``product`` (``rfft2`` half) weighted by ``exp(-(u² + v²) / 2σ²)``
    (band-limited phase-only correlation, Takita et al. 2003): the highest frequencies of two
    images, where aliasing and noise make their phases disagree with the shift, pull the
    sub-pixel peak towards whole pixels; the weight leaves them out without moving a symmetric
    peak.  Its value and first and second derivatives at any point are exact sums over the
    spectrum (the band-limited interpolation an upsampled DFT samples), separable in rows and
    columns, so each Newton step costs two small products.  Stops after a step under ``tol``
    px (the error left is then about its square: under 2e-6 px on the benchmark's RGB chips, in
    2 steps from the parabola's estimate).  ``None`` when the surface is not concave
    there, the steps leave the pixel around ``guess`` or do not converge.
    """
    h, w = shape
    tu, tv, gu, gv, rows, cols = _newton_axes(h, w, sigma)
    product = product[rows, :cols]  # the frequencies inside the band only
    y, x = float(guess[0]), float(guess[1])
    for _ in range(max_iter):
        b = gv * np.exp(tv * x)
        basis = np.stack([b, b * tv, b * tv * tv]).astype(product.dtype)  # float32 sums suffice (1e-6 px)
        q = np.einsum("hw,kw->kh", product, basis)  # no BLAS (see _refine)
        a = gu * np.exp(tu * y)
        m = np.einsum("ih,jh->ij", np.stack([a, a * tu, a * tu * tu]), q).real  # m[i, j]: d^i/dy^i d^j/dx^j
        hyy, hxy, hxx = float(m[2, 0]), float(m[1, 1]), float(m[0, 2])
        det = hyy * hxx - hxy * hxy
        if not (hyy < 0 and det > 0):
            return None
        sy = -(hxx * m[1, 0] - hxy * m[0, 1]) / det
        sx = -(hyy * m[0, 1] - hxy * m[1, 0]) / det
        y, x = y + sy, x + sx
        if max(abs(y - guess[0]), abs(x - guess[1])) > 1.0:
            return None
        if max(abs(sy), abs(sx)) < tol:
            return np.array([y, x])
    return None


def _peak_stats(surface: np.ndarray, peak: tuple[int, int], exclusion: int = 3) -> tuple[float, float]:
    """Peak-to-second-peak ratio and robust SNR of a (real) correlation surface (left as it was)."""
    top = float(surface[peak])
    h, w = surface.shape
    rows = np.arange(peak[0] - exclusion, peak[0] + exclusion + 1) % h
    cols = np.arange(peak[1] - exclusion, peak[1] + exclusion + 1) % w
    block = np.ix_(rows, cols)
    kept = surface[block].copy()  # the highest value away from the peak, without copying the surface
    surface[block] = -np.inf
    second = float(surface.max())
    surface[block] = kept
    sample = surface[::2, ::2].ravel()  # robust level and spread: a quarter of the surface is plenty
    med = _median(sample)
    mad = _median(np.abs(sample - med, out=sample)) * 1.4826
    ratio = top / second if second > 0 else float("inf")
    snr = (top - med) / mad if mad > 0 else float("inf")
    return ratio, snr


def _median(x: np.ndarray) -> float:
    """``np.median`` of a finite 1-D float array ``x``, bit for bit (see :func:`~.kernels.order_statistics`)."""
    k = x.size // 2
    if x.size % 2:
        return float(order_statistics(x, (k,))[0])
    lower, upper = order_statistics(x, (k - 1, k))
    return float(np.mean(np.array([lower, upper], dtype=x.dtype)))


def _parabola_fit(surface: np.ndarray, peak: tuple[int, int]) -> np.ndarray:
    """Sub-pixel offset of a correlation peak: a parabola through it and its two neighbours per axis.

    Symmetric, hence unbiased at zero shift whatever the width of the peak (unlike the sinc fit
    of Foroosh et al., which assumes the sharp peak of a pure translation and fails on the broad
    peaks of images that really changed).
    """
    h, w = surface.shape
    top = float(surface[peak])
    out = np.zeros(2)
    for axis, n in ((0, h), (1, w)):
        idx = list(peak)
        idx[axis] = (peak[axis] + 1) % n
        plus = float(surface[tuple(idx)])
        idx[axis] = (peak[axis] - 1) % n
        minus = float(surface[tuple(idx)])
        denom = 2.0 * (2.0 * top - plus - minus)
        out[axis] = float(np.clip((plus - minus) / denom, -0.5, 0.5)) if denom > 0 else 0.0
    return out
