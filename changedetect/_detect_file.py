"""File to file detection (:func:`changedetect.detect.detect_to_file`).

Streams two rasters window by window into a probability COG: finished rows
are written as soon as the blending has settled them, so memory stays bounded
whatever the scene's size.  Private: import from :mod:`changedetect.detect`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ParamSpec

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)

from changedetect._config_toml import stage_config
from changedetect._detect_engine import (
    DetectConfig,
    DetectSummary,
    ModelLike,
    Reader,
    _attrs,
    _load_model,
    _run,
    _Runner,
    _scene_stats,
    _threshold,
    check_gsd,
    resolve_bands,
    same_transform,
)
from changedetect._detect_inputs import check_colour, heard, warn_once
from changedetect.errors import GeoreferenceError
from changedetect.io._block_cache import capped
from changedetect.tiling import Window

logger = logging.getLogger("changedetect.detect")

# ----------------------------------------------------------------------------- files
def _file_bands(src: Any) -> tuple[list[str], list[int]]:
    """Names and 0-based indices of an open rasterio dataset's bands (descriptions, else colour
    interpretation), leaving out a binary alpha band, which is the file's mask (as in ``open_stack``)."""
    from changedetect.io._read import alpha_mask_band

    alpha = alpha_mask_band(src)
    names, indices = [], []
    for i in range(src.count):
        if i + 1 == alpha:
            continue
        desc = (src.descriptions[i] or "").strip()
        ci = src.colorinterp[i].name if i < len(src.colorinterp) else ""
        names.append(desc or (ci if ci in {"red", "green", "blue"} else str(i + 1)))
        indices.append(i)
    return names, indices


def _resolve(src: Any, card: Any, aliases: dict[str, Any], source: str) -> list[int]:
    """0-based indices of the bands of ``src`` the model needs, in its order."""
    names, indices = _file_bands(src)
    return [indices[i] for i in resolve_bands(names, list(card.bands), aliases=aliases, source=source)]


class _Bands:
    """A raster's bands on BEFORE's grid, read window by window as ``(c, h, w)`` float32 with NaN where
    the file has no data (its nodata value, else its mask band, else a binary alpha band), through io's
    reads: AFTER on another grid is warped band by band from the source window under each window, and
    a 4th band that GDAL merely flags as alpha (its default for 4-band uint8 GeoTIFFs: NIR in an RGB+NIR
    file) is read as a band unless its values are only 0 and 255 (an orthomosaic's alpha: the mask), as
    :func:`changedetect.io.open_stack` does.  (A WarpedVRT took that NIR band for opacity and returned
    all-NaN windows; a masked read blanked every pixel where NIR = 0.)"""

    def __init__(self, src: Any, onto: Any = None) -> None:
        self.src = src
        like = onto if onto is not None else src
        self.height, self.width = int(like.height), int(like.width)
        self.warp = onto is not None and not _same_grid(src, onto) and src.crs is not None and onto.crs is not None
        from changedetect.io.series import s2_nodata

        # a stack of Sentinel-2 bands that declares no nodata: 0 is the products' NODATA (open_stack's rule)
        self.nodata = s2_nodata([d or "" for d in src.descriptions], str(src.dtypes[0]))
        if self.warp:
            self.grid, self.source_grid = _grid(onto), _grid(src)

    def read(self, indexes: list[int], window: Any = None) -> np.ndarray:
        """Bands ``indexes`` (1-based) of ``window`` (a rasterio Window on BEFORE's grid; None: all)."""
        from rasterio.enums import Resampling
        from rasterio.windows import Window as RioWindow

        from changedetect.io._read import ReadSpec, _read_warped, read_float_bands

        win = window if window is not None else RioWindow(0, 0, self.width, self.height)
        if not self.warp:
            return read_float_bands(self.src, indexes, win, nodata=self.nodata)
        row, col, h, w = int(win.row_off), int(win.col_off), int(win.height), int(win.width)
        return np.stack([_read_warped(self.src, ReadSpec(Path(self.src.name), i, self.source_grid, self.grid,
                                                         Resampling.bilinear, self.nodata), row, col, h, w)
                         for i in indexes])


