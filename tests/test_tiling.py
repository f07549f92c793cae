"""Windows cover the scene exactly; blending is exact for constants and continuous."""

from __future__ import annotations

import numpy as np
import pytest

from changedetect.tiling import (
    StripAccumulator,
    Window,
    blend_weight,
    iter_blocks,
    offsets,
    windows,
)


@pytest.mark.parametrize(("size", "window", "overlap"), [(1000, 512, 64), (512, 512, 64), (100, 512, 64),
                                                       (1025, 256, 32), (700, 128, 0)])
def test_offsets_cover_axis(size: int, window: int, overlap: int) -> None:
    starts = offsets(size, window, overlap)
    length = min(window, size)
    assert starts[0] == 0
    assert starts[-1] + length == size  # last window snapped to the border
    assert all(b > a for a, b in zip(starts, starts[1:], strict=False))
    # consecutive windows overlap by at least `overlap` (no gaps)
    assert all(a + length - b >= overlap for a, b in zip(starts, starts[1:], strict=False))


def test_offsets_example_and_bad_args() -> None:
    assert offsets(1000, 512, 64) == [0, 448, 488]
    with pytest.raises(ValueError, match="overlap"):
        offsets(100, 32, 32)
    with pytest.raises(ValueError, match="window"):
        offsets(100, 0, 0)


@pytest.mark.parametrize("shape", [(300, 520), (64, 64), (257, 129)])
def test_windows_cover_scene_exactly(shape: tuple[int, int]) -> None:
    count = np.zeros(shape, dtype=int)
    for w in windows(shape, 128, 16):
        assert w.row >= 0 and w.row + w.height <= shape[0]
        assert w.col >= 0 and w.col + w.width <= shape[1]
        count[w.slices] += 1
    assert count.min() >= 1


def test_weight_flat_on_scene_border_ramped_inside() -> None:
    shape = (300, 300)
    first = Window(0, 0, 128, 128)
    w = blend_weight(first, shape, 32)
    assert w[0, 0] == pytest.approx(1.0)  # scene corner: not down-weighted
    assert w[64, -1] < 0.01 and w[-1, 64] < 0.01  # faces a neighbour: ramps to ~0
    assert w.min() > 0


def _blend(shape: tuple[int, int], window: int, overlap: int, fn) -> np.ndarray:  # type: ignore[no-untyped-def]
    acc = StripAccumulator(shape, overlap)
    out = np.full(shape, -1.0, dtype=np.float32)
    for row, nxt in iter_blocks(shape, window, overlap):
        for w in row:
            acc.add(w, fn(w))
        top, rows = acc.flush(nxt)
        out[top : top + rows.shape[0]] = rows
    return out


def test_constant_prediction_blends_to_constant() -> None:
    out = _blend((333, 517), 128, 32, lambda w: np.full((w.height, w.width), 0.7, np.float32))
    np.testing.assert_allclose(out, 0.7, rtol=1e-6)


def test_window_independent_field_is_reproduced() -> None:
    field = np.random.default_rng(0).random((300, 410)).astype(np.float32)
    out = _blend(field.shape, 96, 24, lambda w: field[w.slices])
    np.testing.assert_allclose(out, field, rtol=1e-5)


def test_random_per_window_predictions_are_continuous() -> None:
    """Each window predicts its own constant: the blend changes smoothly across borders."""
    rng = np.random.default_rng(1)
    out = _blend((400, 400), 128, 48, lambda w: np.full((w.height, w.width), rng.random(), np.float32))
    jump = max(np.abs(np.diff(out, axis=0)).max(), np.abs(np.diff(out, axis=1)).max())
    assert jump < 0.1  # a hard seam between two random constants would jump by ~0.3 on average


def test_invalid_pixels_become_nan() -> None:
    shape = (64, 64)
    acc = StripAccumulator(shape, 8)
    valid = np.ones(shape, bool)
    valid[10:20, 10:20] = False
    acc.add(Window(0, 0, 64, 64), np.full(shape, 0.5, np.float32), valid)
    _, rows = acc.flush(64)
    assert np.isnan(rows[10:20, 10:20]).all()
    assert np.isfinite(rows[~(~valid)]).all()
