"""Spill a lazy co-registered stack to disk: the warp is computed once, then read window by window.

``coregister`` returns a lazy stack: every read of a warped date recomputes its warp (the local
shift field's resampling) for the chunks the read touches.  A stack that fits in memory is
computed once and held (:func:`changedetect._pipeline_steps.hold`); a larger one was left lazy,
and a run read its warped dates many times (each pair, each presence pass, each block's halo, the
report's rasters): at 8192² the network's pass over a warped date took 116 s against 20 s over the
reference date read from its file (``docs/benchmarks.md``).  :func:`spill_stack` writes each date
once into a tiled float32 GeoTIFF (512² tiles, band-interleaved, ZSTD with the floating-point
predictor where GDAL has it) and returns the same stack reading those files lazily, window by
window, so memory stays bounded by the chunks and the warp is paid once.  While it writes
them it samples, every n-th pixel, where each date has data in every band (:func:`sampled_valid`):
``run``'s coverage reads that instead of every tile of the compared dates again.

The files are scratch: the caller gives a folder it removes afterwards
(:func:`changedetect.pipeline.run` makes one inside OUT, or in ``[run] spill_dir``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import tempfile
import threading
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

from changedetect.errors import DiskFullError, OutputLocationError
from changedetect.io._read import chunk_sizes
from changedetect.io.atomic import _disk_full
from changedetect.io.raster import _WindowWriter, store_drained
from changedetect.types import transform_of

log = logging.getLogger("changedetect.io")

_ADVICE = ("free some space there, set [run] spill_dir to a folder on a larger disk, or raise [run] hold_gib "
           "if this machine has the memory")
#: tiles of the scratch files and chunks of the stack read back from them
SPILL_TILE = 512
READ_CHUNK = 1024
#: :func:`spill_stack` samples each date's validity every n-th pixel (from n // 2) to at most this
#: many a side, in ``attrs[VALID_ATTR]`` of the stack it returns (:func:`sampled_valid` reads it)
VALID_SIDE = 1024
VALID_ATTR = "_spilled_valid"


def spill_stack(stack: xr.DataArray, folder: str | Path) -> xr.DataArray:
    """Compute ``stack`` (``time, band, y, x``, lazy) once into one GeoTIFF per date in a new folder
    inside ``folder`` and return it reading them back lazily: the same values (NaN kept), coordinates,
    attributes and name, chunked ``(1, 1, 1024, 1024)``.

    Each call writes a folder of its own (``folder/stack-XXXXXXXX/date_000.tif`` ...), so a stack
    spilled before keeps reading its own files: a notebook cell run twice, or two areas spilled into
    the same ``folder``, once rewrote the files a live stack was reading (it then read the other
    area's pixels, or failed).  Removing ``folder`` removes them all; a spill that fails removes its
    own folder.

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
            f"the co-registered stack ({_size(need)}) is too large to hold in memory and must be "
            f"written to disk while the run lasts, but {folder} has {_size(free)} free: {_ADVICE}")
    nt, nb, h, w = (int(stack.sizes[d]) for d in ("time", "band", "y", "x"))
    data = stack.data if isinstance(stack.data, da.Array) else da.from_array(np.asarray(stack.data))
    data = data.astype(np.float32).rechunk((1, nb, SPILL_TILE * 2, SPILL_TILE * 2))
    own = Path(tempfile.mkdtemp(prefix="stack-", dir=folder))
    paths = [own / f"date_{t:03d}.tif" for t in range(nt)]
    step = sample_step(h, w)
    log.info("spilling the co-registered stack (%d dates, %.1f GiB) to %s", nt, need / 2**30, own)
    profile = _profile(nb, h, w)
    profile.update(transform=transform_of(stack), crs=stack.rio.crs)  # georeferenced, for whoever looks
    try:
        with rasterio.Env(GDAL_NUM_THREADS="1"), contextlib.ExitStack() as files:
            dsts = [files.enter_context(_open(p, profile)) for p in paths]
            targets = [_Sampling(_WindowWriter(d, "float32", None), h, w, step) for d in dsts]
            store_drained([data[t] for t in range(nt)], list(targets))  # drained before the files close
    except BaseException as exc:  # (closing a file on a full disk fails too; Ctrl-C leaves nothing either)
        full = isinstance(exc, Exception) and _disk_full(folder, exc)  # measured before the files go
        shutil.rmtree(own, ignore_errors=True)
        if full:  # checked first, but filled since (another run's outputs, a quota)
            raise DiskFullError(
                f"writing the co-registered stack's scratch files ({_size(need)}) to {folder}: the "
                f"disk is full: {_ADVICE}") from exc
        raise
    arrays = [_lazy_file(p, nb, h, w) for p in paths]
    sampled = {"step": step, "shape": (h, w), "bands": [str(b) for b in stack["band"].values],
               "dates": {str(t): target.valid for t, target in zip(stack["time"].values, targets, strict=True)}}
    out = xr.DataArray(da.stack(arrays), coords=stack.coords, dims=stack.dims, name=stack.name,
                       attrs={**stack.attrs, VALID_ATTR: sampled})
    out.encoding = dict(stack.encoding)
    return out.transpose(*order)


def _size(n_bytes: int) -> str:
    """``1.5 GiB``, or ``12.3 MiB`` below a GiB (a small stack said '0.0 GiB')."""
    return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.1f} MiB"


def sample_step(height: int, width: int, side: int = VALID_SIDE) -> int:
    """Every how many pixels a ``height`` x ``width`` grid is sampled to at most ``side`` a side."""
    return max(1, math.ceil(max(height, width) / side))


def sampled_valid(stack: xr.DataArray, step: int) -> dict[str, np.ndarray] | None:
    """ISO time -> ``(y, x)`` bool, where that date of a spilled ``stack`` has data in every band,
    sampled every ``step``-th pixel from ``step // 2`` as its scratch files were written; None when
    ``stack`` was not spilled with that step, or has other bands or another extent since."""
    sampled = stack.attrs.get(VALID_ATTR)
    if (not sampled or sampled["step"] != step or sampled["shape"] != (stack.sizes["y"], stack.sizes["x"])
            or sampled["bands"] != [str(b) for b in stack["band"].values]):
        return None
    return dict(sampled["dates"])


class _Sampling:
    """A date's ``__setitem__`` target: writes each window (``writer``) and samples where every band
    has data, every ``step``-th pixel from ``step // 2`` (``valid``)."""

    def __init__(self, writer: Any, height: int, width: int, step: int) -> None:
        self.writer, self.step, off = writer, step, step // 2
        self.valid = np.zeros((len(range(off, height, step)), len(range(off, width, step))), dtype=bool)
        self.lock = threading.Lock()

    def __setitem__(self, key: tuple[slice, slice, slice], block: np.ndarray) -> None:
        self.writer[key] = block
        _, rows, cols = key
        (r0, c0), step, off = (rows.start or 0, cols.start or 0), self.step, self.step // 2
        ry, cx = (off - r0) % step, (off - c0) % step  # the block's first sampled row and column
        sub = np.isfinite(block[:, ry::step, cx::step]).all(axis=0)
        i, j = (r0 + ry - off) // step, (c0 + cx - off) // step
        with self.lock:
            self.valid[i:i + sub.shape[0], j:j + sub.shape[1]] = sub


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


__all__ = ["VALID_ATTR", "VALID_SIDE", "sample_step", "sampled_valid", "spill_stack"]
