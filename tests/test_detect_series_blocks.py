"""``changedetect detect --series`` on a scene larger than one block (``--block-px``): each block is
detected with a halo and the whole scene's statistics, its core written into the two COGs window by
window, and the result is the whole scene's; a scene of one block runs whole, as before."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from changedetect._detect_series_blocks import aligned_spans, detect_series_to_file, first_seen_path
from changedetect.detect import DetectConfig, detect_series
from changedetect.testing import make_model, make_stack, write_stack

SIZE = 400  # 2 x 2 blocks of 200 px at block_px=256


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Three dates with a cloud on the middle one across the cores' edges (filled from the first date),
    a random model (64 px windows), and a threshold at the whole scene's median so that first-seen
    holds dates and NaN alike."""
    root = tmp_path_factory.mktemp("series-blocks")
    stack = make_stack(n_dates=3, size=SIZE, seed=5)
    stack.values[1, :, 150:260, 120:280] = np.nan
    config = DetectConfig(model=str(make_model(root / "model")), window=64, overlap=8, presence_check=False)
    prob, _ = detect_series(stack, config=config)
    config = DetectConfig(model=config.model, window=64, overlap=8, presence_check=False,
                          threshold=float(np.nanmedian(prob.values)))
    return {"root": root, "stack": stack, "config": config}


def _read(path: Path) -> tuple[np.ndarray, dict, dict]:
    with rasterio.open(path) as src:
        profile = {k: v for k, v in src.profile.items() if k != "nodata"}
        return src.read(1), src.tags(), profile


def _written(series: dict, name: str, **kw: int) -> tuple[Path, int]:
    out = series["root"] / f"{name}.tif"
    summary = detect_series_to_file(series["stack"], out, config=series["config"], **kw)
    assert summary.path == out and summary.first_seen_path == first_seen_path(out)
    return out, summary.blocks


def _windows_on(c0: int, c1: int, start: int, end: int, window: int, overlap: int) -> set[tuple[int, tuple]]:
    """The windows of ``[start, end)`` (tiled on their own, as detection tiles a block) that touch the
    core ``[c0, c1)``: their first pixel in the scene and their blending weights over the core."""
    from changedetect.tiling import Window, blend_weight, offsets

    length = end - start
    out = set()
    for o in offsets(length, window, overlap):
        wl = min(window, length)
        lo, hi = max(c0, start + o), min(c1, start + o + wl)
        if lo < hi:
            weight = blend_weight(Window(0, o, 1, wl), (1, length), overlap)[0]
            out.add((start + o, tuple(weight[lo - start - o : hi - start - o].round(6))))
    return out


@pytest.mark.parametrize(("size", "block", "halo", "grids"), [
    (400, 256, 0, [(64, 8)]), (1000, 256, 0, [(512, 64)]), (5000, 1024, 256, [(512, 64)]),
    (9000, 4096, 256, [(512, 64), (512, 64)]), (3000, 700, 100, [(512, 64), (256, 32)]), (300, 300, 0, [(64, 8)]),
])
def test_every_window_touching_a_core_is_the_whole_scene_s(size: int, block: int, halo: int,
                                                              grids: list[tuple[int, int]]) -> None:
    got = aligned_spans(size, block, halo, grids)
    cores = [c for c, _ in got]
    assert cores[0][0] == 0 and cores[-1][1] == size
    assert all(a[1] == b[0] and b[1] - b[0] <= block for a, b in zip(cores, cores[1:], strict=False))
    for (c0, c1), (o0, o1) in got:
        assert o0 <= max(0, c0 - halo) and o1 >= min(size, c1 + halo)
        for window, overlap in grids:
            assert _windows_on(c0, c1, o0, o1, window, overlap) == _windows_on(c0, c1, 0, size, window, overlap)


