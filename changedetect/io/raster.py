"""Write georeferenced rasters as Cloud-Optimized GeoTIFFs, atomically and window by window.

Two steps, both inside :func:`changedetect.io.atomic.atomic_path`:

1. the array is written block by block into a tiled GeoTIFF beside the output
   (``dask.array.store``: a dask-backed array larger than memory is computed
   and written one block at a time);
2. GDAL's ``COG`` driver copies it into the final layout (tiles, overviews,
   header first), streaming from disk.

Example
-------
>>> write_cog(probability, "out/change_probability.tif")                    # doctest: +SKIP
>>> write_cog(mask, "out/change_mask.tif", dtype="uint8", nodata=255)       # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import dask
import dask.array as da
import numpy as np
import rasterio
import rasterio.errors
import rasterio.shutil
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from dask.system import CPU_COUNT
from rasterio.crs import CRS as RioCRS
from rasterio.windows import Window

from changedetect._dask_cull import culled
from changedetect.errors import ChangeDetectWarning, outside_stacklevel
from changedetect.io._block_cache import capped
from changedetect.io.atomic import atomic_path, remove_with_sidecars
from changedetect.types import transform_of

log = logging.getLogger(__name__)

_BLOCK = 512
_WRITE_CHUNK = 2048


def write_cog(
    raster: xr.DataArray,
    /,
    path: str | os.PathLike[str],
    *,
    dtype: Literal["float32", "uint8"] = "float32",
    nodata: float | None = None,
    overwrite: bool = False,
    overview_resampling: str | None = None,
    compress: str = "deflate",
    tags: dict[str, Any] | None = None,
) -> Path:
    """Write a ``(y, x)`` or ``(band, y, x)`` DataArray as a Cloud-Optimized GeoTIFF.

    Parameters
    ----------
    raster
        The raster, georeferenced with rioxarray (``raster.rio.crs``, ``raster.rio.transform()``);
        numpy- or dask-backed.  A ``band`` coordinate of strings becomes the band descriptions.
    path
        Output file; written to a temporary file beside it and renamed at the end.
    dtype
        ``"float32"`` (default) or ``"uint8"`` (values are rounded and clipped to 0-255).  A raster
        of dates (datetime64) is written as float32 days since 1970-01-01, NaN where NaT, with the
        ``units`` tag (:func:`dates_as_days`), as ``first_seen.tif`` is and :func:`vectorize` reads it.
    nodata
        Nodata value stored in the file.  Default NaN for float32, none for uint8.
        NaN pixels are written as ``nodata`` (as 0 for uint8 without nodata, with a
        :class:`~changedetect.errors.ChangeDetectWarning` saying how many: they read as data).
    overwrite
        Replace an existing ``path`` (else :class:`~changedetect.errors.OutputExistsError`).
    overview_resampling
        Resampling of the overviews; default ``"average"`` for float32, ``"nearest"`` for uint8
        and for a raster of dates (``attrs["units"]`` "days since 1970-01-01": no average of two
        dates).
    compress
        GDAL compression (``deflate``, ``lzw``, ``zstd``, ``none``).
    tags
        Dataset metadata tags (values are turned into strings).  Default: the
        array's scalar ``attrs`` (e.g. a ChangeProbability's ``model``,
        ``model_sha256``, ``before``, ``after``), so provenance travels with the file.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    arr, nodata = _checked(raster, dtype, nodata)
    out = Path(path)
    with _staged_cog(arr, out, dtype, nodata, overwrite, tags, compress, overview_resampling) as dst:
        unmarked = _store(arr, dst, dtype, nodata)
    if unmarked:  # as documented, but a no-data pixel that reads as 0 looks like 'no change' in QGIS
        warnings.warn(f"'{out}': {unmarked} no-data (NaN) pixel(s) written as 0, which reads as data: the uint8 "
                      "file declares no nodata value; give nodata= (255, say, or 0 when no real pixel is 0)",
                      ChangeDetectWarning, stacklevel=outside_stacklevel())
    log.info("wrote %s (%s, %d band(s), %dx%d)", out, dtype, arr.sizes["band"], arr.sizes["x"], arr.sizes["y"])
    return out


