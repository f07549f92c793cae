"""Sentinel-2 L2A's scene classification (SCL) masks its date's clouds, cloud shadows, no data and
defective pixels: a cloud on one date is no data, not change.  SCL is never a band of the stack."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner

from changedetect.cli import cli
from changedetect.testing import make_footprints, make_model, make_permits

SIZE = 64  # 10 m pixels; SCL at 20 m is 32 x 32
ORIGIN = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 4800000.0)
BANDS = ("B02", "B03", "B04", "B08")
DATES = ("20200105", "20200704")


def _scl(cloudy: bool) -> np.ndarray:
    """20 m classes: vegetation (4) everywhere; on the cloudy date a cloud (9), its shadow (3), a thin
    cirrus (10) and snow (11, kept)."""
    scl = np.full((SIZE // 2, SIZE // 2), 4, dtype=np.uint8)
    if cloudy:
        scl[10:18, 9:17] = 9
        scl[18:21, 9:14] = 3
        scl[2:4, 25:27] = 10
        scl[28:30, 2:4] = 11
    return scl


def _masked_10m(cloudy: bool) -> np.ndarray:
    """The 10 m pixels the SCL masks, by nearest neighbour: each 20 m pixel is 2 x 2."""
    return np.kron(np.isin(_scl(cloudy), (0, 1, 3, 8, 9, 10)), np.ones((2, 2), dtype=bool)).astype(bool)


def _bands(cloudy: bool, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = rng.integers(900, 1300, size=(len(BANDS), SIZE, SIZE)).astype(np.uint16)
    if cloudy:
        data[:, _masked_10m(True)] = 9000  # the cloud is white in every band (the shadow too: any value)
    return data


def _write(path: Path, data: np.ndarray, transform: Affine, *, names: tuple[str, ...] = ()) -> Path:
    profile = {"driver": "GTiff", "width": data.shape[-1], "height": data.shape[-2], "count": data.shape[0],
               "dtype": str(data.dtype), "crs": "EPSG:32632", "transform": transform}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(names, 1):
            dst.set_band_description(i, name)
    return path


def s2_folder(root: Path, *, scl: bool = True) -> Path:
    """An L2A-like band-per-file folder: B02, B03, B04, B08 at 10 m and SCL at 20 m per date."""
    folder = root / "tiles"
    folder.mkdir(parents=True, exist_ok=True)
    for k, day in enumerate(DATES):
        data = _bands(cloudy=k == 1, seed=k)
        for b, name in enumerate(BANDS):
            _write(folder / f"T32TPP_{day}T101021_{name}_10m.tif", data[b:b + 1], ORIGIN)
        if scl:
            _write(folder / f"T32TPP_{day}T101021_SCL_20m.tif", _scl(k == 1)[None], ORIGIN @ Affine.scale(2))
    return folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return s2_folder(tmp_path_factory.mktemp("s2clouds"))


# ------------------------------------------------------------------------------------------------ io
def test_scl_is_not_a_band_and_masks_its_date(folder: Path) -> None:
    from changedetect.io import open_series

    series = open_series(folder)
    assert series.band_names == list(BANDS)
    assert all(s.scl is not None for s in series.scenes)
    stack = series.to_stack().values
    assert not np.isnan(stack[0]).any()
    for b in range(len(BANDS)):  # every band, exactly the SCL's pixels: nearest, never interpolated
        np.testing.assert_array_equal(np.isnan(stack[1, b]), _masked_10m(True))


def test_cloud_mask_off_keeps_the_cloud(folder: Path) -> None:
    from changedetect.io import open_stack

    stack = open_stack(folder, cloud_mask=False).values
    assert not np.isnan(stack).any()
    assert (stack[1, :, _masked_10m(True)] == 9000).all()


def test_a_stacked_file_with_an_scl_band(tmp_path: Path) -> None:
    """A band named SCL in a multi-band file (its description, a manifest's or a STAC asset's name) is
    the date's mask, not a band: the network never reads it."""
    from changedetect.io import open_series

    for k, day in enumerate(DATES):
        scl10 = np.kron(_scl(k == 1), np.ones((2, 2), dtype=np.uint8)).astype(np.uint16)[None]
        _write(tmp_path / f"s2_{day}.tif", np.concatenate([_bands(k == 1, k), scl10]), ORIGIN,
               names=(*BANDS, "SCL"))
    series = open_series(tmp_path)
    assert series.band_names == list(BANDS)
    stack = series.to_stack().values
    np.testing.assert_array_equal(np.isnan(stack[1, 0]), _masked_10m(True))
    assert not np.isnan(stack[0]).any()


