"""The 2-D image each date is matched on: material edges (brightness edges weighted by colour change).

Cast shadows and sun-lit roof slopes move with the sun, not with the ground: on a
very-high-resolution urban scene a shadow 5 % longer on another date moves the far edge
of every shadow by a pixel, all the same way, and phase correlation on brightness
gradients follows them (a coherent bias, the failure of AROSICS on VHR scenes with
shadows).  A shadow or a shaded slope scales the light reaching a surface, nearly
equally in neighbouring visible bands; the log ratio of two such bands cancels that
scale (a photometric invariant, Gevers & Smeulders 1999; Finlayson et al. 2006) while
keeping the edges between materials, which do not move with the sun.  Red and green are
the visible pair least affected by the bluer sky light that fills shadows.

``chromaticity(red, green) = log((red - o_r) / (green - o_g))`` where ``o`` is each band's
dark-object level (its 0.1 percentile, less 1 % of its range): the additive path radiance
(haze), which would otherwise make a ratio depend on brightness.
"""

from __future__ import annotations

import functools
import os
import tempfile
import warnings
from typing import Any

import dask.array as da
import numpy as np
from scipy import ndimage

from changedetect.errors import CoregistrationError

#: Band names (lower case) taken as red and green for the chromaticity.
RED_NAMES = ("red", "r")
GREEN_NAMES = ("green", "g")
#: Largest number of pixels read to find a band's dark-object level.
_SAMPLE_PIXELS = 1 << 14


def chromatic_bands(names: list[str]) -> tuple[int, int] | None:
    """Indices of the red and green bands in ``names`` (case-insensitive), or ``None``."""
    low = [n.lower() for n in names]
    red = next((low.index(n) for n in RED_NAMES if n in low), None)
    green = next((low.index(n) for n in GREEN_NAMES if n in low), None)
    return None if red is None or green is None else (red, green)


def dark_level(band: Any) -> tuple[float, float]:
    """``(offset, floor)`` of one band: its dark-object level and 1 % of its range.

    Read on a regular subsample of at most ~16 000 pixels (lazy arrays are only partly read).
    """
    h, w = band.shape
    step = max(1, int(np.ceil(np.sqrt(h * w / _SAMPLE_PIXELS))))
    sample = np.asarray(band[::step, ::step]).ravel()
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0, 1.0
    lo, hi = _percentiles(sample[None, :])[0]
    floor = max(0.01 * (hi - lo), 1e-6)
    return lo - floor, floor


def _dark_levels(bands: list[np.ndarray]) -> tuple[tuple[float, float], ...]:
    """:func:`dark_level` of several finite bands of one shape, in one partition."""
    h, w = bands[0].shape
    step = max(1, int(np.ceil(np.sqrt(h * w / _SAMPLE_PIXELS))))
    out = []
    for lo, hi in _percentiles(np.stack([np.asarray(b[::step, ::step]).ravel() for b in bands])):
        floor = max(0.01 * (hi - lo), 1e-6)
        out.append((lo - floor, floor))
    return tuple(out)


def _percentiles(sample: np.ndarray, qs: tuple[float, float] = (0.1, 99.0)) -> list[tuple[float, float]]:
    """``np.percentile(sample, qs, axis=1)`` of a finite ``(k, n)`` sample (linear interpolation, in float64,
    bit for bit), several times faster on small samples: one ``np.partition`` at the lower order statistic
    of each percentile, in the sample's own type; the next one up is the least of those above it."""
    n = sample.shape[1]
    pos = [q / 100.0 * (n - 1) for q in qs]
    lo = [int(np.floor(p)) for p in pos]
    part = np.partition(sample, sorted(set(lo)), axis=1)
    at = {i: part[:, i] for i in lo}
    above = {i: part[:, i + 1:].min(axis=1) if i + 1 < n else part[:, i] for i in lo}
    out = []
    for k in range(sample.shape[0]):
        vals = []
        for p, i in zip(pos, lo, strict=True):
            a, b, t = float(at[i][k]), float(above[i][k]), p - i
            vals.append(b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t)  # as numpy's _lerp
        out.append((vals[0], vals[1]))
    return out


