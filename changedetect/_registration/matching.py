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

import warnings
from typing import Any

import dask.array as da
import numpy as np
from scipy import ndimage

from changedetect._dask_cull import compute
from changedetect._registration.blocks import BlockImage
from changedetect._registration.kernels import (
    at_least,
    gaussian,
    gradient2,
    min3,
    norm,
    percentiles,
    scratch,
)
from changedetect.errors import CoregistrationError

#: Band names (lower case) taken as red and green for the chromaticity.
RED_NAMES = ("red", "r")
GREEN_NAMES = ("green", "g")
#: Largest number of pixels read to find a band's dark-object level.
_SAMPLE_PIXELS = 1 << 14
#: Most blocks of a lazy date read for its dark-object levels (:func:`sampled_levels`).
_SAMPLE_BLOCKS = 256


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
    return _level(np.asarray(band[::step, ::step]))


def _level(sample: np.ndarray) -> tuple[float, float]:
    """:func:`dark_level` of the pixels ``sample`` (any shape; NaN left out)."""
    sample = sample.ravel()
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0, 1.0
    lo, hi = percentiles(sample[None, :])[0]
    floor = max(0.01 * (hi - lo), 1e-6)
    return lo - floor, floor


def sampled_levels(bands: da.Array, red: int, green: int) -> tuple[tuple[float, float], tuple[float, float],
                                                                  tuple[float, float]]:
    """:func:`dark_level` of the band mean, red and green of a lazy date ``(b, h, w)``, reading a bounded
    number of its blocks.

    Up to :data:`_SAMPLE_BLOCKS` blocks, the regular subsample of :func:`dark_level` (which reads every
    block once); on a larger grid that subsample would read a block for each sampled pixel (the
    16 000 blocks of a 200 000 px square city, nearly the whole date), so the ~16 000 pixels are read as
    a regular grid of 8 x 8 windows of 16 px instead: at most 256 blocks.
    """
    h, w = bands.shape[1:]
    if len(bands.chunks[1]) * len(bands.chunks[2]) <= _SAMPLE_BLOCKS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a pixel without data in any band: NaN
            mean = da.nanmean(bands, axis=0)
            return dark_level(mean), dark_level(bands[red]), dark_level(bands[green])
    n, side = 8, int(np.ceil(np.sqrt(_SAMPLE_PIXELS / 64)))
    rows = [int((k + 0.5) * h / n) - side // 2 for k in range(n)]
    cols = [int((k + 0.5) * w / n) - side // 2 for k in range(n)]
    # the windows' pixels of every band, each block read, cut and let go (a band mean taken over the
    # blocks would hold every block of the sample at once: 1.1 GB for 64 blocks of 4 bands)
    (windows,) = compute(da.stack([bands[:, r:r + side, c:c + side] for r in rows for c in cols]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a pixel without data in any band: NaN
        mean = np.nanmean(windows, axis=1)
    m, r, g = (_level(x) for x in (mean, windows[:, red], windows[:, green]))
    return m, r, g


def _dark_levels(bands: np.ndarray, red: int, green: int) -> tuple[tuple[float, float], tuple[float, float],
                                                                   tuple[float, float]]:
    """:func:`dark_level` of the mean, red and green of finite ``(b, h, w)`` bands, from one sample in an
    array reused per thread (the mean of the sampled pixels only)."""
    h, w = bands.shape[1:]
    step = max(1, int(np.ceil(np.sqrt(h * w / _SAMPLE_PIXELS))))
    sub = bands[:, ::step, ::step]
    shape = sub.shape[1:]
    sample = scratch("dark_levels", (3, shape[0] * shape[1]), 1, bands.dtype)[0]
    np.mean(sub, axis=0, out=sample[0].reshape(shape))
    sample[1].reshape(shape)[...] = sub[red]
    sample[2].reshape(shape)[...] = sub[green]
    floors = [(lo, max(0.01 * (hi - lo), 1e-6)) for lo, hi in percentiles(sample)]
    mean, r, g = ((lo - floor, floor) for lo, floor in floors)
    return mean, r, g


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
    h, w = arr.shape[1:]
    # every intermediate in arrays reused per thread (kernels.scratch); only the result is new
    smooth = scratch("material_edges_bands", arr.shape, 1)[0]
    total, g_bright, b1, b2, b3, b4, tmp = scratch("material_edges", (h, w), 7)

    def smoothed(a: np.ndarray) -> None:  # each band once, float32 (the gradients of log I and
        # of C = log(R / G) follow by the chain rule)
        if sigma > 0:
            gaussian(a, sigma, smooth)
        else:
            np.copyto(smooth, a)

    measured = levels is None
    if measured:  # (before the smoothing, which then finds the bands in the cache) assuming no missing pixel
        levels = _dark_levels(arr, red, green)
    smoothed(arr)
    # a missing pixel (NaN or infinite) spreads over its smoothed neighbourhood: one sum finds it
    nan = None if np.isfinite(smooth.sum()) else ~np.all(np.isfinite(arr), axis=0)
    if nan is not None:  # fill missing pixels (masked again at the end) so that they do not spread
        if measured:
            levels = (dark_level(np.where(nan, np.nan, arr.mean(axis=0))), dark_level(arr[red]),
                      dark_level(arr[green]))
        finite = np.isfinite(arr)  # the fill from finite pixels only (an infinite one would make it inf)
        # each band's mean over its finite pixels, 0 for a band without any (an all-nodata date or block):
        # np.nanmean's, without its "Mean of empty slice" warning, which catch_warnings cannot hold back in
        # dask's threads (its filters are the process's: another block's exit restores them)
        count = finite.sum(axis=(1, 2), keepdims=True)
        summed = np.where(finite, arr, np.float32(0)).sum(axis=(1, 2), keepdims=True)
        fill = np.divide(summed, count, out=np.zeros_like(summed), where=count > 0)
        smoothed(np.where(finite, arr, fill))
    assert levels is not None
    (o_i, f_i), (o_r, f_r), (o_g, f_g) = levels
    n = np.float32(len(smooth))
    np.sum(smooth, axis=0, out=total)  # n I, I the band mean
    gradient2(total, b1, b2)  # every gradient here is twice np.gradient's (the factor cancels)
    norm(b1, b2, g_bright, tmp)  # 2 n |grad I|
    total -= n * np.float32(o_i)
    g_light = at_least(total, float(n * np.float32(f_i)), total, tmp)
    np.divide(g_bright, g_light, out=g_light)  # 2 |grad log I|
    gradient2(smooth[red], b1, b2)
    gradient2(smooth[green], b3, b4)
    r, g = smooth[red], smooth[green]  # the smoothed red and green are not needed any more: in place
    r -= np.float32(o_r)
    at_least(r, f_r, r, tmp)
    g -= np.float32(o_g)
    at_least(g, f_g, g, tmp)
    for a, b in ((b1, r), (b2, r), (b3, g), (b4, g)):
        np.divide(a, b, out=a)
    g_colour = norm(np.subtract(b1, b3, out=b1), np.subtract(b2, b4, out=b2), b1, tmp)  # 2 |grad C|
    share = np.add(g_colour, g_light, out=g_light)
    at_least(share, 1e-12, share, tmp)
    np.divide(g_colour, share, out=share)
    # one weight across each edge's profile, so that the weight moves no edge: the lowest share
    # within 1 px (an edge next to a shadow outline takes the shadow's), then smoothed over 1 px
    share = min3(min3(share, 0, b2, tmp), 1, share, tmp)
    gaussian(share, 1.0, share)
    share *= np.float32((1.0 - floor) / (2 * n))
    share += np.float32(floor / (2 * n))
    out = g_bright * share
    if nan is not None:
        out[ndimage.binary_dilation(nan, iterations=max(2, int(np.ceil(3 * sigma))))] = np.nan
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


def material_edges_of(bands: da.Array, red: int, green: int, *, in_memory_pixels: int) -> Any:
    """:func:`material_edges` of one date ``(b, h, w)``: in memory when it has up to ``in_memory_pixels``
    pixels; else a :class:`~changedetect._registration.blocks.BlockImage`, computed a block at a time (with a
    16 px halo, and the dark-object levels of the whole date, :func:`sampled_levels`, so that blocks agree)
    where it is read: the date is never read whole."""
    if bands[0].size <= in_memory_pixels:
        return material_edges(np.asarray(compute(bands)[0]), red, green)
    levels = sampled_levels(bands, red, green)
    return BlockImage(bands, lambda b: material_edges(b, red, green, levels=levels), halo=16)


__all__ = ["chromatic_bands", "chromaticity", "dark_level", "material_edges", "material_edges_of",
           "matching_kind", "sampled_levels"]