def test_scl_beside_a_stacked_file(tmp_path: Path) -> None:
    from changedetect.io import open_series

    for k, day in enumerate(DATES):
        _write(tmp_path / f"s2_{day}.tif", _bands(k == 1, k), ORIGIN, names=BANDS)
        _write(tmp_path / f"s2_{day}_SCL.tif", _scl(k == 1)[None], ORIGIN @ Affine.scale(2))
    series = open_series(tmp_path)
    assert series.band_names == list(BANDS)
    np.testing.assert_array_equal(np.isnan(series.to_stack().values[1, 2]), _masked_10m(True))


def test_cloud_shares(folder: Path) -> None:
    from changedetect.io import open_series
    from changedetect.io.clouds import cloud_shares

    shares = cloud_shares(open_series(folder))
    cloud = np.isin(_scl(True), (3, 8, 9, 10)).mean()
    assert [s["date"] for s in shares] == ["2020-01-05", "2020-07-04"]
    assert shares[0]["cloud_share"] == 0.0
    assert shares[1]["cloud_share"] == pytest.approx(cloud, abs=1e-4)
    assert shares[1]["masked_share"] == pytest.approx(cloud, abs=1e-4)  # no class 0 or 1 here


def test_info_shows_the_scl(folder: Path) -> None:
    from changedetect.io import describe

    info = describe(folder)
    assert [b["name"] for b in info["bands"]] == list(BANDS)
    assert info["scenes"][1]["cloud_share"] == pytest.approx(np.isin(_scl(True), (3, 8, 9, 10)).mean(), abs=1e-3)
    assert any(f.endswith("_SCL_20m.tif") for f in info["scenes"][1]["files"])
    result = CliRunner().invoke(cli, ["info", str(folder)])
    assert result.exit_code == 0, result.output
    assert "SCL" in result.output and "cloud" in result.output, result.output


# ----------------------------------------------------------------------------------------------- run
@pytest.fixture(scope="module")
def run_inputs(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from changedetect.config import PipelineConfig
    from changedetect.io import open_stack

    root = tmp_path_factory.mktemp("s2run")
    make_permits(make_footprints(open_stack(folder)).iloc[:1]).to_file(root / "permits.gpkg")
    config = PipelineConfig().with_model(str(make_model(root / "m")))
    config = dataclasses.replace(config, detect=dataclasses.replace(config.detect, window=64, overlap=8))
    return {"root": root, "permits": root / "permits.gpkg", "config": config}


@pytest.mark.parametrize("mask", [True, False])
def test_run_masks_and_reports_clouds(mask: bool, folder: Path, run_inputs: dict,
                                      caplog: pytest.LogCaptureFixture) -> None:
    import rioxarray

    from changedetect.pipeline import run

    config = run_inputs["config"]
    config = dataclasses.replace(config, run=dataclasses.replace(config.run, cloud_mask=mask))
    out = run_inputs["root"] / f"out_{mask}"
    with caplog.at_level(logging.WARNING):
        summary = run(folder, permits=run_inputs["permits"], out=out, config=config)
    cloud = np.isin(_scl(True), (3, 8, 9, 10)).mean()
    doc = json.loads((out / "run.json").read_text())
    assert doc["config"]["run"]["cloud_mask"] is mask
    assert [c["date"] for c in doc["clouds"]] == ["2020-01-05", "2020-07-04"]
    assert doc["clouds"][1]["cloud_share"] == pytest.approx(cloud, abs=1e-3)
    assert doc["clouds"][1]["masked"] is mask
    prob = rioxarray.open_rasterio(out / "change_probability.tif").values[0]
    if mask:  # the cloud is no data: not change, and not counted in the coverage
        assert np.isnan(prob[_masked_10m(True)]).all()
        assert summary.coverage_both_dates == pytest.approx(1 - _masked_10m(True).mean(), abs=0.01)
    else:
        assert np.isfinite(prob[_masked_10m(True)]).all()
        assert summary.coverage_both_dates == 1.0
    assert summary.to_dict()["clouds"] == doc["clouds"]


def test_run_warns_on_a_mostly_cloudy_date(tmp_path: Path, run_inputs: dict,
                                           caplog: pytest.LogCaptureFixture) -> None:
    from changedetect.pipeline import run

    folder = s2_folder(tmp_path)
    path = folder / f"T32TPP_{DATES[1]}T101021_SCL_20m.tif"
    with rasterio.open(path, "r+") as dst:
        scl = dst.read(1)
        scl[:, :20] = 8  # 62 % of the date is cloud
        dst.write(scl, 1)
    with caplog.at_level(logging.WARNING):
        run(folder, permits=run_inputs["permits"], out=tmp_path / "out", config=run_inputs["config"])
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "mostly cloud" in r.getMessage()]
    assert len(said) == 1 and "2020-07-04" in said[0] and "2020-01-05" not in said[0], said


