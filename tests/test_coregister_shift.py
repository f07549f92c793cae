"""Global shift, local field, radiometry: the numpy building blocks of changedetect.coregister."""

from __future__ import annotations

import numpy as np
import pytest

from changedetect._registration.synthetic import SmoothWarp, displace, textured_scene, true_field
from changedetect.coregister import (
    apply_shift_field,
    estimate_shift,
    estimate_shift_field,
    normalize_radiometry,
)

MARGIN = 16


def _pair(shift: tuple[float, float], *, size: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    img = textured_scene((size + 2 * MARGIN, size + 2 * MARGIN), seed=seed)
    mov = displace(img, lambda r, c: (np.full(r.shape, shift[0]), np.full(r.shape, shift[1])))
    crop = (slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    return img[crop], mov[crop]


@pytest.mark.parametrize("shift", [(0.0, 0.0), (0.3, -0.7), (-4.25, 2.6), (9.4, -9.9)])
def test_known_subpixel_shift_is_recovered(shift: tuple[float, float]) -> None:
    ref, mov = _pair(shift)
    est = estimate_shift(ref, mov)
    assert est.reliable
    assert est.dx == pytest.approx(shift[0], abs=0.05)
    assert est.dy == pytest.approx(shift[1], abs=0.05)


def test_radiometric_differences_do_not_bias_the_shift() -> None:
    ref, mov = _pair((2.35, -1.6), seed=1)
    hazy = 0.55 * mov + 60.0 + np.random.default_rng(0).normal(0, 2.0, mov.shape)
    gamma = 255 * (np.clip(mov, 1, None) / np.nanmax(mov)) ** 0.6
    for other in (hazy, gamma, -mov):  # haze and gain, a non-linear curve, contrast inversion
        est = estimate_shift(ref, other)
        assert est.reliable
        assert (est.dx, est.dy) == pytest.approx((2.35, -1.6), abs=0.06)


def test_noise_and_a_different_place_are_unreliable() -> None:
    rng = np.random.default_rng(3)
    ref = textured_scene((256, 256), seed=4)
    for other in (rng.normal(size=(256, 256)), textured_scene((256, 256), seed=5)):
        est = estimate_shift(ref, other)
        assert not est.reliable
        assert est.reliability == 0.0


def test_a_too_large_shift_is_unreliable() -> None:
    ref, mov = _pair((9.0, 0.0))
    assert not estimate_shift(ref, mov, max_shift=5.0).reliable


def test_smooth_warp_is_recovered() -> None:
    size = 512
    img = textured_scene((size + 2 * MARGIN, size + 2 * MARGIN), seed=7, blocks=120)
    warp = SmoothWarp((size + 2 * MARGIN,) * 2, sx=1.7, sy=-2.2, ax=1.0, ay=0.8, fr=0.4, fc=0.3)
    mov = displace(img, warp)
    crop = (slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    ref, mov = img[crop], mov[crop]
    glob = estimate_shift(ref, mov)
    fld = estimate_shift_field(ref, mov, initial=(glob.dx, glob.dy))
    assert fld.n_kept >= 0.8 * fld.n_found
    rows, cols = np.meshgrid(np.arange(size) + MARGIN, np.arange(size) + MARGIN, indexing="ij")
    tx, ty = true_field(lambda r, c: warp(r, c), rows.astype(float), cols.astype(float))
    ex, ey = fld.dense(0, size, 0, size)
    err = np.hypot(ex - tx, ey - ty)[32:-32, 32:-32]
    assert np.percentile(err, 95) < 0.25
    aligned = apply_shift_field(mov, fld)
    inner = (slice(32, -32), slice(32, -32))
    before = np.nanmean(np.abs(mov[inner] - ref[inner]))
    after = np.nanmean(np.abs(aligned[inner] - ref[inner]))
    assert after < 0.25 * before


def test_changed_windows_are_rejected_as_outliers() -> None:
    ref, mov = _pair((1.3, 0.4), size=512, seed=8)
    changed = mov.copy()
    changed[100:228, 100:228] = textured_scene((128, 128), seed=99)  # a rebuilt district
    fld = estimate_shift_field(ref, changed, initial=(1.3, 0.4))
    dx, dy = fld.dense(0, 512, 0, 512)
    assert np.percentile(np.hypot(dx - 1.3, dy - 0.4), 99) < 0.15
    assert fld.n_kept < fld.n_found


def test_radiometric_gain_offset_on_pseudo_invariant_pixels() -> None:
    rng = np.random.default_rng(0)
    ref = rng.gamma(2.0, 200.0, size=(4, 128, 128))
    gain = np.array([0.8, 1.25, 0.9, 1.5])
    offset = np.array([50.0, -20.0, 10.0, 100.0])
    mov = (ref - offset[:, None, None]) / gain[:, None, None] + rng.normal(0, 4.0, ref.shape)
    mov[:, 20:60, 30:90] = rng.uniform(0, 2000, (4, 40, 60))  # changed roofs (15 %)
    mov[:, 100:110] *= 2.5  # a cloud bank
    fit = normalize_radiometry(ref, mov)
    assert fit.gain == pytest.approx(tuple(gain), rel=0.02)
    assert fit.offset == pytest.approx(tuple(offset), abs=6.0)
    assert 0.5 < fit.invariant_fraction < 0.9


@pytest.mark.parametrize("shift", [(0.3, -0.7), (-4.2, 3.99), (0.0, 0.0), (-7.5, 7.5)])
def test_constant_cubic_shift_matches_the_spline_warp(shift: tuple[float, float]) -> None:
    from changedetect._registration.shift import _shift_cubic, shift_image

    img = np.random.default_rng(1).normal(size=(120, 100))
    dx, dy = shift
    m = int(np.ceil(max(abs(dx), abs(dy)))) + 3
    crop = (slice(m, 120 - m), slice(m, 100 - m))
    np.testing.assert_allclose(_shift_cubic(img, dx, dy, crop), shift_image(img, dx, dy)[crop], atol=1e-9)
    img[40, 50] = np.nan  # missing pixels: the general warp (NaN around them)
    np.testing.assert_array_equal(np.isnan(_shift_cubic(img, dx, dy, crop)), np.isnan(shift_image(img, dx, dy)[crop]))


def test_material_edge_kernels_match_their_reference_forms() -> None:
    from scipy import ndimage

    from changedetect._registration.kernels import (
        gaussian,
        gradient2,
        min3,
        norm,
        order_statistics,
        percentiles,
        scratch,
    )
    from changedetect._registration.matching import _dark_levels, dark_level

    x = np.random.default_rng(2).gamma(2.0, 30.0, size=(3, 90, 70)).astype(np.float32)
    out, tmp = np.empty_like(x[0]), np.empty_like(x[0])
    for axis in (0, 1):
        expected = ndimage.minimum_filter1d(x[0], 3, axis=axis, mode="nearest")
        np.testing.assert_array_equal(min3(x[0], axis, out, tmp), expected)
    mean = x.mean(axis=0)
    assert _dark_levels(x, 0, 1) == (dark_level(mean), dark_level(x[0]), dark_level(x[1]))
    for n in (1, 2, 7, 6300):
        sample = x.reshape(3, -1)[:, :n].copy()
        expected = np.percentile(sample.astype(np.float64), [0.1, 99.0], axis=1).T
        np.testing.assert_array_equal(np.array(percentiles(sample)), expected)
    values = x.ravel()
    ranks = (0, 7, values.size // 2, values.size - 1)
    assert order_statistics(values, ranks) == [float(v) for v in np.sort(values)[list(ranks)]]
    assert order_statistics(np.round(values[:501]), (250,)) == [float(np.median(np.round(values[:501])))]
    gy, gx = np.gradient(x[1])
    gradient2(x[1], out, tmp)
    np.testing.assert_array_equal(np.stack([out, tmp]), 2 * np.stack([gy, gx]))
    np.testing.assert_allclose(norm(gx, gy, out, tmp), np.hypot(gx, gy), rtol=1e-6)
    for sigma in (1.0, 0.7, 2.0):  # the Gaussian without scipy's wrapper: bit for bit, also into float32
        expected = ndimage.gaussian_filter(x, (0, sigma, sigma), mode="nearest", truncate=3.0)
        np.testing.assert_array_equal(gaussian(x, sigma, np.empty_like(x)), expected)
        expected = ndimage.gaussian_filter(x.astype(np.float64), (0, sigma, sigma), output=np.float32,
                                           mode="nearest", truncate=3.0)
        np.testing.assert_array_equal(gaussian(x.astype(np.float64), sigma, np.empty_like(x)), expected)
        plane = x[0].copy()
        expected = ndimage.gaussian_filter(plane, sigma, mode="nearest", truncate=3.0)
        np.testing.assert_array_equal(gaussian(plane, sigma, plane), expected)
    # scratch arrays: the same ones again for the same caller, shape and type; large ones are not kept
    first = scratch("test", (4, 5), 2)
    assert all(a is b for a, b in zip(first, scratch("test", (4, 5), 2), strict=True))
    assert scratch("test", (4, 6), 2)[0].shape == (4, 6)
    big = (1024, 1024)
    assert scratch("test", big, 1)[0] is not scratch("test", big, 1)[0]


def test_material_edges_do_not_depend_on_the_previous_call() -> None:
    from changedetect._registration.matching import material_edges

    rng = np.random.default_rng(8)
    a, b = (_smoothed(rng.gamma(2.0, 40.0, size=(3, 60, 50))).astype(np.float32) for _ in range(2))
    first = material_edges(a, 0, 1)
    material_edges(b, 0, 1)  # the same scratch arrays, other values
    again = material_edges(a, 0, 1)
    np.testing.assert_array_equal(first, again)
    assert not np.shares_memory(first, again)
    with_nan = a.copy()
    with_nan[2, 10:14, 20:25] = np.nan
    assert np.isnan(material_edges(with_nan, 0, 1)).any()
    np.testing.assert_array_equal(material_edges(a, 0, 1), first)


def _material_edges_formula(bands: np.ndarray, red: int, green: int, sigma: float = 1.0,
                            floor: float = 0.1) -> np.ndarray:
    """The material edges as their docstring writes them (float64, np.gradient, np.hypot, np.percentile)."""
    from scipy import ndimage

    arr = bands.astype(np.float64)
    step = max(1, int(np.ceil(np.sqrt(arr[0].size / (1 << 14)))))

    def level(b: np.ndarray) -> tuple[float, float]:
        lo, hi = np.percentile(b[::step, ::step], [0.1, 99.0])
        return lo - max(0.01 * (hi - lo), 1e-6), max(0.01 * (hi - lo), 1e-6)

    (o_i, f_i), (o_r, f_r), (o_g, f_g) = level(arr.mean(axis=0)), level(arr[red]), level(arr[green])
    smooth = [ndimage.gaussian_filter(b, sigma, mode="nearest", truncate=3.0) for b in arr]
    mean = sum(smooth) / len(smooth)
    gy, gx = np.gradient(mean)
    g_bright = np.hypot(gx, gy)
    g_light = g_bright / np.maximum(mean - o_i, f_i)
    (ry, rx), (yy, yx) = np.gradient(smooth[red]), np.gradient(smooth[green])
    r, g = np.maximum(smooth[red] - o_r, f_r), np.maximum(smooth[green] - o_g, f_g)
    g_colour = np.hypot(rx / r - yx / g, ry / r - yy / g)
    share = g_colour / np.maximum(g_colour + g_light, 1e-12)
    share = ndimage.minimum_filter(share, 3, mode="nearest")
    share = ndimage.gaussian_filter(share, 1.0, mode="nearest", truncate=3.0)
    return g_bright * (floor + (1 - floor) * share)


def test_material_edges_equal_their_formula() -> None:
    from changedetect._registration.matching import material_edges

    rng = np.random.default_rng(5)
    scene = _smoothed(rng.gamma(2.0, 40.0, size=(3, 150, 130)))
    got = material_edges(scene.astype(np.float32), 0, 1)
    expected = _material_edges_formula(scene.astype(np.float32), 0, 1)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-5 * float(expected.max()))


def _smoothed(x: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.gaussian_filter(x, (0, 1.5, 1.5)) + 20.0


def test_newton_finds_the_maximum_of_the_band_limited_surface(monkeypatch: pytest.MonkeyPatch) -> None:
    from changedetect._registration import shift as sh

    ref, mov = _pair((2.37, -5.61), size=128)
    g_ref, g_mov = sh.gradient_magnitude(ref, sigma=2.0), sh.gradient_magnitude(mov, sigma=2.0)
    r, m = sh._fast_crop(g_ref), sh._fast_crop(g_mov)
    product = sh.sfft.rfft2(sh._apodize(m)) * np.conj(sh.sfft.rfft2(sh._apodize(r)))
    product /= np.maximum(np.abs(product), np.float32(1e-20))
    h, w = r.shape
    banded = product * np.outer(sh._band(h, sh.BAND_SIGMA), sh._band(w, sh.BAND_SIGMA)[: w // 2 + 1])
    coarse, _ = sh._refine(banded, r.shape, np.array([-6.0, 2.0]), 10, 15)
    fine, inside = sh._refine(banded, r.shape, coarse, 1000, 300)  # a 0.001 px grid over +-0.15 px
    assert inside
    dx, dy, _, _ = sh.phase_correlation(g_ref, g_mov)
    assert (dx, dy) == pytest.approx((fine[1], fine[0]), abs=1.5e-3)
    # without Newton (not concave, or not converging): the upsampled DFT of the same surface
    monkeypatch.setattr(sh, "_newton_peak", lambda *a, **k: None)
    assert sh.phase_correlation(g_ref, g_mov)[:2] == pytest.approx((dx, dy), abs=0.011)
    # the whole band: the upsampled DFT from the parabola, as the coarse-to-fine one
    dx, dy, _, _ = sh.phase_correlation(g_ref, g_mov, band=None)
    coarse, _ = sh._refine(product, r.shape, np.round(np.array([dy, dx])), 10, 15)
    fine, inside = sh._refine(product, r.shape, coarse, 100, 20)
    assert inside
    assert (dx, dy) == pytest.approx((fine[1], fine[0]), abs=1e-9)
