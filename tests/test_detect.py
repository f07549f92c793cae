"""detect_pair / detect_series / detect_to_file with tiny deterministic models."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401
import torch
import xarray as xr
from affine import Affine
from torch import nn

from changedetect.detect import (
    DetectConfig,
    detect_each_pair,
    detect_pair,
    detect_series,
    detect_to_file,
    resolve_bands,
    series_pairs,
)
from changedetect.errors import ModelError, OutputExistsError

CRS = "EPSG:32648"
TRANSFORM = Affine(0.5, 0, 600000, 0, -0.5, 1200000)


@dataclass(frozen=True)
class FakeCard:
    """The part of a ModelCard that detection uses."""

    bands: tuple[str, ...] = ("red", "green", "blue")
    name: str = "tiny"
    version: str = "0"
    sha256: str = "0" * 64
    threshold: float = 0.5
    meta: dict[str, str] = field(default_factory=dict)

    def compute_stats(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flat = x.reshape(x.shape[0], -1)
        return flat.mean(axis=1), flat.std(axis=1) + 1e-6

    def preprocess(self, x: np.ndarray, stats: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        mean, std = stats if stats is not None else self.compute_stats(x)
        return ((x - mean[:, None, None]) / std[:, None, None]).astype(np.float32)


class Pointwise(nn.Module):
    """A 1x1-conv model: logits depend on each pixel only."""

    def __init__(self, c: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2 * c, 1, 1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([a, b], dim=1))


class Spatial(nn.Module):
    """A small conv net with a receptive field and a stride-2 level (not pointwise)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.down = nn.Conv2d(2 * c, 8, 3, stride=2, padding=1)
        self.up = nn.Conv2d(8, 1, 3, padding=1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.down(torch.cat([a, b], dim=1)))
        return self.up(nn.functional.interpolate(x, scale_factor=2, mode="bilinear"))


@dataclass
class Loaded:
    module: nn.Module
    card: FakeCard


def _da(data: np.ndarray, bands: tuple[str, ...] = ("red", "green", "blue")) -> xr.DataArray:
    c, h, w = data.shape
    da = xr.DataArray(data.astype(np.float32), dims=("band", "y", "x"),
                      coords={"band": list(bands), "y": 1200000 - 0.25 - 0.5 * np.arange(h),
                              "x": 600000 + 0.25 + 0.5 * np.arange(w)})
    return da.rio.write_crs(CRS).rio.write_transform(TRANSFORM)


def _pair(h: int = 300, w: int = 420, seed: int = 0) -> tuple[xr.DataArray, xr.DataArray]:
    rng = np.random.default_rng(seed)
    a = rng.random((3, h, w)) * 255
    b = a.copy()
    b[:, 100:160, 50:200] = 255 - b[:, 100:160, 50:200]
    return _da(a), _da(b)


CFG = DetectConfig(model="tiny", window=128, overlap=32, batch_size=3, num_threads=1)


def _whole_image(loaded: Loaded, a: xr.DataArray, b: xr.DataArray) -> np.ndarray:
    card = loaded.card
    pa = card.preprocess(a.values, card.compute_stats(a.values))
    pb = card.preprocess(b.values, card.compute_stats(b.values))
    with torch.inference_mode():
        logits = loaded.module(torch.from_numpy(pa[None]), torch.from_numpy(pb[None]))
    return torch.sigmoid(logits)[0, 0].numpy()


def test_tiled_equals_whole_image_for_pointwise_model() -> None:
    a, b = _pair()
    loaded = Loaded(Pointwise(3), FakeCard())
    prob = detect_pair(a, b, config=CFG, model=loaded)
    assert prob.dims == ("y", "x") and prob.dtype == np.float32
    np.testing.assert_allclose(prob.values, _whole_image(loaded, a, b), atol=1e-5)
    assert prob.attrs["model"] == "tiny" and prob.attrs["model_sha256"] == "0" * 64
    assert prob.rio.crs == CRS and prob.rio.transform() == TRANSFORM


def test_spatial_model_is_close_to_whole_image_and_tta_runs() -> None:
    a, b = _pair(256, 256)
    loaded = Loaded(Spatial(3), FakeCard())
    whole = _whole_image(loaded, a, b)
    prob = detect_pair(a, b, config=CFG, model=loaded).values
    assert np.abs(prob - whole).mean() < 0.01
    tta = detect_pair(a, b, config=DetectConfig(model="tiny", window=128, overlap=32, tta=True),
                      model=loaded).values
    assert np.isfinite(tta).all() and tta.min() >= 0 and tta.max() <= 1


