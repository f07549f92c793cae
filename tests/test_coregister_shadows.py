"""Cast shadows that lengthen between dates must not pull the shift; automatic smoothing of the field."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from affine import Affine
from scipy import ndimage

from changedetect._registration.blocks import BlockImage
from changedetect._registration.field import ShiftField, choose_smoothing
from changedetect._registration.matching import (
    chromatic_bands,
    chromaticity,
    matching_kind,
    material_edges,
    material_edges_of,
)
from changedetect._registration.shift import gradient_magnitude
from changedetect.coregister import CoregisterConfig, coregister, estimate_global_shift
from changedetect.errors import CoregistrationError

FINE = 4  # the scene is drawn at 4x and integrated down, so shifts of k/4 px are exact
SIZE = 256
#: Share of light left in a cast shadow per band (red, green, blue): sky light, bluer.
SHADOW_LIGHT = np.array([0.30, 0.33, 0.45])


def _city(shadow_px: float, shift_fine: tuple[int, int], seed: int = 3) -> np.ndarray:
    """``(3, SIZE, SIZE)`` RGB: textured ground, coloured flat roofs, shadows ``shadow_px`` long to the
    north-west; the whole scene (not its shadows' length) displaced by ``shift_fine`` / FINE px."""
    rng = np.random.default_rng(seed)
    n = (SIZE + 16) * FINE
    base = 60 + 15 * ndimage.gaussian_filter(rng.normal(size=(n, n)), 6 * FINE)
    tint = ndimage.gaussian_filter(rng.normal(size=(2, n, n)), (0, 3 * FINE, 3 * FINE))
    img = np.stack([base * (1 + 2.0 * tint[0]), base * (1 + 2.0 * tint[1]), base * 1.1])
    height = np.zeros((n, n), bool)
    for _ in range(160):
        h, w = rng.integers(6 * FINE, 16 * FINE, 2)
        r, c = rng.integers(0, n - h), rng.integers(0, n - w)
        img[:, r:r + h, c:c + w] = rng.uniform(40, 200, 3)[:, None, None]
        height[r:r + h, c:c + w] = True
    shadow = np.zeros_like(height)
    steps = int(round(shadow_px * FINE))
    for t in range(1, steps + 1):  # a shadow cast to the north-west (up and left)
        shadow[: n - t, : n - t] |= height[t:, t:]
    shadow &= ~height
    img[:, shadow] *= SHADOW_LIGHT[:, None]
    img = np.roll(img, shift_fine, axis=(2, 1))  # content moves dx (columns) right, dy (rows) down
    crop = img[:, 8 * FINE: (8 + SIZE) * FINE, 8 * FINE: (8 + SIZE) * FINE]
    return crop.reshape(3, SIZE, FINE, SIZE, FINE).mean(axis=(2, 4)) + 12.0  # + path radiance


def _pair(seed: int = 3, longer: float = 7.0) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    shift_fine = (9, -7)  # (dx, dy) in fine pixels
    ref = _city(6.0, (0, 0), seed)
    mov = 1.1 * _city(longer, shift_fine, seed) + 5.0  # shadows 1 px longer, another gain and haze
    return ref, mov, (shift_fine[0] / FINE, shift_fine[1] / FINE)


def test_lengthening_shadows_pull_brightness_and_much_less_material_edges() -> None:
    config = CoregisterConfig()
    err_mean, err_material = [], []
    for seed in (3, 4, 5):
        ref, mov, (tx, ty) = _pair(seed)
        on_mean = estimate_global_shift(ref.mean(axis=0), mov.mean(axis=0), config=config)
        on_material = estimate_global_shift(material_edges(ref, 0, 1), material_edges(mov, 0, 1), config=config,
                                            edges=True)
        assert on_material.reliable
        err_mean.append(np.hypot(on_mean.dx - tx, on_mean.dy - ty))
        err_material.append(np.hypot(on_material.dx - tx, on_material.dy - ty))
    # the shadows' 1 px motion pulls the brightness estimate by 0.10-0.13 px, all the same way
    # (0.16-0.23 px before the sub-pixel peak was band-limited); material edges 0.035-0.042 px
    assert min(err_mean) > 0.09
    assert max(err_material) < 0.07
    assert np.mean(err_mean) > 2.0 * np.mean(err_material)


def _stack(ref: np.ndarray, mov: np.ndarray, bands: list[str]) -> xr.DataArray:
    data = np.stack([ref, mov]).astype(np.float32)
    transform = Affine(0.5, 0, 600000.0, 0, -0.5, 1200000.0)
    arr = xr.DataArray(data, dims=("time", "band", "y", "x"),
                       coords={"time": pd.to_datetime(["2024-01-15", "2025-01-20"]).values, "band": bands,
                               "y": 1200000.0 - 0.5 * (np.arange(SIZE) + 0.5),
                               "x": 600000.0 + 0.5 * (np.arange(SIZE) + 0.5)})
    return arr.rio.write_crs("EPSG:32648").rio.write_transform(transform)


def test_coregister_matches_rgb_stacks_on_material_edges() -> None:
    ref, mov, (tx, ty) = _pair(5)
    _, report = coregister(_stack(ref, mov, ["red", "green", "blue"]), config=CoregisterConfig(local=False))
    entry = report["2025-01-20"]
    assert entry.matching == "material"
    assert np.hypot(entry.shift_px[0] - tx, entry.shift_px[1] - ty) < 0.1
    assert entry.shift_field is not None
    _, report = coregister(_stack(ref, mov, ["red", "green", "blue"]),
                           config=CoregisterConfig(local=False, matching="mean"))
    assert report["2025-01-20"].matching == "mean"


def test_stacks_without_red_and_green_are_matched_on_the_mean() -> None:
    assert chromatic_bands(["B02", "B03", "B04"]) is None
    assert chromatic_bands(["Red", "Green", "NIR"]) == (0, 1)
    ref, mov, _ = _pair()
    _, report = coregister(_stack(ref, mov, ["b1", "b2", "b3"]), config=CoregisterConfig(local=False))
    assert report["2025-01-20"].matching == "mean"


def test_material_edges_drop_a_shadow_outline_and_keep_a_colour_edge() -> None:
    img = np.full((3, 64, 64), 100.0)
    img[:, :, 40:] *= np.array([0.30, 0.33, 0.45])[:, None, None]  # a shadow from column 40
    img[:, 20:, :16] *= np.array([1.8, 0.9, 1.0])[:, None, None]  # a red roof in the corner
    edges = material_edges(img + 10.0, 0, 1)
    brightness = gradient_magnitude(img.mean(axis=0), sigma=1.0)
    shadow, roof = (8, slice(36, 44)), (40, slice(12, 20))
    assert edges[shadow].max() < 0.3 * brightness[shadow].max()  # an illumination edge: near the floor (0.1)
    assert edges[roof].max() > 0.6 * brightness[roof].max()  # a change of colour: kept


def test_chromaticity_ignores_a_shadow_and_haze() -> None:
    rng = np.random.default_rng(0)
    red, green = rng.uniform(50, 200, (2, 64, 64))
    red[0, 0], green[0, 0] = 1.0, 1.0  # dark objects: the dark level of each band sits under them
    lit = chromaticity(red + 20.0, green + 25.0)
    dark = chromaticity(0.3 * red + 20.0, 0.3 * green + 25.0)  # the same surfaces in a shadow
    inside = (slice(1, None), slice(None))
    assert np.abs(dark[inside] - lit[inside]).max() < 0.05
    assert lit[inside].std() > 0.3  # while material differences remain


def _field(noise: float, seed: int = 0) -> tuple[ShiftField, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    r, c = np.meshgrid(np.arange(40, 1000, 64.0), np.arange(40, 1000, 64.0), indexing="ij")
    r, c = r.ravel(), c.ravel()
    tx = 0.6 * np.sin(2 * np.pi * r / 900) + 1.0
    ty = 0.5 * np.cos(2 * np.pi * c / 700) - 2.0
    fld = ShiftField((1024, 1024), r, c, tx + rng.normal(0, noise, r.size), ty + rng.normal(0, noise, r.size),
                     np.ones(r.size), np.ones(r.size, bool))
    return fld, tx, ty


def test_smoothing_follows_the_tie_points_noise() -> None:
    noisy, tx, ty = _field(0.15)
    clean, _, _ = _field(0.005)
    level = choose_smoothing(noisy)
    assert level > choose_smoothing(clean)

    def error(fld: ShiftField, smoothing: float) -> float:
        fld.fit(smoothing)
        ex, ey = fld.evaluate(fld.rows, fld.cols)
        return float(np.median(np.hypot(ex - tx, ey - ty)))

    assert error(noisy, level) < 0.8 * error(noisy, 1.0)
    assert error(clean, choose_smoothing(clean)) < 0.02


def test_material_edges_of_a_large_lazy_image_equal_the_in_memory_ones() -> None:
    import dask.array as da

    ref, _, _ = _pair(5)
    stored = material_edges_of(da.from_array(ref, chunks=(1, 96, 96)), 0, 1, in_memory_pixels=1000)
    assert isinstance(stored, BlockImage) and stored.shape == ref.shape[1:]
    whole = material_edges(ref, 0, 1)
    np.testing.assert_allclose(np.asarray(stored), whole, atol=1e-4)
    np.testing.assert_allclose(stored[100:140, 30:90], whole[100:140, 30:90], atol=1e-4)
    np.testing.assert_allclose(stored[250:300], whole[250:], atol=1e-4)  # clipped at the last row


def test_matching_option_is_checked() -> None:
    assert matching_kind(["red", "green"], "red", "auto") == "mean"  # one named band wins
    with pytest.raises(CoregistrationError, match="'auto', 'material' or 'mean'"):
        matching_kind(["red", "green"], None, "chroma")
    with pytest.raises(CoregistrationError, match="red and green"):
        matching_kind(["pan"], None, "material")


def test_robust_fit_resists_the_tie_points_still_far_off() -> None:
    fld, tx, ty = _field(0.05, seed=1)
    far = np.arange(0, fld.n_found, 9)  # every 9th tie point 0.6-1 px off, spread over the scene
    fld.dx[far] += np.random.default_rng(2).uniform(0.6, 1.0, far.size)

    def error(robust: bool) -> float:
        fld.fit(10.0, robust=robust)
        ex, ey = fld.evaluate(fld.rows, fld.cols)
        return float(np.median(np.hypot(ex - tx, ey - ty)))

    plain, robust = error(False), error(True)
    assert robust < 0.7 * plain
