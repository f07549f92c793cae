"""``changedetect._dask_cull``: a window of one date of a lazy stack computed from that date's tasks
alone.  dask's own cull keeps whole every layer that comes after the last one needed (the later dates'
reads of a ``(time, band, y, x)`` stack): at 200 000 px a side, 307 000 tasks converted and ordered for
each read of a few blocks of the first date."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np

from changedetect._dask_cull import compute, culled
from changedetect._registration.blocks import BlockImage

N, SIDE = 6, 4  # blocks a side, pixels a block side


def _date(t: int, band: int) -> da.Array:
    """A lazy band whose blocks are tasks of a plain graph, as the IO layer's reads are."""
    name = f"read-{t}-{band}"
    dsk = {(name, i, j): (np.full, (SIDE, SIDE), 100.0 * t + 10.0 * band + i + j / 10)
           for i in range(N) for j in range(N)}
    return da.Array(dsk, name, chunks=((SIDE,) * N, (SIDE,) * N), dtype=float)


def _stack(dates: int = 3, bands: int = 2) -> da.Array:
    return da.stack([da.stack([_date(t, b) for b in range(bands)]) for t in range(dates)])


def _tasks(*arrays: da.Array) -> int:
    """How many tasks the arrays' graphs hold together (a task they share counted once)."""
    graph: dict = {}
    for a in arrays:
        graph.update(dict(a.__dask_graph__()))
    return len(graph)


def test_a_window_of_the_first_date_keeps_none_of_the_later_dates_tasks() -> None:
    stack = _stack()
    window = stack[0, :, SIDE:3 * SIDE, 0:SIDE]  # 2 bands x 2 blocks
    (small,) = culled(window)
    assert _tasks(small) <= 4 * 4  # the window's getitem, the stacks' and the reads' tasks of 4 blocks
    np.testing.assert_array_equal(compute(window)[0], window.compute())


def test_a_read_of_the_reference_date_builds_no_later_dates_overlap() -> None:
    """A warped date's overlap layer lists its tasks only when built; dask's cull lists every key of the
    graph, and so built every date's (3.2 s and 212 MiB at 100 x 100 blocks of four bands)."""
    from dask.layers import ArrayOverlapLayer

    warped = da.overlap.overlap(_date(1, 0), depth=1, boundary="none").map_blocks(lambda b: b[1:-1, 1:-1] * 2,
                                                                                  chunks=((SIDE,) * N,) * 2)
    stack = da.stack([_date(0, 0), warped])
    overlaps = [layer for layer in stack.__dask_graph__().layers.values() if isinstance(layer, ArrayOverlapLayer)]
    assert overlaps and not any(layer.is_materialized() for layer in overlaps)
    (first,) = culled(stack[0, :SIDE, :SIDE])
    assert not any(layer.is_materialized() for layer in overlaps)
    assert compute(stack[0, :SIDE, :SIDE])[0][0, 0] == 0.0
    np.testing.assert_array_equal(compute(stack[1, SIDE:2 * SIDE, :SIDE])[0], stack[1, SIDE:2 * SIDE, :SIDE].compute())
    assert _tasks(first) <= 3


def test_arrays_culled_together_share_one_graph_and_compute_right() -> None:
    """Blockwise layers (arithmetic, an overlap) refer to their inputs by layer name: two arrays
    culled to different blocks of one layer are computed together from one graph."""
    stack = _stack()
    scaled = stack * 2.0 + 1.0
    smooth = da.map_overlap(lambda b: b + 0 * np.roll(b, 1, axis=-1), scaled[1], depth=(0, 1, 1),
                            boundary="none", dtype=float)
    a, b, c = scaled[0, 0, :SIDE, :SIDE], scaled[2, 1, -SIDE:, -SIDE:], smooth[:, SIDE:2 * SIDE, SIDE:2 * SIDE]
    got = compute(a, b, c, "not lazy")
    want = dask.compute(a, b, c)
    for g, w in zip(got[:3], want, strict=True):
        np.testing.assert_array_equal(g, w)
    assert got[3] == "not lazy"
    culled_b = culled(b)[0]
    assert _tasks(culled_b) < _tasks(b) / 10


def test_block_image_of_the_first_date_reads_it_from_its_own_tasks(monkeypatch) -> None:
    """What ``coregister`` reads a large date through: each batch of blocks is computed from a graph
    of that date's blocks, not of every date."""
    stack = _stack(dates=4)
    seen: list[int] = []
    real = dask.compute

    def counting(*args, **kwargs):
        seen.append(_tasks(*[a for a in args if isinstance(a, da.Array)]))
        return real(*args, **kwargs)

    monkeypatch.setattr("changedetect._dask_cull.dask.compute", counting)
    img = BlockImage(stack[0], lambda bands: bands.mean(axis=0))
    np.testing.assert_allclose(img[0:SIDE, 0:2 * SIDE], stack[0, :, :SIDE, :2 * SIDE].mean(axis=0).compute())
    # 2 blocks x 2 bands x (the batch's slice, stack[0], the stack of dates, the date's stack, a read);
    # the 4 dates' whole graph holds 4 x 2 x 36 reads alone
    assert seen and max(seen) <= 2 * 2 * 5


def test_storing_the_first_date_tile_by_tile_carries_none_of_the_later_dates(monkeypatch) -> None:
    """``changedetect coregister`` writes each aligned date in its own call, a tile at a time."""
    from changedetect.io import raster

    stack = _stack(dates=4)
    sizes: list[int] = []
    real = raster.da.store

    def store(sources, targets, **kwargs):
        sizes.append(_tasks(*sources))
        return real(sources, targets, **kwargs)

    monkeypatch.setattr(raster.da, "store", store)
    out = np.full(stack.shape[1:], np.nan)

    class Target:
        def __setitem__(self, key, block):
            out[key] = block

    raster.store_drained([stack[0]], [Target()], tile=2 * SIDE)
    np.testing.assert_array_equal(out, stack[0].compute())
    # 9 tiles of 2 x 2 blocks: per band a tile's slice, stack[0], the stack of dates, the date's stack
    # and a read of each block; the 4 dates hold 4 x 2 x 36 reads alone
    assert len(sizes) == 9 and max(sizes) <= 2 * 4 * 5