def test_nan_where_either_date_has_no_data() -> None:
    a, b = _pair()
    a.values[:, :10, :] = np.nan
    b.values[0, 200:210, 300:310] = np.nan
    prob = detect_pair(a, b, config=CFG, model=Loaded(Pointwise(3), FakeCard())).values
    assert np.isnan(prob[:10]).all() and np.isnan(prob[200:210, 300:310]).all()
    assert np.isfinite(prob[10:200]).all()


def test_band_selection_by_alias_and_order() -> None:
    a, b = _pair()
    # the stack has Sentinel-2 names in another order plus an extra band
    perm = [2, 0, 1]
    names = ("B02", "B04", "B03", "B08")
    a4 = _da(np.concatenate([a.values[perm], a.values[:1]]), names)
    b4 = _da(np.concatenate([b.values[perm], b.values[:1]]), names)
    loaded = Loaded(Pointwise(3), FakeCard())
    np.testing.assert_allclose(detect_pair(a4, b4, config=CFG, model=loaded).values,
                               detect_pair(a, b, config=CFG, model=loaded).values, atol=1e-6)
    assert resolve_bands(["1", "2", "3"], ["red", "green", "blue"]) == [0, 1, 2]


def test_unnamed_bands_taken_in_order_are_named_in_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="changedetect"):
        assert resolve_bands(["1", "2", "3", "4"], ["red", "green", "blue"], source="AFTER 'b.tif'") == [0, 1, 2]
    assert "AFTER 'b.tif' has unnamed bands: using the first 3 as ['red', 'green', 'blue']" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="changedetect"):
        assert resolve_bands(["blue", "green", "red"], ["red", "green", "blue"]) == [2, 1, 0]
    assert caplog.text == ""  # named bands: nothing to say


def test_missing_bands_raise_model_error_naming_them() -> None:
    a, b = _pair()
    card = FakeCard(bands=("B02", "B03", "B04", "B08"))
    with pytest.raises(ModelError, match=r"BEFORE lacks band\(s\) \['B08'\]"):
        detect_pair(a, b, config=CFG, model=Loaded(Pointwise(4), card))


def test_small_scene_smaller_than_window() -> None:
    a, b = _pair(50, 70)
    loaded = Loaded(Pointwise(3), FakeCard())
    prob = detect_pair(a, b, config=CFG, model=loaded)
    np.testing.assert_allclose(prob.values, _whole_image(loaded, a, b), atol=1e-5)


def _three_dates() -> tuple[xr.DataArray, np.ndarray]:
    """January, June, the next January (the last two differ in a 30 px square), and their times."""
    a, b = _pair(128, 128)
    c = b.copy(deep=True)
    c.values[:, 10:40, 10:40] = 255 - c.values[:, 10:40, 10:40]
    times = np.array(["2024-01-01", "2024-06-01", "2025-01-01"], dtype="datetime64[ns]")
    stack = xr.concat([a, b, c], dim="time").assign_coords(time=times).transpose("time", "band", "y", "x")
    return stack, times


def test_series_keeps_max_and_first_seen() -> None:
    stack, times = _three_dates()
    a, b, c = (stack.isel(time=i) for i in range(3))
    loaded = Loaded(Pointwise(3), FakeCard())
    consecutive = replace(CFG, season_days=None)
    prob, first = detect_series(stack, config=consecutive, model=loaded)
    p1 = detect_pair(a, b, config=CFG, model=loaded).values
    p2 = detect_pair(b, c, config=CFG, model=loaded).values
    np.testing.assert_allclose(prob.values, np.fmax(p1, p2))
    expect = np.where(p1 >= 0.5, times[1], np.where(p2 >= 0.5, times[2], np.datetime64("NaT")))
    np.testing.assert_array_equal(first.values, expect.astype("datetime64[ns]"))
    assert first.dtype == np.dtype("datetime64[ns]")
    # 2024-01-01 and 2025-01-01 share a season: that pair is compared too, and dates only
    # the pixels that no consecutive pair flagged, with its AFTER date
    prob, first = detect_series(stack, config=CFG, model=loaded)
    p02 = detect_pair(a, c, config=CFG, model=loaded).values
    assert ((p02 >= 0.5) & (p1 < 0.5) & (p2 < 0.5)).any()  # the case below is exercised
    np.testing.assert_allclose(prob.values, np.fmax(np.fmax(p1, p2), p02))
    expect = np.where(np.isnat(expect.astype("datetime64[ns]")),
                      np.where(p02 >= 0.5, times[2], np.datetime64("NaT")), expect).astype("datetime64[ns]")
    np.testing.assert_array_equal(first.values, expect)
    assert prob.attrs["pairs"] == "2024-01-01/2024-06-01;2024-06-01/2025-01-01;2024-01-01/2025-01-01"


