"""``changedetect detect --series`` with memory bounded by a block, not the scene: :func:`detect_series_to_file`.

A series of at most ``block_px`` pixels a side runs whole: :func:`changedetect.detect.detect_series`
on the stack, then both rasters written (what ``detect --series`` always did).  A larger one is cut
into cores of at most ``block_px`` a side (:func:`changedetect._block_spans.spans`); each core is
read with a halo around it, computed and held; :func:`~changedetect.detect.detect_series` runs on it
with the whole scene's normalisation statistics (:class:`changedetect._pipeline_blocks.SceneStats`
through :data:`changedetect._detect_engine.SCENE_STATS`, as ``changedetect run`` does), and its core
of the probability and of the first-seen date is written window by window into the two COGs.  Either
way both COGs are written under temporary names and renamed only once both are complete
(:func:`_both_or_neither`): an error or an interruption leaves neither, and an existing pair as it was.

Each block starts on the whole scene's grid of windows and ends where one of its windows ends
(:func:`changedetect._block_spans.aligned_spans`, as ``changedetect run``'s blocks): every window
that touches a core is then the window the whole scene runs, with the same blending weight, so a
core's probability is the whole scene's up to float noise (other windows batched with it).  The cloud fill is pixel by pixel; the presence check's objects are seen
whole within ``halo_px`` of a core (a larger building across a core's edge may be checked otherwise)."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from changedetect._block_spans import aligned_spans, window_grids
from changedetect._run_config import RunConfig

if TYPE_CHECKING:
    import xarray as xr

    from changedetect._detect_engine import DetectConfig, ModelLike
    from changedetect.presence import DatePresence

log = logging.getLogger("changedetect.detect")

#: ``detect --series``'s defaults: ``changedetect run``'s (``[run] block_px``, ``halo_px``)
BLOCK_PX, HALO_PX = RunConfig.block_px, RunConfig.halo_px


@dataclass(frozen=True)
class SeriesSummary:
    """What :func:`detect_series_to_file` wrote."""

    path: Path
    first_seen_path: Path
    width: int
    height: int
    before: str
    after: str
    threshold: float
    #: the share of the scene's pixels at or above ``threshold``
    share_above: float
    #: 1: the scene ran whole
    blocks: int
    seconds: float


def first_seen_path(out: str | Path) -> Path:
    """The first-seen raster written beside the probability ``out``: ``change.tif`` -> ``change_first_seen.tif``."""
    out = Path(out)
    return out.with_name(f"{out.stem}_first_seen{out.suffix}")


def detect_series_to_file(
    tiles_or_stack: str | Path | xr.DataArray,
    out: str | Path,
    *,
    config: DetectConfig | Mapping[str, Any] | None = None,
    block_px: int = BLOCK_PX,
    halo_px: int = HALO_PX,
    overwrite: bool = False,
    progress: bool = False,
    model: ModelLike | None = None,
    segmenter: ModelLike | DatePresence | None = None,
    cloud_mask: bool = True,
) -> SeriesSummary:
    """:func:`~changedetect.detect.detect_series` on a stack of tiles, written as two COGs: the
    probability at ``out`` and the date change first appeared (days since 1970-01-01, NaN where
    never) at :func:`first_seen_path`, with memory bounded by ``block_px`` whatever the scene's size.

    Parameters
    ----------
    tiles_or_stack
        A TileStack (dask-backed is best: only a block is read at a time; its declared nodata,
        ``stack.rio.nodata``, counts as no data, as in :func:`~changedetect.detect.detect_series`), or
        anything :func:`changedetect.io.open_series` opens (read with ``cloud_mask``).
    block_px
        A scene of at most this many pixels a side runs whole; a larger one block by block (cores of
        at most ``block_px`` a side, each read with a halo around it).
    halo_px
        Pixels read at least around each core (the presence check sees a building across a core's
        edge whole), and more where the windows need it (:func:`aligned_spans`: so that each core's
        probability is the whole scene's).
    model, segmenter
        A loaded model (instead of ``config.model``) and the building segmenter of the presence check
        (None: no check), as :func:`~changedetect.detect.detect_series` takes them.
    """
    from changedetect._config_toml import stage_config
    from changedetect._detect_engine import DetectConfig, _load_model, _threshold
    from changedetect._detect_inputs import said_once
    from changedetect.errors import OutputExistsError

    if block_px < 1 or halo_px < 0:
        raise ValueError(f"block_px must be >= 1 and halo_px >= 0, got {block_px} and {halo_px}")
    config = DetectConfig() if config is None else stage_config(config, DetectConfig, call="detect_series_to_file",
                                                                 table="detect")
    out = Path(out)
    first_path = first_seen_path(out)
    for path in (out, first_path):  # both refused before anything is computed
        if path.exists() and not overwrite:
            raise OutputExistsError(f"output '{path}' already exists; pass overwrite=True (--overwrite on the "
                                    "command line) to replace it, or choose another path")
    stack = _open(tiles_or_stack, cloud_mask)
    loaded = _load_model(config, model)
    thr = _threshold(config, loaded.card)
    start = time.perf_counter()
    h, w = int(stack.sizes["y"]), int(stack.sizes["x"])
    with said_once(), _both_or_neither(out, first_path, overwrite) as (staged, staged_first):
        if max(h, w) <= block_px:
            prob_attrs, share, n = _whole(stack, staged, staged_first, config, loaded, segmenter, progress, thr)
        else:
            prob_attrs, share, n = _blocks(stack, staged, staged_first, config, loaded, segmenter, progress, thr,
                                           block_px, halo_px)
    log.info("wrote %s and %s", out, first_path)
    return SeriesSummary(out, first_path, w, h, str(prob_attrs.get("before")), str(prob_attrs.get("after")),
                         float(prob_attrs.get("threshold", thr)), share, n, time.perf_counter() - start)


def _open(tiles_or_stack: str | Path | xr.DataArray, cloud_mask: bool) -> xr.DataArray:
    if isinstance(tiles_or_stack, str | Path):
        from changedetect.io import open_series

        return open_series(tiles_or_stack).to_stack(cloud_mask=cloud_mask)
    from changedetect.types import nodata_as_nan

    return nodata_as_nan(tiles_or_stack)  # its declared nodata (a uint16 collar of 0) as no data


@contextlib.contextmanager
def _both_or_neither(out: Path, first_path: Path, overwrite: bool) -> Iterator[tuple[Path, Path]]:
    """Two temporary names beside ``out`` and ``first_path`` for the body to write complete COGs to; both
    renamed onto them only once the body has returned.  Both are checked (written; not there unless
    ``overwrite``) before either is renamed; the first-seen raster goes first, an existing one set aside
    until the probability is renamed too (:func:`changedetect.io.atomic.atomic_path`), and put back should
    that fail (a folder at ``out``, an ``out`` that appeared meanwhile, an interruption between the two).
    An exception or an interruption in the body removes both temporary files and leaves ``out`` and
    ``first_path`` as they were; an error that names a temporary file (a full disk's) names its output."""
    from changedetect.io import atomic

    aside: Path | None = None  # the first-seen raster that was there, until the probability is renamed
    placed = False  # the new first-seen raster is at first_path
    try:
        with atomic.atomic_path(out, overwrite=overwrite) as staged:
            atomic._refuse_existing(first_path, overwrite)
            first = atomic.temp_name(first_path)
            try:
                try:
                    yield staged, first
                except OSError as exc:
                    names = {str(staged): out, str(first): first_path}
                    if exc.filename is None or str(exc.filename) not in names:
                        raise
                    raise OSError(exc.errno, exc.strerror, str(names[str(exc.filename)])) from exc
                for tmp in (staged, first):
                    if not tmp.exists():
                        raise FileNotFoundError(f"the writer did not create its temporary output '{tmp}'")
                atomic._refuse_existing(out, overwrite)
                atomic._refuse_existing(first_path, overwrite)
                if first_path.is_file() or first_path.is_symlink():  # a folder: the rename below fails
                    aside = atomic.temp_name(first_path)
                    try:
                        os.link(first_path, aside, follow_symlinks=False)  # first_path stays until replaced
                    except (OSError, NotImplementedError):  # a file system without hard links
                        os.replace(first_path, aside)
                os.replace(first, first_path)
                placed = True
            finally:
                atomic.remove_with_sidecars(first)
    except BaseException:  # the probability was not renamed: the first-seen raster as it was
        if aside is not None:
            os.replace(aside, first_path)
            aside = None
        elif placed:
            first_path.unlink(missing_ok=True)
        raise
    finally:
        if aside is not None:
            atomic.remove_with_sidecars(aside)


def _share(values: np.ndarray, thr: float) -> int:
    """Pixels at or above ``thr`` (NaN is not)."""
    return int(np.count_nonzero(np.nan_to_num(values, nan=-1.0) >= thr))


def _whole(stack: xr.DataArray, out: Path, first_path: Path, config: DetectConfig, loaded: ModelLike,
           segmenter: Any, progress: bool, thr: float) -> tuple[dict[str, Any], float, int]:
    """The scene whole, as ``detect --series`` always ran it (into ``out`` and ``first_path``: fresh
    temporary names, :func:`_both_or_neither`)."""
    from changedetect._pipeline_steps import days_raster
    from changedetect.detect import detect_series
    from changedetect.io import write_cog

    prob, first = detect_series(stack, config=config, progress=progress, model=loaded, segmenter=segmenter)
    write_cog(prob, out, dtype="float32")
    write_cog(days_raster(first), first_path, dtype="float32")
    cut = float(prob.attrs.get("threshold", thr))
    return dict(prob.attrs), _share(prob.values, cut) / prob.size, 1


def _blocks(stack: xr.DataArray, out: Path, first_path: Path, config: DetectConfig, loaded: ModelLike,
            segmenter: Any, progress: bool, thr: float, block_px: int,
            halo_px: int) -> tuple[dict[str, Any], float, int]:
    """Block by block, the whole scene's statistics, the cores written window by window (into ``out`` and
    ``first_path``: fresh temporary names, :func:`_both_or_neither`)."""
    from changedetect._detect_engine import SCENE_STATS
    from changedetect._pipeline_blocks import SceneStats, _template
    from changedetect._pipeline_steps import days_raster
    from changedetect.detect import detect_series
    from changedetect.io.raster import cog_windows
    from changedetect.presence import DatePresence

    if isinstance(segmenter, DatePresence):
        raise ValueError("a DatePresence holds a whole scene's rasters: give the segmenter model to detect "
                         "a scene larger than block_px block by block")
    grids = window_grids([loaded] if segmenter is None else [loaded, segmenter], config)
    h, w = int(stack.sizes["y"]), int(stack.sizes["x"])
    blocks = [(ry, rx) for ry in aligned_spans(h, block_px, halo_px, grids)
              for rx in aligned_spans(w, block_px, halo_px, grids)]
    log.info("detect: %dx%d px in %d blocks of at most %d px a side (halo at least %d px; windows %s)",
             w, h, len(blocks), block_px, halo_px, ", ".join(f"{a} px overlapping by {b}" for a, b in set(grids)))
    attrs: dict[str, Any] = {}
    above = 0
    token = SCENE_STATS.set(SceneStats(stack))
    try:
        with contextlib.ExitStack() as files:
            writers: list[Any] = []
            for n, ((core_y, outer_y), (core_x, outer_x)) in enumerate(blocks, 1):
                log.info("block %d of %d: rows %d-%d, columns %d-%d", n, len(blocks), *core_y, *core_x)
                block = stack.isel(y=slice(*outer_y), x=slice(*outer_x))
                block = block.compute() if block.chunks is not None else block
                prob, first = detect_series(block, config=config, progress=progress, model=loaded,
                                            segmenter=segmenter)
                days = days_raster(first)
                if not writers:  # the grid and the attributes of the whole scene's rasters
                    attrs = dict(prob.attrs)
                    writers = [files.enter_context(cog_windows(_template(stack, like), path, dtype="float32"))
                               for like, path in ((prob, out), (days, first_path))]
                core = (slice(core_y[0] - outer_y[0], core_y[1] - outer_y[0]),
                        slice(core_x[0] - outer_x[0], core_x[1] - outer_x[0]))
                values = prob.values[core]
                writers[0](values, core_y[0], core_x[0])
                writers[1](days.values[core], core_y[0], core_x[0])
                above += _share(values, float(attrs.get("threshold", thr)))
                del block, prob, first, days, values
                gc.collect()  # a block's arrays sit in reference cycles: freed now, not blocks later
    finally:
        SCENE_STATS.reset(token)
    return attrs, above / (h * w), len(blocks)


__all__ = ["BLOCK_PX", "HALO_PX", "SeriesSummary", "aligned_spans", "detect_series_to_file", "first_seen_path"]
