"""The last clear view: where a consecutive pair's BEFORE date has no data (a cloud its SCL masked),
its BEFORE is filled from the latest earlier date with data there (``DetectConfig.fill_masked_before``),
so that a building put up under the cloud is seen by the pair after it and first seen on its AFTER."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import xarray as xr
from test_detect import FakeCard
from torch import nn

from changedetect._detect_engine import _scene_stats
from changedetect._fill_before import FILLED_ATTR, fill_before, fill_window
from changedetect._pipeline_blocks import SceneStats
from changedetect.config import PipelineConfig
from changedetect.detect import DetectConfig, detect_each_pair, detect_series
from changedetect.testing import Building, make_run_inputs, make_stack

DATES = ["2024-01-15", "2024-03-15", "2024-05-15"]  # no two a year apart: consecutive pairs only
HOUSE = (slice(30, 42), slice(20, 32))  # built between the first and the last date
CLOUD = (slice(24, 48), slice(14, 40))  # over it on the middle date


@dataclass(frozen=True)
class Card(FakeCard):
    """test_detect's card on the four bands of make_stack."""

    bands: tuple[str, ...] = ("red", "green", "blue", "nir")
    name: str = "diff"


class Diff(nn.Module):
    """Change where the two dates differ by more than a standard deviation on average."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return 4.0 * ((a - b).abs().mean(dim=1, keepdim=True) - 1.0)


@dataclass
class Loaded:
    module: nn.Module
    card: Card


MODEL = Loaded(Diff(), Card())
CFG = DetectConfig(model="diff", window=64, overlap=16, num_threads=1)


def _series(cloud: bool = True, *, first_cloudy: bool = False) -> xr.DataArray:
    house = Building(HOUSE[0].start, HOUSE[1].start, 12, 12, appears=2)
    stack = make_stack(dates=DATES, size=64, buildings=[house], noise=1.0, seed=4).copy(deep=True)
    if cloud:
        stack.values[1, :, CLOUD[0], CLOUD[1]] = np.nan
    if first_cloudy:
        stack.values[0, :, CLOUD[0], CLOUD[1]] = np.nan
    return stack


def test_a_house_built_under_a_cloud_is_found_and_first_seen_after_it() -> None:
    stack = _series()
    prob, first = detect_series(stack, config=CFG, model=MODEL)
    assert prob.attrs["pairs"] == "2024-01-15/2024-03-15;2024-03-15/2024-05-15"
    house = prob.values[HOUSE]
    assert (house >= 0.5).mean() > 0.9
    assert (first.values[HOUSE] == np.datetime64("2024-05-15", "ns")).mean() > 0.9
    # elsewhere under the cloud nothing changed: the filled pixels are the first date's ground
    ground = np.zeros(prob.shape, dtype=bool)
    ground[CLOUD] = True
    ground[HOUSE[0].start - 2:HOUSE[0].stop + 2, HOUSE[1].start - 2:HOUSE[1].stop + 2] = False
    assert (np.nan_to_num(prob.values[ground]) < 0.5).all()


def test_without_filling_the_house_under_the_cloud_is_never_seen() -> None:
    prob, first = detect_series(_series(), config=replace(CFG, fill_masked_before=False), model=MODEL)
    assert np.isnan(prob.values[HOUSE]).all()
    assert np.isnat(first.values[HOUSE]).all()


def test_no_earlier_clear_view_stays_no_data_and_a_later_date_never_fills() -> None:
    stack = _series(first_cloudy=True)
    done = fill_before(stack, 1)
    assert done.source is None and done.image.attrs[FILLED_ATTR] == ("2024-01-15",)  # not from 2024-05-15
    assert np.isnan(done.image.values[:, CLOUD[0], CLOUD[1]]).all()
    prob, first = detect_series(stack, config=CFG, model=MODEL)
    assert np.isnan(prob.values[HOUSE]).all() and np.isnat(first.values[HOUSE]).all()


def test_a_pixel_with_one_band_missing_is_filled_whole_from_one_date() -> None:
    stack = _series(cloud=False)
    stack.values[1, 2, 5, 7] = np.nan  # one band of one pixel
    done = fill_before(stack, 1)
    assert done.source is not None and int((done.source >= 0).sum()) == 1 and done.source[5, 7] == 0
    np.testing.assert_array_equal(done.image.values[:, 5, 7], stack.values[0, :, 5, 7])
    assert done.image.attrs[FILLED_ATTR] == ("2024-01-15",)  # the dates it may be filled from
    assert str(done.image["time"].values)[:10] == "2024-03-15"  # still the BEFORE date
    np.testing.assert_array_equal(fill_window([stack.values[1], stack.values[0]]), done.image.values)


def test_a_series_without_no_data_gives_the_same_probabilities() -> None:
    stack = _series(cloud=False)
    on = detect_each_pair(stack, config=CFG, model=MODEL, filled=(filled := {}))
    off = detect_each_pair(stack, config=replace(CFG, fill_masked_before=False), model=MODEL)
    assert filled == {(1, 2): None}
    for (_, _, a), (_, _, b) in zip(on, off, strict=True):
        assert a.values.tobytes() == b.values.tobytes()


def test_the_filled_pairs_and_their_shares_are_reported() -> None:
    filled: dict[tuple[int, int], np.ndarray | None] = {}
    detect_each_pair(_series(), config=CFG, model=MODEL, filled=filled)
    assert list(filled) == [(1, 2)]
    source = filled[(1, 2)]
    assert source is not None and (source[CLOUD] == 0).all() and (source >= 0).sum() == 24 * 26
    explicit: dict[tuple[int, int], np.ndarray | None] = {}  # explicit consecutive pairs too (since 2026-12)
    detect_each_pair(_series(), config=CFG, model=MODEL, pairs=[(0, 1), (1, 2)], filled=explicit)
    assert list(explicit) == [(1, 2)]


def test_a_blocked_run_normalises_the_filled_before_as_a_whole_scene_does() -> None:
    stack = _series()
    image = fill_before(stack, 1).image
    card = Card()
    whole = _scene_stats(lambda w: np.asarray(image.values[:, w.slices[0], w.slices[1]]), (64, 64), card)
    blocked = SceneStats(stack)(image.isel(y=slice(0, 40)), [0, 1, 2, 3], card)
    own = SceneStats(stack)(stack.isel(time=1), [0, 1, 2, 3], card)
    for a, b in zip(whole, blocked, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(whole[0], own[0])  # the filled scene's, not the cloudy date's alone


@pytest.mark.parametrize("lazy", [False, True])
def test_lazy_and_held_stacks_fill_alike(lazy: bool) -> None:
    stack = _series()
    given = stack.chunk({"time": 1, "y": 32, "x": 32}) if lazy else stack
    done = fill_before(given, 1)
    assert (done.image.chunks is not None) == lazy
    np.testing.assert_array_equal(np.asarray(done.image.values), fill_window([stack.values[1], stack.values[0]]))


# ------------------------------------------------------------------------------------------------ run
def _run_inputs(root: Path) -> PipelineConfig:
    """make_run_inputs' three dates, the middle one with no data (nodata 0) over a 60 x 80 px lot."""
    config = make_run_inputs(root)
    middle = sorted((root / "tiles").glob("*.tif"))[1]
    with rasterio.open(middle) as src:
        data, profile, names = src.read(), src.profile, src.descriptions
    data[:, 100:160, 40:120] = 0
    with rasterio.open(middle, "w", **{**profile, "nodata": 0}) as dst:
        dst.write(data)
        dst.descriptions = names
    return config


