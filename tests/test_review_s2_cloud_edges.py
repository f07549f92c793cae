"""Review of the Sentinel-2 SCL cloud mask at its edges: an SCL that says no data over most of its
date (another tile's, or one that covers part of the scene) masks that date as a cloud would, and
is said, naming the date and the SCL file, instead of taking the date away in silence."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import rasterio
import test_review_s2_clouds as s2
from affine import Affine
from click.testing import CliRunner

from changedetect.cli import cli


def _scl_path(folder: Path) -> Path:
    return folder / f"T32TPP_{s2.DATES[1]}T101021_SCL_20m.tif"


@pytest.fixture()
def elsewhere(tmp_path: Path) -> Path:
    """The second date's SCL lies 10 km east of its bands (another tile's): not one of its pixels is
    over them, so every pixel of the date is masked, with 0 % cloud."""
    folder = s2.s2_folder(tmp_path)
    with rasterio.open(_scl_path(folder), "r+") as dst:
        dst.transform = Affine.translation(10_000, 0) * dst.transform
    return folder


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "SCL" in r.getMessage()]


def test_an_scl_elsewhere_masks_its_date_and_is_said(elsewhere: Path, caplog: pytest.LogCaptureFixture) -> None:
    from changedetect.io import open_series
    from changedetect.io.clouds import cloud_shares, warn_cloudy

    series = open_series(elsewhere)
    assert np.isnan(series.to_stack().values[1]).all()  # what the mask does: the whole date
    shares = cloud_shares(series)
    assert shares[1]["cloud_share"] == 0.0 and shares[1]["masked_share"] == 1.0
    assert shares[1]["scl"] == _scl_path(elsewhere).name
    with caplog.at_level(logging.WARNING):
        warn_cloudy(shares, masked=True)
    said = _warnings(caplog)
    assert len(said) == 1, said
    assert "2020-07-04" in said[0] and "2020-01-05" not in said[0], said
    assert _scl_path(elsewhere).name in said[0] and "100 % masked" in said[0], said


def test_coregister_says_it(elsewhere: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(cli, ["-q", "coregister", str(elsewhere), "--out", str(tmp_path / "co")])
    assert result.exit_code == 0, result.output
    said = _warnings(caplog)
    assert any(_scl_path(elsewhere).name in w for w in said), said


def test_a_cloud_alone_is_said_as_before(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from changedetect.io.clouds import warn_cloudy

    with caplog.at_level(logging.WARNING):
        warn_cloudy([{"date": "2020-07-04", "cloud_share": 0.62, "masked_share": 0.64, "scl": "a_SCL.tif"},
                     {"date": "2020-01-05", "cloud_share": 0.1, "masked_share": 0.4, "scl": "b_SCL.tif"}],
                    masked=True)
    said = _warnings(caplog)
    assert len(said) == 1 and "2020-07-04 (62 % cloud)" in said[0] and "2020-01-05" not in said[0], said
