"""Global sub-pixel shift between two images by phase correlation on gradients.

Convention used everywhere in :mod:`changedetect.coregister`: a shift ``(dx, dy)``
in pixels (columns, rows) is the displacement of the *moving* image relative
to the *reference*, ``mov(x, y) ~= ref(x - dx, y - dy)``: a feature at column
``x`` of the reference is found at column ``x + dx`` of the moving image.
The aligned image is ``mov`` sampled at ``(x + dx, y + dy)``.

The estimator works on the gradient magnitude of smoothed images, which survives
gain, offset, haze and contrast inversion.  The integer peak of the phase-only
correlation surface (and its reliability) comes from the whole band; the sub-pixel peak
is the maximum of the band-limited surface (each frequency weighted by a Gaussian,
Takita et al. 2003), found by Newton's method on its exact derivatives (or, should that
fail, by an upsampled DFT, Guizar-Sicairos et al. 2008).  The highest frequencies, where
aliasing and noise make the two images' phases disagree with the shift, would otherwise
pull the peak towards whole pixels.  The estimate can be iterated (resample the moving
image, measure the residual); one measurement is the default of the global shift.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

from changedetect._registration.kernels import at_least, scratch
from changedetect._registration.nodata import both_finite, covered_box
from changedetect._registration.peak import (
    BAND_SIGMA,
    _band,
    _newton_peak,
    _parabola_fit,
    _peak_stats,
    _refine,
)

#: Below this peak-to-second-peak ratio a match is not trusted.
DEFAULT_MIN_PEAK_RATIO = 1.6
#: Below this peak height, in robust standard deviations of the correlation surface, a match is not trusted.
DEFAULT_MIN_SNR = 9.0


@dataclass(frozen=True)
class ShiftEstimate:
    """A measured displacement of a moving image relative to a reference.

    Attributes
    ----------
    dx, dy
        Displacement in pixels (columns, rows) of the moving image: ``mov(x, y) ~= ref(x - dx, y - dy)``.
    reliability
        In [0, 1]: ``1 - second_peak / peak`` of the phase-correlation surface, 0 when the
        match is not reliable by :attr:`peak_ratio` and :attr:`snr`.
    peak_ratio
        Height of the correlation peak over the highest peak away from it (1 for noise).
    snr
        Peak height over the surface's robust standard deviation (about 4-5 for noise).
    reliable
        Whether the thresholds were met.
    reason
        Why the estimate is not reliable (which threshold or test it failed); ``""`` when it is.
    """

    dx: float
    dy: float
    reliability: float
    peak_ratio: float
    snr: float
    reliable: bool
    reason: str = field(default="", compare=False)


def gradient_magnitude(image: np.ndarray, *, sigma: float = 1.0) -> np.ndarray:
    """Gradient magnitude of a Gaussian-smoothed image, 0 where the image or a neighbour is NaN.

    Parameters
    ----------
    image
        ``(h, w)`` array; NaN marks missing pixels.
    sigma
        Standard deviation of the Gaussian smoothing in pixels (0 for none).
    """
    img = np.asarray(image)
    nan = ~np.isfinite(img)
    if nan.any():
        fill = float(np.nanmean(img)) if (~nan).any() else 0.0
        img = np.where(nan, fill, img)
    if sigma > 0:  # smooth once (float32, 3 sigma), then central differences
        img = ndimage.gaussian_filter(img.astype(np.float32), sigma, mode="nearest", truncate=3.0)
    gy, gx = np.gradient(img)
    mag = np.hypot(gx, gy)
    if nan.any():
        bad = ndimage.binary_dilation(nan, iterations=max(2, int(math.ceil(3 * sigma))))
        mag[bad] = 0.0
    return mag


def _represent(image: np.ndarray, sigma: float, edges: bool) -> np.ndarray:
    """What is phase-correlated: the gradient magnitude of ``image``, or ``image`` itself when it is
    already an edge-strength image (``edges``), with missing pixels and their neighbours at 0."""
    if not edges:
        return gradient_magnitude(image, sigma=sigma)
    img = np.asarray(image, dtype=np.float32)
    if np.isfinite(img.sum()):  # no missing pixel (one pass, no mask)
        return img
    nan = ~np.isfinite(img)
    return np.where(ndimage.binary_dilation(nan, iterations=2), np.float32(0.0), img)


def _apodize(image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Remove the mean and taper the borders with a Tukey window (alpha 0.25); float32 (into ``out``)."""
    h, w = image.shape
    out = np.empty((h, w), np.float32) if out is None else out
    np.subtract(image, image.mean(), out=out, casting="unsafe")
    out *= _window2d(h, w)
    return out


