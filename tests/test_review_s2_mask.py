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