def test_cli_run_no_cloud_mask(folder: Path, run_inputs: dict, tmp_path: Path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text(run_inputs["config"].to_toml(), encoding="utf-8")
    args = ["run", str(folder), "--permits", str(run_inputs["permits"]), "--config", str(toml)]
    masked = CliRunner().invoke(cli, ["-q", *args, "--out", str(tmp_path / "a"), "--json"])
    assert masked.exit_code == 0, masked.output
    assert json.loads(masked.stdout)["coverage_both_dates"] < 0.95
    kept = CliRunner().invoke(cli, ["-q", *args, "--out", str(tmp_path / "b"), "--no-cloud-mask"])
    assert kept.exit_code == 0, kept.output
    assert "100.0 % of the scene has data on both" in kept.stdout, kept.stdout
    assert "cloud" in kept.stdout and "not masked" in kept.stdout, kept.stdout


def test_cli_coregister_masks_clouds(folder: Path, tmp_path: Path) -> None:
    for flag, any_nan in (([], True), (["--no-cloud-mask"], False)):
        out = tmp_path / f"co{len(flag)}"
        result = CliRunner().invoke(cli, ["-q", "coregister", str(folder), "--out", str(out), *flag])
        assert result.exit_code == 0, result.output
        last = sorted(out.glob("*2020-07-04*.tif")) or sorted(out.glob("*20200704*.tif"))
        with rasterio.open(last[0]) as src:
            valid = src.read_masks(1) > 0
        assert (not valid[_masked_10m(True)].any()) if any_nan else valid.all()


def test_cli_detect_series_masks_clouds(folder: Path, run_inputs: dict, tmp_path: Path) -> None:
    import rioxarray

    model = str(run_inputs["config"].detect.model)
    for flag, masked in (([], True), (["--no-cloud-mask"], False)):
        out = tmp_path / f"p{len(flag)}.tif"
        result = CliRunner().invoke(cli, ["-q", "detect", str(folder), "--series", "--model", model, "--window",
                                          "64", "--overlap", "8", "--out", str(out), *flag])
        assert result.exit_code == 0, result.output
        prob = rioxarray.open_rasterio(out).values[0]
        assert bool(np.isnan(prob[_masked_10m(True)]).all()) is masked
    files = [str(next(folder.glob(f"*{day}*B02_10m.tif"))) for day in DATES]
    two = CliRunner().invoke(cli, ["detect", *files, "--out", str(tmp_path / "x.tif"), "--no-cloud-mask"])
    assert two.exit_code == 2 and "--series" in two.output, two.output


def test_a_stac_item_with_an_scl_asset(folder: Path, tmp_path: Path) -> None:
    """Earth Search / Planetary Computer items name the asset ``scl`` / ``SCL``: the date's mask."""
    from changedetect.io import open_series

    for k, day in enumerate(DATES):
        assets = {name: {"href": str(next(folder.glob(f"*{day}*_{name}_10m.tif"))), "type": "image/tiff",
                         "roles": ["data"]} for name in BANDS}
        assets["scl"] = {"href": str(next(folder.glob(f"*{day}*_SCL_20m.tif"))), "type": "image/tiff",
                         "roles": ["data"]}
        item = {"type": "Feature", "id": f"S2_{day}", "properties": {"datetime": f"{day[:4]}-{day[4:6]}-{day[6:]}T10:00:00Z"},
                "assets": assets}
        (tmp_path / f"item_{k}.json").write_text(json.dumps(item), encoding="utf-8")
    series = open_series(tmp_path)
    assert series.band_names == list(BANDS)
    np.testing.assert_array_equal(np.isnan(series.to_stack().values[1, 3]), _masked_10m(True))