@contextlib.contextmanager
def _staged_cog(arr: xr.DataArray, out: Path, dtype: str, nodata: float | None, overwrite: bool,
                tags: dict[str, Any] | None, compress: str = "deflate", overview_resampling: str | None = None,
                ) -> Iterator[Any]:
    """The open tiled staging GeoTIFF on ``arr``'s grid, described and tagged; on leaving, made
    the COG at ``out`` (atomically: an exception leaves nothing behind)."""
    profile = _profile(arr, dtype, nodata)
    with atomic_path(out, overwrite=overwrite) as tmp, capped():  # the block cache bounded, whatever the size
        stage = tmp.with_name(tmp.stem + ".stage.tif")
        try:
            with _open_stage(stage, profile) as dst:
                _describe(dst, arr, tags)
                yield dst
            resampling = overview_resampling or _default_resampling(arr, dtype)
            _to_cog(stage, tmp, compress=compress, resampling=resampling)
        finally:
            remove_with_sidecars(stage)


@contextlib.contextmanager
def cog_windows(
    like: xr.DataArray,
    path: str | os.PathLike[str],
    *,
    dtype: Literal["float32", "uint8"] = "float32",
    nodata: float | None = None,
    overwrite: bool = False,
    tags: dict[str, Any] | None = None,
) -> Iterator[Callable[[xr.DataArray | np.ndarray, int, int], None]]:
    """:func:`write_cog` for a raster made window by window: ``like`` (``(y, x)`` or ``(band, y, x)``,
    dask-backed is fine: it is never read) gives the grid, the band names and the tags; the context
    yields ``write(window, row, col)``, which stores a ``(y, x)`` / ``(band, y, x)`` window at that
    pixel offset into the tiled staging GeoTIFF.  On leaving, the staging file becomes the COG at
    ``path`` (atomically); an exception leaves nothing behind.  Windows never written are nodata.  A raster of
    dates is given as days (:func:`dates_as_days` of ``like`` and of each window), not as datetime64."""
    if isinstance(like, xr.DataArray) and np.issubdtype(like.dtype, np.datetime64):  # its windows would not be
        raise ValueError("cog_windows writes the windows as they are given: give a raster of dates as days since "
                         "1970-01-01 (changedetect.io.raster.dates_as_days of the template and of each window)")
    arr, nodata = _checked(like, dtype, nodata)
    out = Path(path)
    with _staged_cog(arr, out, dtype, nodata, overwrite, tags) as dst:

        def write(window: xr.DataArray | np.ndarray, row: int, col: int) -> None:
            block = np.asarray(window.values if isinstance(window, xr.DataArray) else window)
            block = block[None] if block.ndim == 2 else block
            dst.write(_cast(block, dtype, nodata), window=Window(col, row, block.shape[2], block.shape[1]))

        yield write
    log.info("wrote %s (%s, window by window, %dx%d)", out, dtype, arr.sizes["x"], arr.sizes["y"])


def _default_resampling(arr: xr.DataArray, dtype: str) -> str:
    """``average`` for a float32 measure (a probability); ``nearest`` for uint8 and for a raster of
    dates (CF ``units`` "<unit> since <date>", as ``first_seen.tif``'s "days since 1970-01-01"): an
    average of two dates is a date nothing was acquired on."""
    if dtype == "uint8" or " since " in str(arr.attrs.get("units", "")):
        return "nearest"
    return "average"


def _checked(arr: xr.DataArray, dtype: str, nodata: float | None) -> tuple[xr.DataArray, float | None]:
    """``arr`` as ``(band, y, x)`` and the nodata to store (NaN by default for float32), for
    :func:`write_cog` and :func:`cog_windows` alike."""
    if dtype not in ("float32", "uint8"):
        raise ValueError(f"dtype must be 'float32' or 'uint8', got {dtype!r}")
    if isinstance(arr, xr.DataArray) and np.issubdtype(arr.dtype, np.datetime64):
        if dtype != "float32":
            raise ValueError("a raster of dates (datetime64, as detect_series' first_seen) is written as float32 "
                             "days since 1970-01-01: leave dtype at 'float32'")
        arr = dates_as_days(arr)
    if nodata is None and dtype == "float32":
        nodata = float("nan")
    return _as_band_yx(arr), nodata