@pytest.mark.parametrize("blocked", [False, True])
def test_run_records_the_share_of_each_pair_filled(tmp_path: Path, blocked: bool) -> None:
    from changedetect.pipeline import run

    config = _run_inputs(tmp_path)
    if blocked:
        config = replace(config, run=replace(config.run, block_px=256, halo_px=32))
    run(tmp_path / "tiles", permits=tmp_path / "permits.gpkg", out=tmp_path / "out", config=config)
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["config"]["detect"]["fill_masked_before"] is True
    [pair] = record["filled_before"]
    assert (pair["before"], pair["after"]) == ("2024-03-15", "2024-05-14")
    assert 60 * 80 / 300**2 <= pair["share"] < 1.2 * 60 * 80 / 300**2
    assert list(pair["from"]) == ["2024-01-15"] and pair["from"]["2024-01-15"] == pair["share"]


def test_the_toml_key_turns_it_off(tmp_path: Path) -> None:
    from changedetect.pipeline import run

    config = _run_inputs(tmp_path)
    toml = tmp_path / "off.toml"
    toml.write_text("[detect]\nfill_masked_before = false\n")
    off = PipelineConfig.from_toml(toml)
    assert off.detect.fill_masked_before is False
    config = replace(config, detect=replace(config.detect, fill_masked_before=False))
    run(tmp_path / "tiles", permits=tmp_path / "permits.gpkg", out=tmp_path / "out", config=config)
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["config"]["detect"]["fill_masked_before"] is False and record["filled_before"] == []


