"""A large matching image computed block by block where it is read, never whole (H124).

A date's matching image (its material edges, its band mean, one band) larger than
``coregister._IN_MEMORY_PIXELS`` is only ever read in windows: the global shift's few windows
of 256 px and the tie points' windows of 128 px, at most about 900 of them however large the
scene.  :class:`BlockImage` computes the dask blocks under the windows asked for, once each,
appends them to a temporary file (an all-NaN block is not stored: a sparse mosaic's empty tiles),
and reads the windows back from it.  Memory holds the windows and the blocks of one
batch; disk the blocks read, not the grid: a 200 000 px square city of which a few districts
hold data costs what those districts and the windows' blocks cost (``benchmarks/coregister_sparse.py``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from typing import Any

import dask.array as da
import numpy as np

from changedetect._dask_cull import compute

#: Blocks computed in one call of dask (their results are held until it returns).
_BATCH = 8


class BlockImage:
    """A 2-D float image read like a numpy array (``img[r0:r1, c0:c1]``, ``img[r0:r1]``, ``np.asarray``)
    whose blocks are computed on first read and appended to an anonymous temporary file.

    ``source``: a lazy ``(h, w)`` image or ``(b, h, w)`` date; its blocks (``source``'s chunks in ``y``
    and ``x``) are ``fn`` of the source under the block and ``halo`` pixels around it (fewer at the image's
    edge, as ``dask.array.map_overlap`` with ``boundary="none"`` gives them), the halo then cut off; ``fn``
    maps ``(b, h', w')`` or ``(h', w')`` numpy to ``(h', w')``.  Each batch of blocks is one slice of
    ``source`` per block: the graph dask culls is the source's, never an overlap graph over the whole grid
    (at 200 000 px a side a map_overlap of the date added a gigabyte of graph per image).
    """

    def __init__(self, source: da.Array, fn: Callable[[np.ndarray], np.ndarray] | None = None, *,
                 halo: int = 0, dtype: Any = np.float32) -> None:
        if source.ndim not in (2, 3):
            raise ValueError(f"a BlockImage is made from a 2-D image or a 3-D date, got shape {source.shape}")
        self._source, self._fn, self._halo = source, fn, halo
        #: float64 for a float64 image, else float32 (as the matching images are)
        self.dtype = np.dtype(np.float64 if np.dtype(dtype) == np.float64 else np.float32)
        self.shape: tuple[int, int] = (int(source.shape[-2]), int(source.shape[-1]))
        self.ndim = 2
        self._rows = np.cumsum((0, *source.chunks[-2]))
        self._cols = np.cumsum((0, *source.chunks[-1]))
        nby, nbx = len(self._rows) - 1, len(self._cols) - 1
        self._done = np.zeros((nby, nbx), dtype=bool)
        self._empty = np.zeros((nby, nbx), dtype=bool)  # all NaN: not stored, read as NaN
        # where each stored block starts in the file: blocks are appended as they are computed, so the
        # file is as large as the blocks read, never the grid (a 200 000 px city's grid of float32 is
        # 160 GB, which a file-size limit or a file system without sparse files would refuse)
        self._offset = np.full((nby, nbx), -1, dtype=np.int64)
        self._end = 0
        self._file = tempfile.TemporaryFile()  # noqa: SIM115  (lives as long as the image; deleted when collected)

    @property
    def blocks_computed(self) -> int:
        """How many of the image's dask blocks have been computed (each at most once)."""
        return int(self._done.sum())

    @property
    def blocks(self) -> int:
        """How many dask blocks the image has."""
        return int(self._done.size)

    def prefetch(self, regions: Iterable[tuple[int, int, int, int]]) -> None:
        """Compute the blocks under ``regions`` (``(r0, r1, c0, c1)``, clipped to the image) not computed
        yet, a batch at a time: a strip of windows read one by one then costs one call of dask."""
        needed: dict[tuple[int, int], None] = {}
        for r0, r1, c0, c1 in regions:
            for block in self._under(r0, r1, c0, c1):
                if not self._done[block]:
                    needed[block] = None
        todo = list(needed)
        for k in range(0, len(todo), _BATCH):
            batch = todo[k:k + _BATCH]
            spans = [self._span(i, j) for i, j in batch]
            reads = compute(*[self._source[..., r0:r1, c0:c1] for (r0, r1, c0, c1), _ in spans])
            for (i, j), (_, (top, left)), read in zip(batch, spans, reads, strict=True):
                values = np.asarray(self._fn(read) if self._fn is not None else read)
                h, w = int(self._rows[i + 1] - self._rows[i]), int(self._cols[j + 1] - self._cols[j])
                self._store(i, j, values[top:top + h, left:left + w].astype(self.dtype, copy=False))

    def _span(self, i: int, j: int) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
        """The source rows and columns block ``(i, j)`` is computed from (its halo clipped to the image),
        and where the block starts in them."""
        r0, c0 = int(self._rows[i]), int(self._cols[j])
        top, left = min(self._halo, r0), min(self._halo, c0)
        r1 = min(int(self._rows[i + 1]) + self._halo, self.shape[0])
        c1 = min(int(self._cols[j + 1]) + self._halo, self.shape[1])
        return (r0 - top, r1, c0 - left, c1), (top, left)

    def __getitem__(self, key: Any) -> np.ndarray:
        rows, cols = (key, slice(None)) if not isinstance(key, tuple) else key
        if not isinstance(rows, slice) or not isinstance(cols, slice):
            raise TypeError("a BlockImage is read by slices: img[r0:r1, c0:c1]")
        r0, r1, rstep = rows.indices(self.shape[0])
        c0, c1, cstep = cols.indices(self.shape[1])
        r1, c1 = max(r1, r0), max(c1, c0)
        self.prefetch([(r0, r1, c0, c1)])
        out = np.empty((r1 - r0, c1 - c0), dtype=self.dtype)
        n, fd = self.dtype.itemsize, self._file.fileno()
        for i, j in self._under(r0, r1, c0, c1):
            br0, bc0 = int(self._rows[i]), int(self._cols[j])
            bw = int(self._cols[j + 1]) - bc0
            a0, a1 = max(br0, r0), min(int(self._rows[i + 1]), r1)  # the rows and columns of both
            b0, b1 = max(bc0, c0), min(bc0 + bw, c1)
            target = out[a0 - r0:a1 - r0, b0 - c0:b1 - c0]
            if self._empty[i, j]:
                target[...] = np.nan
            elif b0 == bc0 and b1 == bc0 + bw:  # the block's whole width: one read
                start = int(self._offset[i, j]) + (a0 - br0) * bw * n
                target[...] = np.frombuffer(os.pread(fd, (a1 - a0) * bw * n, start), self.dtype).reshape(-1, bw)
            else:
                for r in range(a0, a1):
                    start = int(self._offset[i, j]) + ((r - br0) * bw + b0 - bc0) * n
                    target[r - a0] = np.frombuffer(os.pread(fd, (b1 - b0) * n, start), self.dtype)
        return out[::rstep, ::cstep] if rstep != 1 or cstep != 1 else out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self[:, :]
        return out if dtype is None else out.astype(dtype)

    def _under(self, r0: int, r1: int, c0: int, c1: int) -> list[tuple[int, int]]:
        """The blocks ``(i, j)`` that rows ``r0:r1`` and columns ``c0:c1`` (clipped) touch."""
        r0, r1 = max(r0, 0), min(r1, self.shape[0])
        c0, c1 = max(c0, 0), min(c1, self.shape[1])
        if r1 <= r0 or c1 <= c0:
            return []
        i0, i1 = np.searchsorted(self._rows, r0, "right") - 1, np.searchsorted(self._rows, r1, "left")
        j0, j1 = np.searchsorted(self._cols, c0, "right") - 1, np.searchsorted(self._cols, c1, "left")
        return [(i, j) for i in range(int(i0), int(i1)) for j in range(int(j0), int(j1))]

    def _store(self, i: int, j: int, values: np.ndarray) -> None:
        self._done[i, j] = True
        if np.isnan(values).all():
            self._empty[i, j] = True
            return
        data = np.ascontiguousarray(values, dtype=self.dtype).tobytes()
        self._offset[i, j] = self._end
        os.pwrite(self._file.fileno(), data, self._end)
        self._end += len(data)


def prefetch(img: Any, regions: Iterable[tuple[int, int, int, int]]) -> None:
    """:meth:`BlockImage.prefetch` when ``img`` is one (a numpy array needs nothing)."""
    if isinstance(img, BlockImage):
        img.prefetch(regions)


__all__ = ["BlockImage", "prefetch"]
