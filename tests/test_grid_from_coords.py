"""The stages take an array's grid from its coordinates, not from rioxarray's cached GeoTransform.

xarray carries ``spatial_ref``'s GeoTransform unchanged through ``coarsen``, a stepped ``isel`` and
``sortby``, so ``da.rio.transform()`` then describes pixels the array no longer has.  Before
:func:`changedetect.types.transform_of`, a 2x coarsened probability was traced into footprints a quarter of
their size in the upper-left quarter of the scene, a south-up one outside the scene altogether, and
``write_cog`` wrote 0.5 m pixels over 1 m data.  A south-up pair was also fed to the network upside down.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine

import changedetect as cd
from changedetect._registration.synthetic import displace, textured_scene
from changedetect.coregister import coregister
from changedetect.types import Grid, transform_of
from changedetect.vectorize import vectorize

T = Affine(0.5, 0, 680000.0, 0, -0.5, 1190000.0)
CRS = "EPSG:32648"


def _raster(data: np.ndarray, transform: Affine = T) -> xr.DataArray:
    h, w = data.shape[-2:]
    coords = {"y": transform.f + transform.e * (np.arange(h) + 0.5), "x": transform.c + transform.a * (np.arange(w) + 0.5)}
    dims = ("y", "x") if data.ndim == 2 else ("time", "band", "y", "x")
    if data.ndim == 4:
        coords |= {"time": np.array(["2024-01-15", "2024-07-15"], dtype="datetime64[ns]"), "band": ["red", "green", "blue"]}
    return xr.DataArray(data, dims=dims, coords=coords).rio.write_crs(CRS).rio.write_transform(transform)


@pytest.fixture(scope="module")
def prob() -> xr.DataArray:
    p = np.zeros((400, 400), np.float32)
    p[100:180, 60:200] = 0.9
    p[250:300, 250:330] = 0.8
    return _raster(p)


def test_an_array_read_or_built_here_keeps_its_cached_transform(prob: xr.DataArray) -> None:
    tiles = Path(__file__).resolve().parents[1] / "sample_tiles"
    stack = cd.open_stack(tiles)
    with rasterio.open(sorted(tiles.glob("*.tif"))[0]) as src:
        assert transform_of(stack) == src.transform == stack.rio.transform()
    assert transform_of(prob) == T


@pytest.mark.parametrize("how", ["coarsen", "stepped isel", "sortby y", "sortby x descending"])
def test_footprints_of_a_resampled_or_reordered_probability_lie_where_it_changed(prob: xr.DataArray, how: str) -> None:
    changed = {"coarsen": prob.coarsen(x=2, y=2).max(), "stepped isel": prob.isel(x=slice(None, None, 2), y=slice(None, None, 2)),
               "sortby y": prob.sortby("y"), "sortby x descending": prob.sortby("x", ascending=False)}[how]
    assert transform_of(changed) == changed.rio.transform(recalc=True)
    full, found = vectorize(prob), vectorize(changed)
    assert len(found) == len(full) == 2
    overlap = found.union_all().intersection(full.union_all()).area
    assert overlap >= 0.95 * full.area.sum()
    assert found.area_m2.sum() == pytest.approx(full.area_m2.sum(), rel=0.05)  # a quarter, before


def test_an_axis_of_one_pixel_keeps_its_cached_size_and_the_other_axis_its_own(prob: xr.DataArray) -> None:
    column = prob.isel(x=slice(0, 1), y=slice(None, None, 2))  # 1 px wide, every 2nd row: 1 m rows
    t = transform_of(column)
    assert (t.a, t.e) == (0.5, -1.0) and (t.c, t.f) == (680000.0, 1190000.25)  # centres stay the pixels'
    row = prob.isel(y=slice(0, 1), x=slice(None, None, 4))
    t = transform_of(row)
    assert (t.a, t.e) == (2.0, -0.5) and (t.c, t.f) == (679999.25, 1190000.0)


def test_write_cog_of_a_coarsened_array_writes_its_own_pixels(prob: xr.DataArray, tmp_path: Path) -> None:
    coarse = prob.coarsen(x=2, y=2).mean()
    cd.write_cog(coarse, tmp_path / "coarse.tif")
    with rasterio.open(tmp_path / "coarse.tif") as src:
        assert src.res == (1.0, 1.0) and src.shape == (200, 200)
        assert tuple(src.bounds) == pytest.approx(coarse.rio.bounds(recalc=True))
        np.testing.assert_array_equal(src.read(1), coarse.values)


def test_coregister_says_a_decimated_stack_shift_in_its_own_metres() -> None:
    base = textured_scene((352, 352), seed=5)
    moved = displace(base, lambda r, c: (np.full(r.shape, 2.0), np.full(r.shape, -3.0)))
    dates = [np.clip(np.stack([im, im * 0.9, im * 1.1]), 0, 255)[:, 16:-16, 16:-16] for im in (base, moved)]
    stack = _raster(np.stack(dates).astype(np.float32))
    half = stack.isel(x=slice(None, None, 2), y=slice(None, None, 2))  # a 1 m quick look of a 0.5 m stack
    assert Grid.of(half).resolution == (1.0, 1.0)
    _, report = coregister(half, config={"local": False, "radiometric": False})
    entry = report.dates[1]
    assert entry.shift_px == pytest.approx((1.0, -1.5), abs=0.15)
    assert entry.shift_m == pytest.approx((entry.shift_px[0] * 1.0, entry.shift_px[1] * -1.0), abs=1e-6)


@pytest.mark.parametrize("turned", [("y",), ("x",), ("y", "x")])
def test_a_south_up_pair_is_detected_as_the_same_pair_north_up(turned: tuple[str, ...]) -> None:
    stack = cd.open_stack(Path(__file__).resolve().parents[1] / "sample_tiles")
    pair = stack.isel(y=slice(300, 556), x=slice(200, 456), time=[0, 1]).compute()
    north = cd.detect_pair(pair.isel(time=0), pair.isel(time=1))
    flipped = pair.isel({d: slice(None, None, -1) for d in turned})  # y rising and/or x falling
    south = cd.detect_pair(flipped.isel(time=0), flipped.isel(time=1))
    for d in ("y", "x"):
        np.testing.assert_array_equal(south[d].values, flipped[d].values)  # on the input's own grid
    t = transform_of(south)
    assert (t.e > 0) == ("y" in turned) and (t.a < 0) == ("x" in turned)
    back = south.isel({d: slice(None, None, -1) for d in turned})
    np.testing.assert_allclose(back.values, north.values, atol=1e-5)
