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
