"""Detection and vectorisation of a scene larger than one block (private): the co-registered stack
is split into cores of at most ``config.run.block_px`` a side, each read with at least ``halo_px``
around it and held in memory; :func:`changedetect._pipeline_find.find` runs on each, with the whole
scene's normalisation statistics (:class:`SceneStats`); each core's rasters are written into the
scene's outputs window by window, and each block keeps the footprints whose representative point
lies in its core.  Memory is bounded by the block; the footprints grow with the buildings only.

Each block starts on the whole scene's grid of network windows and ends where one of its windows
ends (:func:`changedetect._block_spans.aligned_spans`, the change model's and the building
segmenter's grids), as ``detect --series``'s blocks do: every window that touches a core is the
whole scene's, with the same blending weight, so a core's probability and first-seen date are the
whole scene's up to float noise.  ``halo_px`` stays the least read around a core, and the pixels
within it of the core are held as the whole scene's: a footprint over the core that reaches their
edge (a structure larger than the halo) has its block read again, larger, until it lies whole
inside (:func:`_held_whole`; at most ``GROW_CAP`` times ``block_px + halo_px`` a side, past which
it is marked ``cut_by_block`` and named in one WARNING); so has a blob or a presence-check object
there that left no footprint (:mod:`changedetect._block_reach`: rejected cut, it may be kept whole).
The pieces of a structure that neighbouring blocks each marked so are joined into one footprint
(:func:`changedetect._block_merge.join_cut`): one structure, one violation."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from changedetect._block_merge import BLOCK, CUT, REBUILD, join_cut, structures
from changedetect._block_reach import blob_bounds, over_and_near
from changedetect._block_spans import (
    Span,
    aligned_spans,
    grown,
    held_region,
    region_outer,
    spans,
    window_grids,
)
from changedetect._dask_cull import values
from changedetect._detect_engine import SCENE_STATS, _scene_stats
from changedetect._fill_before import FILLED_ATTR, Counts, fill_window, filled_counts
from changedetect._pipeline_find import Found, carried_ids, find
from changedetect._pipeline_output import OUTPUTS
from changedetect._pipeline_steps import days_raster
from changedetect.config import PipelineConfig
from changedetect.tiling import Window
from changedetect.types import transform_of

if TYPE_CHECKING:
    import geopandas as gpd
    import xarray as xr

    from changedetect._pipeline_chain import Clock

log = logging.getLogger("changedetect.pipeline")

#: a block grown to hold a footprint whole holds at most this many times ``block_px + halo_px`` a side
#: (1.25: at most about 1.6 times a block's memory, the bound ``block_px`` promises kept within reach;
#: room for a structure reaching ``block_px / 8 + 0.625 halo_px`` past a core's edge: 672 px at the defaults)
GROW_CAP = 1.25
#: a footprint within this many pixels (and the clean-up's opening and closing radii) of the held
#: region's edge may be shaped by the pixels past it
EDGE_PX = 4


def is_blocked(aligned: xr.DataArray, config: PipelineConfig) -> bool:
    """Whether the scene is larger than one block in either dimension."""
    return max(int(aligned.sizes["y"]), int(aligned.sizes["x"])) > config.run.block_px


class SceneStats:
    """The whole scene's normalisation statistics of each date (:data:`SCENE_STATS`), drawn from
    the (lazy) co-registered ``stack`` as :func:`changedetect.detect.detect_pair` draws them from a
    whole scene (``_scene_stats``: sample windows only), once per date, band set and model card."""

    def __init__(self, stack: xr.DataArray) -> None:
        self.stack = stack
        self.times = list(stack["time"].values)
        self.shape = (int(stack.sizes["y"]), int(stack.sizes["x"]))
        self.names = [str(b) for b in stack["band"].values]
        self.cache: dict[tuple[int, tuple[int, ...], int, tuple[str, ...]], Any] = {}
        self.reads: dict[tuple[int, int, int, int, int], np.ndarray] = {}

    def __call__(self, date: xr.DataArray, idx: list[int], card: Any) -> Any:
        i = self.times.index(date["time"].values)
        if [str(b) for b in date["band"].values] != self.names:
            raise ValueError("a block's bands are not the scene's")
        # a BEFORE filled from earlier dates (FILLED_ATTR: those it may be filled from): the filled scene's
        filled = tuple(str(d) for d in date.attrs.get(FILLED_ATTR) or ())
        key = (i, tuple(idx), id(card), filled)
        if key not in self.cache:
            read = self._filled_reader(i, idx, filled) if filled else self._reader(i, idx)
            self.cache[key] = _scene_stats(read, self.shape, card)
        return self.cache[key]

    def _filled_reader(self, i: int, idx: list[int], sources: tuple[str, ...]) -> Callable[[Window], np.ndarray]:
        every = list(range(len(self.names)))
        days = [str(t)[:10] for t in self.times]
        reads = [self._reader(k, every) for k in [i, *(days.index(d) for d in sources)]]

        def read(win: Window) -> np.ndarray:
            return fill_window([r(win) for r in reads])[idx]

        return read

    def _reader(self, i: int, idx: list[int]) -> Callable[[Window], np.ndarray]:
        def read(win: Window) -> np.ndarray:
            at = (i, win.row, win.col, win.height, win.width)
            data = self.reads.get(at)
            if data is None:
                rows, cols = win.slices
                data = np.asarray(values(self.stack.isel(time=i, y=rows, x=cols)), dtype=np.float32)
                if win.height * win.width <= 256 * 256:  # the sample windows: shared by the cards
                    self.reads[at] = data
            return data[idx]

        return read


@dataclass
class Blocked:
    """What the blocks found together (the rasters are written)."""

    prob: xr.DataArray  # the scene's grid and the probability's attributes; its values are not the probability
    footprints: gpd.GeoDataFrame
    kept: tuple[int, int]
    carried: int | None
    dropped: int
    written: set[str] = field(default_factory=set)
    #: the pixels of each consecutive pair's BEFORE filled from earlier dates, the blocks' cores summed
    filled: list[Counts] = field(default_factory=list)


def _template(aligned: xr.DataArray, like: xr.DataArray) -> xr.DataArray:
    """A zero-cost raster on the scene's grid with ``like``'s name and attributes."""
    base = aligned.isel(time=0, band=0, drop=True)
    shape = (int(base.sizes["y"]), int(base.sizes["x"]))
    out = base.copy(data=np.broadcast_to(np.zeros((), dtype=like.dtype), shape))
    out.name, out.attrs = like.name, dict(like.attrs)
    return out


def in_core(footprints: gpd.GeoDataFrame, transform: Any, core: tuple[Span, Span]) -> np.ndarray:
    """Which footprints' representative points (``point_on_surface``) lie in ``core``'s pixels."""
    import shapely

    pts = shapely.point_on_surface(np.asarray(footprints.geometry.values))
    inv, x, y = ~transform, shapely.get_x(pts), shapely.get_y(pts)
    col, row = inv.a * x + inv.b * y + inv.c, inv.d * x + inv.e * y + inv.f
    (r0, r1), (c0, c1) = core
    return np.asarray((row >= r0) & (row < r1) & (col >= c0) & (col < c1), dtype=bool)


def unique_ids(footprints: gpd.GeoDataFrame, previous: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    """Footprints of two blocks may take one id (two cells' hashes alike, one previous id carried
    twice): the larger keeps it, the other takes its cell's first free ``-2``, ``-3``, ..."""
    from changedetect._vectorize_shapes import _cell_hashes

    ids = footprints["footprint_id"].astype(str).tolist()
    if len(set(ids)) == len(ids):
        return footprints
    taken = set(ids) | (set(previous["footprint_id"].astype(str)) if previous is not None and len(previous) else set())
    seen: set[str] = set()
    for k, fid in enumerate(ids):  # largest first
        if fid in seen:
            base = _cell_hashes(footprints.geometry.iloc[[k]])[0]
            n = 2
            while f"{base}-{n}" in taken:
                n += 1
            ids[k] = f"{base}-{n}"
            taken.add(ids[k])
        seen.add(ids[k])
    log.info("blocks: %d footprint id(s) taken twice given fresh ones", sum(a != b for a, b in
                                                                           zip(ids, footprints["footprint_id"], strict=True)))
    return footprints.assign(footprint_id=ids)


