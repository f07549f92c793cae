"""Lazy, windowed reads of one band onto a target grid (as odc-stac does).

Each dask block is one task that opens the file and reads the block's window
of the band *warped onto the target grid*: the band keeps its own native grid
on disk, only the source pixels under the window (plus a small margin for the
resampling kernel) are read and reprojected, the result is float32 with nodata
as NaN.  Memory stays bounded by the number of blocks in flight.  (The warp is
a per-window ``rasterio.warp.reproject``, i.e. a WarpedVRT restricted to one
band: GDAL's warper would otherwise treat a 4th band flagged as alpha, common
in RGB+NIR files, as a mask for all bands.)  A band flagged as alpha is the
mask only when its values are binary (:func:`alpha_mask_band`: an orthomosaic's
0 outside its footprint, 255 inside); its NaN then travel through the warp.
"""

from __future__ import annotations

import logging
import math
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import rasterio
from affine import Affine
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from pyproj import CRS
from rasterio.crs import CRS as RioCRS
from rasterio.enums import ColorInterp, MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning as RioNotGeoreferencedWarning
from rasterio.errors import RasterioError
from rasterio.transform import array_bounds
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window

from changedetect.errors import TileReadError
from changedetect.types import Grid

log = logging.getLogger(__name__)

#: Source pixels read around a window's footprint, for the resampling kernels (times the reduction
#: factor onto a coarser grid, where GDAL widens the kernels as much).
_MARGIN = 4
#: The most source pixels one warped read takes (64 MiB of float32): a block of a much coarser grid
#: (0.3 m imagery onto 10 m) is warped piece by piece, each from its own source window, so that
#: memory stays bounded whatever the reduction; the pieces' margins make them agree with one read.
MAX_SOURCE_PIXELS = 4096 * 4096

# rasterio.warp.reproject wraps numpy arrays in in-memory datasets that have no transform
# until it sets the ones we pass, and warns about that on the way; the warning is about
# its internals, never about the user's files, so it is silenced for that module only.
warnings.filterwarnings("ignore", category=RioNotGeoreferencedWarning, module=r"rasterio\.warp")


@dataclass(frozen=True)
class ReadSpec:
    """Everything one block read needs (picklable, so it travels to dask workers)."""

    path: Path
    index: int
    source_grid: Grid
    grid: Grid
    resampling: Resampling
    nodata: float | None

    @property
    def mode(self) -> str:
        """``direct`` (same grid), ``plain`` (no CRS: scale pixel windows) or ``warp``."""
        if self.source_grid == self.grid:
            return "direct"
        if self.source_grid.crs is None or self.grid.crs is None:
            return "plain"
        return "warp"


def resampling_of(name: str | Resampling) -> Resampling:
    """A :class:`rasterio.enums.Resampling` from its name (``"bilinear"``, ``"nearest"``, ...)."""
    if isinstance(name, Resampling):
        return name
    try:
        return Resampling[name]
    except KeyError:
        allowed = ", ".join(r.name for r in Resampling if r.value < 14)
        raise ValueError(f"unknown resampling {name!r}; use one of: {allowed}") from None


def chunk_sizes(length: int, size: int) -> tuple[int, ...]:
    """Split ``length`` into blocks of ``size`` (the last one shorter)."""
    full, rest = divmod(length, size)
    return (size,) * full + ((rest,) if rest else ())


def lazy_band(spec: ReadSpec, chunks: tuple[int, int]) -> da.Array:
    """A dask array ``(y, x)`` float32 of one band on ``spec.grid``; nothing is read yet."""
    ychunks = chunk_sizes(spec.grid.height, chunks[0])
    xchunks = chunk_sizes(spec.grid.width, chunks[1])
    grid = spec.grid
    crs_wkt = CRS.from_user_input(grid.crs).to_wkt() if grid.crs is not None else None
    key = tokenize(
        str(spec.path),
        spec.index,
        crs_wkt,
        tuple(grid.transform),
        grid.shape,
        spec.resampling.name,
        chunks,
    )
    name = f"read-band-{key}"
    graph: dict[Any, Any] = {}
    row = 0
    for i, h in enumerate(ychunks):
        col = 0
        for j, w in enumerate(xchunks):
            graph[(name, i, j)] = (read_window, spec, (row, col, h, w))
            col += w
        row += h
    hlg = HighLevelGraph.from_collections(name, graph, dependencies=())
    return da.Array(hlg, name, chunks=(ychunks, xchunks), dtype=np.float32)


