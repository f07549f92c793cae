"""Review of co-registration's refusal messages and of the report's reading of a lazy aligned stack."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from affine import Affine

import changedetect.coregister as coreg
from changedetect._registration.synthetic import displace, textured_scene
from changedetect.coregister import CoregisterConfig, coregister, estimate_global_shift
from changedetect.errors import CoregistrationWarning
from changedetect.testing import counting_lazy, make_stack

BIG = 1100  # over four global windows (256 px) wide: the shift is the median of a 3x3 grid of windows


def _pair_stack(ref: np.ndarray, mov: np.ndarray) -> xr.DataArray:
    data = np.stack([np.stack([ref, ref * 0.8 + 10]), np.stack([mov, mov * 0.8 + 10])]).astype(np.float32)
    h, w = ref.shape
    da = xr.DataArray(data, dims=("time", "band", "y", "x"),
                      coords={"time": pd.date_range("2024-01-01", periods=2, freq="90D").values,
                              "band": ["nir", "swir"],
                              "y": 1200000.0 - 0.5 * (np.arange(h) + 0.5), "x": 600000.0 + 0.5 * (np.arange(w) + 0.5)})
    return da.rio.write_crs("EPSG:32648").rio.write_transform(Affine(0.5, 0, 600000.0, 0, -0.5, 1200000.0))


def _scaled(scene: np.ndarray, factor: float) -> np.ndarray:
    """The scene magnified by ``factor`` about its centre: windows far apart measure shifts far apart."""
    h, w = scene.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    return displace(scene, lambda r, c: ((c - cx) * (factor - 1), (r - cy) * (factor - 1)))


def test_an_already_aligned_stack_with_texture_in_one_corner_is_registered() -> None:
    """make_stack's scene is smooth ground with its buildings in one corner: of the 3x3 grid of global
    windows only the one over the buildings matched (peak ratio 6.6, SNR 33, shift 0.04 px), so the
    grid's rule (at least 3 windows) refused the date, and the warning quoted those passing figures as
    if they were the reason.  The whole scene (in memory), matched on its own and agreeing with the
    matched window, now gives the shift."""
    stack = make_stack(2, size=BIG)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CoregistrationWarning)
        _, report = coregister(stack, config=CoregisterConfig(radiometric=False, local=False))
    entry = report.dates[1]
    assert entry.status == "global", entry.warnings
    assert max(abs(v) for v in entry.shift_px) < 0.2


def test_too_few_matched_windows_is_the_reason_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same scene, too large to be matched whole (the in-memory limit lowered): the date is refused, and
    the warning and the report say that too few windows matched, not that the figures were low."""
    monkeypatch.setattr(coreg, "_IN_MEMORY_PIXELS", 512 * 512)
    stack = make_stack(2, size=BIG)
    with pytest.warns(CoregistrationWarning) as record:
        _, report = coregister(stack, config=CoregisterConfig(radiometric=False, local=False))
    entry = report.dates[1]
    msg = next(str(w.message) for w in record if "registered" in str(w.message))
    assert entry.status == "unreliable"
    assert "1 of 9" in msg and "windows" in msg, msg
    assert entry.reason is not None and "1 of 9" in entry.reason
    assert "1 of 9" in report.to_dict()["dates"][1]["reason"]


def test_windows_that_disagree_is_the_reason_given() -> None:
    """A date magnified by 2 % against the reference (a different orthorectification, say): every window
    matches confidently, but their shifts differ by several pixels, so no single shift is right.  The
    warning said the peak ratio and SNR (both passing) were the reason and advised checking clouds."""
    scene = textured_scene((BIG, BIG), seed=5)
    mov = _scaled(scene, 1.02)
    est = estimate_global_shift(scene, mov)
    assert not est.reliable
    assert "disagree" in est.reason, est.reason
    with pytest.warns(CoregistrationWarning, match="disagree") as record:
        _, report = coregister(_pair_stack(scene, mov), config=CoregisterConfig(radiometric=False, local=False))
    msg = next(str(w.message) for w in record if "registered" in str(w.message))
    assert "cloud" not in msg, msg
    assert report.dates[1].status == "unreliable" and "disagree" in (report.dates[1].reason or "")


def test_a_low_peak_names_the_threshold_it_missed() -> None:
    """Pure noise against a scene: the peak ratio and SNR are under the thresholds, and the reason says so."""
    rng = np.random.default_rng(1)
    scene = textured_scene((200, 200), seed=2)
    est = estimate_global_shift(scene, rng.normal(100, 30, scene.shape))
    assert not est.reliable
    assert "peak ratio" in est.reason and "1.6" in est.reason, est.reason


def test_write_report_on_a_lazy_aligned_stack_computes_each_block_once(tmp_path: Path) -> None:
    """write_report(stack=coregister's lazy stack): the overview and every chip of both dates computed
    the blocks under them again, i.e. recomputed the co-registration warp once per chip."""
    from changedetect.report import write_report
    from changedetect.testing import make_violations

    numpy_stack = make_stack(2, size=256, noise=1.0)
    stack, computed = counting_lazy(numpy_stack, (1, 1, 128, 128))  # stands for coregister's lazy warp
    violations = make_violations(numpy_stack, n=6)
    write_report(violations, out_path=tmp_path / "r.html", stack=stack)
    assert computed, "the stack was never read"
    assert len(computed) <= stack.data.npartitions, (len(computed), stack.data.npartitions)