def _read(src: _Bands, indexes: list[int], window: Any = None) -> np.ndarray:
    """``(c, h, w)`` float32 with NaN where ``src`` has no data (see :class:`_Bands`)."""
    return src.read(indexes, window)


def _file_reader(src: _Bands, idx: list[int]) -> Reader:
    from rasterio.windows import Window as RioWindow

    indexes = [i + 1 for i in idx]

    def read(win: Window) -> np.ndarray:
        return _read(src, indexes, RioWindow(win.col, win.row, win.width, win.height))

    return read


def _file_stats(src: _Bands, idx: list[int], card: Any) -> Any:
    """The scene's statistics, sampled as :func:`~changedetect.detect.detect_pair` samples an array's."""
    return _scene_stats(_file_reader(src, idx), (src.height, src.width), card)


def _grid(src: Any) -> Any:
    """An open dataset's own pixel grid."""
    from changedetect.types import Grid

    return Grid(crs=src.crs, transform=src.transform, width=src.width, height=src.height)


def _target(src: Any) -> Any:
    """The grid the probability is written on: BEFORE's own when it is north-up (read directly, no
    per-window work), else the north-up grid over its footprint (:func:`changedetect.io.geo.north_up`,
    as ``open_stack`` and ``gdalwarp`` make it), onto which BEFORE and AFTER are both warped."""
    from changedetect.io.geo import north_up

    return north_up(_grid(src))


def _same_grid(a: Any, b: Any) -> bool:
    return ((a.width, a.height) == (b.width, b.height) and a.crs == b.crs
            and same_transform(a.transform, b.transform, b.width, b.height))


def _check_inputs(before_path: Path, after_path: Path) -> None:
    """One clear error before any work: a missing, unreadable or truncated file, or a band that is not
    brightness (complex, a palette's colour indices: ``TileReadError``), a file georeferenced only by GCPs
    or RPCs, a CRS on one date only, or dates whose footprints do not overlap (``GeoreferenceError``):
    the read path's checks (:func:`changedetect.io._checks.check_raster`, as ``open_series`` makes them)."""
    from changedetect.io._checks import check_raster, crs_name
    from changedetect.io._inspect import inspect_raster
    from changedetect.io.geo import bounds_in, intersection, north_up

    before, after = inspect_raster(before_path), inspect_raster(after_path)
    metas = {before_path: before, after_path: after}
    for meta in metas.values():
        check_raster(meta, metas)
    if (before.crs is None) != (after.crs is None):
        missing, other = (before_path, after) if before.crs is None else (after_path, before)
        code = crs_name(other.crs)
        raise GeoreferenceError(
            f"'{missing}' has no CRS but the other date has {code}: set its CRS (e.g. gdal_edit.py "
            f"-a_srs {code} '{missing}') or give two georeferenced rasters")
    if before.crs is None:
        return  # two plain images: same size, pixel coordinates (_onto checks the size)
    b, a = north_up(before.grid).bounds, bounds_in(north_up(after.grid), before.crs)  # a rotated grid's footprint
    if intersection(b, a) is None:
        raise GeoreferenceError(
            f"'{after_path}' does not overlap '{before_path}': AFTER covers {tuple(round(v, 1) for v in a)} and "
            f"BEFORE {tuple(round(v, 1) for v in b)} in {crs_name(before.crs)}; give two acquisitions of the "
            "same place")


