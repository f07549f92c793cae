"""Pair synthesis: labels agree with what was pasted and removed."""

from __future__ import annotations

import numpy as np

from changedetect.training.datasets import LabelledImage
from changedetect.training.synth import (
    Photometry,
    SynthConfig,
    flip_rot,
    make_pair,
    paste_instance,
    remove_instance,
)

QUIET = SynthConfig(size=96, gsd_range_m=(0.5, 0.5), p_pairing=0.0, nuisance=0.0, misreg_px=0.0,
                    p_jpeg=0.0, p_ground_swap=0.0, max_paste=3, max_remove=2)


def _city(seed: int, *, n: int = 6, size: int = 128) -> LabelledImage:
    """Grey ground with textured noise and bright rectangular roofs."""
    rng = np.random.default_rng(seed)
    img = (90 + rng.normal(0, 4, (3, size, size))).clip(0, 255)
    mask = np.zeros((size, size), bool)
    for _ in range(n):
        r, c = rng.integers(4, size - 20, 2)
        h, w = rng.integers(6, 14, 2)
        mask[r:r + h, c:c + w] = True
    img[:, mask] = np.array([220, 120, 90])[:, None]
    return LabelledImage(f"city{seed}", img.astype(np.uint8), mask, 0.5, "test")


def test_copy_paste_label_is_union_of_changed_footprints() -> None:
    images = [_city(1), _city(2)]
    for k in range(8):
        p = make_pair(images, np.random.default_rng(k), QUIET)
        assert p.mode == "copy_paste"
        union = np.zeros_like(p.label)
        for foot in p.changed:
            union |= foot
            # the two dates really differ inside every changed footprint
            assert np.abs(p.a - p.b)[:, foot].mean() > 0.05
        np.testing.assert_array_equal(p.label, union)


def test_unchanged_pixels_far_from_changes_are_identical_without_nuisance() -> None:
    from scipy import ndimage as ndi

    images = [_city(3), _city(4)]
    p = make_pair(images, np.random.default_rng(5), QUIET)
    far = ~ndi.binary_dilation(p.label, iterations=14)  # beyond shadows and blending
    # only the global photometry differs there; undo it by comparing standardised dates
    a = (p.a - p.a[:, far].mean(axis=1)[:, None, None]) / (p.a[:, far].std(axis=1)[:, None, None] + 1e-6)
    b = (p.b - p.b[:, far].mean(axis=1)[:, None, None]) / (p.b[:, far].std(axis=1)[:, None, None] + 1e-6)
    assert np.abs(a - b)[:, far].mean() < 0.05


def test_pairing_label_is_xor_of_masks() -> None:
    empty = LabelledImage("empty", np.full((3, 96, 96), 80, np.uint8), np.zeros((96, 96), bool), 0.5, "t")
    full = LabelledImage("full", np.full((3, 96, 96), 200, np.uint8), np.ones((96, 96), bool), 0.5, "t")
    cfg = SynthConfig(size=64, gsd_range_m=(0.5, 0.5), p_pairing=1.0, nuisance=0.0, misreg_px=0.0,
                      p_jpeg=0.0)
    for k in range(4):
        p = make_pair([empty, full], np.random.default_rng(k), cfg, weights=np.array([0.5, 0.5]))
        same_place = p.sources[0] == p.sources[1]
        assert p.label.all() != same_place


def test_paste_and_remove_footprints() -> None:
    rng = np.random.default_rng(0)
    dst = np.full((3, 64, 64), 0.3, np.float32)
    src = np.full((3, 64, 64), 0.3, np.float32)
    src_mask = np.zeros((64, 64), bool)
    src_mask[10:20, 10:22] = True
    src[:, src_mask] = 0.9
    out, foot = paste_instance(dst, np.zeros((64, 64), bool), src, src_mask, rng)
    assert foot.sum() == src_mask.sum()
    assert out[:, foot].mean() > 0.6  # the roof arrived
    back, removed = remove_instance(out, foot, dst, np.zeros((64, 64), bool), rng)
    np.testing.assert_array_equal(removed, foot)
    assert abs(back[:, foot].mean() - 0.3) < 0.05  # ground again


def test_photometry_is_the_same_on_crops_and_statistics_samples() -> None:
    ph = Photometry.random(np.random.default_rng(1))
    x = np.random.default_rng(2).random((3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(ph(x).reshape(3, -1), ph(x.reshape(3, -1)))


def test_flip_rot_moves_all_arrays_alike() -> None:
    a = np.arange(16.0).reshape(1, 4, 4)
    b = a.copy()
    fa, fb = flip_rot([a, b], np.random.default_rng(3))
    np.testing.assert_array_equal(fa, fb)