def test_series_pairs_add_one_same_season_pair_per_date() -> None:
    t = np.array(["2023-12-20", "2024-03-01", "2024-06-01", "2024-09-01", "2024-12-28", "2025-03-05",
                  "2026-01-02"], dtype="datetime64[D]")
    consecutive = [(i, i + 1) for i in range(6)]
    # 2024-12-28 / 2023-12-20 (8 days apart in the year, across New Year), 2025-03-05 / 2024-03-01,
    # 2026-01-02 / 2024-12-28 (the latest qualifying date, not the first)
    assert series_pairs(t) == [*consecutive, (0, 4), (1, 5), (4, 6)]
    assert series_pairs(t, season_days=None) == consecutive
    assert series_pairs(t, season_days=3) == [*consecutive, (1, 5)]
    assert series_pairs(t[:2]) == [(0, 1)]
    yearly = np.array(["2022-01-10", "2023-01-12", "2024-01-09", "2024-07-01", "2025-01-15"], dtype="datetime64[D]")
    # consecutive yearly dates are already same-season: no two-year pair; July -> January gets one
    assert series_pairs(yearly) == [(0, 1), (1, 2), (2, 3), (3, 4), (2, 4)]
    with pytest.raises(ValueError, match="season_days"):
        DetectConfig(season_days=120)


def _write(path: Path, data: np.ndarray, transform: Affine = TRANSFORM) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=3,
                       dtype="uint8", crs=CRS, transform=transform, tiled=True,
                       blockxsize=64, blockysize=64) as dst:
        dst.write(data)
        dst.descriptions = ("red", "green", "blue")
    return path


def test_detect_to_file_writes_cog_on_before_grid(tmp_path: Path) -> None:
    a, b = _pair(300, 260)
    pa = _write(tmp_path / "a_20240101.tif", a.values.astype(np.uint8))
    pb = _write(tmp_path / "b_20250101.tif", b.values.astype(np.uint8))
    out = tmp_path / "prob.tif"
    loaded = Loaded(Pointwise(3), FakeCard())
    summary = detect_to_file(pa, pb, out, config=CFG, model=loaded)
    with rasterio.open(out) as src:
        assert src.crs == CRS and src.transform == TRANSFORM and src.dtypes[0] == "float32"
        assert (src.height, src.width) == (300, 260)
        assert src.block_shapes[0] == (512, 512) and src.overviews(1) == []  # one block: no overview (next test)
        assert src.tags()["model"] == "tiny" and src.tags()["before"] == "2024-01-01"
        values = src.read(1)
    np.testing.assert_allclose(values, detect_pair(_da(a.values.astype(np.uint8)), _da(b.values.astype(np.uint8)),
                                                   config=CFG, model=loaded).values, atol=1e-5)
    assert summary.height == 300 and 0 <= summary.share_above <= 1
    with pytest.raises(OutputExistsError, match="prob.tif"):
        detect_to_file(pa, pb, out, config=CFG, model=loaded)
    detect_to_file(pa, pb, out, config=CFG, model=loaded, overwrite=True)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_detect_to_file_writes_a_cog_with_overviews(tmp_path: Path) -> None:
    """A scene larger than one 512 px block gets 512 px tiles and an overview, as QGIS wants of a COG."""
    a, b = _pair(1100, 700)
    pa = _write(tmp_path / "a_20240101.tif", a.values.astype(np.uint8))
    pb = _write(tmp_path / "b_20250101.tif", b.values.astype(np.uint8))
    out = tmp_path / "prob.tif"
    detect_to_file(pa, pb, out, config=CFG, model=Loaded(Pointwise(3), FakeCard()))
    with rasterio.open(out) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.block_shapes[0] == (512, 512)
        assert src.overviews(1) == [2, 4]


