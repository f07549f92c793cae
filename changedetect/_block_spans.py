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
    from changedetect._detect_engine import DetectConfig, _Loaded

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


def window_grids(models: list[_Loaded], config: DetectConfig) -> list[tuple[int, int]]:
    """Each model's ``(window, overlap)`` as detection runs it (the card's window unless ``config``'s)."""
    from changedetect._detect_engine import _Runner

    return [(r.window, r.overlap) for r in (_Runner(m, config) for m in models)]


__all__ = ["Span", "aligned_spans", "spans", "window_grids"]
