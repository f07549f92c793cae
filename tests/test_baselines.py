"""CVA + Otsu separates a synthetic change; Otsu on a known bimodal sample."""

from __future__ import annotations

import numpy as np
import pytest

from changedetect.baselines import cva_magnitude, cva_probability, otsu_threshold


def test_otsu_splits_two_modes() -> None:
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(1.0, 0.2, 5000), rng.normal(5.0, 0.3, 1000)])
    t = otsu_threshold(v)
    assert 1.6 < t < 4.2
    assert otsu_threshold(np.full(10, 3.0)) == 3.0


def test_cva_probability_separates_synthetic_change() -> None:
    rng = np.random.default_rng(1)
    before = rng.normal(100, 10, (4, 120, 120))
    # after: a global radiometric change (gain and offset, CVA ignores it) plus noise ...
    after = 1.3 * before + 20 + rng.normal(0, 2, before.shape)
    truth = np.zeros((120, 120), bool)
    truth[30:60, 40:90] = True
    # ... and a real change: new material in a block
    after[:, truth] = rng.normal(200, 5, (4, int(truth.sum())))
    prob, t = cva_probability(before, after)
    assert t > 0 and prob.dtype == np.float32
    pred = prob >= 0.5
    tp = (pred & truth).sum()
    f1 = 2 * tp / (pred.sum() + truth.sum())
    assert f1 > 0.95
    # Otsu's threshold maps to 0.5 exactly
    mag = cva_magnitude(before, after)
    np.testing.assert_allclose(prob, mag / (mag + t), rtol=1e-6)


def test_cva_nan_and_shape_checks() -> None:
    a = np.ones((2, 10, 10))
    b = a.copy()
    b[0, 0, 0] = np.nan
    assert np.isnan(cva_magnitude(a, b)[0, 0])
    with pytest.raises(ValueError, match="differ in shape"):
        cva_magnitude(a, np.ones((2, 9, 10)))


def test_cva_takes_the_dates_as_xarray_as_docs_show_it() -> None:
    """docs/detection.md calls cva_probability on a stack's dates (DataArrays): same answer as on numpy."""
    import xarray as xr

    rng = np.random.default_rng(3)
    before = rng.normal(size=(3, 32, 32)).astype(np.float32)
    after = before.copy()
    after[:, 8:16, 8:16] += 4.0
    after[0, 0, 0] = np.nan
    dims = ("band", "y", "x")
    got, t = cva_probability(xr.DataArray(before, dims=dims), xr.DataArray(after, dims=dims))
    want, t_np = cva_probability(before, after)
    assert isinstance(got, np.ndarray)
    np.testing.assert_array_equal(got, want)
    assert t == t_np and np.isnan(got[0, 0]) and (got[8:16, 8:16] >= 0.5).all()