def test_detect_to_file_reads_after_onto_before_grid(tmp_path: Path) -> None:
    a, b = _pair(200, 200)
    pa = _write(tmp_path / "a.tif", a.values.astype(np.uint8))
    shifted = Affine(0.5, 0, 600000 - 5.0, 0, -0.5, 1200000 + 5.0)  # 10 px larger margin
    big = np.zeros((3, 220, 220), np.uint8)
    big[:, 10:210, 10:210] = b.values.astype(np.uint8)
    pb = _write(tmp_path / "b.tif", big, shifted)
    loaded = Loaded(Pointwise(3), FakeCard())
    detect_to_file(pa, pb, tmp_path / "p.tif", config=CFG, model=loaded)
    ref = tmp_path / "b_same.tif"
    _write(ref, b.values.astype(np.uint8))
    detect_to_file(pa, ref, tmp_path / "q.tif", config=CFG, model=loaded)
    with rasterio.open(tmp_path / "p.tif") as p, rasterio.open(tmp_path / "q.tif") as q:
        assert p.transform == TRANSFORM
        np.testing.assert_allclose(p.read(1), q.read(1), atol=1e-3)


def test_what_after_does_not_cover_is_no_data_not_zero(tmp_path: Path) -> None:
    """AFTER on another grid covering part of BEFORE, with no nodata value set: outside it the
    probability is NaN (the VRT's nodata), not a change computed against zeros; a 4-band AFTER
    whose 4th band is flagged alpha (rasterio's default for RGBA uint8) is read, not refused."""
    from rasterio.enums import ColorInterp

    a, b = _pair(200, 200)
    pa = _write(tmp_path / "a.tif", a.values.astype(np.uint8))
    part = Affine(0.5, 0, 600000 + 25.0, 0, -0.5, 1200000)  # starts 50 px east of BEFORE's west edge
    pb = _write(tmp_path / "b.tif", b.values.astype(np.uint8)[:, :, 50:], part)
    loaded = Loaded(Pointwise(3), FakeCard())
    summary = detect_to_file(pa, pb, tmp_path / "p.tif", config=CFG, model=loaded)
    with rasterio.open(tmp_path / "p.tif") as src:
        values = src.read(1)
    assert np.isnan(values[:, :49]).all() and np.isfinite(values[:, 51:]).all()
    assert summary.valid_share == pytest.approx(150 / 200, abs=0.01)
    rgba = tmp_path / "rgba.tif"
    with rasterio.open(rgba, "w", driver="GTiff", width=150, height=200, count=4, dtype="uint8", crs=CRS,
                       transform=part, photometric="RGB", alpha="YES") as dst:
        dst.write(np.concatenate([b.values.astype(np.uint8)[:, :, 50:], np.full((1, 200, 150), 255, np.uint8)]))
    with rasterio.open(rgba) as src:
        assert src.colorinterp[3] == ColorInterp.alpha
    summary = detect_to_file(pa, rgba, tmp_path / "r.tif", config=CFG, model=loaded)
    with rasterio.open(tmp_path / "r.tif") as src:
        np.testing.assert_allclose(src.read(1), values, atol=1e-3, equal_nan=True)  # alpha 255: all data


def test_detect_to_file_refuses_bad_pairs_before_any_work(tmp_path: Path) -> None:
    from changedetect.errors import GeoreferenceError, TileReadError, TimeSeriesError

    a, b = _pair(200, 200)
    pa = _write(tmp_path / "a.tif", a.values.astype(np.uint8))
    loaded = Loaded(Pointwise(3), FakeCard())
    out = tmp_path / "p.tif"
    far = _write(tmp_path / "far.tif", b.values.astype(np.uint8), Affine(0.5, 0, 650000, 0, -0.5, 1200000))
    with pytest.raises(GeoreferenceError, match=r"'.*far.tif' does not overlap .*EPSG:32648"):
        detect_to_file(pa, far, out, config=CFG, model=loaded)
    with rasterio.open(tmp_path / "nocrs.tif", "w", driver="GTiff", width=200, height=200, count=3,
                       dtype="uint8") as dst:
        dst.write(b.values.astype(np.uint8))
    with pytest.raises(GeoreferenceError, match=r"'.*nocrs.tif' has no CRS but the other date has EPSG:32648"):
        detect_to_file(pa, tmp_path / "nocrs.tif", out, config=CFG, model=loaded)
    cut = tmp_path / "cut.tif"
    data = (pb := _write(tmp_path / "b.tif", b.values.astype(np.uint8))).read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])  # the header survives, blocks are lost
    with pytest.raises(TileReadError, match=r"'.*cut.tif' (is truncated|.*cannot be opened: it is truncated)"):
        detect_to_file(pa, cut, out, config=CFG, model=loaded)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif", "b.tif", "cut.tif", "far.tif", "nocrs.tif"]
    detect_to_file(pa, pb, out, config=CFG, model=loaded)  # a good pair still runs
    one = xr.concat([a], dim="time").assign_coords(time=[np.datetime64("2024-01-15", "ns")])
    with pytest.raises(TimeSeriesError, match=r"two or more dates; the stack holds 1 \(2024-01-15\)"):
        detect_series(one, config=CFG, model=loaded)


