"""`changedetect run` on a Sentinel-2 band-per-file delivery co-registered, held (or spilled) and
read every band it was given (13 on OSCD pisa) though ``s2-urban`` and the report read four
(review of 2026-11-30): it now measures co-registration on every band, as before, and warps and
holds only the bands the later stages read, with the same outputs."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio

from changedetect import DetectConfig, PipelineConfig
from changedetect._pipeline_bands import chain_bands
from changedetect.testing import make_footprints, make_grid, make_permits, make_stack
from changedetect.weights import find_model, read_card

S2_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]
#: the tiny delivery's bands and their resolutions: the model's four and three it does not read
_FILES = {"B01": 60.0, "B02": 10.0, "B03": 10.0, "B04": 10.0, "B05": 20.0, "B08": 10.0, "B11": 20.0}


def _s2_card():  # noqa: ANN202
    return read_card(find_model("s2-urban"))


def test_a_sentinel2_stack_is_read_on_the_models_and_the_reports_bands() -> None:
    assert chain_bands(S2_BANDS, [_s2_card()], ("red", "green", "blue")) == ["B02", "B03", "B04", "B08"]


def test_a_report_band_the_model_does_not_read_is_kept() -> None:
    assert chain_bands(S2_BANDS, [_s2_card()], ("B8A", "B04", "B03")) == ["B02", "B03", "B04", "B08", "B8A"]


@pytest.mark.parametrize(("names", "rgb"), [
    (["B1", "B2", "B3", "B4", "B5"], ("red", "green", "blue")),  # unnamed: the model takes the first ones
    (S2_BANDS, ("B04", "B03", "coastal")),  # the report falls back to the first three
    (["red", "green", "nir", "swir"], ("red", "green", "nir")),  # no blue: the change-type heuristic's first three
])
def test_bands_picked_by_position_keep_every_band(names: list[str], rgb: tuple[str, ...]) -> None:
    card = _s2_card() if names[0].startswith("B0") else read_card(find_model("vhr-building"))
    assert chain_bands(names, [card], rgb) is None


def _delivery(folder: Path) -> None:
    """Two dates of band files (uint16, named like an L1C tile's), bands at 10, 20 and 60 m; the
    second date shifted by a pixel and with the default buildings."""
    stack = make_stack(n_dates=2, size=96, bands=list(_FILES), resolution=10.0, seed=5)
    data = stack.values.copy()
    data[1] = np.roll(data[1], 1, axis=-1)
    folder.mkdir()
    for t, day in enumerate(("20230610", "20240614")):
        for b, (band, res) in enumerate(_FILES.items()):
            k = int(res // 10)
            plane = data[t, b].reshape(96 // k, k, 96 // k, k).mean(axis=(1, 3)) * 10 + 500
            grid = make_grid(96 // k, resolution=res)
            with rasterio.open(folder / f"T32TPP_{day}_{band}.tif", "w", driver="GTiff", width=grid.width,
                               height=grid.height, count=1, dtype="uint16", crs=grid.crs,
                               transform=grid.transform) as dst:
                dst.write(plane.round().astype(np.uint16), 1)


def test_run_warps_and_holds_only_the_bands_it_reads_with_the_same_outputs(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from changedetect import _pipeline_chain
    from changedetect.pipeline import run

    _delivery(tmp_path / "s2")
    make_permits(make_footprints(make_grid(96, resolution=10.0)).iloc[:1]).to_file(tmp_path / "permits.gpkg")
    config = PipelineConfig(detect=DetectConfig(model="s2-urban", window=64, overlap=16))
    held: list[list[str]] = []
    hold = _pipeline_chain.hold

    def spy(aligned, **kw):  # noqa: ANN001, ANN003, ANN202
        held.append([str(b) for b in aligned["band"].values])
        return hold(aligned, **kw)

    monkeypatch.setattr(_pipeline_chain, "hold", spy)
    run(tmp_path / "s2", permits=tmp_path / "permits.gpkg", out=tmp_path / "used", config=config)
    monkeypatch.setattr(_pipeline_chain, "chain_bands", lambda *a: None, raising=False)  # as before
    run(tmp_path / "s2", permits=tmp_path / "permits.gpkg", out=tmp_path / "every", config=config)

    assert held == [["B02", "B03", "B04", "B08"], list(_FILES)]
    bands = json.loads((tmp_path / "used" / "run.json").read_text(encoding="utf-8"))["bands"]
    assert bands == {"read": list(_FILES), "used": ["B02", "B03", "B04", "B08"]}
    for name in ("change_probability.tif", "before_rgb.tif", "after_rgb.tif"):
        with rasterio.open(tmp_path / "used" / name) as a, rasterio.open(tmp_path / "every" / name) as b:
            np.testing.assert_array_equal(a.read(), b.read(), err_msg=name)
    for name, layer in (("footprints.gpkg", None), ("violations.gpkg", "violations")):
        used = gpd.read_file(tmp_path / "used" / name, layer=layer)
        pd.testing.assert_frame_equal(pd.DataFrame(used),
                                      pd.DataFrame(gpd.read_file(tmp_path / "every" / name, layer=layer)))
    assert len(used) > 0
    # the same shift and gains: co-registration is measured on every band, as before
    reports = [json.loads((tmp_path / out / "coregistration.json").read_text(encoding="utf-8"))
               for out in ("used", "every")]
    for report in reports:
        report.pop("seconds")
    assert reports[0] == reports[1]
    assert reports[0]["dates"][1]["shift_px"][0] == pytest.approx(1.0, abs=0.2)
