"""Sentinel-2 processing baseline 04.00 (from January 2022) adds 1000 to every digital number
(``BOA_ADD_OFFSET`` / ``RADIO_ADD_OFFSET`` = -1000), so a 2021 date and a 2023 date of one place
differ by 1000 in every band where nothing changed.  The shipped models and the CVA baseline
standardise each band of each date on that date's own robust statistics, which removes any
per-band offset (and gain), so the offset needs no correction: these tests hold that true, and
fail if a card's normalisation stops removing it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from changedetect.baselines import cva_probability
from changedetect.detect import DetectConfig, detect_pair
from changedetect.testing import make_grid
from changedetect.weights import compute_stats, find_model, read_card

BANDS = ["B02", "B03", "B04", "B08"]
#: what baseline 04.00 adds to every band's digital numbers
OFFSET = 1000.0


def _scene(seed: int, size: int = 96) -> np.ndarray:
    """``(4, size, size)`` Sentinel-2-like L2A digital numbers: fields and asphalt in blocks of
    8 px with some noise, a few bright roofs; values 200-3500 as a 2020 product holds them."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(300, 2500, (4, size // 8, size // 8)).repeat(8, axis=1).repeat(8, axis=2)
    base += rng.normal(0, 60, base.shape)
    return np.clip(base, 200, 3500).astype(np.float32)


def _date(data: np.ndarray, day: str) -> xr.DataArray:
    grid = make_grid(data.shape[-1], resolution=10.0)
    da = xr.DataArray(data, dims=("band", "y", "x"), coords={"band": BANDS, **grid.coords()})
    da = da.expand_dims(time=pd.DatetimeIndex([day])).isel(time=0)
    return da.rio.write_crs(grid.crs).rio.write_transform(grid.transform)


def _pair() -> tuple[np.ndarray, np.ndarray]:
    before = _scene(1)
    after = before.copy()
    after[:, 40:64, 24:56] = np.array([2600, 2700, 2800, 3000], np.float32)[:, None, None]  # a new roof
    return before, after


def test_s2_urban_gives_the_same_probability_with_the_04_00_offset_on_one_date() -> None:
    card = read_card(find_model("s2-urban"))
    assert card.normalization["kind"] == "per_image_standardize"
    before, after = _pair()
    config = DetectConfig(model="s2-urban", window=64, overlap=16)
    plain = detect_pair(_date(before, "2021-06-01"), _date(after, "2023-06-01"), config=config).values
    shifted = detect_pair(_date(before, "2021-06-01"), _date(after + OFFSET, "2023-06-01"),
                          config=config).values
    both = detect_pair(_date(before + OFFSET, "2022-06-01"), _date(after + OFFSET, "2023-06-01"),
                       config=config).values
    assert plain[48, 40] > plain[10, 10]  # the model does see the roof: the comparison means something
    np.testing.assert_allclose(shifted, plain, atol=2e-4)
    np.testing.assert_allclose(both, plain, atol=2e-4)


def test_without_each_dates_own_means_the_offset_would_change_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: the same pair with the statistics' means held fixed (what a card's ``fixed``
    normalisation does) is moved by the offset, so the test above does test the normalisation."""
    from changedetect import _model_card

    real = _model_card.ModelCard.compute_stats

    def fixed_means(self: _model_card.ModelCard, x: np.ndarray) -> _model_card.NormStats:
        return _model_card.NormStats(mean=np.full(len(BANDS), 1200.0, np.float32), std=real(self, x).std)

    monkeypatch.setattr(_model_card.ModelCard, "compute_stats", fixed_means)
    before, after = _pair()
    config = DetectConfig(model="s2-urban", window=64, overlap=16)
    plain = detect_pair(_date(before, "2021-06-01"), _date(after, "2023-06-01"), config=config).values
    shifted = detect_pair(_date(before, "2021-06-01"), _date(after + OFFSET, "2023-06-01"), config=config).values
    assert np.nanmax(np.abs(shifted - plain)) > 0.5


def test_cva_gives_the_same_change_with_the_04_00_offset() -> None:
    before, after = _pair()
    prob, thr = cva_probability(before, after)
    prob_off, thr_off = cva_probability(before, after + OFFSET)
    np.testing.assert_allclose(prob_off, prob, atol=1e-4)
    assert thr_off == pytest.approx(thr, abs=1e-4)


def test_standardised_statistics_move_by_exactly_the_offset() -> None:
    """What makes both hold: a date's mean moves by the offset and its spread stays."""
    scene = _scene(2)
    plain, shifted = compute_stats(scene), compute_stats(scene + OFFSET)
    np.testing.assert_allclose(shifted.mean, plain.mean + OFFSET, rtol=1e-5)
    np.testing.assert_allclose(shifted.std, plain.std, rtol=1e-4)
