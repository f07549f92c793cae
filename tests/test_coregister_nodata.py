"""Matching beside missing pixels (changedetect._registration.nodata): a nodata edge both dates share
must not vote for "no shift", in the global estimate or in a tie-point window."""

from __future__ import annotations

import numpy as np
import pytest

from changedetect._registration.field import FieldParams, _match
from changedetect._registration.nodata import MIN_SIDE, covered_box
from changedetect._registration.synthetic import displace, textured_scene
from changedetect.coregister import estimate_shift

MARGIN = 16


def _pair(shift: tuple[float, float], size: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    img = textured_scene((size + 2 * MARGIN, size + 2 * MARGIN), seed=seed)
    mov = displace(img, lambda r, c: (np.full(r.shape, shift[0]), np.full(r.shape, shift[1])))
    crop = (slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    return img[crop].astype(np.float64), mov[crop].astype(np.float64)


def test_an_all_valid_window_is_not_cropped() -> None:
    assert covered_box(np.ones((64, 80), bool)) is None


@pytest.mark.parametrize(("top", "left", "right", "expected"), [
    (30, 0, 0, (98, 96)),  # a margin along one side
    (0, 0, 26, (128, 70)),  # along another
    (40, 25, 0, (88, 71)),  # an L-shaped corner: what both sides leave
])
def test_the_box_is_what_a_margin_or_a_corner_leaves(top: int, left: int, right: int,
                                                     expected: tuple[int, int]) -> None:
    valid = np.ones((128, 96), bool)
    valid[:top] = False
    valid[:, :left] = False
    valid[:, 96 - right:] = False
    box = covered_box(valid)
    assert box is not None and valid[box].all()
    assert (box[0].stop - box[0].start, box[1].stop - box[1].start) == expected


def test_too_little_left_or_scattered_holes_give_no_box() -> None:
    valid = np.zeros((128, 128), bool)
    valid[:, :MIN_SIDE - 1] = True  # a strip narrower than a match needs
    assert covered_box(valid) is None
    holes = np.ones((128, 128), bool)
    holes[::16, ::16] = False  # a grid of single missing pixels: no big box is free of them
    assert covered_box(holes) is None


@pytest.mark.parametrize("shift", [(2.3, -1.4), (0.4, 0.7), (-1.2, 0.3)])
def test_a_shared_nodata_corner_does_not_pull_the_global_shift_to_zero(shift: tuple[float, float]) -> None:
    ref, mov = _pair(shift, 256)
    r, c = np.mgrid[:256, :256]
    nodata = (r < 90) | (c < 60)  # both dates clipped to one area: the edge is at the same pixels
    ref[nodata] = np.nan
    mov[nodata] = np.nan
    est = estimate_shift(ref, mov)
    assert est.reliable
    assert np.hypot(est.dx - shift[0], est.dy - shift[1]) < 0.03


def test_a_tie_point_window_beside_a_shared_edge_is_unbiased_and_placed_in_its_box() -> None:
    ref, mov = _pair((1.7, -0.9), 128, seed=5)
    ref[:, :30] = np.nan  # a swath edge both dates share (23 % of the window)
    mov[:, :30] = np.nan
    (dx, dy, _, ok), texture, (row, col) = _match(ref, mov, FieldParams())
    assert ok and texture > 0
    assert np.hypot(dx - 1.7, dy + 0.9) < 0.05
    assert col > 30 + 10  # the point the shift applies to lies where both dates have data


def test_a_window_where_one_date_alone_misses_pixels_is_matched_whole() -> None:
    """One nodata edge aligns with nothing: the window is not cropped (a border tie point keeps all
    of the reference's texture), and the estimate is unbiased."""
    ref, mov = _pair((1.7, -0.9), 128, seed=5)
    mov[:, :3] = np.nan  # the moving date read beyond the scene's border
    (dx, dy, _, ok), _, (row, col) = _match(ref, mov, FieldParams())
    assert ok and np.hypot(dx - 1.7, dy + 0.9) < 0.05
