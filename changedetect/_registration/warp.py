"""Apply a shift field to numpy arrays, or lazily to dask arrays block by block.

A dask block is warped from the block plus a halo wider than the largest shift
(``dask.array.overlap`` with ``boundary="none"``), so memory stays bounded by a
few blocks whatever the scene size.
"""

from __future__ import annotations

import math
from typing import Any

import dask.array as da
import numpy as np
from scipy import ndimage

from changedetect._dask_cull import compute, culled
from changedetect._registration.field import ShiftField

#: The name (before its token) of :func:`warp_lazy`'s layer in a dask graph (:func:`lazy_warps`).
WARP_LAYER = "coregister-warp"
#: Extra halo beyond the largest shift: the cubic spline prefilter's reach (0.268**8 ~ 3e-5).
_SPLINE_MARGIN = 8


def sample(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, *, order: int = 3) -> np.ndarray:
    """Values of ``image`` at fractional ``rows``, ``cols``; NaN outside it or next to missing pixels."""
    img = np.asarray(image, dtype=np.float64)
    h, w = img.shape
    nan = ~np.isfinite(img)
    if nan.any():
        img = np.where(nan, np.nanmean(img) if (~nan).any() else 0.0, img)
    out = ndimage.map_coordinates(img, [rows, cols], order=order, mode="nearest", prefilter=order > 1)
    outside = (rows < -0.5) | (rows > h - 0.5) | (cols < -0.5) | (cols > w - 0.5)
    if nan.any():
        near = ndimage.map_coordinates(nan.astype(np.float32), [rows, cols], order=1, mode="nearest")
        outside |= near > 0.01
    out[outside] = np.nan
    return out


def apply_shift_field(image: np.ndarray, fld: ShiftField | tuple[float, float], *, order: int = 3) -> np.ndarray:
    """``image`` (``(h, w)`` or ``(band, h, w)``) resampled onto the reference: ``out(p) = image(p + d(p))``.

    ``fld`` is a :class:`ShiftField` or a constant ``(dx, dy)``.
    """
    image = np.asarray(image)
    if image.ndim == 3:
        return np.stack([apply_shift_field(b, fld, order=order) for b in image])
    h, w = image.shape
    if not isinstance(fld, ShiftField):
        fld = ShiftField.uniform((h, w), float(fld[0]), float(fld[1]))
    dx, dy = fld.dense(0, h, 0, w)
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    return sample(image, rows + dy, cols + dx, order=order).astype(image.dtype if image.dtype.kind == "f" else np.float32)


