"""A large, mostly empty date is co-registered without being read whole (H124).

Before, a date over ``coregister._IN_MEMORY_PIXELS`` was read whole three times for its dark-object
levels (a regular subsample reads every block when its step is under a block, and a block per sampled
pixel when over: 16 000 blocks of a 200 000 px city) and once more to store its material edges whole in
a temporary file (160 GB for that city, more than the disk), and the tie points read strips of the
scene's full width.  Now the levels come from at most 256 blocks, and the matching image is computed
under the measuring windows only (:class:`changedetect._registration.blocks.BlockImage`).  Counted here
with a lazy stack that records each block it is asked for: no peak memory is measured in a test.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from _fakes import textured_scene
from affine import Affine

import changedetect.coregister as cg
from changedetect._registration.blocks import BlockImage
from changedetect._registration.matching import material_edges, material_edges_of, sampled_levels

SIZE, CHUNK = 2304, 64  # 36 x 36 blocks a band
PATCH = (448, 1856)  # rows and columns that hold data (37 % of the grid); the rest is nodata
SHIFT = (2, -1)  # date 2 is the scene read (dx, dy) px further: its content moves by (-dx, -dy)


class Recorder:
    """Lazy dates whose blocks say when they are computed."""

    def __init__(self) -> None:
        self.read: set[tuple[int, int, int, int]] = set()
        self._lock = threading.Lock()

    def date(self, t: int, bands: int = 3) -> da.Array:
        def block(zeros: np.ndarray, block_info: dict | None = None) -> np.ndarray:
            assert block_info is not None
            (b0, b1), (r0, r1), (c0, c1) = block_info[0]["array-location"]
            _, i, j = block_info[0]["chunk-location"]
            y, x = np.mgrid[r0:r1, c0:c1]
            out = np.full(zeros.shape, np.nan, dtype=np.float32)
            inside = (y >= PATCH[0]) & (y < PATCH[1]) & (x >= PATCH[0]) & (x < PATCH[1])
            for k, b in enumerate(range(b0, b1)):
                with self._lock:
                    self.read.add((t, b, i, j))
                values = textured_scene(y + t * SHIFT[1], x + t * SHIFT[0], b)
                out[k][inside] = values[inside]
            return out

        zeros = da.zeros((bands, SIZE, SIZE), dtype=np.float32, chunks=(1, CHUNK, CHUNK))
        return da.map_blocks(block, zeros, dtype=np.float32)

    def share(self, t: int, b: int) -> float:
        return sum(1 for k in self.read if k[:2] == (t, b)) / (SIZE // CHUNK) ** 2


def _stack(rec: Recorder) -> xr.DataArray:
    data = da.stack([rec.date(0), rec.date(1)])
    stack = xr.DataArray(data, dims=("time", "band", "y", "x"),
                         coords={"time": pd.to_datetime(["2024-01-01", "2024-03-01"]).values,
                                 "band": ["red", "green", "blue"],
                                 "y": 1_200_000 - 0.5 * (np.arange(SIZE) + 0.5),
                                 "x": 680_000 + 0.5 * (np.arange(SIZE) + 0.5)})
    return stack.rio.write_crs("EPSG:32648").rio.write_transform(Affine(0.5, 0, 680_000, 0, -0.5, 1_200_000))


def test_a_large_date_is_registered_from_a_part_of_its_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    # was: every block of every band of both dates read (dark levels, then the material edges stored whole)
    monkeypatch.setattr(cg, "_IN_MEMORY_PIXELS", 256 * 256)
    rec = Recorder()
    config = cg.CoregisterConfig(radiometric=False, max_windows=16)
    aligned, report = cg.coregister(_stack(rec), config=config)
    assert isinstance(aligned.data, da.Array)  # the warp is still lazy: nothing of it read
    entry = report.dates[1]
    assert entry.status != "unreliable", entry.reason
    assert entry.shift_px == pytest.approx((-SHIFT[0], -SHIFT[1]), abs=0.05)
    for t in (0, 1):
        for b in (0, 1, 2):
            assert rec.share(t, b) < 0.5, (t, b, rec.share(t, b))


def test_the_lazy_material_edges_are_the_in_memory_ones_where_they_are_read() -> None:
    rec = Recorder()
    bands = rec.date(0)
    levels = sampled_levels(bands, 0, 1)
    assert len(rec.read) <= 3 * 256  # the levels: a bounded sample of blocks, not a strided read of all
    edges = material_edges_of(bands, 0, 1, in_memory_pixels=256 * 256)
    assert isinstance(edges, BlockImage) and edges.blocks_computed == 0
    window = edges[1000:1128, 1100:1228]
    assert edges.blocks_computed <= 9 and rec.share(0, 0) < 0.1  # the levels' 64 and the window's 16
    area = np.asarray(bands[:, 1000 - 64:1128 + 64, 1100 - 64:1228 + 64])
    np.testing.assert_allclose(window, material_edges(area, 0, 1, levels=levels)[64:-64, 64:-64], atol=1e-5)
    assert np.isnan(edges[0:64, 0:64]).all()  # outside the data: NaN, and the empty block is not stored
    assert edges[0:64, 0:64].shape == (64, 64)


def test_a_mostly_empty_grid_is_said_before_it_is_written(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # was: nothing said; a 200 000 px city with two flown districts would be written whole (1.2 TiB of
    # float32) for the 0.006 % of it that holds data
    from changedetect._registration import cli_tool
    from changedetect.io import open_series

    size, side = 6144, 256
    for k, day in enumerate(("20240101", "20240301")):
        with rasterio.open(tmp_path / f"t_{day}.tif", "w", driver="GTiff", width=size, height=size, count=4,
                           dtype="uint8", nodata=0, crs="EPSG:32648", transform=Affine(0.5, 0, 680_000, 0, -0.5,
                                                                                         1_200_000),
                           tiled=True, blockxsize=256, blockysize=256, sparse_ok=True) as dst:
            dst.write(np.random.default_rng(k).integers(1, 255, (4, side, side), dtype=np.uint8),
                      window=rasterio.windows.Window(1024, 2048, side, side))
    series = open_series(tmp_path)
    with caplog.at_level(logging.WARNING, logger="changedetect"):
        said = cli_tool.warn_sparse(series, series.reference_grid())
    assert said is not None and [r.getMessage() for r in caplog.records] == [said]
    assert "2 x 4 band(s) of 6144 x 6144 px (1.1 GiB of float32 to compute and write, before compression)" in said
    assert "the dates have data on only 0.18 % of that grid" in said  # 256² px of 6144², read decimated
    found = re.search(r"`gdal_translate -projwin (\S+) (\S+) (\S+) (\S+) -projwin_srs EPSG:32648 '.*t_20240101"
                      r"\.tif' CROP\.tif`", said)
    assert found is not None, said
    west, north, east, south = map(float, found.groups())
    data = (680_000 + 0.5 * 1024, 1_200_000 - 0.5 * (2048 + side), 680_000 + 0.5 * (1024 + side), 1_200_000 - 0.5 * 2048)
    assert west <= data[0] and south <= data[1] and east >= data[2] and north >= data[3]  # the whole patch
    assert (east - west) * (north - south) < 1.5 * (0.5 * side) ** 2  # and little more
    monkeypatch.setattr(cli_tool, "LARGE_OUTPUT_BYTES", 2 * 2**30)
    assert cli_tool.warn_sparse(series, series.reference_grid()) is None  # a small output: nothing to say

    def stop(*args: object, **kwargs: object) -> None:
        raise RuntimeError("registration started")

    monkeypatch.setattr(cli_tool, "LARGE_OUTPUT_BYTES", 2**30)
    monkeypatch.setattr("changedetect.coregister.coregister", stop)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="changedetect"), pytest.raises(RuntimeError):
        cli_tool.coregister_files(tmp_path, tmp_path / "out")
    assert any("crop every date's files to that box first" in r.getMessage() for r in caplog.records)


def test_a_block_image_reads_what_its_source_holds_and_stores_only_the_blocks_read() -> None:
    # was: a temporary file truncated to the whole grid (160 GB of float32 for a 200 000 px city), a hole
    # on disk but refused by a file-size limit (ulimit -f) or a file system without sparse files
    rng = np.random.default_rng(7)
    values = rng.random((1000, 900)).astype(np.float32)
    values[:300, :300] = np.nan  # blocks (0, 0) and (0, 1) hold no data: not stored
    img = BlockImage(da.from_array(values, chunks=(150, 128)))
    for r0, r1, c0, c1 in ((0, 1000, 0, 900), (140, 460, 120, 700), (299, 301, 255, 257), (5, 6, 0, 900)):
        np.testing.assert_array_equal(img[r0:r1, c0:c1], values[r0:r1, c0:c1])
    np.testing.assert_array_equal(img[10:500:7, 3:800:5], values[10:500:7, 3:800:5])
    np.testing.assert_array_equal(np.asarray(img), values)
    stored = int(np.sum([values[r:r + 150, c:c + 128].size for r in range(0, 1000, 150) for c in range(0, 900, 128)
                         if np.isfinite(values[r:r + 150, c:c + 128]).any()]))
    assert stored < values.size  # two blocks were all NaN
    assert os.fstat(img._file.fileno()).st_size == stored * 4
    huge = BlockImage(da.zeros((200_000, 200_000), chunks=1024, dtype=np.float32))
    assert huge[100_000:100_128, 50_000:50_128].shape == (128, 128)
    assert os.fstat(huge._file.fileno()).st_size == 1024 * 1024 * 4  # one block, not 160 GB