def run_blocks(aligned: xr.DataArray, index: list[tuple[int, int]] | None, masks: list[tuple[int, int]] | None,
               config: PipelineConfig, models: tuple[Any, Any], clock: Clock, progress: bool,
               previous: gpd.GeoDataFrame | None, out: Path, fill_from: list[int] | None = None) -> Blocked:
    """:func:`find` block by block; writes the probability, first-seen and same-season rasters."""
    import geopandas as gpd
    import pandas as pd

    h, w = int(aligned.sizes["y"]), int(aligned.sizes["x"])
    grids = window_grids([m for m in models if m is not None], config.detect)
    block_px, halo_px = config.run.block_px, config.run.halo_px
    # the footprints a core keeps reach up to halo_px past it: the whole scene's windows there too
    blocks = [(ry, rx) for ry in aligned_spans(h, block_px, halo_px, grids, exact=halo_px)
              for rx in aligned_spans(w, block_px, halo_px, grids, exact=halo_px)]
    log.info("run: %dx%d px in %d blocks of at most %d px a side (halo at least %d px; windows %s)", w, h,
             len(blocks), block_px, halo_px, ", ".join(f"{a} px overlapping by {b}" for a, b in sorted(set(grids))))
    transform = transform_of(aligned)

    def detect(outer_y: Span, outer_x: Span) -> Found:
        block = aligned.isel(y=slice(*outer_y), x=slice(*outer_x))
        block = block.compute() if block.chunks is not None else block
        return find(block, index, masks, config, models, clock, progress, previous, fill_from, examine=True)

    frames: list[gpd.GeoDataFrame] = []
    writers: dict[str, Callable[[Any, int, int], None]] = {}
    first: Any = None
    rebuilt: int | None = None
    dropped: list[tuple[Any, int]] = []  # the rows each block dropped as unconfirmed, in its core
    filled: list[Counts] = []
    token = SCENE_STATS.set(SceneStats(aligned))
    try:
        with contextlib.ExitStack() as files:
            for n, (core_y, core_x) in enumerate(((ry[0], rx[0]) for ry, rx in blocks), 1):
                clock.block = f" (block {n} of {len(blocks)})"
                log.info("block %d of %d: rows %d-%d, columns %d-%d", n, len(blocks), *core_y, *core_x)
                found, (outer_y, outer_x), cut = _held_whole(detect, (core_y, core_x), (h, w), config, grids,
                                                             transform, n)
                rasters = _rasters(found, config)
                if first is None:  # the probability's grid and attributes, not its values: held to the end
                    first = (_template(aligned, found.prob), found.kept, found.footprints.attrs)
                    for key, (raster, dtype, nodata, tags) in rasters.items():
                        writers[key] = files.enter_context(_writer(aligned, raster, out / OUTPUTS[key], dtype,
                                                                   nodata, tags))
                core = (slice(core_y[0] - outer_y[0], core_y[1] - outer_y[0]),
                        slice(core_x[0] - outer_x[0], core_x[1] - outer_x[0]))
                for key, (raster, *_rest) in rasters.items():
                    writers[key](raster.values[core], core_y[0], core_x[0])
                filled.append(filled_counts(found.filled, aligned["time"].values, core))
                keep = in_core(found.footprints, transform, (core_y, core_x))
                ids = found.footprints["footprint_id"].astype(str)
                ours = ids.isin(found.footprints.attrs.get("rebuild_ids", ())).to_numpy()  # the rebuilds
                frames.append(found.footprints[keep].assign(**{CUT: cut[keep], BLOCK: n, REBUILD: ours[keep]}))
                if "rebuild_ids" in found.footprints.attrs:
                    rebuilt = 0  # counted once joined
                if found.dropped_rows is not None and len(found.dropped_rows):  # those in its core, as it keeps
                    gone = found.dropped_rows.geometry.values
                    dropped += [(g, n) for g in gone[in_core(found.dropped_rows, transform, (core_y, core_x))]]
                del found, rasters
                gc.collect()  # a block's arrays sit in reference cycles: freed now, not blocks later
            clock.block = ""
    finally:
        SCENE_STATS.reset(token)
    both = pd.concat(frames, ignore_index=True)
    both = both.sort_values("area_m2", ascending=False, kind="stable").reset_index(drop=True)
    joined = join_cut(gpd.GeoDataFrame(both, geometry="geometry", crs=frames[0].crs), previous, config.vectorize)
    if rebuilt is not None:  # the rebuilds the blocks kept, a rebuild's pieces joined once
        rebuilt = int(joined[REBUILD].sum())
    footprints = unique_ids(joined.drop(columns=[BLOCK, REBUILD]), previous)
    footprints = _said_cut(footprints, config)
    # a structure dropped in pieces by neighbouring blocks (each cut) is one
    unconfirmed = len(set(structures(np.array([g for g, _ in dropped], dtype=object),
                                     np.array([b for _, b in dropped], dtype=np.int64)).tolist()))
    footprints.attrs = {**first[2], "unconfirmed_across_seasons": unconfirmed, "blocks": len(blocks)}
    footprints.attrs.pop("rebuild_ids", None)
    if rebuilt is not None:
        footprints.attrs["rebuilds"] = rebuilt
    carried = carried_ids(footprints, previous)
    return Blocked(first[0], footprints, first[1], carried, unconfirmed, set(writers), filled)


