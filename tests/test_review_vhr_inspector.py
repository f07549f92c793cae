"""Review: an inspector's own two deliveries of 0.5 m imagery (not the sample city).

Found on a real panchromatic tile and a second delivery reprojected to another UTM zone at 0.6 m:

- ``changedetect run`` on tiles without the model's bands co-registered the whole scene first
  and only then failed, with a message naming ``BEFORE`` (an argument of ``detect``, not of
  ``run``): the bands are known when the tiles are opened, so the run must stop there and name
  the tiles;
- ``changedetect info`` said nothing of a date delivered at another resolution (it notes a date
  in another CRS), though ``run`` resamples that date onto the first date's grid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from changedetect.errors import ModelError
from changedetect.testing import make_one_band, make_run_inputs


def test_run_refuses_tiles_without_the_models_bands_before_coregistering(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from changedetect import coregister as coreg_mod
    from changedetect.pipeline import run

    config = make_run_inputs(tmp_path, size=96)
    for tile in sorted((tmp_path / "tiles").glob("*.tif")):
        make_one_band(tile)  # a panchromatic delivery: one band, no name

    def no_coregistration(*args: object, **kwargs: object) -> None:
        raise AssertionError("co-registration started on tiles the model cannot read")

    monkeypatch.setattr(coreg_mod, "coregister", no_coregistration)
    with pytest.raises(ModelError) as err:
        run(tmp_path / "tiles", permits=tmp_path / "permits.gpkg", out=tmp_path / "out", config=config)
    message = str(err.value)
    assert "tiles" in message and "BEFORE" not in message, message
    assert "red" in message, message  # what the model needs
    assert not (tmp_path / "out").exists()


def test_a_failed_runs_progress_bar_does_not_say_done(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The bar ended on 'run: done' above the error line of a run that failed."""
    from changedetect.pipeline import run

    config = make_run_inputs(tmp_path, size=96)
    for tile in sorted((tmp_path / "tiles").glob("*.tif")):
        make_one_band(tile)
    with pytest.raises(ModelError):
        run(tmp_path / "tiles", permits=tmp_path / "permits.gpkg", out=tmp_path / "out", config=config,
            progress=True)
    err = capsys.readouterr().err
    assert "run: done" not in err and "run: stopped in open" in err, err


def test_detect_series_names_the_tiles_that_lack_the_models_bands(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``detect TILES --series`` said 'BEFORE lacks band(s)', naming no folder."""
    import changedetect.cli as cdcli

    config = make_run_inputs(tmp_path, size=96)
    for tile in sorted((tmp_path / "tiles").glob("*.tif")):
        make_one_band(tile)
    with pytest.raises(SystemExit) as done:
        cdcli.main(["-q", "detect", str(tmp_path / "tiles"), "--series", "--model", config.detect.model,
                    "--out", str(tmp_path / "prob.tif")])
    err = capsys.readouterr().err
    assert done.value.code == 2, err
    assert f"'{tmp_path / 'tiles'}' lacks band(s)" in err and "Traceback" not in err, err


def _tile(path: Path, resolution: float, size: int) -> None:
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 3, "dtype": "uint8",
               "crs": "EPSG:32648", "transform": Affine(resolution, 0, 680000.0, 0, -resolution, 1200000.0)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.random.default_rng(0).integers(1, 255, (3, size, size), dtype=np.uint8))
        dst.descriptions = ("red", "green", "blue")


def test_info_names_a_date_delivered_at_another_resolution(tmp_path: Path) -> None:
    from changedetect.cli.info import format_info
    from changedetect.io.summary import describe

    _tile(tmp_path / "city_20230115.tif", 0.5, 60)
    _tile(tmp_path / "city_20240220.tif", 0.6, 50)
    info = describe(tmp_path)
    assert [s["resolution"] for s in info["scenes"]] == [0.5, 0.6]
    text = format_info(info)
    assert "2024-02-20" in text.split("Bands:")[1] and "0.6 m" in text.split("Bands:")[1], text


def test_info_is_silent_on_resolution_when_the_dates_agree(tmp_path: Path) -> None:
    from changedetect.cli.info import format_info
    from changedetect.io.summary import describe

    _tile(tmp_path / "city_20230115.tif", 0.5, 40)
    _tile(tmp_path / "city_20240220.tif", 0.5, 40)
    assert "dates differ" not in format_info(describe(tmp_path))
