"""``vectorize(before=, after=)``: an image's declared nodata (rioxarray's ``_FillValue``, as
``rioxarray.open_rasterio`` reads a file without ``masked=True``) is no pixel, not black ground, as
everywhere else the images are read (H120's leftover). A date whose image covers part of the grid
(its collar 0, declared nodata) had its brightness range stretched down to 0, so a demolished low
roof lost too little contrast to be called ``demolished``."""

from __future__ import annotations

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine

from changedetect.vectorize import vectorize

SIZE, TRANSFORM = 64, Affine(0.5, 0, 680_000, 0, -0.5, 1_200_000)


def _raster(values: np.ndarray) -> xr.DataArray:
    dims = ("band", "y", "x") if values.ndim == 3 else ("y", "x")
    coords = {"y": 1_200_000 - 0.5 * (np.arange(SIZE) + 0.5), "x": 680_000 + 0.5 * (np.arange(SIZE) + 0.5)}
    if values.ndim == 3:
        coords["band"] = ["red", "green", "blue"]
    da = xr.DataArray(values, dims=dims, coords=coords)
    return da.rio.write_crs("EPSG:32648").rio.write_transform(TRANSFORM)


def test_a_nodata_collar_does_not_stretch_the_brightness_range() -> None:
    prob = np.zeros((SIZE, SIZE), np.float32)
    prob[26:38, 34:46] = 0.95
    ground = np.add.outer(np.linspace(80, 120, SIZE), np.zeros(SIZE))
    before = np.repeat(ground[None], 3, axis=0)
    before[:, 26:38, 34:46] = 108  # a low roof, a little brighter than the ground around it
    after = np.repeat(ground[None], 3, axis=0)  # then a cleared lot
    for image in (before, after):
        image[:, :, :27] = 0  # the left of the grid: no data on either date (declared nodata 0)
    got = vectorize(_raster(prob), before=_raster(before.astype(np.uint8)).rio.write_nodata(0),
                    after=_raster(after.astype(np.uint8)).rio.write_nodata(0))
    assert list(got["change_type"]) == ["demolished"]
    # what the nodata must not be read as: the same images, the collar black ground (nothing declared)
    black = vectorize(_raster(prob), before=_raster(before.astype(np.uint8)),
                      after=_raster(after.astype(np.uint8)))
    assert list(black["change_type"]) == ["new"]