def _held_whole(detect: Callable[[Span, Span], Found], core: tuple[Span, Span], shape: tuple[int, int],
                config: PipelineConfig, grids: list[tuple[int, int]], transform: Any,
                n: int) -> tuple[Found, tuple[Span, Span], np.ndarray]:
    """:func:`find` on the block of ``core``, read again, larger, while a footprint over the core
    (kept, dropped as unconfirmed, or another core's) reaches the edge of the pixels it holds as the
    whole scene's (``halo_px`` around the core at first, and as far past it as every window read
    there is the whole scene's: :func:`held_region`): a structure larger than the halo is then
    traced, and checked, from the whole scene's probability, as the whole scene's run traces it.
    So it is for what the block judged that left no footprint (:func:`_judged`): a structure it
    rejected cut may be kept whole, by this core.  The block grows at most to ``GROW_CAP`` times
    ``block_px + halo_px`` a side; the footprints still cut there are marked (the third value, over
    ``found.footprints``)."""
    halo, block = config.run.halo_px, config.run.block_px
    (cy0, cy1), (cx0, cx1) = core
    region = ((max(0, cy0 - halo), min(shape[0], cy1 + halo)), (max(0, cx0 - halo), min(shape[1], cx1 + halo)))
    margin = EDGE_PX + config.vectorize.opening_px + config.vectorize.closing_px
    while True:
        outer = (region_outer(*region[0], shape[0], grids), region_outer(*region[1], shape[1], grids))
        # the pixels whose windows are all the whole scene's: the region and what the block reads past it
        region = (held_region(*region[0], shape[0], grids), held_region(*region[1], shape[1], grids))
        found = detect(*outer)
        rows = [found.footprints] + ([found.dropped_rows] if found.dropped_rows is not None else [])
        ends = [reaching(f, transform, core, region, shape, margin) for f in rows]
        ends += [(over_and_near(px, core, region, shape, margin), px) for px in _judged(found, config, outer)]
        if not any(e[0].any() for e in ends):
            return found, outer, np.zeros(len(found.footprints), dtype=bool)
        new_y, new_x = (grown(region[a], core[a], _ends(ends, a, region[a], shape[a], margin), shape[a],
                              max(halo, 64, (region[a][1] - region[a][0]) // 2), int(GROW_CAP * (block + halo)))
                        for a in (0, 1))
        new = (new_y, new_x)
        if new == region:  # at the cap: the footprints still cut are said to be
            return found, outer, ends[0][0]
        log.info("block %d: %d footprint(s), blob(s) or presence-check object(s) over the core reach past the "
                 "%dx%d px held whole: read again with rows %d-%d, columns %d-%d", n,
                 sum(int(e[0].sum()) for e in ends), region[1][1] - region[1][0], region[0][1] - region[0][0],
                 *new[0], *new[1])
        region = new
        del found, rows
        gc.collect()


def reaching(footprints: gpd.GeoDataFrame, transform: Any, core: tuple[Span, Span], region: tuple[Span, Span],
             shape: tuple[int, int], margin: int) -> tuple[np.ndarray, np.ndarray]:
    """Which ``footprints`` touch ``core``'s pixels and come within ``margin`` pixels of ``region``'s
    edge where it is not the scene's (cut there, or traced from a probability that may not be the
    whole scene's), and the pixel bounds ``(row0, row1, col0, col1)`` of each, shape ``(n, 4)``."""
    import shapely

    geoms = np.asarray(footprints.geometry.values)
    if not len(geoms):
        return np.zeros(0, dtype=bool), np.zeros((0, 4))
    (r0, r1), (c0, c1) = core
    corners = [transform * (c, r) for r, c in ((r0, c0), (r0, c1), (r1, c1), (r1, c0))]
    over = shapely.intersects(geoms, shapely.Polygon(corners))
    b = shapely.bounds(geoms)
    inv = ~transform
    cols, rows = zip(*(inv * (b[:, i], b[:, j]) for i, j in ((0, 1), (0, 3), (2, 1), (2, 3))), strict=True)
    px = np.stack([np.min(rows, axis=0), np.max(rows, axis=0), np.min(cols, axis=0), np.max(cols, axis=0)], axis=1)
    return np.asarray(over & over_and_near(px, core, region, shape, margin), dtype=bool), px


def _judged(found: Found, config: PipelineConfig, outer: tuple[Span, Span]) -> list[np.ndarray]:
    """The scene's pixel bounds of what the block judged beside its footprints, and may have judged
    on a cut part (:mod:`changedetect._block_reach`): the blobs its footprints are traced from
    (``min_presence``'s drops too) and the objects its presence check examined, confirmed or not."""
    offset = np.array([outer[0][0], outer[0][0], outer[1][0], outer[1][0]], dtype=float)
    judged = [] if found.prob is None else [blob_bounds(found.prob, config.vectorize)]
    if found.examined is not None:
        judged.append(found.examined)
    return [px + offset for px in judged]


def _ends(ends: list[tuple[np.ndarray, np.ndarray]], axis: int, region: Span, size: int,
          margin: int) -> tuple[float | None, float | None]:
    """The least and greatest pixel along ``axis`` (0 rows, 1 columns) of the footprints that reach
    ``region``'s edge (:func:`reaching`), None for an end of the region none of them reaches."""
    px = np.concatenate([p[m] for m, p in ends])[:, 2 * axis : 2 * axis + 2]
    lo = float(px[:, 0].min()) if region[0] > 0 and (px[:, 0] < region[0] + margin).any() else None
    hi = float(px[:, 1].max()) if region[1] < size and (px[:, 1] > region[1] - margin).any() else None
    return lo, hi


def _said_cut(footprints: gpd.GeoDataFrame, config: PipelineConfig) -> gpd.GeoDataFrame:
    """One WARNING naming the footprints still cut by a block's edge, marked in ``CUT``; the
    column is dropped when there is none (the whole scene's columns)."""
    cut = footprints[CUT].astype(bool)
    if not cut.any():
        return footprints.drop(columns=CUT)
    ids = footprints.loc[cut, "footprint_id"].astype(str).tolist()
    log.warning("%d footprint(s) larger than a block grown to %d px a side could hold are cut at its edge, "
                "each joined from the pieces of the blocks that hold one: their outline, area and presence "
                "check may differ from the whole scene's (%s; column %s "
                "marks them). Give [run] block_px and halo_px more than the structure's side in pixels, "
                "or run the scene whole.", len(ids), int(GROW_CAP * (config.run.block_px + config.run.halo_px)),
                ", ".join(ids), CUT)
    return footprints.assign(**{CUT: cut})


def _rasters(found: Any, config: PipelineConfig) -> dict[str, tuple[xr.DataArray, str, float | None, Any]]:
    """The block's rasters to write, as the whole scene's path writes them."""
    out: dict[str, tuple[xr.DataArray, str, float | None, Any]] = {"probability": (found.prob, "float32", None, None)}
    if found.same_sun is not None:
        out["same_season"] = (found.same_sun, "uint8", 255, {"PAIR": found.same_sun.attrs["pair"]})
    if found.first_seen is not None and config.output.first_seen:
        out["first_seen"] = (days_raster(found.first_seen), "float32", None, None)
    return out


def _writer(aligned: xr.DataArray, like: xr.DataArray, path: Path, dtype: Any, nodata: float | None,
            tags: Any) -> Any:
    from changedetect.io.raster import cog_windows

    return cog_windows(_template(aligned, like), path, dtype=dtype, nodata=nodata, overwrite=True, tags=tags)


__all__ = ["CUT", "Blocked", "SceneStats", "in_core", "is_blocked", "reaching", "run_blocks", "spans", "unique_ids"]