#: CF ``units`` of a raster of dates as written here (``first_seen.tif``), and as :func:`vectorize` reads one
DAYS_UNITS = "days since 1970-01-01"


def dates_as_days(arr: xr.DataArray) -> xr.DataArray:
    """A datetime64 raster (``detect_series``' ``first_seen``) as float32 days since 1970-01-01, NaN where
    NaT (never changed), ``attrs["units"]`` :data:`DAYS_UNITS`; other attributes kept; lazy stays lazy.
    :func:`write_cog` writes a datetime64 raster so (before, it wrote nanoseconds, NaT as a valid value)."""

    def days(values: np.ndarray) -> np.ndarray:
        out = values.astype("datetime64[D]").astype("int64").astype(np.float32)
        out[np.isnat(values)] = np.nan
        return out

    data = arr.data
    data = da.map_blocks(days, data, dtype=np.float32) if isinstance(data, da.Array) else days(np.asarray(data))
    out = arr.copy(data=data)
    out.attrs = {**arr.attrs, "units": DAYS_UNITS}
    return out


def _as_band_yx(arr: xr.DataArray) -> xr.DataArray:
    if not isinstance(arr, xr.DataArray):
        raise TypeError(f"write_cog takes an xarray.DataArray (y, x) or (band, y, x) with its CRS and transform "
                        f"(rioxarray), got {type(arr).__name__}: wrap an array with xarray.DataArray(arr, dims=...)"
                        ".rio.write_crs(...).rio.write_transform(...)")
    if arr.ndim == 2 and arr.dims == ("y", "x"):
        return arr.expand_dims("band")
    if arr.ndim == 3 and arr.dims[1:] == ("y", "x"):
        return arr
    raise ValueError(
        f"write_cog takes a (y, x) or (band, y, x) DataArray, got dims {arr.dims}; "
        "select one date first (e.g. stack.isel(time=0))"
    )


def _open_stage(stage: Path, profile: dict[str, Any]) -> Any:
    """The tiled staging GeoTIFF, ZSTD level 1 (fast) where GDAL has it, else DEFLATE level 1."""
    try:
        return rasterio.open(stage, "w", **profile, compress="zstd", zstd_level=1)
    except rasterio.errors.RasterioError:
        remove_with_sidecars(stage)
        return rasterio.open(stage, "w", **profile, compress="deflate", zlevel=1)


def _profile(arr: xr.DataArray, dtype: str, nodata: float | None) -> dict[str, Any]:
    crs = arr.rio.crs
    height, width = int(arr.sizes["y"]), int(arr.sizes["x"])
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": int(arr.shape[0]),
        "dtype": dtype,
        "crs": RioCRS.from_user_input(crs) if crs is not None else None,
        "transform": transform_of(arr),
        "nodata": nodata,
        "tiled": True,
        "blockxsize": _BLOCK,
        "blockysize": _BLOCK,
        "BIGTIFF": "IF_SAFER",
    }
    if crs is None:
        log.warning("writing a raster without CRS (pixel coordinates)")
    return profile


def _describe(dst: Any, arr: xr.DataArray, tags: dict[str, Any] | None) -> None:
    if "band" in arr.coords and arr["band"].dtype.kind in "OU":
        for i, name in enumerate(np.atleast_1d(arr["band"].values), 1):
            dst.set_band_description(i, str(name))
    elif dst.count == 1 and arr.name:  # one band without a band name: the array's (change_probability)
        dst.set_band_description(1, str(arr.name))
    if tags is None:
        tags = {
            k: v
            for k, v in arr.attrs.items()
            if not str(k).startswith("_") and isinstance(v, str | int | float | bool | np.number)
        }
    if tags:
        dst.update_tags(**{str(k): str(v) for k, v in tags.items()})