def test_a_series_in_blocks_is_the_whole_scene_s(series: dict, caplog: pytest.LogCaptureFixture) -> None:
    whole, n_whole = _written(series, "whole")
    with caplog.at_level(logging.INFO, logger="changedetect.detect"):
        blocks, n_blocks = _written(series, "blocks", block_px=256, halo_px=0)  # the halo grows to the window
    assert (n_whole, n_blocks) == (1, 4) and "block 4 of 4" in caplog.text
    for a_path, b_path in ((whole, blocks), (first_seen_path(whole), first_seen_path(blocks))):
        a, tags_a, profile_a = _read(a_path)
        b, tags_b, profile_b = _read(b_path)
        assert tags_a == tags_b and profile_a == profile_b
        assert (np.isnan(a) == np.isnan(b)).all()
        if a_path == whole:
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-5, equal_nan=True)
        else:  # days since 1970: one date or another, NaN where never; a pixel on the threshold may flip
            assert np.isnan(a).any() and np.isfinite(a).any()
            assert (np.nan_to_num(a) != np.nan_to_num(b)).mean() < 1e-3
    assert not [p for p in series["root"].iterdir() if p.name.startswith(".")]  # no staging file left


def test_a_scene_of_one_block_is_written_as_before(series: dict) -> None:
    from changedetect._pipeline_steps import days_raster
    from changedetect.io import write_cog

    prob, first = detect_series(series["stack"], config=series["config"])
    write_cog(prob, series["root"] / "before.tif")
    write_cog(days_raster(first), series["root"] / "before_first_seen.tif")
    now, n = _written(series, "now", block_px=SIZE)
    assert n == 1
    assert now.read_bytes() == (series["root"] / "before.tif").read_bytes()
    assert first_seen_path(now).read_bytes() == (series["root"] / "before_first_seen.tif").read_bytes()


def test_the_cli_writes_both_rasters_block_by_block(series: dict) -> None:
    from changedetect.cli import cli

    tiles = series["root"] / "tiles"
    write_stack(series["stack"], tiles, prefix="area")
    cfg = series["config"]
    args = ["detect", str(tiles), "--series", "--model", cfg.model, "--window", "64", "--overlap", "8",
            "--threshold", str(cfg.threshold), "--no-presence-check"]
    runner = CliRunner()
    whole = runner.invoke(cli, [*args, "--out", str(series["root"] / "cli_whole.tif")])
    assert whole.exit_code == 0, whole.output
    got = runner.invoke(cli, [*args, "--out", str(series["root"] / "cli_blocks.tif"), "--block-px", "256"])
    assert got.exit_code == 0, got.output
    assert "in 4 blocks" in got.output and " blocks," not in whole.output
    for name in ("cli_blocks.tif", "cli_blocks_first_seen.tif"):
        a, tags_a, _ = _read(series["root"] / name.replace("blocks", "whole"))
        b, tags_b, _ = _read(series["root"] / name)
        assert tags_a == tags_b and (np.isnan(a) == np.isnan(b)).all()
        if "first" in name:
            assert np.isfinite(b).any() and (np.nan_to_num(a) != np.nan_to_num(b)).mean() < 1e-3
        else:
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-5, equal_nan=True)
    bad = runner.invoke(cli, ["detect", str(tiles / "area_20240115.tif"), str(tiles / "area_20240315.tif"),
                               "--out", str(series["root"] / "pair.tif"), "--block-px", "512"])
    assert bad.exit_code == 2 and "--block-px applies to a series" in bad.output


def test_the_sample_city_in_blocks_is_the_whole_city(tmp_path: Path) -> None:
    """The shipped model, its presence check on the same-season pair, 4 blocks of 512: the same rasters."""
    sample = Path(__file__).resolve().parent.parent / "sample_tiles"
    if not any(sample.glob("district12_*.tif")):
        pytest.skip("the sample city (sample_tiles/) is absent")
    from changedetect.weights import building_segmenter, load_model

    loaded = load_model("vhr-building")
    segmenter = building_segmenter(loaded)
    for name, block in (("whole", 4096), ("blocks", 512)):
        got = detect_series_to_file(sample, tmp_path / f"{name}.tif", block_px=block, model=loaded,
                                    segmenter=segmenter)
        assert got.blocks == (1 if block == 4096 else 4)
    for a_path, b_path in ((tmp_path / "whole.tif", tmp_path / "blocks.tif"),
                           (tmp_path / "whole_first_seen.tif", tmp_path / "blocks_first_seen.tif")):
        a, tags_a, _ = _read(a_path)
        b, tags_b, _ = _read(b_path)
        assert tags_a == tags_b and (np.isnan(a) == np.isnan(b)).all()
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-5, equal_nan=True)
        if a_path.name == "whole.tif":  # the same-season pair was checked, in the blocks too
            assert "2024-01-15/2025-01-20" in tags_b["presence_check_pairs"] and np.isfinite(a).all()