def read_window(spec: ReadSpec, window: tuple[int, int, int, int]) -> np.ndarray:
    """Read ``window`` = ``(row, col, height, width)`` of the target grid; float32, NaN = nodata."""
    row, col, h, w = window
    try:
        with rasterio.open(spec.path) as src:
            if spec.mode == "direct":
                return read_float(src, spec.index, Window(col, row, w, h), nodata=spec.nodata)
            if spec.mode == "plain":
                return _read_scaled(src, spec, row, col, h, w)
            return _read_warped(src, spec, row, col, h, w)
    except RasterioError as exc:
        raise read_failed(f"band {spec.index} of '{spec.path}' (window rows {row}-{row + h}, cols {col}-{col + w})",
                          exc) from exc


def read_failed(what: str, exc: BaseException) -> TileReadError:
    """The one error of every failed read of a tile: what was read (``band 3 of 'x.tif'``), GDAL's reason
    (:func:`gdal_reason`), and what to do.  Raise it ``from exc``."""
    return TileReadError(f"reading {what} failed: {gdal_reason(exc)}; the file may be truncated or corrupt: copy or "
                         "download it again")


def gdal_reason(exc: BaseException) -> str:
    """What a rasterio error says, with GDAL's own reason where rasterio only points at it: 'Read failed. See
    previous exception for details.' becomes the chained error's 'IReadBlock failed at X offset 3, Y offset 1:
    TIFFReadEncodedTile() failed.'."""
    text = str(exc)
    cause = exc.__cause__ or exc.__context__
    if "See previous exception" in text and cause is not None:
        detail = cause.args[2] if len(cause.args) == 3 and isinstance(cause.args[2], str) else str(cause)
        return f"{text.split('. See previous exception')[0]}: {detail.strip().rstrip('.')}"
    return text


def read_float(
    src: rasterio.DatasetReader,
    index: int,
    window: Window,
    *,
    out_shape: tuple[int, int] | None = None,
    resampling: Resampling = Resampling.nearest,
    nodata: float | None = None,
) -> np.ndarray:
    """Read one band's window as float32 with NaN where the file says nodata (value or mask), or
    where it holds ``nodata`` when it declares none (Sentinel-2's 0: :attr:`BandInfo.nodata`)."""
    return read_float_bands(src, [index], window, out_shape=out_shape, resampling=resampling, nodata=nodata)[0]


def read_float_bands(
    src: rasterio.DatasetReader,
    indexes: list[int],
    window: Window,
    *,
    out_shape: tuple[int, int] | None = None,
    resampling: Resampling = Resampling.nearest,
    nodata: float | None = None,
) -> np.ndarray:
    """Bands ``indexes`` of one window, ``(c, h, w)`` float32, NaN where the file says nodata: its
    nodata value, else a real mask band, else a binary alpha band (:func:`alpha_mask_band`); and,
    when it declares no nodata value, where it holds ``nodata`` (a value the format defines:
    Sentinel-2's 0), in addition to its mask.

    One read of the file for all bands (a pixel-interleaved tile is decompressed once, not once per
    band: detect_to_file's windows read band by band ran at 2.1 Mpx/s against 2.9 at 4096²,
    ``benchmarks/detection_speed.py``); masks at ``out_shape`` are read with nearest resampling.
    """
    shape = None if out_shape is None else (len(indexes), *out_shape)
    data = src.read(indexes, window=window, out_shape=shape, resampling=resampling)
    out = data.astype(np.float32)
    opacity = None
    for k, index in enumerate(indexes):
        value = src.nodatavals[index - 1]
        if value is not None:
            out[k][np.isnan(out[k]) if np.isnan(value) else data[k] == value] = np.nan
            continue
        if _has_real_mask(src.mask_flag_enums[index - 1]):
            mask = src.read_masks(index, window=window, out_shape=out_shape, resampling=Resampling.nearest)
            out[k][mask == 0] = np.nan
        elif (alpha := alpha_mask_band(src)) is not None:
            if opacity is None:
                opacity = src.read(alpha, window=window, out_shape=out_shape, resampling=Resampling.nearest) == 0
            out[k][opacity] = np.nan
        if nodata is not None:  # the format's nodata, which the file does not declare: its mask and it
            out[k][np.isnan(out[k]) if np.isnan(nodata) else data[k] == nodata] = np.nan
    return out


