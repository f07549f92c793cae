"""Where a scene larger than one block is cut (private): the cores and the pixels read around each,
shared by ``changedetect run`` (:mod:`changedetect._pipeline_blocks`) and ``detect --series``
(:mod:`changedetect._detect_series_blocks`).

:func:`spans` cuts an axis into equal cores of at most ``block`` pixels, each grown by a plain halo.
:func:`aligned_spans` grows each core so much more that every network window touching it is the
whole scene's window with the whole scene's blending weight (:mod:`changedetect.tiling`): a core's
probability is then the whole scene's up to float noise, and no seam runs along the cores' edges.
:func:`window_grids` gives the ``(window, overlap)`` of the models as detection runs them."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from changedetect._detect_engine import DetectConfig, ModelLike

Span = tuple[int, int]


def spans(size: int, block: int, halo: int) -> list[tuple[Span, Span]]:
    """``(core, outer)`` pixel ranges along one axis: equal cores of at most ``block`` covering
    ``size``, each grown by ``halo`` on both sides within ``[0, size)``."""
    n = -(-size // block)
    edges = np.linspace(0, size, n + 1).round().astype(int)
    return [((int(a), int(b)), (max(0, int(a) - halo), min(size, int(b) + halo))) for a, b in zip(edges, edges[1:], strict=False)]


def aligned_spans(size: int, block: int, halo: int, grids: list[tuple[int, int]],
                  exact: int = 0) -> list[tuple[Span, Span]]:
    """``(core, outer)`` pixel ranges along one axis: the cores of :func:`spans`, each read with at
    least ``halo`` around it (within ``[0, size)``) and so much more that every window of the
    networks' ``grids`` (``(window, overlap)`` each) that touches the core, or the ``exact`` pixels
    on either side of it, is, in the block, the whole scene's window with the whole scene's blending
    weight: the block starts on the windows' grid, at least ``overlap`` before that region (its first
    window's flat edge touches none of it), and ends where a window of the grid ends, past the last
    window that touches the region (no window pushed back from the block's end), or at the scene's
    end when its last window touches the region.  Grids of different windows or steps: the block
    starts on every step's grid and reaches the largest window past the region.

    ``exact=0``: the core's probability is the whole scene's (``detect --series`` writes the core
    only); ``changedetect run`` gives ``halo``, as a footprint kept in a core may reach that far
    past it and must be vectorised from the whole scene's probability."""
    if exact < 0:
        raise ValueError(f"exact must be >= 0, got {exact}")
    reach = max(0, halo - exact)  # read around the region, so that at least `halo` is read around the core
    return [((c0, c1), _outer(max(0, c0 - exact), min(size, c1 + exact), size, reach, grids))
            for (c0, c1), _ in spans(size, block, 0)]


def region_outer(r0: int, r1: int, size: int, grids: list[tuple[int, int]]) -> Span:
    """The pixels read so that every window of ``grids`` touching ``[r0, r1)`` is the whole
    scene's (:func:`aligned_spans` with ``exact`` covering the region): a block grown to hold a
    footprint whole (:func:`grown`)."""
    return _outer(r0, r1, size, 0, grids)


def held_region(r0: int, r1: int, size: int, grids: list[tuple[int, int]]) -> Span:
    """The largest ``[a, b)`` around ``[r0, r1)`` that :func:`region_outer` reads with the same
    pixels: every window of ``grids`` touching it is, in that block, the whole scene's window with
    the whole scene's weight (its probability the whole scene's), not ``[r0, r1)`` alone."""
    outer = region_outer(r0, r1, size, grids)
    lo, hi = 0, r0  # the least a with region_outer(a, r1)'s start the same (it grows with a)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if region_outer(mid, r1, size, grids)[0] == outer[0] else (mid + 1, hi)
    a = lo
    lo, hi = r1, size  # the greatest b with region_outer(a, b)'s end the same (it grows with b)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if region_outer(a, mid, size, grids) == outer else (lo, mid - 1)
    return a, lo


def grown(region: Span, core: Span, reached: tuple[float | None, float | None], size: int, step: int,
          cap: int) -> Span:
    """``region`` (the pixels whose probability a block holds as the whole scene's) grown past the
    ends a footprint ``reached`` (its least and greatest pixel, None for an end it does not reach)
    by ``step`` more, within ``[0, size)`` and at most ``cap`` pixels around ``core``."""
    r0, r1 = region
    lo, hi = reached
    if lo is not None:
        r0 = max(0, min(r0, math.floor(lo)) - step)
    if hi is not None:
        r1 = min(size, max(r1, math.ceil(hi)) + step)
    if r1 - r0 > cap:  # as much as the cap allows, the core in its middle but for the scene's edges
        spare = max(0, cap - (core[1] - core[0]))
        lo_cap, hi_cap = core[0] - spare // 2, core[1] + spare - spare // 2
        lo_cap, hi_cap = lo_cap - max(0, hi_cap - size), hi_cap + max(0, -lo_cap)
        r0, r1 = max(r0, lo_cap), min(r1, hi_cap)
    return min(r0, region[0]), max(r1, region[1])  # never less than it was


def _outer(r0: int, r1: int, size: int, halo: int, grids: list[tuple[int, int]]) -> Span:
    """The pixels read for the region ``[r0, r1)``: :func:`aligned_spans`'s rule."""
    if len(set(grids)) == 1:
        window, overlap = grids[0]
        step = window - overlap
        start = max(0, (r0 - max(halo, overlap)) // step * step)
        if size > window:  # a window of the grid, not one past the scene's last
            start = min(start, (size - window) // step * step)
        last = (r1 - 1) // step * step  # the last window of the grid that touches the region
        end = min(size, max(last, -(-(r1 + halo - window) // step) * step) + window)
        if size - window < r1:  # the scene's last window (pushed back from its end) touches the region
            end = size
        return start, end
    step = math.lcm(*(w - o for w, o in grids))
    reach = max(halo, *(w for w, _ in grids))
    return max(0, (r0 - reach) // step * step), min(size, r1 + reach)


def window_grids(models: list[ModelLike], config: DetectConfig) -> list[tuple[int, int]]:
    """Each model's ``(window, overlap)`` as detection runs it (the card's window unless ``config``'s)."""
    from changedetect._detect_engine import _Runner

    return [(r.window, r.overlap) for r in (_Runner(m, config) for m in models)]


__all__ = ["Span", "aligned_spans", "grown", "held_region", "region_outer", "spans", "window_grids"]