def test_a_model_far_from_its_resolution_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a, b = _pair(64, 64)
    pa = _write(tmp_path / "a.tif", a.values.astype(np.uint8))  # 0.5 m pixels
    pb = _write(tmp_path / "b.tif", b.values.astype(np.uint8))
    coarse = Loaded(Pointwise(3), dataclasses.replace(FakeCard(), name="s2"))
    object.__setattr__(coarse.card, "gsd_range_m", (10.0, 10.0))
    with caplog.at_level("WARNING", logger="changedetect"):
        detect_to_file(pa, pb, tmp_path / "p.tif", config=CFG, model=coarse)
    assert "model 's2' is made for 10 m pixels, and '" in caplog.text and "has 0.50 m pixels" in caplog.text
    caplog.clear()
    fine = Loaded(Pointwise(3), dataclasses.replace(FakeCard(), name="vhr"))
    object.__setattr__(fine.card, "gsd_range_m", (0.3, 1.0))
    with caplog.at_level("WARNING", logger="changedetect"):
        detect_to_file(pa, pb, tmp_path / "q.tif", config=CFG, model=fine)
        stack = xr.concat([a, b], dim="time").assign_coords(
            time=np.array(["2024-01-01", "2024-07-01"], dtype="datetime64[ns]"))
        detect_series(stack, config=CFG, model=fine)
    assert "made for" not in caplog.text
    with caplog.at_level("WARNING", logger="changedetect"):
        detect_series(stack, config=CFG, model=coarse)
    assert "and the stack has 0.50 m pixels" in caplog.text


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder (weights.pt + metadata.json) of the default architecture, random weights."""
    from changedetect import weights
    from changedetect.nn import get_model

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models") / "tiny-cli"
    card = weights.ModelCard(name="tiny-cli", version="0", arch="siamese_unet",
                             bands=("red", "green", "blue"))
    weights.save_model(get_model("siamese_unet", in_channels=3), card, folder)
    return folder


def test_cli_detect_pair_and_overwrite(tmp_path: Path, model_dir: Path) -> None:
    from click.testing import CliRunner

    from changedetect.cli import cli

    a, b = _pair(200, 230)
    pa = _write(tmp_path / "a.tif", a.values.astype(np.uint8))
    pb = _write(tmp_path / "b.tif", b.values.astype(np.uint8))
    out = tmp_path / "prob.tif"
    args = ["-q", "detect", str(pa), str(pb), "--out", str(out), "--model", str(model_dir), "--window", "128",
            "--overlap", "16"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "230x200 px" in res.output and "Mpx/s" in res.output
    with rasterio.open(out) as src:
        assert src.dtypes[0] == "float32" and src.crs == CRS and src.transform == TRANSFORM
        assert src.tags()["model"] == "tiny-cli"
    res = CliRunner().invoke(cli, args)
    assert res.exit_code != 0 and "already exists" in str(res.exception or res.output)


def test_cli_detect_series(tmp_path: Path, model_dir: Path) -> None:
    from click.testing import CliRunner

    from changedetect.cli import cli
    from changedetect.testing import make_stack, write_stack

    write_stack(make_stack(3, size=96), tmp_path / "tiles")
    out = tmp_path / "out" / "change.tif"
    res = CliRunner().invoke(cli, ["-q", "detect", str(tmp_path / "tiles"), "--series", "--out", str(out),
                                   "--model", str(model_dir), "--window", "64", "--overlap", "16"])
    assert res.exit_code == 0, res.output
    with rasterio.open(out) as p, rasterio.open(out.with_name("change_first_seen.tif")) as f:
        assert p.shape == f.shape == (96, 96)
        days = f.read(1)
    finite = days[np.isfinite(days)]
    assert finite.size == 0 or finite.min() > 19000  # days since 1970 (2022+)
    # January, July, January: the same-season pair is compared too, unless --consecutive-only
    write_stack(make_stack(3, size=96, dates=["2024-01-15", "2024-07-12", "2025-01-20"]), tmp_path / "year")
    for flag, pairs in (([], "2024-01-15/2024-07-12;2024-07-12/2025-01-20;2024-01-15/2025-01-20"),
                        (["--consecutive-only"], "2024-01-15/2024-07-12;2024-07-12/2025-01-20")):
        res = CliRunner().invoke(cli, ["-q", "detect", str(tmp_path / "year"), "--series", "--out", str(out),
                                       "--model", str(model_dir), "--window", "64", "--overlap", "16",
                                       "--overwrite", *flag])
        assert res.exit_code == 0, res.output
        with rasterio.open(out) as p:
            assert p.tags()["pairs"] == pairs


def test_dask_backed_inputs_give_the_same_result() -> None:
    pytest.importorskip("dask")
    a, b = _pair(200, 200)
    loaded = Loaded(Pointwise(3), FakeCard())
    lazy = detect_pair(a.chunk({"y": 64, "x": 64}), b.chunk({"y": 64, "x": 64}), config=CFG, model=loaded)
    np.testing.assert_allclose(lazy.values, detect_pair(a, b, config=CFG, model=loaded).values, atol=1e-6)


def test_mask_pairs_silence_the_later_pairs_only() -> None:
    """The nightly call: (previous, new) first, (partner, new) masked where (partner, previous) changed."""
    from scipy import ndimage

    stack, times = _three_dates()
    loaded = Loaded(Pointwise(3), FakeCard())
    prob, first = detect_series(stack, config=CFG, model=loaded, pairs=[(1, 2), (0, 2)], mask_pairs=[(0, 1)])
    p12, p02, p01 = (detect_pair(stack.isel(time=i), stack.isel(time=j), config=CFG, model=loaded).values
                     for i, j in ((1, 2), (0, 2), (0, 1)))
    masked = ndimage.binary_dilation(p01 >= 0.5, iterations=2)
    assert masked.any() and (~masked).any() and ((p12 >= 0.5) & masked).any()
    np.testing.assert_allclose(prob.values, np.fmax(p12, np.where(masked, 0, p02)))
    assert prob.attrs["pairs"] == "2024-06-01/2025-01-01;2024-01-01/2025-01-01"
    assert prob.attrs["mask_pairs"] == "2024-01-01/2024-06-01"
    seen = (p12 >= 0.5) | (np.where(masked, 0, p02) >= 0.5)
    np.testing.assert_array_equal(first.values, np.where(seen, times[2], np.datetime64("NaT")))
    with pytest.raises(ValueError, match="mask"):
        detect_series(stack, config=CFG, model=loaded, pairs=[(1, 2)], mask_pairs=[(2, 0)])
    # each pair's own raster says whether it was masked: the first is not
    first_pair, second = detect_each_pair(stack, config=CFG, model=loaded, pairs=[(1, 2), (0, 2)],
                                          mask_pairs=[(0, 1)])
    assert "mask_pairs" not in first_pair[2].attrs and second[2].attrs["mask_pairs"] == "2024-01-01/2024-06-01"
    np.testing.assert_array_equal(first_pair[2].values, p12)
    # ... and what the masked pair decided before its mask is handed back when asked for
    unmasked: dict = {}
    detect_each_pair(stack, config=CFG, model=loaded, pairs=[(1, 2), (0, 2)], mask_pairs=[(0, 1)], unmasked=unmasked)
    assert list(unmasked) == [(0, 2)]
    np.testing.assert_array_equal(unmasked[(0, 2)], (p02 >= 0.5).astype(np.float32))
    assert ((unmasked[(0, 2)] == 1) & masked).any()  # what the mask hides


def test_series_attrs_name_the_dates_compared() -> None:
    """attrs before / after: the earliest and latest dates the pairs compare (they were the first
    pair's BEFORE and the stack's last date, which explicit pairs may leave out)."""
    a, b = _pair(64, 64)
    times = np.array(["2024-01-01", "2024-06-01", "2025-01-01"], dtype="datetime64[ns]")
    stack = xr.concat([a, b, b], dim="time").assign_coords(time=times).transpose("time", "band", "y", "x")
    loaded = Loaded(Pointwise(3), FakeCard())
    prob, _ = detect_series(stack, config=CFG, model=loaded, pairs=[(1, 2), (0, 2)])
    assert (prob.attrs["before"], prob.attrs["after"]) == ("2024-01-01", "2025-01-01")
    prob, _ = detect_series(stack, config=CFG, model=loaded, pairs=[(0, 1)])
    assert (prob.attrs["before"], prob.attrs["after"]) == ("2024-01-01", "2024-06-01")


def test_each_pairs_probability_and_their_combination() -> None:
    """detect_each_pair gives each pair's own raster (the default pairs: consecutive + same season);
    combine_pairs of them is detect_series, and leaves them as they were."""
    from changedetect.detect import combine_pairs

    stack, times = _three_dates()
    loaded = Loaded(Pointwise(3), FakeCard())
    events = detect_each_pair(stack, config=CFG, model=loaded)
    assert [(i, j) for i, j, _ in events] == [(0, 1), (1, 2), (0, 2)]
    for i, j, prob in events:
        np.testing.assert_array_equal(prob.values, detect_pair(stack.isel(time=i), stack.isel(time=j),
                                                               config=CFG, model=loaded).values)
    kept = [p.values.copy() for _, _, p in events]
    prob, first = combine_pairs(events, stack, 0.5)
    series, series_first = detect_series(stack, config=CFG, model=loaded)
    np.testing.assert_array_equal(prob.values, series.values)
    np.testing.assert_array_equal(first.values, series_first.values)
    for (_, _, p), before in zip(events, kept, strict=True):
        np.testing.assert_array_equal(p.values, before)


def test_combine_pairs_follows_the_events_order_and_refuses_bad_events() -> None:
    """combine_pairs keeps the highest probability and dates each pixel by the first pair, in the
    order given, that reaches the threshold; the pairs' own rasters and attrs stay as they were;
    no pairs, or a raster off the stack's grid, is one clear ValueError (not an IndexError)."""
    from changedetect.detect import combine_pairs

    stack, times = _three_dates()
    loaded = Loaded(Pointwise(3), FakeCard())
    events = detect_each_pair(stack, config=CFG, model=loaded)
    attrs = [dict(p.attrs) for _, _, p in events]
    values = [p.values for _, _, p in events]
    for order in ([0, 1, 2], [2, 0, 1]):
        prob, first = combine_pairs([events[k] for k in order], stack, 0.5)
        np.testing.assert_array_equal(prob.values, np.fmax(np.fmax(values[0], values[1]), values[2]))
        expect = np.full(first.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
        for k in order:
            expect[(values[k] >= 0.5) & np.isnat(expect)] = times[events[k][1]]
        np.testing.assert_array_equal(first.values, expect)
    assert (~np.isnat(expect)).any()
    assert [dict(p.attrs) for _, _, p in events] == attrs  # combine_pairs wrote its attrs on a copy
    with pytest.raises(ValueError, match="no pairs"):
        combine_pairs([], stack, 0.5)
    i, j, p = events[0]
    with pytest.raises(ValueError, match=r"\(64, 64\).*\(128, 128\)"):
        combine_pairs([(i, j, p.isel(y=slice(0, 64), x=slice(0, 64)))], stack, 0.5)
    with pytest.raises(ValueError, match="not dates of the stack"):
        combine_pairs([(0, 3, p)], stack, 0.5)


def test_cli_consecutive_only_needs_series(tmp_path: Path) -> None:
    """--consecutive-only and --no-presence-check only mean something for a series: on a pair they
    are refused, not ignored."""
    from click.testing import CliRunner

    from changedetect.cli import cli

    a, b = _pair(64, 64)
    pa = _write(tmp_path / "a.tif", a.values.astype(np.uint8))
    pb = _write(tmp_path / "b.tif", b.values.astype(np.uint8))
    out = tmp_path / "prob.tif"
    res = CliRunner().invoke(cli, ["-q", "detect", str(pa), str(pb), "--out", str(out), "--consecutive-only"])
    assert res.exit_code == 2 and "--consecutive-only" in res.output and "--series" in res.output, res.output
    assert not out.exists()
    res = CliRunner().invoke(cli, ["-q", "detect", str(pa), str(pb), "--out", str(out), "--no-presence-check"])
    assert res.exit_code == 2 and "--no-presence-check" in res.output and "--series" in res.output, res.output
    assert not out.exists()