def _has_real_mask(flags: list[MaskFlags]) -> bool:
    """A mask band to honour: an internal/external mask, not GDAL's guess that a 4th band is alpha.

    A 4-band uint8 GeoTIFF gets RGBA colour interpretation by default, so the NIR band of an
    RGB+NIR tile would blank every pixel where NIR is 0; an alpha band is a mask only when
    :func:`alpha_mask_band` finds it binary.
    """
    return MaskFlags.all_valid not in flags and MaskFlags.alpha not in flags


#: Longest side of the decimated read that decides whether an alpha band is a mask.
ALPHA_SAMPLE = 1024
#: Share of the sample allowed between 0 and the full value (an alpha band's feathered edge).
ALPHA_TOLERANCE = 0.01
_alpha_cache: dict[tuple[object, ...], int | None] = {}
_alpha_lock = threading.Lock()


def alpha_mask_band(src: rasterio.DatasetReader) -> int | None:
    """The 1-based index of the band GDAL flags as alpha when it is a real opacity mask, else None.

    GDAL flags the 4th band of any 4-band uint8 GeoTIFF as alpha, the NIR band of an RGB+NIR file
    too; an orthomosaic's alpha is 0 outside its footprint and 255 (the dtype's maximum) inside.  The
    band is taken for a mask when a decimated read of it (at most :data:`ALPHA_SAMPLE` pixels on the
    longest side, served from the overviews when there are some) holds the full value and nothing
    else but 0, bar :data:`ALPHA_TOLERANCE` of it; a file without a nodata value only.  The answer is
    kept per file (path, size and modification time), so that every window read agrees.
    """
    if any(v is not None for v in src.nodatavals):
        return None
    flags = src.mask_flag_enums
    alphas = [i for i, ci in enumerate(src.colorinterp, 1) if ci == ColorInterp.alpha]
    if not alphas or not any(MaskFlags.alpha in f for f in flags):
        return None
    index = alphas[0]
    dtype = np.dtype(src.dtypes[index - 1])
    if dtype.kind not in "ui":
        return None
    try:
        stat = Path(src.name).stat()
        key: tuple[object, ...] = (src.name, stat.st_size, stat.st_mtime_ns, index)
    except OSError:  # not a local file (/vsicurl/, /vsimem/): keyed by name alone
        key = (src.name, index)
    with _alpha_lock:
        if key in _alpha_cache:
            return _alpha_cache[key]
    scale = max(src.width, src.height) / ALPHA_SAMPLE
    shape = (max(1, round(src.height / scale)), max(1, round(src.width / scale))) if scale > 1 else None
    sample = src.read(index, out_shape=shape, resampling=Resampling.nearest)
    full = np.iinfo(dtype).max
    binary = bool((sample == full).any()) and float(((sample != 0) & (sample != full)).mean()) <= ALPHA_TOLERANCE
    result = index if binary else None
    log.debug("band %d of %s flagged alpha: %s", index, src.name,
              "binary, used as the mask" if binary else "not binary, read as a band")
    with _alpha_lock:
        if len(_alpha_cache) > 4096:
            _alpha_cache.clear()
        _alpha_cache[key] = result
    return result


