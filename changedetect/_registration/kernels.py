"""Small array kernels of the matching image (:mod:`changedetect._registration.matching`) and of the
phase correlation (:mod:`changedetect._registration.shift`, :mod:`changedetect._registration.peak`).

Each computes what its numpy or scipy counterpart computes (bit for bit where the docstring
says so; the tests check it) in fewer passes, writing into arrays the caller hands over.
:func:`scratch` hands over arrays that are reused by the next call from the same thread:
on small images (a 256 px chip) a fresh array of a few hundred kB is fresh memory from the
operating system, and its page faults cost more than the arithmetic (material edges of a
224 px RGB chip: 3.2 -> 1.85 ms measured with every array reused).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import numpy as np
from scipy import ndimage

#: Arrays of up to this many elements are reused per thread by :func:`scratch` (at most ~20 MiB a thread,
#: kept for the thread's life: a dozen planes of up to 2 MiB);
#: larger ones are allocated per call (memory stays bounded on large scenes' blocks).
SCRATCH_ELEMENTS = 1 << 19

_LOCAL = threading.local()


def scratch(name: str, shape: tuple[int, ...], count: int, dtype: Any = np.float32) -> list[np.ndarray]:
    """``count`` uninitialised arrays of ``shape`` for the caller ``name``, reused by this thread's next call
    with the same name, shape and type: their contents must not outlive the call that asked for them."""
    if int(np.prod(shape)) > SCRATCH_ELEMENTS:
        return [np.empty(shape, dtype) for _ in range(count)]
    key = (tuple(shape), count, np.dtype(dtype).str)
    cache: dict[str, tuple[tuple, list[np.ndarray]]] | None = getattr(_LOCAL, "cache", None)
    if cache is None:
        cache = _LOCAL.cache = {}
    held = cache.get(name)
    if held is None or held[0] != key:
        held = cache[name] = (key, [np.empty(shape, dtype) for _ in range(count)])
    return held[1]


def gradient2(a: np.ndarray, gy: np.ndarray, gx: np.ndarray) -> None:
    """Twice ``np.gradient(a)`` of a 2-D array (central differences, one-sided at the borders) into
    ``gy``, ``gx``, bit for bit: the factor 2 is exact and cancels in every ratio of the material
    edges, so it is left in (one product less per axis)."""
    np.subtract(a[2:], a[:-2], out=gy[1:-1])
    np.subtract(a[1], a[0], out=gy[0])
    np.subtract(a[-1], a[-2], out=gy[-1])
    gy[0] *= 2
    gy[-1] *= 2
    np.subtract(a[:, 2:], a[:, :-2], out=gx[:, 1:-1])
    np.subtract(a[:, 1], a[:, 0], out=gx[:, 0])
    np.subtract(a[:, -1], a[:, -2], out=gx[:, -1])
    gx[:, 0] *= 2
    gx[:, -1] *= 2


def norm(x: np.ndarray, y: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """``sqrt(x² + y²)`` into ``out`` (``tmp``: scratch): ``np.hypot`` without its overflow guard,
    several times faster.  ``out`` may be ``x``; ``tmp`` must be neither."""
    np.multiply(x, x, out=out)
    np.multiply(y, y, out=tmp)
    out += tmp
    return np.sqrt(out, out=out)


def at_least(a: np.ndarray, value: float, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """``np.maximum(a, value, out=out)`` through ``tmp`` filled with ``value``: numpy's maximum of two arrays
    is vectorised, of an array and a scalar is not (2-3 times slower)."""
    tmp.fill(value)
    return np.maximum(a, tmp, out=out)


def min3(a: np.ndarray, axis: int, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """``ndimage.minimum_filter1d(a, 3, axis, mode="nearest")`` of a 2-D array into ``out`` (not ``a``),
    bit for bit: the minimum of neighbouring pairs (in ``tmp``), then of neighbouring pairs of those."""

    def cut(x: np.ndarray, part: slice | int) -> np.ndarray:
        key: list[slice | int] = [slice(None)] * x.ndim
        key[axis] = part
        return x[tuple(key)]

    pairs = cut(tmp, slice(None, -1))
    np.minimum(cut(a, slice(None, -1)), cut(a, slice(1, None)), out=pairs)
    np.minimum(cut(pairs, slice(None, -1)), cut(pairs, slice(1, None)), out=cut(out, slice(1, -1)))
    cut(out, 0)[...] = cut(pairs, 0)
    cut(out, -1)[...] = cut(pairs, -1)
    return out


def gaussian(a: np.ndarray, sigma: float, out: np.ndarray) -> np.ndarray:
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


def percentiles(sample: np.ndarray, qs: tuple[float, float] = (0.1, 99.0)) -> list[tuple[float, float]]:
    """``np.percentile(sample, qs, axis=1)`` of a finite ``(k, n)`` sample (linear interpolation, in float64,
    bit for bit), several times faster on small samples: each percentile needs two neighbouring order
    statistics, found among the few values past a threshold (:func:`_extreme`), not by partitioning all."""
    n = sample.shape[1]
    out = []
    for row in sample:
        vals = []
        for q in qs:
            pos = q / 100.0 * (n - 1)
            i = int(np.floor(pos))
            j = min(i + 1, n - 1)
            if pos <= (n - 1) / 2:  # from the j + 1 smallest
                low = _extreme(row, j + 1, largest=False)
                a, b = float(low[i]), float(low[j])
            else:  # from the n - i largest
                high = _extreme(row, n - i, largest=True)
                a, b = float(high[i - n]), float(high[j - n])
            t = pos - i
            vals.append(b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t)  # as numpy's _lerp
        out.append((vals[0], vals[1]))
    return out


def _extreme(row: np.ndarray, m: int, *, largest: bool) -> np.ndarray:
    """The ``m`` smallest (or largest) values of a 1-D finite array, sorted ascending.  Dealt into at least
    ``2m`` groups, the ``m``-th smallest of the groups' minima has at least ``m`` values at or below it
    (those minima): the values at or below it, usually a few dozen, hold the ``m`` smallest."""
    n = row.size
    groups = max(64, 1 << int(np.ceil(np.log2(2 * m))))
    size = n // groups
    if size < 8:  # small samples: sort them
        ordered = np.sort(row)
        return ordered[n - m:] if largest else ordered[:m]
    dealt = row[: groups * size].reshape(size, groups)  # group g: row[g::groups]
    if largest:
        threshold = np.partition(dealt.max(axis=0), groups - m)[groups - m]
        found = np.sort(row[row >= threshold])[-m:]
    else:
        threshold = np.partition(dealt.min(axis=0), m - 1)[m - 1]
        found = np.sort(row[row <= threshold])[:m]
    if found.size < m:  # only with NaN (not finite: the caller's answer is not used), as a sort gives
        ordered = np.sort(row)
        return ordered[n - m:] if largest else ordered[:m]
    return found


def order_statistics(x: np.ndarray, ranks: tuple[int, ...], bins: int = 1024) -> list[float]:
    """The values of ranks ``ranks`` (0-based, ascending) of a finite 1-D float array, exactly: binned by
    value (a monotonic map, so every value of a bin is at least those of the bins below), counted, and
    the rank found among the few values of its bin, not by partitioning all."""
    lo, hi = float(x.min()), float(x.max())
    if not hi > lo:
        return [lo for _ in ranks]
    index = ((x - lo) * ((bins - 1) / (hi - lo))).astype(np.intp)
    below = np.concatenate([[0], np.cumsum(np.bincount(index, minlength=bins))])
    out = []
    for rank in ranks:
        b = int(np.searchsorted(below, rank, side="right")) - 1
        members = x[index == b]
        out.append(float(np.partition(members, rank - int(below[b]))[rank - int(below[b])]))
    return out


__all__ = ["SCRATCH_ELEMENTS", "at_least", "gaussian", "gradient2", "min3", "norm", "order_statistics", "percentiles", "scratch"]
