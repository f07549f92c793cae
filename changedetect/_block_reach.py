"""What a block of ``changedetect run`` may have decided on a cut structure (private;
:func:`changedetect._pipeline_blocks._held_whole`).

A block reads a structure larger than its held pixels cut, and may decide it otherwise than the
whole scene does: its footprint's outline (H115), but also what leaves no footprint at all, a
presence-check object rejected for want of the network's hint or of size on the part the block
holds, or a footprint ``min_presence`` drops for want of a building there.  The pixel bounds of
what a block judged, footprints or not, tell :func:`changedetect._pipeline_blocks._held_whole`
which reach past the held pixels, so that it reads the block again, larger, for them too:

- :func:`blob_bounds`, the blobs the vectoriser traces footprints from (those ``min_presence``
  drops included): the probability's hysteresis, opening and closing as
  :func:`changedetect._vectorize_raster.trace_strip` makes them (a plain closing: it joins at
  least as much as one that keeps apart a building that appeared and one that went);
- :class:`Watched`, a :class:`~changedetect.presence.DatePresence` that keeps the bounds of every
  object its check examined (:func:`object_bounds`: those :func:`changedetect.presence._appeared`
  labels, confirmed or not).

Each is a superset of what can become a footprint: a block is read again at worst for a blob or
an object that the whole scene rejects too (time, within the cap), never left cut for want of one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from changedetect._vectorize_raster import _disk, close_within, hysteresis
from changedetect.presence import DatePresence, _rough

if TYPE_CHECKING:
    import xarray as xr

    from changedetect._vectorize_config import VectorizeConfig


def _bounds(labels: np.ndarray) -> list[tuple[int, int, int, int]]:
    return [(s[0].start, s[0].stop, s[1].start, s[1].stop) for s in ndimage.find_objects(labels) if s is not None]


def _array(rows: list[tuple[int, int, int, int]]) -> np.ndarray:
    return np.asarray(rows, dtype=float).reshape(-1, 4)


def object_bounds(before: np.ndarray, after: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """``(n, 4)`` pixel bounds ``(row0, row1, col0, col1)`` (ends exclusive) of the objects the
    presence check labels on a pair (building probabilities ``before``, ``after``, the network's
    ``prob``): a building come, then a building gone, on the pixels valid on all three."""
    b, a, p = (np.asarray(x, dtype=np.float32) for x in (before, after, prob))
    valid = np.isfinite(b) & np.isfinite(a) & np.isfinite(p)
    b, a = (np.where(valid, x, np.float32(0)) for x in (b, a))
    rows: list[tuple[int, int, int, int]] = []
    for gone, stands in ((b, a), (a, b)):  # the presence check's own objects (presence._appeared)
        rows += _bounds(ndimage.label(ndimage.binary_opening(_rough(gone, stands, valid)))[0])
    return _array(rows)


class Watched(DatePresence):
    """A :class:`~changedetect.presence.DatePresence` that keeps the pixel bounds of the objects
    its check examined on each pair it checked (:func:`object_bounds`), in :meth:`bounds`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._objects: list[np.ndarray] = []

    def confirm(self, i: int, j: int, prob: np.ndarray, threshold: float = 0.5, *,
                any_season: bool = False, decided: np.ndarray | None = None) -> np.ndarray:
        out = super().confirm(i, j, prob, threshold, any_season=any_season, decided=decided)
        if out is not prob:  # checked (an unchecked pair's raster comes back as it is)
            self._objects.append(object_bounds(self.before(i, j), self.after(i, j), prob))
        return out

    def bounds(self) -> np.ndarray:
        """``(n, 4)`` every checked pair's objects, as :func:`object_bounds`."""
        return np.concatenate(self._objects) if self._objects else _array([])


def blob_bounds(prob: xr.DataArray, config: VectorizeConfig) -> np.ndarray:
    """``(n, 4)`` pixel bounds ``(row0, row1, col0, col1)`` (ends exclusive) of the blobs of
    ``prob`` that footprints are traced from, each holding whole every footprint traced in it."""
    config = config.for_probability(prob)
    assert config.threshold is not None
    low = config.threshold if config.low_threshold is None else config.low_threshold
    mask = hysteresis(np.nan_to_num(np.asarray(prob.values, dtype=np.float32), nan=0.0), config.threshold, low)
    if config.opening_px:
        mask = ndimage.binary_opening(mask, structure=_disk(config.opening_px))
    if config.closing_px:
        mask = close_within(mask, config.closing_px)
    return _array(_bounds(ndimage.label(mask)[0]))


def over_and_near(px: np.ndarray, core: tuple[tuple[int, int], tuple[int, int]],
                  region: tuple[tuple[int, int], tuple[int, int]], shape: tuple[int, int],
                  margin: int) -> np.ndarray:
    """Which pixel bounds ``px`` (``(n, 4)``, scene pixels, ends exclusive) overlap ``core`` and
    come within ``margin`` pixels of ``region``'s edge where it is not the scene's."""
    (r0, r1), (c0, c1) = core
    (y0, y1), (x0, x1) = region
    over = (px[:, 0] < r1) & (px[:, 1] > r0) & (px[:, 2] < c1) & (px[:, 3] > c0)
    near = (((px[:, 0] < y0 + margin) & (y0 > 0)) | ((px[:, 1] > y1 - margin) & (y1 < shape[0]))
            | ((px[:, 2] < x0 + margin) & (x0 > 0)) | ((px[:, 3] > x1 - margin) & (x1 < shape[1])))
    return np.asarray(over & near, dtype=bool)


__all__ = ["Watched", "blob_bounds", "object_bounds", "over_and_near"]
