"""The typed values that flow between stages.

``TileStack``
    ``xr.DataArray`` with dims ``("time", "band", "y", "x")``, dtype float32,
    nodata as NaN; coords ``time`` (datetime64[ns], strictly increasing),
    ``band`` (str band names, e.g. ``"red"`` or ``"B04"``), ``y`` and ``x``
    (pixel-centre coordinates in the CRS); CRS and transform written with
    rioxarray (``stack.rio.crs``, ``stack.rio.transform()``).  Usually backed
    by dask so that nothing is read until it is needed.  ``attrs`` may hold
    ``"sources"`` (one path per date, ``;``-joined where a date has several).
``ChangeProbability``
    ``xr.DataArray`` with dims ``("y", "x")``, float32 in [0, 1], NaN where no
    data; attrs ``model``, ``model_sha256``, ``before``, ``after`` (ISO dates).
``Footprints`` / ``Permits`` / ``Violations``
    ``geopandas.GeoDataFrame`` with the columns documented in
    :mod:`changedetect.vectorize`, ``permits/schema.json`` and
    :mod:`changedetect.match`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import xarray as xr
from affine import Affine
from pyproj import CRS

TileStack: TypeAlias = xr.DataArray
ChangeProbability: TypeAlias = xr.DataArray

STACK_DIMS = ("time", "band", "y", "x")


@dataclass(frozen=True)
class Grid:
    """A pixel grid: CRS, affine transform and shape (odc-geo's GeoBox, reduced).

    ``transform`` maps (col, row) of a pixel's upper-left corner to (x, y) in ``crs``.
    """

    crs: CRS | None
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return (self.height, self.width)

    @property
    def resolution(self) -> tuple[float, float]:
        """Pixel size ``(xres, yres)`` in CRS units, both positive."""
        return (abs(self.transform.a), abs(self.transform.e))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in CRS units."""
        t = self.transform
        xs = [t.c, t.c + t.a * self.width]
        ys = [t.f, t.f + t.e * self.height]
        return (min(xs), min(ys), max(xs), max(ys))

    def coords(self) -> dict[str, np.ndarray]:
        """Pixel-centre ``x`` and ``y`` coordinates (for a north-up grid)."""
        t = self.transform
        x = t.c + t.a * (np.arange(self.width) + 0.5)
        y = t.f + t.e * (np.arange(self.height) + 0.5)
        return {"y": y, "x": x}

    @classmethod
    def of(cls, da: xr.DataArray) -> Grid:
        """The grid of a georeferenced DataArray (rioxarray), its transform by :func:`transform_of`."""
        return cls(
            crs=da.rio.crs,
            transform=transform_of(da),
            width=int(da.sizes["x"]),
            height=int(da.sizes["y"]),
        )


def transform_of(da: xr.DataArray) -> Affine:
    """The affine transform of ``da``'s grid, as its ``x`` and ``y`` coordinates give it.

    rioxarray's ``da.rio.transform()`` returns the GeoTransform cached on ``spatial_ref``, which xarray
    carries unchanged through ``coarsen``, a stepped ``isel`` (``x=slice(None, None, 2)``) or
    ``sortby("y")``: the pixels it describes are then not the array's (footprints traced a quarter of
    their size, a COG written at the wrong resolution).  The coordinates are right, so where the two
    disagree by more than rounding the transform is recomputed from them, as rioxarray's own
    ``to_raster`` does; where they agree (every array read or written here) the cached one is kept, so
    that a grid read from a file compares equal to the file's.  A rotated transform, or an array without
    coordinates, keeps the cached one; an axis of one pixel (no spacing to measure) keeps the cached pixel
    size of that axis alone.
    """
    cached = da.rio.transform()
    if not cached.is_rectilinear or "x" not in da.coords or "y" not in da.coords:
        return cached
    x, y = da["x"].values, da["y"].values
    a = (float(x[-1]) - float(x[0])) / (x.size - 1) if x.size > 1 else cached.a
    e = (float(y[-1]) - float(y[0])) / (y.size - 1) if y.size > 1 else cached.e
    if a == 0 or e == 0:
        return cached
    fresh = Affine(a, 0.0, float(x[0]) - a / 2, 0.0, e, float(y[0]) - e / 2)
    same = (abs(fresh.a - cached.a) <= 1e-6 * abs(a) and abs(fresh.e - cached.e) <= 1e-6 * abs(e)
            and abs(fresh.c - cached.c) <= 1e-3 * abs(a) and abs(fresh.f - cached.f) <= 1e-3 * abs(e))
    return cached if same else fresh


def band_names(da: xr.DataArray) -> list[str]:
    """The names of ``da``'s bands, as text: its ``band`` coordinate, except where that holds the file's
    band numbers (1 to N, as ``rioxarray.open_rasterio`` reads a file, or some of them after a
    ``.sel``) and ``attrs["long_name"]`` the file's band descriptions (rioxarray's): each numbered band
    then takes its description (its number where it has none).  Without a ``band`` coordinate:
    ``"1"`` to ``"N"``.

    >>> da = xr.DataArray(np.zeros((3, 1, 1)), dims=("band", "y", "x"), coords={"band": [1, 2, 3]},
    ...                   attrs={"long_name": ("blue", "green", "red")})
    >>> band_names(da), band_names(da.sel(band=[3, 1]))
    (['blue', 'green', 'red'], ['red', 'blue'])
    """
    n = int(da.sizes.get("band", 1)) if "band" in da.dims else 0
    if "band" not in da.coords:
        return [str(i + 1) for i in range(n)]
    values = list(np.atleast_1d(da["band"].values))
    described = da.attrs.get("long_name")
    if isinstance(described, str):  # rioxarray: a one-band file's description is a string
        described = (described,)
    numbered = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values)
    if not numbered or not isinstance(described, (tuple, list)) or not all(
            1 <= int(v) <= len(described) for v in values):
        return [str(v) for v in values]
    names = [described[int(v) - 1] for v in values]
    return [str(name).strip() if isinstance(name, str) and name.strip() else str(v)
            for name, v in zip(names, values, strict=True)]


