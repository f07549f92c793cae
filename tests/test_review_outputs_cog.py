"""The rasters of a run as a GIS reads them: a date raster's overviews hold dates that were acquired."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
import xarray as xr
from affine import Affine

from changedetect._pipeline_steps import days_raster
from changedetect.io import write_cog
from changedetect.io.raster import cog_windows

TRANSFORM = Affine(0.5, 0, 679_828, 0, -0.5, 1_202_292)
DATES = np.array(["2024-07-12", "2025-01-20"], dtype="datetime64[ns]")


def _first_seen(n: int = 1024) -> xr.DataArray:
    """Alternate columns first seen on one date and the other, a quarter never (NaT)."""
    values = np.where(np.arange(n)[None, :] % 2 == 0, DATES[0], DATES[1]).repeat(n, axis=0)
    values[: n // 4] = np.datetime64("NaT")
    coords = {"y": 1_202_292 - 0.25 - 0.5 * np.arange(n), "x": 679_828 + 0.25 + 0.5 * np.arange(n)}
    arr = xr.DataArray(values, dims=("y", "x"), coords=coords, name="first_seen")
    return arr.rio.write_crs("EPSG:32648").rio.write_transform(TRANSFORM)


def _overview_values(path: Path) -> set[float]:
    with rasterio.open(path) as src:
        assert src.overviews(1) == [2]
        ov = src.read(1, out_shape=(src.height // 2, src.width // 2))
    return set(np.unique(ov[np.isfinite(ov)]).tolist())


def test_first_seen_overviews_hold_acquired_dates_not_their_average(tmp_path: Path) -> None:
    """Averaged, first_seen.tif's overview said 2024-10-16 (20012) between a pixel of 2024-07-12 and
    one of 2025-01-20: a date nothing was acquired on, in QGIS's Identify zoomed out or a tile server."""
    days = days_raster(_first_seen())
    acquired = {float(d) for d in DATES.astype("datetime64[D]").astype(int)}
    assert _overview_values(write_cog(days, tmp_path / "first_seen.tif")) <= acquired
    with cog_windows(days, tmp_path / "blocked.tif") as write:  # the block-by-block run's writer
        write(days.values, 0, 0)
    assert _overview_values(tmp_path / "blocked.tif") <= acquired


def test_a_probability_is_still_averaged(tmp_path: Path) -> None:
    prob = days_raster(_first_seen()).copy(data=np.tile([0.0, 1.0], (1024, 512)).astype(np.float32))
    prob.attrs = {}
    assert _overview_values(write_cog(prob, tmp_path / "p.tif")) == {0.5}