def _gradient2(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Twice ``np.gradient(a)`` of a 2-D array (central differences, one-sided at the borders), by slices:
    the factor 2 is exact and cancels in every ratio, so it is left in (one product less per axis)."""
    gy, gx = np.empty_like(a), np.empty_like(a)
    np.subtract(a[2:], a[:-2], out=gy[1:-1])
    np.subtract(a[1], a[0], out=gy[0])
    np.subtract(a[-1], a[-2], out=gy[-1])
    gy[[0, -1]] *= 2
    np.subtract(a[:, 2:], a[:, :-2], out=gx[:, 1:-1])
    np.subtract(a[:, 1], a[:, 0], out=gx[:, 0])
    np.subtract(a[:, -1], a[:, -2], out=gx[:, -1])
    gx[:, [0, -1]] *= 2
    return gy, gx


def _norm(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``sqrt(x² + y²)`` (``np.hypot`` without its overflow guard, several times faster)."""
    out = np.multiply(x, x)
    y2 = np.multiply(y, y)
    out += y2
    return np.sqrt(out, out=out)


def material_edges(
    bands: np.ndarray, red: int, green: int, *, sigma: float = 1.0, floor: float = 0.1,
    levels: tuple[tuple[float, float], tuple[float, float], tuple[float, float]] | None = None,
) -> np.ndarray:
    """Edge strength of material boundaries: the brightness gradient, weighted down where it is an
    illumination edge (a cast shadow's outline, a sun-lit roof slope).

    ``|grad I| * (floor + (1 - floor) * w)`` with ``I`` the mean of ``bands`` and
    ``w = |grad C| / (|grad C| + |grad log I|)``, the share of the edge that is a change of
    colour (``C`` the :func:`chromaticity`) rather than of light (all gradients of the images
    smoothed by ``sigma``; those of ``log I`` and ``C`` by the chain rule from the smoothed
    bands), made one value across each edge's profile (the minimum over 3 x 3
    pixels, then a Gaussian of 1 px) so that the weight, a ratio of noisy and mixed pixels,
    cannot move an edge. A shadow edge scales every band alike: ``w`` near 0. An edge between
    two materials changes their ratio: ``w`` up to 1. ``floor`` keeps grey edges (grey roof on
    grey road) in, weakly. Positions come from the linear brightness gradient, so mixed pixels
    do not move edges as a ratio alone would. NaN where a band is NaN.

    ``bands``: ``(b, h, w)``; ``red``, ``green``: their indices in it. ``levels``: the
    :func:`dark_level` of the band mean, red and green (else measured on ``bands``; pass them when
    ``bands`` is one block of a larger image).
    """
    arr = np.asarray(bands)
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float32)
    # one sum finds whether any pixel is missing (NaN or infinite); the mask only then
    nan = None if np.isfinite(arr.sum()) else ~np.all(np.isfinite(arr), axis=0)
    if levels is None:
        if nan is not None:
            levels = (dark_level(np.where(nan, np.nan, arr.mean(axis=0))), dark_level(arr[red]),
                      dark_level(arr[green]))
        else:  # the mean of the sampled pixels only
            h, w = arr.shape[1:]
            step = max(1, int(np.ceil(np.sqrt(h * w / _SAMPLE_PIXELS))))
            levels = _dark_levels([arr[:, ::step, ::step].mean(axis=0), arr[red, ::step, ::step],
                                   arr[green, ::step, ::step]])
    (o_i, f_i), (o_r, f_r), (o_g, f_g) = levels
    # smooth each band once (in float32); the gradients of log I and of C = log(R / G) follow by the chain rule
    if nan is not None:  # fill missing pixels (masked again at the end) so that they do not spread
        arr = np.where(np.isfinite(arr), arr, np.nanmean(arr, axis=(1, 2), keepdims=True))
        arr = np.nan_to_num(arr)
    smooth = _gaussian(arr, sigma, np.empty(arr.shape, np.float32)) if sigma > 0 else arr.astype(np.float32)
    n = np.float32(len(smooth))
    total = smooth.sum(axis=0)  # n I, I the band mean
    g_bright = _norm(*_gradient2(total))  # 2 n |grad I| (every gradient here is twice np.gradient's)
    total -= n * np.float32(o_i)  # (in place from here: fewer temporaries)
    g_light = np.maximum(total, n * np.float32(f_i), out=total)
    np.divide(g_bright, g_light, out=g_light)  # 2 |grad log I|
    (ry, rx), (gy, gx) = _gradient2(smooth[red]), _gradient2(smooth[green])
    r = np.maximum(smooth[red] - np.float32(o_r), np.float32(f_r))
    g = np.maximum(smooth[green] - np.float32(o_g), np.float32(f_g))
    for a, b in ((rx, r), (ry, r), (gx, g), (gy, g)):
        np.divide(a, b, out=a)
    g_colour = _norm(np.subtract(rx, gx, out=rx), np.subtract(ry, gy, out=ry))  # 2 |grad C|
    share = np.add(g_colour, g_light, out=g_light)
    np.maximum(share, np.float32(1e-12), out=share)
    np.divide(g_colour, share, out=share)
    # one weight across each edge's profile, so that the weight moves no edge: the lowest share
    # within 1 px (an edge next to a shadow outline takes the shadow's), then smoothed over 1 px
    share = _min3(_min3(share, 0), 1)
    share = _gaussian(share, 1.0, share)
    share *= np.float32((1.0 - floor) / (2 * n))
    share += np.float32(floor / (2 * n))
    out = g_bright * share
    if nan is not None:
        out[ndimage.binary_dilation(nan, iterations=max(2, int(np.ceil(3 * sigma))))] = np.nan
    return out


