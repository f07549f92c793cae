"""Review of what the user is told about a date its Sentinel-2 SCL masks: an all-cloud date gives no
raw Python warning (its report images are no data), ``run``'s low-coverage warning names the clouds
as the nightly's does, and ``info`` shows the masked share of an SCL that lies elsewhere and warns
as ``run`` does (on stderr and in ``--json``'s ``warnings``)."""

from __future__ import annotations

import dataclasses
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import test_review_s2_cloud_edges as edges
import test_review_s2_clouds as s2
from click.testing import CliRunner

from changedetect.cli import cli
from changedetect.testing import make_footprints, make_model, make_permits, make_stack


def _runtime_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


# ------------------------------------------------------------------------------ the RGB images
@pytest.mark.parametrize("empty", [[0, 1, 2], [1]])
def test_rgb8_of_a_masked_date_is_no_data_and_silent(empty: list[int]) -> None:
    """The whole date masked (or one of its bands): no 'All-NaN slice encountered'."""
    from changedetect._pipeline_steps import rgb8

    image = make_stack(n_dates=1, size=32, seed=1).isel(time=0).astype(np.float32) * 40.0  # not 8-bit
    image[empty] = np.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = rgb8(image, ("red", "green", "blue")).values
    assert _runtime_warnings(caught) == []
    assert np.isnan(out[empty]).all()
    rest = [b for b in range(3) if b not in empty]
    assert np.isfinite(out[rest]).all() and (out[rest] >= 1).all()


def test_report_percentiles_of_an_empty_band_are_silent() -> None:
    from changedetect._imagery import _percentiles

    data = np.random.default_rng(0).uniform(100, 900, size=(3, 16, 16)).astype(np.float32)
    data[2] = np.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lo, hi = _percentiles(data)
    assert _runtime_warnings(caught) == []
    assert np.isfinite(lo).all() and np.isfinite(hi).all() and (hi > lo).all()


# ------------------------------------------------------------------------------------ run
@pytest.fixture(scope="module")
def all_cloud(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The L2A-like folder with its second date all cloud by its SCL, a model and a register."""
    from changedetect.config import PipelineConfig
    from changedetect.io import open_stack

    root = tmp_path_factory.mktemp("allcloud")
    folder = s2.s2_folder(root)
    make_permits(make_footprints(open_stack(folder)).iloc[:1]).to_file(root / "permits.gpkg")
    with rasterio.open(edges._scl_path(folder), "r+") as dst:
        dst.write(np.full((dst.height, dst.width), 9, dtype=np.uint8), 1)
    config = PipelineConfig().with_model(str(make_model(root / "m")))
    config = dataclasses.replace(config, detect=dataclasses.replace(config.detect, window=64, overlap=8))
    return {"root": root, "folder": folder, "permits": root / "permits.gpkg", "config": config}


def test_run_on_an_all_cloud_date(all_cloud: dict, caplog: pytest.LogCaptureFixture) -> None:
    """No raw warning; the date's report image is no data; the coverage warning names the clouds."""
    from changedetect.pipeline import run

    out = all_cloud["root"] / "out"
    with caplog.at_level(logging.WARNING), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = run(all_cloud["folder"], permits=all_cloud["permits"], out=out, config=all_cloud["config"])
    assert _runtime_warnings(caught) == []
    assert summary.coverage_both_dates == 0.0
    with rasterio.open(out / "after_rgb.tif") as src:
        assert not src.read_masks(1).any()
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "data on both" in r.getMessage()]
    assert len(said) == 1, said
    assert ("2020-07-04 is 100 % masked by its Sentinel-2 scene classification (SCL): 100 % cloud, high "
            "probability (9): a clearer date will see more") in said[0], said  # its classes (coverage_why)
    assert "check that the tiles cover the area" not in said[0], said


# ------------------------------------------------------------------------------------ info
def test_info_shows_what_an_scl_elsewhere_masks(tmp_path: Path) -> None:
    folder = s2.s2_folder(tmp_path)
    with rasterio.open(edges._scl_path(folder), "r+") as dst:
        from affine import Affine

        dst.transform = Affine.translation(10_000, 0) @ dst.transform
    text = CliRunner().invoke(cli, ["info", str(folder)])
    assert text.exit_code == 0, text.output
    line = next(x for x in text.stdout.splitlines() if x.strip().startswith("2020-07-04"))
    assert "cloud 0.0 %" in line and "masked 100.0 %" in line, line
    first = next(x for x in text.stdout.splitlines() if x.strip().startswith("2020-01-05"))
    assert "masked" not in first, first
    as_json = CliRunner().invoke(cli, ["info", "--json", str(folder)])
    assert as_json.exit_code == 0, as_json.output
    info = json.loads(as_json.stdout)
    assert info["scenes"][1]["masked_share"] == 1.0 and info["scenes"][0]["masked_share"] == 0.0
    said = [w for w in info["warnings"] if "SCL" in w]
    assert len(said) == 1 and "2020-07-04" in said[0] and edges._scl_path(folder).name in said[0], said


def test_info_logs_the_cloud_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from changedetect.io import describe

    folder = s2.s2_folder(tmp_path)
    with rasterio.open(edges._scl_path(folder), "r+") as dst:
        dst.write(np.full((dst.height, dst.width), 8, dtype=np.uint8), 1)
    with caplog.at_level(logging.WARNING):
        describe(folder)
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "mostly cloud" in r.getMessage()]
    assert len(said) == 1 and "2020-07-04 (100 % cloud)" in said[0], said
