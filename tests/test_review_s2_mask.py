"""A uint16 Sentinel-2 band that declares no nodata takes 0 as nodata (the products' NODATA), and
still honours a mask band it carries: the fallback value adds to the file's mask, it does not
replace it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from changedetect.io._read import read_float
from changedetect.testing import make_grid


def test_a_masked_s2_band_without_nodata_keeps_its_mask_and_its_zeros(tmp_path: Path) -> None:
    grid = make_grid(32, resolution=10.0)
    data = np.full((32, 32), 800, np.uint16)
    data[:, :4] = 0  # outside the swath
    mask = np.full((32, 32), 255, np.uint8)
    mask[:8] = 0  # masked by the producer (clouds, a cut): its values are not data
    path = tmp_path / "T32TPP_20240115_B02.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(
            path, "w", driver="GTiff", width=32, height=32, count=1, dtype="uint16", crs=grid.crs,
            transform=grid.transform) as dst:
        dst.write(data, 1)
        dst.write_mask(mask)
    with rasterio.open(path) as src:
        assert src.nodata is None
        got = read_float(src, 1, Window(0, 0, 32, 32), nodata=0.0)
    assert np.isnan(got[:8]).all(), "the file's mask"
    assert np.isnan(got[:, :4]).all(), "Sentinel-2's zeros"
    assert np.isfinite(got[8:, 4:]).all() and (got[8:, 4:] == 800).all()


def test_an_undescribed_stack_of_twelve_bands_takes_no_sentinel2_nodata(tmp_path: Path) -> None:
    """io names the bands of a file without descriptions B1..B12: its B10, B11 and B12 are not
    Sentinel-2's, and took 0 as nodata (and Sentinel-2's nominal resolution) while B1..B9 did not."""
    from changedetect.io import open_series

    grid = make_grid(16, resolution=10.0)
    data = np.full((12, 16, 16), 300, np.uint16)
    data[:, :4] = 0
    (tmp_path / "t").mkdir()
    for day in ("20240115", "20240315"):
        with rasterio.open(tmp_path / "t" / f"tile_{day}.tif", "w", driver="GTiff", width=16, height=16, count=12,
                           dtype="uint16", crs=grid.crs, transform=grid.transform) as dst:
            dst.write(data)
    bands = open_series(tmp_path / "t").scenes[0].bands
    assert [b.info.name for b in bands] == [f"B{i}" for i in range(1, 13)]
    assert [b.info.nodata for b in bands] == [None] * 12
    assert [b.info.nominal_resolution for b in bands] == [None] * 12