def _read_scaled(
    src: rasterio.DatasetReader, spec: ReadSpec, row: int, col: int, h: int, w: int
) -> np.ndarray:
    """No georeferencing: the image is stretched over the target grid in pixel space."""
    sy = spec.source_grid.height / spec.grid.height
    sx = spec.source_grid.width / spec.grid.width
    window = Window(col * sx, row * sy, w * sx, h * sy)
    return read_float(src, spec.index, window, out_shape=(h, w), resampling=spec.resampling, nodata=spec.nodata)


def _read_warped(
    src: rasterio.DatasetReader, spec: ReadSpec, row: int, col: int, h: int, w: int
) -> np.ndarray:
    """Warp one window: read the source footprint of the window (plus a margin), reproject it.

    This is what a WarpedVRT does, done per band on a float32 copy with NaN as
    nodata, so that a NIR band flagged as alpha in a 4-band file cannot blank
    out the others (GDAL's warper would use it as a mask); a binary alpha band
    is the mask, applied by :func:`read_float` before the warp.
    """
    out = np.full((h, w), np.nan, dtype=np.float32)
    dst_crs = RioCRS.from_user_input(spec.grid.crs)
    dst_transform = spec.grid.transform @ Affine.translation(col, row)
    window = _source_window(src, dst_crs, array_bounds(h, w, dst_transform), (h, w))
    if window is None:
        return out  # the window lies outside this file: all nodata, nothing read
    pixels = int(window.width) * int(window.height)
    if pixels > MAX_SOURCE_PIXELS and max(h, w) > 1:  # a much coarser grid: piece by piece
        step = max(1, int(max(h, w) * math.sqrt(MAX_SOURCE_PIXELS / pixels)))
        step = min(step, max(h, w) // 2 or 1)
        for r in range(0, h, step):
            for c in range(0, w, step):
                out[r:r + step, c:c + step] = _read_warped(src, spec, row + r, col + c, min(step, h - r),
                                                           min(step, w - c))
        return out
    data = read_float(src, spec.index, window, nodata=spec.nodata)
    reproject(
        data,
        out,
        src_transform=src.transform @ Affine.translation(window.col_off, window.row_off),
        src_crs=src.crs,
        src_nodata=np.nan,
        dst_transform=dst_transform,
        dst_crs=dst_crs,
        dst_nodata=np.nan,
        resampling=spec.resampling,
    )
    return out


def _source_window(
    src: rasterio.DatasetReader,
    dst_crs: RioCRS,
    bounds: tuple[float, float, float, float],
    shape: tuple[int, int],
) -> Window | None:
    """The pixel window of ``src`` covering ``bounds`` (in ``dst_crs``, ``shape`` target pixels) plus a
    resampling margin."""
    west, south, east, north = bounds
    if src.crs != dst_crs:
        west, south, east, north = transform_bounds(
            dst_crs, src.crs, west, south, east, north, densify_pts=21
        )
    # the corners in the file's pixels, whatever its transform (south-up, rotated: rasterio's
    # from_bounds refuses a south-up transform as "inconsistent" with the bounds)
    inverse = ~src.transform
    cols, rows = zip(*(inverse @ (x, y) for x in (west, east) for y in (south, north)), strict=True)
    reduction = max(1.0, (max(cols) - min(cols)) / shape[1], (max(rows) - min(rows)) / shape[0])
    margin = math.ceil(_MARGIN * reduction)
    col0 = math.floor(min(cols)) - margin
    row0 = math.floor(min(rows)) - margin
    col1 = math.ceil(max(cols)) + margin
    row1 = math.ceil(max(rows)) + margin
    col0, row0 = max(col0, 0), max(row0, 0)
    col1, row1 = min(col1, src.width), min(row1, src.height)
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


__all__ = ["ReadSpec", "alpha_mask_band", "chunk_sizes", "gdal_reason", "read_failed", "read_float", "lazy_band", "read_window", "resampling_of"]