def _halo_chunks(chunks: tuple[int, ...], depth: int) -> tuple[int, ...]:
    """``chunks``, or blocks of ``max(depth, 256)`` with a last one thinner than ``depth`` merged into the
    one before: ``dask.array.overlap`` would otherwise rechunk it on its own, out of step with the block
    offsets :func:`warp_lazy` reads (a 1030 px scene in 1024 px blocks)."""
    if min(chunks) >= depth:
        return chunks
    size = max(depth, 256)
    out = [size] * (sum(chunks) // size)
    rest = sum(chunks) % size
    if out and 0 < rest < depth:
        out[-1] += rest
    elif rest:
        out.append(rest)
    return tuple(out)


def warp_lazy(image: Any, fld: ShiftField, *, order: int = 3) -> da.Array:
    """Lazy warp of a 2-D dask (or numpy) array; chunks as the input's (rechunked if smaller than the halo)."""
    arr = image if isinstance(image, da.Array) else da.from_array(np.asarray(image), chunks=1024)
    h, w = arr.shape
    depth = int(math.ceil(fld.max_abs())) + _SPLINE_MARGIN
    depth_r, depth_c = min(depth, h - 1), min(depth, w - 1)
    arr = arr.rechunk((_halo_chunks(arr.chunks[0], depth_r), _halo_chunks(arr.chunks[1], depth_c)))
    padded = da.overlap.overlap(arr, depth={0: depth_r, 1: depth_c}, boundary="none")
    starts_r = np.cumsum((0,) + arr.chunks[0])
    starts_c = np.cumsum((0,) + arr.chunks[1])

    def block(x: np.ndarray, block_info: dict[Any, Any] | None = None) -> np.ndarray:
        assert block_info is not None
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        if not np.isfinite(x).any():  # no data under the block and its halo (a sparse mosaic's empty tiles)
            return np.full((r1 - r0, c1 - c0), np.nan, dtype=np.float32)
        i, j = block_info[None]["chunk-location"]
        er0 = starts_r[i] - (depth_r if i > 0 else 0)
        ec0 = starts_c[j] - (depth_c if j > 0 else 0)
        return _warped(x, er0, ec0, _positions(fld, r0, r1, c0, c1), (h, w), order)

    return da.map_blocks(block, padded, chunks=arr.chunks, dtype=np.float32, token=WARP_LAYER)


def lazy_warps(arr: Any) -> set[str]:
    """The :func:`warp_lazy` warps ``arr`` (any array) computes, by their layers' names: empty unless it is
    dask-backed and holds one, whose every read of part resamples the blocks under that part again."""
    if not isinstance(arr, da.Array):
        return set()
    corner = arr[..., :1, :1] if arr.ndim >= 2 else arr  # every date's and band's first block: their layers
    layers = getattr(culled(corner)[0].__dask_graph__(), "layers", {})  # its own: not a stack's other dates'
    return {str(name) for name in layers if str(name).startswith(f"{WARP_LAYER}-")}


def _positions(fld: ShiftField, r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
    """Where the reference's pixels ``r0:r1, c0:c1`` are read on the date: ``(rows, cols)`` + the field."""
    dx, dy = fld.dense(r0, r1, c0, c1)
    rows, cols = np.meshgrid(np.arange(r0, r1, dtype=np.float64), np.arange(c0, c1, dtype=np.float64), indexing="ij")
    return rows + dy, cols + dx


def _warped(src: np.ndarray, er0: int, ec0: int, at: tuple[np.ndarray, np.ndarray], shape: tuple[int, int],
            order: int) -> np.ndarray:
    """``src`` (a 2-D read whose first pixel is ``(er0, ec0)`` of an image of ``shape``) sampled at the
    positions ``at`` (:func:`_positions`); NaN off the image, float32."""
    rows, cols = at
    h, w = shape
    out = sample(src, rows - er0, cols - ec0, order=order)
    out[(rows < -0.5) | (rows > h - 0.5) | (cols < -0.5) | (cols > w - 0.5)] = np.nan
    return out.astype(np.float32)


def window_span(shape: tuple[int, int], fld: ShiftField, r0: int, r1: int, c0: int, c1: int) -> tuple[int, int, int, int]:
    """Rows and columns ``(r0', r1', c0', c1')`` of an image of ``shape`` that warping its window
    ``r0:r1, c0:c1`` by ``fld`` reads: the window and a halo wider than the shift there."""
    h, w = shape
    dx, dy = fld.dense(r0, r1, c0, c1)
    depth = int(math.ceil(max(float(np.abs(dx).max()), float(np.abs(dy).max())))) + _SPLINE_MARGIN
    return max(r0 - depth, 0), min(r1 + depth, h), max(c0 - depth, 0), min(c1 + depth, w)


def warp_window(image: Any, fld: ShiftField, r0: int, r1: int, c0: int, c1: int, *, order: int = 3,
                read: np.ndarray | None = None) -> np.ndarray:
    """Rows ``r0:r1`` and columns ``c0:c1`` of ``image`` (``(band, h, w)``, dask or numpy) warped by ``fld``,
    from a read of that window and a halo wider than the shift (:func:`window_span`; ``read``: that
    read, already made): what :func:`warp_lazy` gives there (but for the mean :func:`sample` fills
    missing pixels with, near the edge of the data), without the overlap graph of the whole image (at
    200 000 px a side, culling it took a minute a batch of windows)."""
    _, h, w = image.shape
    er0, er1, ec0, ec1 = window_span((h, w), fld, r0, r1, c0, c1)
    if read is None:
        part = image[:, er0:er1, ec0:ec1]
        read = compute(part)[0] if isinstance(part, da.Array) else part
    src = np.asarray(read)
    at = _positions(fld, r0, r1, c0, c1)
    return np.stack([_warped(band, er0, ec0, at, (h, w), order) if np.isfinite(band).any()
                     else np.full((r1 - r0, c1 - c0), np.nan, dtype=np.float32) for band in src])