def _apodized_spectrum(image: np.ndarray) -> np.ndarray:
    """``rfft2(_apodize(image))``, the apodised image in an array reused per thread."""
    return sfft.rfft2(_apodize(image, scratch("apodize", image.shape, 1)[0]))


@functools.lru_cache(maxsize=16)
def _window2d(h: int, w: int) -> np.ndarray:
    """The 2-D Tukey window of :func:`_apodize`, float32 (computed once per shape; read-only)."""
    win = np.outer(_tukey(h), _tukey(w)).astype(np.float32)
    win.flags.writeable = False
    return win


@functools.lru_cache(maxsize=32)
def _tukey(n: int, alpha: float = 0.25) -> np.ndarray:
    x = np.linspace(0.0, 1.0, n)
    win = np.ones(n)
    edge = alpha / 2
    lo = x < edge
    hi = x > 1 - edge
    win[lo] = 0.5 * (1 + np.cos(np.pi * (2 * x[lo] / alpha - 1)))
    win[hi] = 0.5 * (1 + np.cos(np.pi * (2 * x[hi] / alpha - 2 / alpha + 1)))
    return win


def _spectrum(image: np.ndarray) -> np.ndarray:
    """The apodised spectrum :func:`phase_correlation` computes for ``image`` (to reuse it)."""
    return _apodized_spectrum(_fast_crop(image))