def _cast(block: np.ndarray, dtype: str, nodata: float | None) -> np.ndarray:
    block = np.asarray(block)
    if block.dtype == bool:
        block = block.astype(np.uint8)
    if dtype == "uint8":
        fill = 0 if nodata is None or np.isnan(nodata) else nodata
        if np.issubdtype(block.dtype, np.floating):
            block = np.where(np.isnan(block), fill, np.rint(block))
        return np.clip(block, 0, 255).astype(np.uint8)
    out = block.astype(np.float32)
    if nodata is not None and not np.isnan(nodata):
        out = np.where(np.isnan(out), np.float32(nodata), out)
    return out


class _WindowWriter:
    """A ``__setitem__`` target for :func:`dask.array.store` that writes windows of a rasterio dataset."""

    def __init__(self, dst: Any, dtype: str, nodata: float | None) -> None:
        self.dst, self.dtype, self.nodata = dst, dtype, nodata
        self.lock = threading.Lock()
        #: NaN pixels written as 0 in a uint8 file that declares no nodata: they read as data
        self.unmarked = 0

    def __setitem__(self, key: tuple[slice, slice, slice], block: np.ndarray) -> None:
        bands, rows, cols = key
        first = bands.start or 0
        indexes = list(range(first + 1, first + block.shape[0] + 1))
        window = Window(cols.start or 0, rows.start or 0, block.shape[2], block.shape[1])
        data = _cast(block, self.dtype, self.nodata)
        lost = int(np.isnan(block).sum()) if self.dtype == "uint8" and self.nodata is None \
            and np.issubdtype(np.asarray(block).dtype, np.floating) else 0
        with self.lock:
            self.dst.write(data, indexes=indexes, window=window)
            self.unmarked += lost


#: Pixels (a side) of the tiles a large scene is stored by, one call of dask each (:func:`store_drained`).
STORE_TILE = 4096


class _Offset:
    """``target`` written at ``(row, col)`` further: the writer of one tile's slice of the sources."""

    def __init__(self, target: Any, row: int, col: int) -> None:
        self.target, self.row, self.col = target, row, col

    def __setitem__(self, key: tuple[slice, ...], block: np.ndarray) -> None:
        *lead, rows, cols = key
        self.target[(*lead, slice((rows.start or 0) + self.row, (rows.stop or 0) + self.row),
                     slice((cols.start or 0) + self.col, (cols.stop or 0) + self.col))] = block


def _tile_edges(chunks: tuple[int, ...], tile: int) -> list[int]:
    """Block boundaries of one axis grouped into runs of about ``tile`` pixels (at least a block)."""
    edges, at = [0], 0
    for size in chunks:
        at += size
        if at - edges[-1] >= tile:
            edges.append(at)
    if edges[-1] != at:
        edges.append(at)
    return edges


def store_drained(sources: list[da.Array], targets: list[Any], *, tile: int = STORE_TILE) -> None:
    """:func:`dask.array.store` of ``sources`` (same shape and chunks, ``(..., y, x)``) into ``targets``
    (``__setitem__`` writers of open datasets) on threads of a pool of its own, drained before
    returning: dask raises a window's error (or Ctrl-C) while other threads still write theirs, and a
    dataset closed under a write can crash GDAL instead of showing the error.  Threads, not the default
    scheduler: inside a nightly Dask worker that would be the cluster.

    A scene larger than ``tile`` pixels a side is stored a tile of blocks at a time: a graph whose
    blocks read their neighbours' edges (a co-registration warp's halo) is otherwise worked through
    rows of blocks as wide as the scene, held at once (573 MiB a band at 20 000 px a side, 1078 MiB
    at 40 000; 114 and 125 MiB by tiles: ``benchmarks/store_tiles.py``).  A tile's edge blocks are read again for the next tile (a warp's halo).
    Each call's graph is culled to its sources' blocks (:func:`~changedetect._dask_cull.culled`): one date of a
    stack otherwise carries every later date's tasks into each call."""
    rows, cols = (_tile_edges(sources[0].chunks[-2], tile), _tile_edges(sources[0].chunks[-1], tile))
    with ThreadPoolExecutor(dask.config.get("num_workers", None) or CPU_COUNT) as pool:
        if len(rows) <= 2 and len(cols) <= 2:
            da.store(culled(*sources), targets, lock=False, compute=True, scheduler="threads", pool=pool)
            return
        for r0, r1 in zip(rows[:-1], rows[1:], strict=True):
            for c0, c1 in zip(cols[:-1], cols[1:], strict=True):
                da.store(culled(*[s[..., r0:r1, c0:c1] for s in sources]), [_Offset(t, r0, c0) for t in targets],  # type: ignore[misc]
                         lock=False, compute=True, scheduler="threads", pool=pool)


