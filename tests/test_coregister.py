"""coregister() on TileStacks: grid kept, shifts corrected, unreliable dates flagged, the report."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from affine import Affine

from changedetect._registration.synthetic import displace, textured_scene
from changedetect.coregister import CoregisterConfig, coregister
from changedetect.errors import CoregistrationError, CoregistrationWarning
from changedetect.types import check_tilestack

SIZE = 256
M = 16


def _stack(shifts: list[tuple[float, float] | None], *, gains: list[float] | None = None, seed: int = 0) -> xr.DataArray:
    """A 3-band stack; date i is the scene displaced by shifts[i] (None: an unrelated scene)."""
    base = textured_scene((SIZE + 2 * M, SIZE + 2 * M), seed=seed)
    layers = []
    for i, s in enumerate(shifts):
        if s is None:
            img = textured_scene((SIZE + 2 * M, SIZE + 2 * M), seed=seed + 100 + i)
        else:
            img = displace(base, lambda r, c, s=s: (np.full(r.shape, s[0]), np.full(r.shape, s[1])))
        img = img[M:-M, M:-M]
        g = 1.0 if gains is None else gains[i]
        layers.append(np.stack([img * g, img * g * 0.8 + 10, img * g * 1.1 - 5]))
    data = np.stack(layers).astype(np.float32)
    times = pd.date_range("2024-01-01", periods=len(shifts), freq="90D").values
    transform = Affine(0.5, 0, 600000.0, 0, -0.5, 1200000.0)
    da = xr.DataArray(data, dims=("time", "band", "y", "x"),
                      coords={"time": times, "band": ["red", "green", "blue"],
                              "y": 1200000.0 - 0.5 * (np.arange(SIZE) + 0.5),
                              "x": 600000.0 + 0.5 * (np.arange(SIZE) + 0.5)})
    return da.rio.write_crs("EPSG:32648").rio.write_transform(transform)


def test_output_grid_and_shape_equal_the_reference() -> None:
    stack = _stack([(0, 0), (2.4, -1.3)])
    aligned, report = coregister(stack)
    check_tilestack(aligned)
    assert aligned.shape == stack.shape and aligned.dtype == np.float32
    assert aligned.rio.crs == stack.rio.crs
    assert aligned.rio.transform() == stack.rio.transform()
    np.testing.assert_array_equal(aligned["x"], stack["x"])
    d = report["2024-03-31"]
    assert d.shift_px == pytest.approx((2.4, -1.3), abs=0.05)
    assert d.shift_m == pytest.approx((1.2, 0.65), abs=0.03)  # 0.5 m pixels; +dy is south
    assert d.tie_points_kept > 0 and d.residual_rmse_px is not None


def test_shifted_dates_end_aligned_with_the_reference() -> None:
    stack = _stack([(0, 0), (-3.7, 5.2), (0.45, 0.3)], gains=[1.0, 0.7, 1.3])
    aligned, report = coregister(stack, config=CoregisterConfig(reference="2024-01-01"))
    arr = aligned.values
    inner = (slice(None), slice(12, -12), slice(12, -12))
    for t in (1, 2):
        err = np.nanmean(np.abs(arr[t][inner] - arr[0][inner])) / np.nanstd(arr[0][inner])
        assert err < 0.05
    assert report.dates[1].gain["red"] == pytest.approx(1 / 0.7, rel=0.02)
    assert report.unreliable == []


def test_an_unrelated_date_is_flagged_and_left_unshifted() -> None:
    stack = _stack([(0, 0), None, (1.5, 1.5)])
    with pytest.warns(CoregistrationWarning, match="could not be registered"):
        aligned, report = coregister(stack)
    bad = report.dates[1]
    assert bad.status == "unreliable" and bad.shift_px == (0.0, 0.0) and bad.reliability == 0.0
    np.testing.assert_array_equal(aligned.values[1], stack.values[1])
    assert report.unreliable == [bad.date] and report.warnings


def test_pure_noise_date_is_flagged() -> None:
    stack = _stack([(0, 0), (1.0, 1.0)])
    stack.values[1] = np.random.default_rng(0).normal(100, 20, stack.shape[1:]).astype(np.float32)
    with pytest.warns(CoregistrationWarning):
        _, report = coregister(stack, config=CoregisterConfig(radiometric=False))
    assert report.dates[1].status == "unreliable"


def test_reference_can_be_the_last_date() -> None:
    stack = _stack([(1.2, 0.0), (0.0, 0.0)])
    _, report = coregister(stack, config=CoregisterConfig(reference=-1, local=False))
    assert report.reference == report.dates[1].date
    assert report.dates[0].shift_px == pytest.approx((1.2, 0.0), abs=0.05)


def test_bad_reference_names_the_dates() -> None:
    with pytest.raises(CoregistrationError, match="2030-01-01.*dates are"):
        coregister(_stack([(0, 0), (1, 1)]), config=CoregisterConfig(reference="2030-01-01"))


def test_nodata_borders_do_not_break_registration() -> None:
    stack = _stack([(0, 0), (2.0, -1.0)])
    stack.values[1, :, :, :40] = np.nan  # the second date does not cover the left edge
    with warnings.catch_warnings():
        warnings.simplefilter("error", CoregistrationWarning)
        aligned, report = coregister(stack)
    assert report.dates[1].shift_px == pytest.approx((2.0, -1.0), abs=0.1)
    assert np.isnan(aligned.values[1, 0, :, :30]).all()


def test_report_json_round_trip(tmp_path: Path) -> None:
    _, report = coregister(_stack([(0, 0), (0.5, 0.25)]))
    path = report.to_json(tmp_path / "coregistration.json")
    data = json.loads(path.read_text())
    assert data["reference"] == "2024-01-01" and len(data["dates"]) == 2
    assert set(data["dates"][1]) >= {"shift_px", "shift_m", "tie_points_found", "tie_points_kept",
                                     "residual_rmse_px", "gain", "offset", "warnings"}
    assert data["crs"] == "EPSG:32648"
    assert not list(tmp_path.glob(".*tmp*"))


def test_large_dask_stack_is_registered_on_windows_and_warped_lazily() -> None:
    import dask.array as da

    size, shift = 1100, (-2.6, 1.35)
    base = textured_scene((size + 2 * M, size + 2 * M), seed=21, blocks=300)
    mov = displace(base, lambda r, c: (np.full(r.shape, shift[0]), np.full(r.shape, shift[1])))
    data = np.stack([base[M:-M, M:-M], mov[M:-M, M:-M]])[:, None].astype(np.float32)
    stack = xr.DataArray(da.from_array(data, chunks=(1, 1, 512, 512)), dims=("time", "band", "y", "x"),
                         coords={"time": pd.to_datetime(["2024-01-01", "2024-02-01"]).values, "band": ["pan"],
                                 "y": np.arange(size, dtype=float)[::-1], "x": np.arange(size, dtype=float)})
    stack = stack.rio.write_crs("EPSG:32648").rio.write_transform(Affine(1, 0, 0, 0, -1, size))
    aligned, report = coregister(stack, config=CoregisterConfig(radiometric=False))
    assert isinstance(aligned.data, da.Array)  # nothing computed yet
    assert report.dates[1].shift_px == pytest.approx(shift, abs=0.05)
    window = aligned[:, 0, 300:700, 300:700].values
    assert np.nanmean(np.abs(window[1] - window[0])) < 0.05 * np.nanstd(window[0])


def test_the_report_keeps_small_values_exact() -> None:
    """6 decimals made a 4.573e-06 degree pixel 5e-06 in coregistration.json (9 % off)."""
    from changedetect._registration.report import _jsonable

    assert _jsonable({"transform": [4.573e-06, 0.0, 106.123456789, 0.0, -4.52e-06, 10.87654321]}) == {
        "transform": [4.573e-06, 0.0, 106.1234568, 0.0, -4.52e-06, 10.87654321]}
    assert _jsonable([float("nan"), np.float32(0.25)]) == [None, 0.25]
