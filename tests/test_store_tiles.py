"""A large scene is stored a tile of blocks at a time, and the warp skips blocks without data.

A co-registration warp reads each block's neighbours' edges (``dask.array.overlap``); stored in one
call of dask, such a graph was worked through rows of blocks as wide as the scene, all held at once
(573 MiB a band at 20 000 px a side, 1078 MiB at 40 000: ``benchmarks/store_tiles.py``; 3.9 GiB
peak writing a registered 20 000² date of four bands).  :func:`changedetect.io.raster.store_drained` now stores it a tile of
:data:`~changedetect.io.raster.STORE_TILE` pixels at a time.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
import pytest
from scipy import ndimage

from changedetect._registration.field import ShiftField
from changedetect._registration.warp import apply_shift_field, warp_lazy
from changedetect.io import raster


class _Target:
    def __init__(self, shape: tuple[int, ...]) -> None:
        self.out = np.full(shape, -1.0, dtype=np.float32)

    def __setitem__(self, key: Any, block: np.ndarray) -> None:
        self.out[key] = block


def test_a_scene_wider_than_a_tile_is_stored_tile_by_tile_to_the_same_values(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    values = rng.random((2, 3, 700, 530)).astype(np.float32)
    sources = [da.from_array(values[t], chunks=(-1, 128, 96)) for t in range(2)]
    calls: list[int] = []
    store = da.store
    monkeypatch.setattr(raster.da, "store", lambda *a, **k: calls.append(1) or store(*a, **k))
    targets = [_Target(values.shape[1:]) for _ in range(2)]
    raster.store_drained(sources, targets, tile=256)
    for t in range(2):
        np.testing.assert_array_equal(targets[t].out, values[t])
    # rows 700 px in blocks of 128 -> tiles of 256, 256, 188; columns 530 in 96 -> 288, 242
    assert len(calls) == 6
    calls.clear()
    small = [_Target(values.shape[1:])]
    raster.store_drained(sources[:1], small)  # within one tile: one call, as before
    assert len(calls) == 1
    np.testing.assert_array_equal(small[0].out, values[0])


def test_the_warp_of_a_sparse_scene_equals_the_in_memory_warp() -> None:
    rng = np.random.default_rng(5)
    image = rng.random((600, 640)).astype(np.float32) * 100
    image[:, 300:] = np.nan  # blocks right of column 300 (and their halos) hold no data
    image[450:, :] = np.nan
    fld = ShiftField.uniform(image.shape, 1.4, -2.3)
    lazy = warp_lazy(da.from_array(image, chunks=128), fld).compute()
    eager = apply_shift_field(image, fld)
    # both NaN in the same places; equal away from the edge of the data (near it, each fills the gap
    # with the mean of what it holds before the spline's prefilter: the whole image, or the block)
    np.testing.assert_array_equal(np.isnan(lazy), np.isnan(eager))
    far = ndimage.binary_erosion(np.isfinite(image), iterations=16)
    np.testing.assert_allclose(lazy[far], eager[far], atol=1e-3)
    assert np.isnan(lazy[:, 320:]).all() and np.isfinite(lazy[10:400, 10:280]).all()


def test_a_window_warped_from_its_own_read_equals_the_lazy_warp_there() -> None:
    # the radiometric fit of a large date warps its sample windows this way, without the overlap graph
    from changedetect._registration.warp import warp_window

    rng = np.random.default_rng(11)
    image = (rng.random((2, 500, 460)) * 100).astype(np.float32)
    image[1, :, :40] = np.nan
    fld = ShiftField.uniform((500, 460), -2.6, 1.3)
    lazy = np.stack([warp_lazy(da.from_array(image[b], chunks=128), fld).compute() for b in range(2)])
    for r0, r1, c0, c1 in ((100, 356, 90, 346), (0, 64, 0, 64), (436, 500, 396, 460)):
        window = warp_window(da.from_array(image, chunks=(1, 128, 128)), fld, r0, r1, c0, c1)
        np.testing.assert_array_equal(np.isnan(window), np.isnan(lazy[:, r0:r1, c0:c1]))
        np.testing.assert_allclose(window[0], lazy[0, r0:r1, c0:c1], atol=1e-3)
