"""Where a date's shifts and radiometric fit are measured: windows in the data both dates share.

The measuring windows sit on a regular grid over the scene.  Where a date covers only part of its
grid (a new flight over one ward of a district, a city-wide mosaic of a few flown districts), most of
them fall on no data, fail to match, and the date is left unregistered although it has plenty of
texture where it has data.  :func:`place_windows` keeps each window that is mostly on data and moves
each other one to the nearest place that is, without overlapping another: on a fully covered scene
it changes nothing.  The tie points of the local field (:func:`window_origins`) are spread over the
covered area alone, as densely as over a whole scene of that area.

Coverage is a coarse ``(h', w')`` bool image on the scene's extent (any size; cell ``(i, j)`` covers
rows ``i * h / h'`` to ``(i + 1) * h / h'``): from the matching images themselves when they are in
memory (:func:`finite_cover`), else from the files' decimated reads
(:meth:`changedetect.io.SeriesSource.coverage`), since reading a large date whole to find its data is
what co-registration avoids.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from changedetect._registration.field import FieldParams

#: A window at least this share on data stays where it is; a moved one lands where the share is at
#: least this, or where it is highest.
MIN_SHARE = 0.5
#: Candidate places per axis at most (their step is half a window, or coarser on a huge grid).
_MAX_STEPS = 1000
#: Cells per window side of the coverage :func:`finite_cover` derives from in-memory images.
_CELLS_PER_WINDOW = 8


def regular_origins(shape: tuple[int, int], size: int, n: int) -> list[tuple[int, int]]:
    """Upper-left corners of an ``n`` x ``n`` grid of ``size`` px windows, evenly inside ``shape``
    (its border excluded); ``n == 1``: the central window."""
    h, w = shape
    if n > 1:
        rows = np.linspace(0, h - min(size, h), n + 2)[1:-1].round().astype(int)
        cols = np.linspace(0, w - min(size, w), n + 2)[1:-1].round().astype(int)
    else:
        rows, cols = np.array([(h - min(size, h)) // 2]), np.array([(w - min(size, w)) // 2])
    return [(int(r), int(c)) for r in rows for c in cols]


def finite_cover(ref: Any, mov: Any, size: int) -> np.ndarray | None:
    """Where two in-memory images both have data, sampled every ``size / 8`` px; ``None`` for an image
    read window by window (a :class:`~changedetect._registration.blocks.BlockImage`) or a pair without
    no data (nothing to move the windows away from)."""
    if not (isinstance(ref, np.ndarray) and isinstance(mov, np.ndarray)):
        return None
    step = max(1, size // _CELLS_PER_WINDOW)
    cover = np.isfinite(ref[::step, ::step]) & np.isfinite(mov[::step, ::step])
    return None if cover.all() else cover


def check_coverage(coverage: Any, n_dates: int) -> np.ndarray | None:
    """``coverage`` as a bool array, ``(time, h', w')`` with one image per date or ``(h', w')`` for
    every date; a clear ``ValueError`` for any other shape (a coverage of another series)."""
    if coverage is None:
        return None
    cov = np.asarray(coverage, dtype=bool)
    if cov.ndim == 2 or (cov.ndim == 3 and cov.shape[0] == n_dates):
        return cov
    raise ValueError(f"coverage must be (time, y, x) bool with one image for each of the stack's {n_dates} "
                     f"dates, or (y, x) for all of them; got shape {cov.shape}: pass series.coverage(grid) "
                     "of the series the stack was read from")


def pair_cover(coverage: np.ndarray | None, ref: int, mov: int) -> np.ndarray | None:
    """``coverage`` (:func:`check_coverage`'s) for the pair ``ref``, ``mov``: True where both have data."""
    if coverage is None or coverage.ndim == 2:
        return coverage
    return coverage[ref] & coverage[mov]


def window_shares(cover: np.ndarray, shape: tuple[int, int], size: int, rows: np.ndarray,
                  cols: np.ndarray) -> np.ndarray:
    """Share of each window (upper-left ``rows[k]``, ``cols[k]``, ``size`` px) on ``cover``'s True
    cells, counting every cell the window touches."""
    h, w = shape
    ch, cw = cover.shape
    table = np.zeros((ch + 1, cw + 1), dtype=np.float64)
    table[1:, 1:] = np.cumsum(np.cumsum(cover, axis=0, dtype=np.float64), axis=1)
    i0 = np.clip(np.floor(rows * ch / h), 0, ch - 1).astype(int)
    i1 = np.clip(np.ceil((rows + size) * ch / h), i0 + 1, ch).astype(int)
    j0 = np.clip(np.floor(cols * cw / w), 0, cw - 1).astype(int)
    j1 = np.clip(np.ceil((cols + size) * cw / w), j0 + 1, cw).astype(int)
    total = table[i1, j1] - table[i0, j1] - table[i1, j0] + table[i0, j0]
    return total / ((i1 - i0) * (j1 - j0))


def place_windows(origins: Sequence[tuple[int, int]], shape: tuple[int, int], size: int,
                  cover: np.ndarray | None) -> list[tuple[int, int]]:
    """``origins`` (upper-left corners of ``size`` px windows in ``shape``), each mostly on no data
    moved to the nearest place on data (:data:`MIN_SHARE`) that overlaps no other window; kept where
    there is none.  ``cover``: see the module; ``None`` or all True returns ``origins`` unchanged."""
    origins = [(int(r), int(c)) for r, c in origins]
    if cover is None or cover.size == 0 or cover.all() or not cover.any():
        return origins
    h, w = shape
    size = min(size, h, w)
    shares = window_shares(cover, shape, size, np.array([r for r, _ in origins]), np.array([c for _, c in origins]))
    keep = shares >= MIN_SHARE
    if keep.all():
        return origins
    step_r = max(1, size // 2, math.ceil((h - size) / _MAX_STEPS))
    step_c = max(1, size // 2, math.ceil((w - size) / _MAX_STEPS))
    rr, cc = np.meshgrid(np.unique(np.r_[np.arange(0, h - size + 1, step_r), h - size]),
                         np.unique(np.r_[np.arange(0, w - size + 1, step_c), w - size]), indexing="ij")
    rr, cc = rr.ravel(), cc.ravel()
    share = window_shares(cover, shape, size, rr, cc)
    good = share >= min(MIN_SHARE, float(share.max()))
    if not good.any():
        return origins
    rr, cc, share = rr[good], cc[good], share[good]
    chosen = [o for o, k in zip(origins, keep, strict=True) if k]
    placed = list(origins)
    for k, (r, c) in enumerate(origins):
        if keep[k]:
            continue
        free = np.ones(rr.shape, dtype=bool)
        for r2, c2 in chosen:
            free &= (np.abs(rr - r2) >= size) | (np.abs(cc - c2) >= size)
        if not free.any():
            continue  # no room left on data: the window stays (and fails, as before)
        d = np.hypot(rr - r, cc - c) - 1e-6 * share  # the nearest; of equals, the better covered
        best = int(np.argmin(np.where(free, d, np.inf)))
        placed[k] = (int(rr[best]), int(cc[best]))
        chosen.append(placed[k])
    return placed


def window_origins(shape: tuple[int, int], params: FieldParams, cover: np.ndarray | None = None,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upper-left corners and sizes ``(rows, cols, sizes)`` of the matching windows.

    A grid of ``params.window`` windows (at most about ``params.max_windows``), plus a ring
    of half-size windows along the image border when ``params.edge_windows``, so that the
    field is measured, not extrapolated, within half a window of the edges.

    ``cover`` (coarse bool, True where both dates have data: see
    :mod:`changedetect._registration.windows`): the windows are spread over the covered area alone,
    as densely as over a whole scene of that area, and those mostly on no data are left out, so a
    date covering one ward of its grid is measured there at the full density, not by the few windows
    of a regular grid that fall on it.
    """
    h, w = shape
    area = covered_area(shape, cover)
    rows, cols, sizes = _grid_windows(shape, params, area or h * w)
    if area is None or cover is None:
        return rows, cols, sizes
    on = np.zeros(rows.shape, dtype=bool)
    for size in np.unique(sizes):
        at = sizes == size
        on[at] = window_shares(cover, shape, int(size), rows[at], cols[at]) >= MIN_SHARE
    return (rows[on], cols[on], sizes[on]) if on.any() else _grid_windows(shape, params, h * w)


def covered_area(shape: tuple[int, int], cover: np.ndarray | None) -> int | None:
    """Pixels of ``shape`` that ``cover`` (coarse bool) holds; ``None`` when it holds all or none."""
    if cover is None or cover.size == 0 or not cover.any() or cover.all():
        return None
    return max(1, int(round(float(cover.mean()) * shape[0] * shape[1])))


def _grid_windows(shape: tuple[int, int], params: FieldParams, area: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`window_origins` over the whole of ``shape`` spaced for ``params.max_windows`` on ``area`` px."""
    h, w = shape
    win = min(params.window, h, w)
    spacing = max(params.spacing, int(math.ceil(math.sqrt(area / params.max_windows))))

    def starts(n: int, size: int) -> np.ndarray:
        count = max(1, (n - size) // spacing + 1)
        return np.linspace(0, n - size, count).round().astype(int)

    r0, c0 = np.meshgrid(starts(h, win), starts(w, win), indexing="ij")
    rows, cols, sizes = [r0.ravel()], [c0.ravel()], [np.full(r0.size, win)]
    edge = win // 2
    if params.edge_windows and edge >= 48 and min(h, w) >= 2 * win:
        along_r, along_c = starts(h, edge), starts(w, edge)
        for r, c in ((np.zeros_like(along_c), along_c), (np.full_like(along_c, h - edge), along_c),
                     (along_r[1:-1], np.zeros_like(along_r[1:-1])), (along_r[1:-1], np.full_like(along_r[1:-1], w - edge))):
            rows.append(r)
            cols.append(c)
            sizes.append(np.full(r.size, edge))
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(sizes)


__all__ = ["MIN_SHARE", "check_coverage", "covered_area", "finite_cover", "pair_cover", "place_windows", "regular_origins",
           "window_origins", "window_shares"]