def _gaussian(a: np.ndarray, sigma: float, out: np.ndarray) -> np.ndarray:
    """``ndimage.gaussian_filter`` over the last two axes (``mode="nearest"``, ``truncate=3``) into ``out``
    (which may be ``a``), bit for bit, without the wrapper's per-call work."""
    weights = _gaussian_weights(float(sigma))
    ndimage.correlate1d(a, weights, axis=-2, output=out, mode="nearest")
    return ndimage.correlate1d(out, weights, axis=-1, output=out, mode="nearest")  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=8)
def _gaussian_weights(sigma: float) -> np.ndarray:
    """The kernel ``ndimage.gaussian_filter1d`` builds for ``sigma`` and ``truncate=3`` (read-only)."""
    radius = int(3.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    phi /= phi.sum()
    phi.flags.writeable = False
    return phi


def _min3(a: np.ndarray, axis: int) -> np.ndarray:
    """The minimum over 3 pixels along ``axis`` (edges repeated): ``minimum_filter1d(a, 3, mode="nearest")``
    as the minimum of neighbouring pairs, then of neighbouring pairs of those, several times faster on
    small images."""
    def cut(x: np.ndarray, part: slice | int) -> np.ndarray:
        key: list[slice | int] = [slice(None)] * x.ndim
        key[axis] = part
        return x[tuple(key)]

    pairs = np.minimum(cut(a, slice(None, -1)), cut(a, slice(1, None)))
    out = np.empty_like(a)
    np.minimum(cut(pairs, slice(None, -1)), cut(pairs, slice(1, None)), out=cut(out, slice(1, -1)))
    cut(out, 0)[...] = cut(pairs, 0)
    cut(out, -1)[...] = cut(pairs, -1)
    return out


def chromaticity(
    red: Any, green: Any, *, levels: tuple[tuple[float, float], tuple[float, float]] | None = None
) -> Any:
    """``log((red - o_r) / (green - o_g))`` (see the module docstring); numpy or lazy dask in, same out.

    NaN stays NaN; values under the dark-object level are clipped to its floor. ``levels``: the
    :func:`dark_level` of each band, if already known.
    """
    (o_r, f_r), (o_g, f_g) = levels or (dark_level(red), dark_level(green))
    lib = da if isinstance(red, da.Array) or isinstance(green, da.Array) else np
    r = lib.maximum(red.astype(np.float32) - np.float32(o_r), np.float32(f_r))
    g = lib.maximum(green.astype(np.float32) - np.float32(o_g), np.float32(f_g))
    return lib.log(r / g)


def matching_kind(names: list[str], band: str | None, matching: str) -> str:
    """``"material"`` or ``"mean"``: what a stack with bands ``names`` is matched on
    (see :class:`changedetect.coregister.CoregisterConfig`; ``"mean"`` too when one ``band`` is named)."""
    if matching not in ("auto", "material", "mean"):
        raise CoregistrationError(f"matching must be 'auto', 'material' or 'mean', got {matching!r}")
    if band is not None:
        return "mean"
    if matching == "material" and chromatic_bands(names) is None:
        raise CoregistrationError(f"matching on material edges needs bands named red and green; bands are {names}")
    if matching == "mean" or chromatic_bands(names) is None:
        return "mean"
    return "material"


class RowFile:
    """A 2-D float32 image kept in an anonymous temporary file and read back by slices of rows
    (``img[r0:r1]``, ``img[r0:r1, c0:c1]``), with explicit reads: memory holds only what is read."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = shape
        self.ndim = 2
        self.dtype = np.dtype(np.float32)
        self._file = tempfile.TemporaryFile()  # noqa: SIM115  (lives as long as the image; deleted when collected)

    def write_rows(self, r0: int, rows: np.ndarray) -> None:
        """Store ``rows`` (``(n, w)``) from row ``r0``."""
        os.pwrite(self._file.fileno(), np.ascontiguousarray(rows, np.float32).tobytes(), r0 * self.shape[1] * 4)

    def __getitem__(self, key: Any) -> np.ndarray:
        rows, cols = (key, slice(None)) if not isinstance(key, tuple) else key
        r0, r1, _ = rows.indices(self.shape[0])
        w = self.shape[1]
        buf = os.pread(self._file.fileno(), max(r1 - r0, 0) * w * 4, r0 * w * 4)
        return np.frombuffer(buf, np.float32).reshape(-1, w)[:, cols].copy()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:, :]
        return out if dtype is None else out.astype(dtype)


def material_edges_of(bands: da.Array, red: int, green: int, *, in_memory_pixels: int) -> Any:
    """:func:`material_edges` of one date ``(b, h, w)``: in memory when it has up to ``in_memory_pixels``
    pixels; else computed once, one row of blocks at a time (with a 16 px halo, and the dark-object
    levels of the whole image so that blocks agree), into a :class:`RowFile` read back by strips."""
    if bands[0].size <= in_memory_pixels:
        return material_edges(np.asarray(bands.compute()), red, green)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = da.nanmean(bands, axis=0)
    levels = (dark_level(mean), dark_level(bands[red]), dark_level(bands[green]))
    lazy = da.map_overlap(
        lambda b: material_edges(b, red, green, levels=levels), bands.rechunk({0: -1}),
        depth={0: 0, 1: 16, 2: 16}, boundary="none", drop_axis=0, dtype=np.float32, trim=True,
    )
    out = RowFile(tuple(lazy.shape))  # type: ignore[arg-type]
    r0 = 0
    for height in lazy.chunks[0]:
        out.write_rows(r0, lazy[r0:r0 + height].compute())
        r0 += height
    return out


__all__ = ["RowFile", "chromatic_bands", "chromaticity", "dark_level", "material_edges", "material_edges_of",
           "matching_kind"]
