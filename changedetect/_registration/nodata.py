"""Matching beside missing pixels: the box of a window pair that both dates cover.

Phase correlation sees a missing-data edge as an edge.  Where both dates lack pixels next to each
other (both clipped to one area of interest, a swath edge shared on one grid), the two edges sit at
nearly the same place in both windows and vote for *no shift*: next to an L-shaped nodata margin a
window's estimate was 0.2 px short of the true shift, a 256 px scene's global shift 0.08 px short,
and the local field bent by up to 0.34 px (``tests/test_coregister_nodata.py``).  Zeroing the
gradient near missing pixels does not help: the step from texture to zero is itself a fixed edge.
What does is not to look at the edges at all: when *both* windows miss pixels, the shift is measured
on the largest box inside the window that both dates cover, if that box is big enough to match
(:data:`MIN_SHARE` of the window, :data:`MIN_SIDE` pixels a side).

A window where only one date misses pixels (a tie point at the scene's border, read beyond it at
the integer part of the global shift; a cloud masked on one date) is matched as before, the gradient
zeroed near the missing pixels: one edge has nothing to align with, so it biases nothing, and
cropping those windows too changed the sample city's tie points by a few hundredths of a pixel, in
both directions, and with them the cross-validated smoothing of its field (0.094 -> 0.114 px median
on the July date, ``benchmarks/coregistration.py --sample sample_tiles``).  Missing pixels scattered
inside a window leave no big box; there, too, the gradient is zeroed near them as before.
"""

from __future__ import annotations

import numpy as np

#: The covered box must hold at least this share of the window's pixels to be matched alone.
MIN_SHARE = 0.25
#: ... and be at least this many pixels on each side.
MIN_SIDE = 32


def covered_box(valid: np.ndarray) -> tuple[slice, slice] | None:
    """A box of ``valid`` (2-D bool) with no False pixel, found by peeling off, one at a time, the
    outer row or column with the largest share of False pixels; ``None`` when ``valid`` is all True
    (nothing to crop) or when the box is smaller than :data:`MIN_SHARE` / :data:`MIN_SIDE`.

    Peeling finds the largest box when the missing pixels reach in from the window's sides (a
    margin, a corner, a swath edge), which is where a shared edge biases the match.
    """
    if valid.all():
        return None
    h, w = valid.shape
    bad = ~valid
    r0, r1, c0, c1 = 0, h, 0, w
    rows = bad.sum(axis=1).astype(np.int64)  # missing pixels per row / column of the current box
    cols = bad.sum(axis=0).astype(np.int64)
    while r1 - r0 >= MIN_SIDE and c1 - c0 >= MIN_SIDE:
        if rows[r0:r1].sum() == 0:
            break
        shares = (rows[r0] / (c1 - c0), rows[r1 - 1] / (c1 - c0), cols[c0] / (r1 - r0), cols[c1 - 1] / (r1 - r0))
        side = int(np.argmax(shares))
        if side == 0:
            cols[c0:c1] -= bad[r0, c0:c1]
            r0 += 1
        elif side == 1:
            r1 -= 1
            cols[c0:c1] -= bad[r1, c0:c1]
        elif side == 2:
            rows[r0:r1] -= bad[r0:r1, c0]
            c0 += 1
        else:
            c1 -= 1
            rows[r0:r1] -= bad[r0:r1, c1]
    if min(r1 - r0, c1 - c0) < MIN_SIDE or (r1 - r0) * (c1 - c0) < MIN_SHARE * h * w:
        return None
    return slice(r0, r1), slice(c0, c1)


def both_finite(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Where both ``a`` and ``b`` (same shape) have data."""
    return np.isfinite(a) & np.isfinite(b)