def _store(arr: xr.DataArray, dst: Any, dtype: str, nodata: float | None) -> int:
    """Write ``arr`` into ``dst``; how many NaN pixels went in as 0 without a nodata to say so."""
    data = arr.data
    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data), chunks=(-1, _WRITE_CHUNK, _WRITE_CHUNK))
    else:
        data = data.rechunk((-1, _WRITE_CHUNK, _WRITE_CHUNK))
    writer = _WindowWriter(dst, dtype, nodata)
    store_drained([data], [writer])
    return writer.unmarked


def _to_cog(src: Path, dst: Path, *, compress: str, resampling: str) -> None:
    with rasterio.Env() as env:
        has_cog = "COG" in env.drivers()
    options: dict[str, Any] = {"BIGTIFF": "IF_SAFER"}
    if compress.lower() != "none":
        options |= {"COMPRESS": compress.upper(), "PREDICTOR": "YES" if has_cog else "2"}
    if has_cog:
        rasterio.shutil.copy(
            src,
            dst,
            driver="COG",
            BLOCKSIZE=_BLOCK,
            OVERVIEW_RESAMPLING=resampling.upper(),
            NUM_THREADS="ALL_CPUS",
            **options,
        )
        return
    # GDAL < 3.1: build overviews in the staging file, then copy them in front of the data.
    with rasterio.open(src, "r+") as ds:
        factors: list[int] = []
        size = max(ds.width, ds.height)
        while size // 2 ** (len(factors) + 1) >= _BLOCK // 2:
            factors.append(2 ** (len(factors) + 1))
        if factors:
            ds.build_overviews(factors, rasterio.enums.Resampling[resampling])
    rasterio.shutil.copy(
        src,
        dst,
        driver="GTiff",
        TILED="YES",
        BLOCKXSIZE=_BLOCK,
        BLOCKYSIZE=_BLOCK,
        COPY_SRC_OVERVIEWS="YES",
        **options,
    )


def valid_share(paths: list[Path], *, side: int = 1024) -> float:
    """The share of pixels with data in every band of every raster of ``paths`` (one grid), from a
    nearest-neighbour read of their masks at most ``side`` px on the longest side (a COG serves it
    from its overviews, as :func:`write_cog` makes them for uint8): never the whole scene.  NaN
    without ``paths``."""
    from rasterio.enums import Resampling

    both: np.ndarray | None = None
    for path in paths:
        with rasterio.open(path) as src:
            scale = max(src.width, src.height) / side
            shape = ((src.height, src.width) if scale <= 1
                     else (max(1, round(src.height / scale)), max(1, round(src.width / scale))))
            with warnings.catch_warnings():  # a 4-band uint8 file: its nodata, not GDAL's alpha, says
                warnings.simplefilter("ignore", rasterio.errors.NodataShadowWarning)
                masks = src.read_masks(out_shape=(src.count, *shape), resampling=Resampling.nearest)
        valid = (masks > 0).all(axis=0)
        both = valid if both is None else both & valid
    return float(both.mean()) if both is not None else float("nan")


__all__ = ["DAYS_UNITS", "dates_as_days", "valid_share", "write_cog"]
