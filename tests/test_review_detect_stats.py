"""Review of detect's scene-wide normalisation statistics: the file-to-file and the in-memory paths
draw them alike, and a mostly-nodata scene's statistics come from its data wherever they lie."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from test_detect import CFG, CRS, TRANSFORM, FakeCard, Loaded, Pointwise, _da

from changedetect.detect import detect_pair, detect_to_file


def _write(path: Path, data: np.ndarray, nodata: float | None = None) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=3,
                       dtype="uint8", crs=CRS, transform=TRANSFORM, tiled=True, blockxsize=256, blockysize=256,
                       compress="deflate", nodata=nodata) as dst:
        dst.write(data)
        dst.descriptions = ("red", "green", "blue")
    return path


def _textured(h: int, w: int, seed: int) -> np.ndarray:
    """uint8 (3, h, w): a smooth large-scale pattern (as a city's districts) plus noise, in 1..254 (so 255 - x is never nodata 0)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = (np.sin(yy / 90.0) * 60 + np.cos(xx / 130.0) * 50 + 128)[None] + rng.normal(0, 20, (3, h, w))
    return np.clip(base, 1, 254).astype(np.uint8)


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return np.asarray(src.read(1))


def test_mostly_nodata_scene_is_normalised_with_its_datas_statistics(tmp_path: Path) -> None:
    """A 2400 x 2400 scene (5.8 Mpx) whose only data are a 150 x 150 block near its corner (nodata 0
    elsewhere): the statistics were drawn from an 8 x 8 grid of 128 px windows, all of which fell in
    nodata, so they were None and every window was normalised on its own (with this card: NaN, so
    every pixel got the same probability, whatever the change).  The block must come out as it does
    alone (a scene small enough for whole-scene statistics), up to the subsampling of the statistics."""
    n, r0, side = 2400, 150, 150
    block_a = _textured(side, side, 0)
    block_b = block_a.copy()
    block_b[:, 40:90, 30:120] = 255 - block_b[:, 40:90, 30:120]
    a = np.zeros((3, n, n), np.uint8)
    b = np.zeros((3, n, n), np.uint8)
    a[:, r0:r0 + side, r0:r0 + side] = block_a
    b[:, r0:r0 + side, r0:r0 + side] = block_b
    loaded = Loaded(Pointwise(3), FakeCard())
    out = tmp_path / "prob.tif"
    detect_to_file(_write(tmp_path / "a.tif", a, 0), _write(tmp_path / "b.tif", b, 0), out, config=CFG,
                   model=loaded)
    prob = _read(out)
    alone = detect_pair(_da(block_a), _da(block_b), config=CFG, model=loaded).values
    inside = prob[r0:r0 + side, r0:r0 + side]
    assert np.isfinite(inside).all()
    block = np.zeros(prob.shape, dtype=bool)
    block[r0:r0 + side, r0:r0 + side] = True
    assert np.isnan(prob[~block]).all()
    assert np.ptp(inside) > 0.1  # the change shows: not one value everywhere
    np.testing.assert_allclose(inside, alone, atol=0.01)
    # the in-memory path, on the same scene (NaN as nodata), agrees with the file
    nan_a, nan_b = (np.where(x == 0, np.nan, x.astype(np.float32)) for x in (a, b))
    in_memory = detect_pair(_da(nan_a), _da(nan_b), config=CFG, model=loaded).values
    np.testing.assert_allclose(prob, in_memory, atol=1e-5)


def test_file_and_in_memory_paths_give_the_same_probability_on_a_scene_over_1_mpx(tmp_path: Path) -> None:
    """A 1100 x 1100 pair (1.2 Mpx, over the whole-scene-statistics size): detect_to_file drew its
    statistics from a grid of windows, detect_pair from every second pixel, so the same pair gave
    probabilities 4.4e-4 apart (float32 rounding explains ~1e-6).  Both now draw the same sample."""
    n = 1100
    a = _textured(n, n, 1)
    b = a.copy()
    b[:, 300:400, 500:700] = 255 - b[:, 300:400, 500:700]
    loaded = Loaded(Pointwise(3), FakeCard())
    out = tmp_path / "prob.tif"
    detect_to_file(_write(tmp_path / "a.tif", a), _write(tmp_path / "b.tif", b), out, config=CFG, model=loaded)
    in_memory = detect_pair(_da(a), _da(b), config=CFG, model=loaded).values
    np.testing.assert_allclose(_read(out), in_memory, atol=1e-5)