def nodata_as_nan(da: xr.DataArray) -> xr.DataArray:
    """``da`` with the nodata value it declares (rioxarray's ``da.rio.nodata``: ``attrs["_FillValue"]``,
    as ``rioxarray.open_rasterio(path)`` reads a file without ``masked=True``) made NaN, as float32,
    lazily (a dask-backed ``da`` stays so); ``da`` itself where it declares none, or NaN.  So a uint16
    or uint8 date whose collar is 0 (its nodata) is read as ``changedetect.open_stack`` reads the file,
    not as black ground.

    >>> da = xr.DataArray(np.array([[[0, 7]]], dtype=np.uint16), dims=("band", "y", "x"),
    ...                   attrs={"_FillValue": 0})
    >>> nodata_as_nan(da).values.tolist(), nodata_as_nan(da).dtype
    ([[[nan, 7.0]]], dtype('float32'))
    """
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    if not isinstance(da, xr.DataArray):  # refused where it is checked, naming what to give
        return da
    try:
        nodata = da.rio.nodata
    except (OverflowError, ValueError):  # a nodata its dtype cannot hold (uint8, -9999): no pixel is it
        return da
    if nodata is None or np.isnan(nodata):
        return da
    if np.issubdtype(da.dtype, np.integer):
        info = np.iinfo(da.dtype)
        if not (info.min <= nodata <= info.max) or nodata != int(nodata):
            return da
    out = da.astype(np.float32).where(da != nodata)
    return out.rio.write_nodata(np.nan, encoded=False)


def check_tilestack(stack: xr.DataArray) -> None:
    """Raise ``ValueError`` unless ``stack`` follows the TileStack conventions (``TypeError``
    unless it is a DataArray)."""
    if isinstance(stack, xr.Dataset):
        raise TypeError(
            f"a TileStack is one xarray.DataArray {STACK_DIMS}, got an xarray.Dataset with variables "
            f"{list(stack.data_vars)}: give ds.to_dataarray('band').transpose{STACK_DIMS} (one variable "
            "per band), or ds['<name>'] (one variable holding the bands)")
    if not isinstance(stack, xr.DataArray):
        raise TypeError(f"a TileStack is an xarray.DataArray {STACK_DIMS}, got {type(stack).__name__}: "
                        "open tiles with changedetect.open_stack")
    if tuple(stack.dims) != STACK_DIMS:
        hint = (f": reorder them with .transpose{STACK_DIMS}" if set(stack.dims) == set(STACK_DIMS)
                else "")
        raise ValueError(f"a TileStack has dims {STACK_DIMS}, got {tuple(stack.dims)}{hint}")
    if not np.issubdtype(stack["time"].dtype, np.datetime64):
        raise ValueError("a TileStack's 'time' coordinate must be datetime64")
    if stack.sizes["time"] > 1 and not bool((np.diff(stack["time"].values) > np.timedelta64(0)).all()):
        raise ValueError("a TileStack's dates must be strictly increasing")


__all__ = ["STACK_DIMS", "ChangeProbability", "Grid", "TileStack", "band_names", "check_tilestack", "nodata_as_nan",
           "transform_of"]