def _shift_bilinear(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``image`` sampled at ``(x + dx, y + dy)``, bilinear, NaN outside (a constant shift as 4 slices)."""
    img = np.asarray(image, dtype=np.float32)
    h, w = img.shape
    ix, iy = math.floor(dx), math.floor(dy)
    fx, fy = dx - ix, dy - iy
    pad = np.full((h + 2 * (abs(iy) + 2), w + 2 * (abs(ix) + 2)), np.nan, np.float32)
    r0, c0 = abs(iy) + 2, abs(ix) + 2
    pad[r0 : r0 + h, c0 : c0 + w] = img

    def at(oy: int, ox: int) -> np.ndarray:
        return pad[r0 + iy + oy : r0 + iy + oy + h, c0 + ix + ox : c0 + ix + ox + w]

    return ((1 - fy) * ((1 - fx) * at(0, 0) + fx * at(0, 1)) + fy * ((1 - fx) * at(1, 0) + fx * at(1, 1)))


def _cubic_weights(t: float) -> np.ndarray:
    """The cubic B-spline's weights of the 4 coefficients around a sample ``t`` (in [0, 1)) past the first."""
    return np.array([(1 - t) ** 3, 3 * t**3 - 6 * t**2 + 4, -3 * t**3 + 3 * t**2 + 3 * t + 1, t**3]) / 6.0


def _shift_cubic(image: np.ndarray, dx: float, dy: float, crop: tuple[slice, slice]) -> np.ndarray:
    """``shift_image(image, dx, dy)[crop]`` (cubic spline, ``mode="nearest"``): for a constant shift the
    spline's weights are the same at every pixel, so after the prefilter the interpolation is 4 shifted
    slices per axis, computed on ``crop`` only (4-5 times faster than ``map_coordinates``). Falls back
    to :func:`shift_image` when ``image`` has missing pixels or ``crop`` samples outside it."""
    img = np.asarray(image, dtype=np.float64)
    h, w = img.shape
    r0, r1, _ = crop[0].indices(h)
    c0, c1, _ = crop[1].indices(w)
    inside = r0 + dy >= -0.5 and r1 - 1 + dy <= h - 0.5 and c0 + dx >= -0.5 and c1 - 1 + dx <= w - 0.5
    if not inside or r1 <= r0 or c1 <= c0 or not np.isfinite(img).all():
        return shift_image(img, dx, dy)[crop]
    pad = 12  # as map_coordinates pads for mode "nearest" before its prefilter
    coef = ndimage.spline_filter(np.pad(img, pad, mode="edge"), 3, output=np.float64, mode="nearest")
    iy, ix = math.floor(dy), math.floor(dx)
    wy, wx = _cubic_weights(dy - iy), _cubic_weights(dx - ix)
    ra, ca = r0 + iy - 1 + pad, c0 + ix - 1 + pad
    n, m = r1 - r0, c1 - c0
    rows = sum(wy[k] * coef[ra + k : ra + k + n, ca : ca + m + 3] for k in range(4))
    return sum(wx[k] * rows[:, k : k + m] for k in range(4))  # type: ignore[no-any-return]


def _fast_crop(image: np.ndarray) -> np.ndarray:
    """Centre crop to the largest FFT-friendly (2, 3, 5-smooth) shape."""
    h, w = image.shape
    fh, fw = _fast_len_below(h), _fast_len_below(w)
    r0, c0 = (h - fh) // 2, (w - fw) // 2
    return image[r0 : r0 + fh, c0 : c0 + fw]


@functools.lru_cache(maxsize=64)
def _fast_len_below(n: int) -> int:
    m = n
    while m > 8 and sfft.next_fast_len(m, real=True) != m:
        m -= 1
    return m


def phase_correlation(
    ref: np.ndarray, mov: np.ndarray, *, upsample: int = 100, stats: bool = True,
    ref_spectrum: np.ndarray | None = None, band: float | None = BAND_SIGMA,
) -> tuple[float, float, float, float]:
    """One phase-correlation measurement of prepared (same-shape, finite) images.

    The integer peak and its statistics come from the whole-band phase-only correlation surface.
    ``upsample > 1``: the sub-pixel peak is the maximum of the band-limited surface (every
    frequency weighted by a Gaussian of ``band`` cycles per pixel, see :func:`_newton_peak`),
    found by Newton's method from the parabola through the integer peak; should that fail,
    by an upsampled DFT of the same surface (precision ``1 / upsample`` px; Guizar-Sicairos
    et al. 2008), first at a factor 10 around the integer peak, then at ``upsample``.
    ``band=None``: the whole band (an upsampled DFT around the parabola's estimate).
    ``upsample <= 1``: the parabola through the peak's neighbours.

    Returns
    -------
    (dx, dy, peak_ratio, snr)
        ``peak_ratio`` and ``snr`` are NaN when ``stats`` is false.
    """
    ref, mov = _fast_crop(ref), _fast_crop(mov)
    f_ref = ref_spectrum if ref_spectrum is not None else _apodized_spectrum(ref)
    product = _apodized_spectrum(mov)
    product *= np.conj(f_ref)
    magnitude = np.abs(product)  # each frequency to unit magnitude: times 1 / |.|, on the float pairs
    np.divide(1.0, at_least(magnitude, 1e-20, magnitude, scratch("magnitude", magnitude.shape, 1)[0]), out=magnitude)
    pairs = product.view(np.float32)  # (h, 2 w'): real and imaginary parts interleaved
    pairs[:, 0::2] *= magnitude
    pairs[:, 1::2] *= magnitude
    surface = sfft.irfft2(product, s=ref.shape)
    peak = np.unravel_index(int(np.argmax(surface)), surface.shape)
    ratio, snr = _peak_stats(surface, (int(peak[0]), int(peak[1]))) if stats else (math.nan, math.nan)
    shifts = np.array(peak, dtype=np.float64)
    shape = np.array(surface.shape)
    wrap = shifts > shape // 2
    shifts[wrap] -= shape[wrap]
    if upsample <= 1:
        shifts = shifts + _parabola_fit(surface, (int(peak[0]), int(peak[1])))
        return float(shifts[1]), float(shifts[0]), ratio, snr
    guess = shifts + _parabola_fit(surface, (int(peak[0]), int(peak[1])))
    if band:
        fine = _newton_peak(product, ref.shape, guess, sigma=band)
        if fine is not None:
            return float(fine[1]), float(fine[0]), ratio, snr
        h, w = ref.shape
        product = product * np.outer(_band(h, band), _band(w, band)[: w // 2 + 1]).astype(np.float32)
    coarse = min(upsample, 10)
    fine_region = int(math.ceil(upsample * 2.0 / coarse))
    if upsample > coarse:  # the correlation peak is unimodal at this scale: an inside maximum is the one
        fine, inside = _refine(product, ref.shape, guess, upsample, fine_region)
        if inside:
            return float(fine[1]), float(fine[0]), ratio, snr
    shifts, _ = _refine(product, ref.shape, shifts, coarse, int(math.ceil(coarse * 1.5)))
    if upsample > coarse:
        shifts, _ = _refine(product, ref.shape, shifts, upsample, fine_region)
    return float(shifts[1]), float(shifts[0]), ratio, snr


def shift_image(image: np.ndarray, dx: float, dy: float, *, order: int = 3) -> np.ndarray:
    """Sample ``image`` at ``(x + dx, y + dy)``: undo a displacement ``(dx, dy)``; NaN outside."""
    return warp_image(image, np.full(1, dx), np.full(1, dy), order=order)


def warp_image(
    image: np.ndarray, dx: np.ndarray, dy: np.ndarray, *, order: int = 3, row0: float = 0.0, col0: float = 0.0
) -> np.ndarray:
    """Sample ``image`` at ``(x + dx, y + dy)`` for every output pixel; NaN where data is missing.

    ``dx``, ``dy`` broadcast to the output shape (equal to ``image.shape``); ``row0``/``col0``
    are the output pixel (0, 0)'s position in ``image``'s pixel coordinates.
    NaN in ``image`` is filled before the spline prefilter and masked again afterwards,
    so that missing pixels do not spread over the whole output.
    """
    img = np.asarray(image, dtype=np.float64)
    h, w = img.shape
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64) + row0, np.arange(w, dtype=np.float64) + col0, indexing="ij")
    rows = rows + np.broadcast_to(dy, (h, w)) if np.ndim(dy) else rows + float(dy)
    cols = cols + np.broadcast_to(dx, (h, w)) if np.ndim(dx) else cols + float(dx)
    nan = ~np.isfinite(img)
    if nan.any():
        img = np.where(nan, np.nanmean(img) if (~nan).any() else 0.0, img)
    out = ndimage.map_coordinates(img, [rows, cols], order=order, mode="nearest", prefilter=order > 1)
    outside = (rows < -0.5) | (rows > h - 0.5) | (cols < -0.5) | (cols > w - 0.5)
    if nan.any():
        bad = ndimage.map_coordinates(nan.astype(np.float32), [rows, cols], order=1, mode="nearest") > 0.01
        outside |= bad
    out[outside] = np.nan
    return out


def estimate_shift(
    ref: np.ndarray,
    mov: np.ndarray,
    *,
    iterations: int = 4,
    upsample: int = 100,
    sigma: float = 2.0,
    max_shift: float | None = None,
    min_peak_ratio: float = DEFAULT_MIN_PEAK_RATIO,
    min_snr: float = DEFAULT_MIN_SNR,
    edges: bool = False,
    band: float | None = BAND_SIGMA,
) -> ShiftEstimate:
    """Sub-pixel displacement of ``mov`` relative to ``ref`` (same shape, 2-D).

    Parameters
    ----------
    ref, mov
        ``(h, w)`` images of one band (or a band mean); NaN marks missing pixels.
    iterations
        Measurements in all: after the first, ``mov`` is resampled by the running estimate
        and the residual is measured and added (stops early below 0.005 px).
    upsample
        Over 1: the sub-pixel peak is refined (see :func:`phase_correlation`; the upsampling
        factor of the DFT refinement, precision ``1 / upsample`` px, when Newton's method on
        the band-limited surface fails or ``band`` is ``None``); 0 or 1: a parabola through
        the peak's neighbours (cheaper, unbiased at zero shift, slower to converge).
    sigma
        Gaussian smoothing before the gradient, in pixels (2 keeps sensor noise, which
        dominates the highest frequencies of a whitened spectrum, from biasing the peak).
    max_shift
        Largest plausible shift in pixels; a larger measured shift is reported unreliable.
    min_peak_ratio, min_snr
        Reliability thresholds (see :class:`ShiftEstimate`).
    edges
        ``ref`` and ``mov`` are already edge-strength images (see
        :func:`~changedetect._registration.matching.material_edges`): correlated as they are
        (``sigma`` unused), not through their gradient magnitude.
    band
        Spread (cycles per pixel) of the Gaussian band weight of the sub-pixel peak
        (:data:`BAND_SIGMA`); ``None``: the whole band (the tie points' choice, see
        :func:`~changedetect._registration.field.estimate_shift_field`).

    Returns
    -------
    ShiftEstimate
        Unreliable estimates keep the measured ``dx``, ``dy`` for diagnosis; callers must
        not apply them.
    """
    dtype = np.float32 if edges else np.float64  # edge images are float32; brightness as given, in float64
    ref = np.asarray(ref, dtype=dtype)
    mov = np.asarray(mov, dtype=dtype)
    if ref.shape != mov.shape or ref.ndim != 2:
        raise ValueError(f"estimate_shift needs two 2-D images of one shape, got {ref.shape} and {mov.shape}")
    if not np.isfinite(ref.sum()) and not np.isfinite(mov.sum()):  # two nodata edges: match where both have data
        box = covered_box(both_finite(ref, mov))
        if box is not None:
            ref, mov = ref[box], mov[box]
    for image, which in ((mov, "the date"), (ref, "the reference date")):
        if not np.any(np.isfinite(image)):  # an all-nodata tile (or a band of it): nothing to match
            return ShiftEstimate(0.0, 0.0, 0.0, 1.0, 0.0, False, f"{which} has no data (every pixel is nodata)")
    g_ref = _represent(ref, sigma, edges)
    if not g_ref.max() > 0:
        return ShiftEstimate(0.0, 0.0, 0.0, 1.0, 0.0, False, "one of the images has no texture or no data to match")
    g_mov = _represent(mov, sigma, edges)
    dx, dy, ratio, snr = phase_correlation(g_ref, g_mov, upsample=upsample, band=band)
    first_ratio, first_snr = ratio, snr
    if not (math.isfinite(dx) and math.isfinite(dy)) or max(abs(dx), abs(dy)) > min(ref.shape) / 3:
        iterations = 1
    # later iterations: one fixed crop, clear of the shifted border, so F(ref) is computed once
    margin = int(math.ceil(max(abs(dx), abs(dy)))) + 3
    crop = (slice(margin, ref.shape[0] - margin), slice(margin, ref.shape[1] - margin))
    f_ref = None
    for _ in range(iterations - 1):
        if g_ref[crop].size < 64:
            break
        # bilinear is enough: a symmetric kernel moves no content, and the phase-only
        # correlation ignores the blur it adds
        # (an edge image is resampled by a cubic spline: its ridges are too sharp for bilinear)
        resampled = _shift_cubic(mov, dx, dy, crop) if edges else _shift_bilinear(mov, dx, dy)[crop]
        if f_ref is None:
            f_ref = _spectrum(g_ref[crop])
        rdx, rdy, _, _ = phase_correlation(
            g_ref[crop], _represent(resampled, sigma, edges), upsample=upsample, stats=False,
            ref_spectrum=f_ref, band=band,
        )
        if max(abs(rdx), abs(rdy)) > 1.0:  # the residual must be small; otherwise keep the first answer
            break
        dx, dy = dx + rdx, dy + rdy
        if max(abs(rdx), abs(rdy)) < 0.005:
            break
    failed = []
    if not first_ratio >= min_peak_ratio:
        failed.append(f"peak ratio {first_ratio:.2f} under min_peak_ratio {min_peak_ratio:g}")
    if not first_snr >= min_snr:
        failed.append(f"SNR {first_snr:.1f} under min_snr {min_snr:g}")
    if max_shift is not None and max(abs(dx), abs(dy)) > max_shift:
        failed.append(f"shift {dx:+.2f}, {dy:+.2f} px beyond max_shift {max_shift:g} px")
    reliable = not failed
    reliability = max(0.0, 1.0 - 1.0 / first_ratio) if reliable else 0.0
    return ShiftEstimate(dx, dy, reliability, first_ratio, first_snr, reliable, "; ".join(failed))