def _onto(src_after: Any, src_before: Any, after_path: Path) -> _Bands:
    """``src_after``'s bands on ``src_before`` (BEFORE's open dataset, or the :class:`~changedetect.types.Grid`
    the probability is written on; :class:`_Bands`): what lies outside AFTER (or under its nodata or mask)
    reads as no data, not 0."""
    if not _same_grid(src_after, src_before) and (src_before.crs is None or src_after.crs is None):
        if (src_after.width, src_after.height) != (src_before.width, src_before.height):
            raise GeoreferenceError(
                f"'{after_path}' ({src_after.width}x{src_after.height}) differs in size from BEFORE "
                f"({src_before.width}x{src_before.height}) and one of them has no CRS; give georeferenced "
                "rasters or images of the same size"
            )
        return _Bands(src_after)
    bands = _Bands(src_after, src_before)
    if bands.warp:
        logger.info("reading '%s' onto BEFORE's grid, window by window", after_path)
    return bands


def _date_in_name(path: Path) -> str:
    m = re.search(r"(19|20)(\d{2})-?(\d{2})-?(\d{2})", path.stem)
    return f"{m.group(1)}{m.group(2)}-{m.group(3)}-{m.group(4)}" if m else ""


class _Counter:
    """Valid and above-threshold pixel counts of the rows written so far."""

    def __init__(self, threshold: float) -> None:
        self.threshold, self.valid, self.above = threshold, 0, 0

    def update(self, rows: np.ndarray) -> None:
        finite = np.isfinite(rows)
        self.valid += int(finite.sum())
        self.above += int((rows[finite] >= self.threshold).sum())


_P = ParamSpec("_P")


def _hearing(call: Callable[_P, DetectSummary]) -> Callable[_P, DetectSummary]:
    """``call``, whose summary's ``warnings`` are the warnings it logged (:func:`heard`): ``detect -q``
    says them, which drops the log lines."""
    @functools.wraps(call)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> DetectSummary:
        with heard() as said:
            summary = call(*args, **kwargs)
        return dataclasses.replace(summary, warnings=tuple(said))

    return wrapper