def test_detect_series_flag_turns_it_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from changedetect.cli import cli

    seen: list[DetectConfig] = []
    monkeypatch.setattr("changedetect.cli.detect_cmd._series", lambda *a, **k: seen.append(a[2]))
    (tmp_path / "tiles").mkdir()
    for flags in ([], ["--no-fill-masked-before"]):
        result = CliRunner().invoke(cli, ["detect", str(tmp_path / "tiles"), "--series", "--out",
                                          str(tmp_path / "c.tif"), *flags])
        assert result.exit_code == 0, result.output
    assert [c.fill_masked_before for c in seen] == [True, False]
    result = CliRunner().invoke(cli, ["detect", str(tmp_path / "tiles"), str(tmp_path / "tiles"), "--out",
                                      str(tmp_path / "c.tif"), "--no-fill-masked-before"])
    assert result.exit_code == 2 and "--series" in result.output


# ------------------------------------------------------------------------------------ before_date
def _box(rows: slice, cols: slice, stack: xr.DataArray) -> object:
    from shapely.geometry import box

    t = stack.rio.transform()
    x0, y0 = t @ (cols.start, rows.start)
    x1, y1 = t @ (cols.stop, rows.stop)
    return box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def test_a_footprint_found_on_filled_pixels_is_dated_from_the_clear_view() -> None:
    """Its pair's BEFORE (2024-03-15) was cloudy there and saw nothing: the last image without
    the house is the date its pixels came from (2024-01-15), which permit_expired reads."""
    import geopandas as gpd
    import pandas as pd

    from changedetect._fill_before import clear_before_dates

    stack = _series()
    source = np.full((64, 64), -1, dtype=np.int16)
    source[CLOUD] = 0
    half = (slice(HOUSE[0].start, HOUSE[0].stop), slice(CLOUD[1].stop - 6, CLOUD[1].stop + 6))  # half under it
    fp = gpd.GeoDataFrame({"first_seen": pd.to_datetime(["2024-05-15", "2024-05-15", "2024-03-15"]),
                           "before_date": pd.to_datetime(["2024-03-15", "2024-03-15", "2024-01-15"])},
                          geometry=[_box(*HOUSE, stack), _box(*half, stack), _box(*HOUSE, stack)], crs=stack.rio.crs)
    out = clear_before_dates(fp, {(1, 2): source}, stack)
    assert [d.date().isoformat() for d in out["before_date"]] == ["2024-01-15", "2024-03-15", "2024-01-15"]
    assert clear_before_dates(fp, {(1, 2): None}, stack)["before_date"].equals(fp["before_date"])


def test_the_pipeline_dates_a_house_built_under_a_cloud_from_the_clear_view() -> None:
    from changedetect._pipeline_chain import Clock
    from changedetect._pipeline_find import find

    config = PipelineConfig()
    config = replace(config, detect=replace(CFG, same_sun_share=None, rebuilds=False))
    found = find(_series(), None, None, config, (MODEL, None), Clock(False), False, None)
    house = found.footprints[found.footprints.intersects(_box(*HOUSE, _series()).centroid)]
    assert len(house) == 1
    assert str(house["first_seen"].iloc[0])[:10] == "2024-05-15"
    assert str(house["before_date"].iloc[0])[:10] == "2024-01-15"  # 2024-03-15 saw a cloud there
