"""Assemble a lazy :data:`~changedetect.types.TileStack` from a :class:`SeriesSource`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import dask.array as da
import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from pyproj import CRS

from changedetect.errors import TimeSeriesError
from changedetect.io._read import ReadSpec, lazy_band, resampling_of
from changedetect.io.clouds import scl_mask
from changedetect.types import STACK_DIMS, Grid, TileStack

if TYPE_CHECKING:
    from changedetect.io.series import SeriesSource


def build_stack(
    series: SeriesSource,
    grid: Grid,
    *,
    resampling: str = "bilinear",
    chunks: int | tuple[int, int] = 1024,
    bands: Sequence[str] | None = None,
    cloud_mask: bool = True,
) -> TileStack:
    """See :meth:`changedetect.io.SeriesSource.to_stack`."""
    method = resampling_of(resampling)
    size = _chunks(chunks)
    names = _select(series, bands)
    per_date = []
    for scene in series.scenes:
        by_name = {b.info.name: b for b in scene.bands}
        layers = [
            lazy_band(
                ReadSpec(
                    path=by_name[n].path,
                    index=by_name[n].index,
                    source_grid=by_name[n].info.grid,
                    grid=grid,
                    resampling=method,
                    nodata=by_name[n].info.nodata,
                ),
                size,
            )
            for n in names
        ]
        if cloud_mask and scene.scl is not None:
            masked = scl_mask(scene.scl, grid, size)
            layers = [da.where(masked, np.float32(np.nan), layer) for layer in layers]
        per_date.append(da.stack(layers, axis=0))
    data = da.stack(per_date, axis=0)
    res = {b.name: b.resolution for b in series.bands}
    stack = xr.DataArray(
        data,
        dims=STACK_DIMS,
        coords={
            "time": np.array([np.datetime64(d, "ns") for d in series.dates]),
            "band": np.array(names, dtype=object),
            **grid.coords(),
            "resolution_m": ("band", np.array([res[n] for n in names], dtype=np.float64)),
        },
        name="tiles",
        attrs={
            "sources": [";".join(str(p) for p in scene.files) for scene in series.scenes],
            "georeferenced": int(series.georeferenced),
        },
    )
    if grid.crs is not None:
        stack = stack.rio.write_crs(CRS.from_user_input(grid.crs))
    stack = stack.rio.write_transform(grid.transform)
    return stack.rio.write_nodata(np.nan, encoded=False)


def _chunks(chunks: int | tuple[int, int]) -> tuple[int, int]:
    pair = (chunks, chunks) if isinstance(chunks, int) else tuple(chunks)
    if len(pair) != 2 or any(int(c) < 1 for c in pair):
        raise ValueError(f"chunks must be a positive int or a (y, x) pair of them, got {chunks!r}")
    return (int(pair[0]), int(pair[1]))


def _select(series: SeriesSource, bands: Sequence[str] | None) -> list[str]:
    available = series.band_names
    if bands is None:
        return available
    if isinstance(bands, str):
        bands = [bands]
    missing = [b for b in bands if b not in available]
    if missing:
        raise TimeSeriesError(
            f"band(s) {', '.join(missing)} not in {series.source}; available: {', '.join(available)}"
        )
    return list(bands)


__all__ = ["build_stack"]