@_hearing
def detect_to_file(
    before_path: str | Path,
    after_path: str | Path,
    out_path: str | Path,
    *,
    config: DetectConfig | Mapping[str, Any] = DetectConfig(),
    overwrite: bool = False,
    progress: bool = False,
    model: ModelLike | None = None,
) -> DetectSummary:
    """Stream two rasters through the model into a float32 probability COG on BEFORE's grid.

    Windows are read from the files as they are needed (AFTER warped band by
    band onto BEFORE's grid when the grids differ), finished rows are written
    to a temporary striped GeoTIFF as soon as no later window touches them, and
    that file is turned into a Cloud-Optimized GeoTIFF and renamed onto
    ``out_path``.  Peak memory depends on the window, the batch and the scene's
    width (a strip of about ``window + step`` rows), never on its height.

    Raises
    ------
    OutputExistsError
        If ``out_path`` exists and ``overwrite`` is false.
    OutputLocationError
        If ``out_path`` is BEFORE or AFTER itself (even with ``overwrite``).
    ModelError
        If a file lacks the bands the model needs.
    GeoreferenceError
        If AFTER cannot be put onto BEFORE's grid.
    """
    config = stage_config(config, DetectConfig, call="detect_to_file", table="detect")
    import rasterio
    from rasterio.windows import Window as RioWindow

    before_path, after_path, out_path = Path(before_path), Path(after_path), Path(out_path)
    for which, path in (("BEFORE", before_path), ("AFTER", after_path)):
        if out_path.exists() and path.exists() and out_path.samefile(path):
            from changedetect.errors import OutputLocationError

            raise OutputLocationError(f"output '{out_path}' is the {which} raster itself; write the probability "
                                      "to another file (--out)")
    if out_path.exists() and not overwrite:
        from changedetect.errors import OutputExistsError

        raise OutputExistsError(f"output '{out_path}' already exists; pass overwrite=True (--overwrite) to replace it")
    _check_inputs(before_path, after_path)
    loaded = _load_model(config, model)
    card, runner = loaded.card, _Runner(loaded, config)
    t0 = time.perf_counter()
    counter = _Counter(_threshold(config, card))
    with capped(), _open(before_path) as src_b, _open(after_path) as raw_a:
        grid = _target(src_b)
        src_a, bands_b = _onto(raw_a, grid, after_path), _onto(src_b, grid, before_path)
        if bands_b.warp:
            logger.info("BEFORE '%s' is not north-up (rotated or south-up): the probability is written on the "
                        "north-up grid over its footprint", before_path)
        check_gsd(card, grid.crs, grid.transform, grid.width, grid.height, f"'{before_path}'")
        aliases = dict(getattr(card, "band_aliases", None) or {})
        idx_b = _resolve(src_b, card, aliases, f"BEFORE '{before_path}'")
        idx_a = _resolve(raw_a, card, aliases, f"AFTER '{after_path}'")
        shape = (grid.height, grid.width)
        check_colour(_file_reader(bands_b, idx_b), shape, card, f"BEFORE '{before_path}'")
        check_colour(_file_reader(src_a, idx_a), shape, card, f"AFTER '{after_path}'")
        stats = (_file_stats(bands_b, idx_b, card), _file_stats(src_a, idx_a, card))
        profile = {"driver": "GTiff", "dtype": "float32", "count": 1, "width": grid.width,
                   "height": grid.height, "crs": src_b.crs, "transform": grid.transform,
                   "nodata": float("nan"), "BIGTIFF": "IF_SAFER"}
        tags = _attrs(card, config, _date_in_name(before_path), _date_in_name(after_path))
        with _atomic(out_path) as tmp:
            strips = tmp.with_name(tmp.name + ".strips.tif")
            try:
                with rasterio.open(strips, "w", **profile) as dst:
                    dst.update_tags(**{k: str(v) for k, v in tags.items()})

                    def sink(top: int, rows: np.ndarray) -> None:
                        dst.write(rows, 1, window=RioWindow(0, top, rows.shape[1], rows.shape[0]))
                        counter.update(rows)

                    _run(_file_reader(bands_b, idx_b), _file_reader(src_a, idx_a), shape, runner,
                         stats, sink, progress=progress)
                _to_cog(strips, tmp)
            finally:
                strips.unlink(missing_ok=True)
    seconds = time.perf_counter() - t0
    share = counter.above / counter.valid if counter.valid else 0.0
    summary = DetectSummary(out_path, shape[0], shape[1], seconds, counter.threshold, share, tags["model"],
                            counter.valid / (shape[0] * shape[1]))
    if summary.valid_share < 0.5:
        warn_once("only %.1f%% of BEFORE's pixels have data on both dates: AFTER '%s' covers little of "
                  "BEFORE, or its nodata, mask or alpha band hides most of it", 100 * summary.valid_share,
                  after_path)
    logger.info("detect: %dx%d in %.1f s (%.2f Mpx/s), %.2f%% above %.2f", shape[1], shape[0],
                seconds, summary.mpx_per_s, 100 * share, counter.threshold)
    return summary


def _open(path: Path) -> Any:
    import rasterio
    from rasterio.errors import RasterioIOError

    from changedetect.errors import TileReadError

    if not path.exists():
        raise TileReadError(f"raster '{path}' does not exist")
    try:
        return rasterio.open(path)
    except RasterioIOError as exc:
        raise TileReadError(f"cannot read '{path}' as a raster: {exc}") from exc


def _to_cog(src_path: Path, dst_path: Path) -> None:
    """Copy a GeoTIFF to a Cloud-Optimized GeoTIFF (deflate, 512 px tiles, overviews)."""
    from rasterio.shutil import copy as rio_copy

    rio_copy(str(src_path), str(dst_path), driver="COG", COMPRESS="DEFLATE", PREDICTOR="YES",
             BLOCKSIZE="512", OVERVIEW_RESAMPLING="AVERAGE", BIGTIFF="IF_SAFER", NUM_THREADS="ALL_CPUS")


def _atomic(path: Path) -> Any:
    """Write to a temporary file beside ``path``, renamed onto it on success."""
    from changedetect.io.atomic import atomic_path

    return atomic_path(path, overwrite=True)

