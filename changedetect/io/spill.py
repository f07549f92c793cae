"""Spill a lazy co-registered stack to disk: the warp is computed once, then read window by window.

``coregister`` returns a lazy stack: every read of a warped date recomputes its warp (the local
shift field's resampling) for the chunks the read touches.  A stack that fits in memory is
computed once and held (:func:`changedetect._pipeline_steps.hold`); a larger one was left lazy,
and a run read its warped dates many times (each pair, each presence pass, each block's halo, the
report's rasters): at 8192² the network's pass over a warped date took 116 s against 20 s over the
reference date read from its file (``docs/benchmarks.md``).  :func:`spill_stack` writes each date
once into a tiled float32 GeoTIFF (512² tiles, band-interleaved, ZSTD with the floating-point
predictor where GDAL has it) and returns the same stack reading those files lazily, window by
window, so memory stays bounded by the chunks and the warp is paid once.

The files are scratch: the caller gives a folder it removes afterwards
(:func:`changedetect.pipeline.run` makes one inside OUT, or in ``[run] spill_dir``).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import rasterio
import rasterio.errors
import xarray as xr
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from rasterio.windows import Window

from changedetect.errors import OutputLocationError
from changedetect.io._read import chunk_sizes
from changedetect.io.atomic import _disk_full
from changedetect.io.raster import _WindowWriter, store_drained

log = logging.getLogger("changedetect.io")

_ADVICE = ("free some space there, set [run] spill_dir to a folder on a larger disk, or raise [run] hold_gib "
           "if this machine has the memory")
#: tiles of the scratch files and chunks of the stack read back from them
SPILL_TILE = 512
READ_CHUNK = 1024


def spill_stack(stack: xr.DataArray, folder: str | Path) -> xr.DataArray:
    """Compute ``stack`` (``time, band, y, x``, lazy) once into one GeoTIFF per date under ``folder``
    and return it reading them back lazily: the same values (NaN kept), coordinates, attributes
    and name, chunked ``(1, 1, 1024, 1024)``.

    Raises
    ------
    OutputLocationError
        when ``folder``'s disk has less free space than the stack's uncompressed size.
    """
    order, stack = stack.dims, stack.transpose("time", "band", "y", "x")  # the files' (band, row, column)
    folder = Path(folder).absolute()  # read back lazily, maybe after a notebook changed folder
    folder.mkdir(parents=True, exist_ok=True)
    need, free = int(stack.nbytes), shutil.disk_usage(folder).free
    if free < need:
        raise OutputLocationError(
            f"the co-registered stack ({need / 2**30:.1f} GiB) is too large to hold in memory and must be "
            f"written to disk while the run lasts, but {folder} has {free / 2**30:.1f} GiB free: {_ADVICE}")
    nt, nb, h, w = (int(stack.sizes[d]) for d in ("time", "band", "y", "x"))
    data = stack.data if isinstance(stack.data, da.Array) else da.from_array(np.asarray(stack.data))
    data = data.astype(np.float32).rechunk((1, nb, SPILL_TILE * 2, SPILL_TILE * 2))
    paths = [folder / f"date_{t:03d}.tif" for t in range(nt)]
    log.info("spilling the co-registered stack (%d dates, %.1f GiB) to %s", nt, need / 2**30, folder)
    profile = _profile(nb, h, w)
    profile.update(transform=stack.rio.transform(), crs=stack.rio.crs)  # georeferenced, for whoever looks
    try:
        with rasterio.Env(GDAL_NUM_THREADS="1"), contextlib.ExitStack() as files:
            dsts = [files.enter_context(_open(p, profile)) for p in paths]
            targets: list[Any] = [_WindowWriter(d, "float32", None) for d in dsts]
            store_drained([data[t] for t in range(nt)], targets)  # drained before the files close
    except Exception as exc:  # (closing a file on a full disk fails too)
        if _disk_full(folder, exc):  # checked first, but filled since (another run's outputs, a quota)
            raise OutputLocationError(
                f"writing the co-registered stack's scratch files ({need / 2**30:.1f} GiB) to {folder}: the "
                f"disk is full: {_ADVICE}") from exc
        raise
    arrays = [_lazy_file(p, nb, h, w) for p in paths]
    out = xr.DataArray(da.stack(arrays), coords=stack.coords, dims=stack.dims, name=stack.name,
                       attrs=dict(stack.attrs))
    out.encoding = dict(stack.encoding)
    return out.transpose(*order)


def _profile(count: int, height: int, width: int) -> dict[str, Any]:
    return {"driver": "GTiff", "width": width, "height": height, "count": count, "dtype": "float32",
            "tiled": True, "blockxsize": SPILL_TILE, "blockysize": SPILL_TILE, "BIGTIFF": "IF_SAFER",
            "interleave": "band", "compress": "ZSTD", "zstd_level": 1, "predictor": 3}


def _open(path: Path, profile: dict[str, Any]) -> Any:
    """``path`` open for writing, ZSTD-compressed, or uncompressed where this GDAL lacks ZSTD."""
    try:
        return rasterio.open(path, "w", **profile)
    except rasterio.errors.RasterioIOError:
        plain = {k: v for k, v in profile.items() if k not in ("compress", "zstd_level", "predictor")}
        return rasterio.open(path, "w", **plain)


def _read(path: Path, band: int, window: tuple[int, int, int, int]) -> np.ndarray:
    row, col, h, w = window
    with rasterio.open(path) as src:
        return src.read(band + 1, window=Window(col, row, w, h), out_dtype=np.float32)[None]


def _lazy_file(path: Path, bands: int, height: int, width: int) -> da.Array:
    """A dask ``(band, y, x)`` float32 array reading ``path`` one band and window at a time
    (chunks ``(1, 1024, 1024)``, as ``open_stack`` and ``coregister`` chunk a stack)."""
    ychunks, xchunks = chunk_sizes(height, READ_CHUNK), chunk_sizes(width, READ_CHUNK)
    name = f"spilled-{tokenize(str(path), path.stat().st_mtime_ns, bands, height, width)}"
    graph: dict[Any, Any] = {}
    for b in range(bands):
        row = 0
        for i, hh in enumerate(ychunks):
            col = 0
            for j, ww in enumerate(xchunks):
                graph[(name, b, i, j)] = (_read, path, b, (row, col, hh, ww))
                col += ww
            row += hh
    hlg = HighLevelGraph.from_collections(name, graph, dependencies=())
    return da.Array(hlg, name, chunks=((1,) * bands, ychunks, xchunks), dtype=np.float32)


__all__ = ["spill_stack"]
