"""Windows over a large scene, smooth blending weights and their accumulation.

A scene of ``(height, width)`` pixels is covered by square windows of
``window`` pixels that overlap by at least ``overlap`` pixels; the last window
of a row or column is snapped to the scene's border, so every window lies
inside the scene and every pixel is covered.  Each window's prediction is
multiplied by a weight that ramps smoothly (a raised cosine) from near zero to
one across the overlap on the sides that face another window, and is flat (one)
on the sides that lie on the scene's border, so the border of the *scene* is
never down-weighted.  The blended value of a pixel is the weighted sum of the
predictions of the windows covering it divided by the sum of their weights:
a constant prediction blends to the same constant, and the transition from one
window to the next is continuous, so no seam is visible.

:class:`StripAccumulator` holds only a horizontal strip of the scene (about
``window + step`` rows), hands back rows as soon as no later window can touch
them, and so keeps memory bounded whatever the scene's height.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = [
    "StripAccumulator",
    "Window",
    "blend_weight",
    "iter_blocks",
    "offsets",
    "window_rows",
    "windows",
]

#: smallest weight a ramp takes (at the far edge of an overlap), so that a pixel
#: covered by one window only still has a positive weight.
_RAMP_FLOOR = 1e-3


@dataclass(frozen=True)
class Window:
    """A window ``[row, row + height) x [col, col + width)`` of the scene."""

    row: int
    col: int
    height: int
    width: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices into a ``(..., y, x)`` array of the scene."""
        return slice(self.row, self.row + self.height), slice(self.col, self.col + self.width)


def offsets(size: int, window: int, overlap: int) -> list[int]:
    """Start offsets of windows of ``window`` pixels along an axis of ``size`` pixels.

    Consecutive windows overlap by at least ``overlap`` pixels; the last one ends
    exactly at ``size``.  When ``size <= window`` there is one window at 0 (it is
    then ``size`` pixels long).

    >>> offsets(1000, 512, 64)
    [0, 448, 488]
    """
    if window < 1:
        raise ValueError(f"window must be >= 1 pixel, got {window}")
    if not 0 <= overlap < window:
        raise ValueError(f"overlap must be in [0, window={window}), got {overlap}")
    if size <= window:
        return [0]
    step = window - overlap
    starts = list(range(0, size - window + 1, step))
    if starts[-1] + window < size:
        starts.append(size - window)
    return starts


def windows(shape: tuple[int, int], window: int, overlap: int) -> list[Window]:
    """All windows over a scene of ``shape = (height, width)``, row by row."""
    return [w for row in window_rows(shape, window, overlap) for w in row]


def window_rows(shape: tuple[int, int], window: int, overlap: int) -> list[list[Window]]:
    """Windows over a scene grouped by row offset (top to bottom, left to right)."""
    height, width = shape
    wh, ww = min(window, height), min(window, width)
    cols = offsets(width, window, overlap)
    return [
        [Window(r, c, wh, ww) for c in cols] for r in offsets(height, window, overlap)
    ]


def _ramp(length: int, overlap: int, *, start: bool, end: bool) -> np.ndarray:
    """1-D weight: raised-cosine ramps of ``overlap`` pixels at the flagged ends."""
    w = np.ones(length, dtype=np.float64)
    n = min(overlap, length // 2)
    if n > 0:
        t = (np.arange(n) + 0.5) / n  # in (0, 1)
        up = np.maximum(0.5 - 0.5 * np.cos(np.pi * t), _RAMP_FLOOR)
        if start:
            w[:n] = up
        if end:
            w[length - n :] = up[::-1]
    return w


def blend_weight(win: Window, shape: tuple[int, int], overlap: int) -> np.ndarray:
    """Blending weight ``(height, width)`` float32 of ``win`` inside a scene of ``shape``.

    Sides of the window on the scene's border get a flat weight of one; sides
    facing a neighbouring window ramp from about 0 to 1 over ``overlap`` pixels.
    """
    height, width = shape
    wy = _ramp(win.height, overlap, start=win.row > 0, end=win.row + win.height < height)
    wx = _ramp(win.width, overlap, start=win.col > 0, end=win.col + win.width < width)
    return np.outer(wy, wx).astype(np.float32)


class StripAccumulator:
    """Weighted accumulation of window predictions over a horizontal strip of a scene.

    Feed it the windows of one row offset after another (top to bottom) with
    :meth:`add`; after each row of windows call :meth:`flush` with the row offset
    of the next row of windows (or the scene's height at the end): it returns the
    finished rows ``(first_row, values (n, width) float32)``.  Memory is about
    ``2 * (window + step) * width * 4`` bytes whatever the scene's height.

    Parameters
    ----------
    shape
        ``(height, width)`` of the scene.
    overlap
        Overlap of the windows (the length of the blending ramps).
    """

    def __init__(self, shape: tuple[int, int], overlap: int) -> None:
        self.shape = shape
        self.overlap = overlap
        self._top = 0  # scene row of the buffer's first row
        self._sum = np.zeros((0, shape[1]), dtype=np.float32)
        self._wsum = np.zeros((0, shape[1]), dtype=np.float32)

    def _grow(self, bottom: int) -> None:
        rows = bottom - self._top
        if rows > self._sum.shape[0]:
            extra = rows - self._sum.shape[0]
            pad = np.zeros((extra, self.shape[1]), dtype=np.float32)
            self._sum = np.concatenate([self._sum, pad])
            self._wsum = np.concatenate([self._wsum, pad])

    def add(self, win: Window, pred: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Accumulate ``pred`` ``(win.height, win.width)`` (NaN-free where ``valid``)."""
        if win.row < self._top:
            raise ValueError(f"window at row {win.row} is above rows already flushed ({self._top})")
        self._grow(win.row + win.height)
        weight = blend_weight(win, self.shape, self.overlap)
        if valid is not None:
            weight = weight * valid
            pred = np.where(valid, pred, 0.0)
        r0 = win.row - self._top
        rows = slice(r0, r0 + win.height)
        cols = slice(win.col, win.col + win.width)
        self._sum[rows, cols] += weight * pred
        self._wsum[rows, cols] += weight

    def flush(self, upto: int) -> tuple[int, np.ndarray]:
        """Finish rows ``[top, upto)``: return ``(top, blended rows)``; NaN where no weight."""
        upto = min(upto, self.shape[0])
        n = max(upto - self._top, 0)
        self._grow(upto)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = self._sum[:n] / self._wsum[:n]
        out[self._wsum[:n] <= 0] = np.nan
        top = self._top
        self._sum = self._sum[n:].copy()
        self._wsum = self._wsum[n:].copy()
        self._top = upto
        return top, out.astype(np.float32, copy=False)


def iter_blocks(shape: tuple[int, int], window: int, overlap: int) -> Iterator[tuple[list[Window], int]]:
    """Each row of windows with the row offset of the next one (or the height at the end)."""
    rows = window_rows(shape, window, overlap)
    for i, row in enumerate(rows):
        nxt = rows[i + 1][0].row if i + 1 < len(rows) else shape[0]
        yield row, nxt
