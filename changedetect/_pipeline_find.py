"""Detection and vectorisation of :func:`changedetect.pipeline.run` on one co-registered stack
(private): the whole scene, or one block of a larger one (:mod:`changedetect._pipeline_blocks`).
The same code for both, so that the rules (presence check, same-sun drop, rebuilds, first-seen,
previous ids) are the same; it writes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from changedetect._fill_before import clear_before_dates
from changedetect._pipeline_steps import (
    fill_first_seen,
    presence_rasters,
    same_season_decisions,
    unconfirmed_mask,
    with_rebuilds,
    without,
)
from changedetect.config import PipelineConfig
from changedetect.presence import DatePresence

if TYPE_CHECKING:
    import geopandas as gpd
    import numpy as np
    import xarray as xr

    from changedetect._pipeline_chain import Clock


@dataclass
class Found:
    """What detection and vectorisation found on a stack."""

    prob: xr.DataArray
    #: the first-seen raster (datetime64), None for one pair
    first_seen: xr.DataArray | None
    #: the first masked same-season pair's decisions (:func:`same_season_decisions`), or None
    same_sun: xr.DataArray | None
    footprints: gpd.GeoDataFrame
    #: the dates the later stages keep: indices into the stack given
    kept: tuple[int, int]
    #: footprints that kept a previous footprint's id (None without previous footprints)
    carried: int | None
    #: the footprints dropped as not confirmed under the same sun (a block counts those in its core)
    dropped_rows: gpd.GeoDataFrame | None = None
    #: each consecutive pair's BEFORE pixels filled from earlier dates (``detect_each_pair(filled=)``),
    #: as indices into the stack given; empty when none was filled or filling is off
    filled: dict[tuple[int, int], np.ndarray | None] = field(default_factory=dict)
    #: ``find(examine=True)`` (a block's): the ``(n, 4)`` pixel bounds ``(row0, row1, col0, col1)`` of
    #: every object the presence check examined, confirmed or not (:class:`changedetect._block_reach.Watched`)
    examined: np.ndarray | None = None

    @property
    def dropped(self) -> int:
        """How many footprints were dropped as not confirmed under the same sun."""
        return 0 if self.dropped_rows is None else len(self.dropped_rows)


def find(aligned: xr.DataArray, index: list[tuple[int, int]] | None, masks: list[tuple[int, int]] | None,
         config: PipelineConfig, models: tuple[Any, Any], clock: Clock, progress: bool,
         previous: gpd.GeoDataFrame | None, fill_from: list[int] | None = None, *, examine: bool = False) -> Found:
    """Detect on ``aligned``'s pairs (``index``, None: the series' own; ``masks``: mask pairs, as
    indices; ``fill_from``: the dates a consecutive pair's BEFORE may be filled from, None: every
    earlier one) and vectorise, in ``clock``'s stages ``detect`` and ``vectorize``.  ``examine``:
    keep the bounds of the objects the presence check examined (``Found.examined``: a block's)."""
    from changedetect import detect as detect_mod
    from changedetect import vectorize as vec_mod
    from changedetect._block_reach import Watched
    from changedetect._detect_engine import _threshold as detect_threshold
    from changedetect._rebuilds import rebuilds

    loaded, segmenter = models
    first_seen = rebuilt = events = same_sun = None
    unmasked: dict[tuple[int, int], np.ndarray] | None = None
    filled: dict[tuple[int, int], np.ndarray | None] = {}
    with clock.stage("detect"):
        # each date's building probability, computed once: for the presence check and change_type
        # (sharing `filled`: on a pixel whose BEFORE was filled, the check reads the clear view's date)
        kind = Watched if examine else DatePresence
        dates = None if segmenter is None else kind(aligned, segmenter, config.detect, progress, filled=filled)
        kept = (0, aligned.sizes["time"] - 1)  # the dates the later stages keep, as indices here
        if index is None and aligned.sizes["time"] == 2:  # one pair: its probability, no first-seen raster
            prob = detect_mod.detect_each_pair(aligned, config=config.detect, progress=progress, model=loaded,
                                               pairs=[(0, 1)], segmenter=dates)[0][2]
        else:
            unmasked = {} if masks else None
            events = detect_mod.detect_each_pair(aligned, config=config.detect, progress=progress, model=loaded,
                                                 pairs=index, mask_pairs=masks, segmenter=dates, unmasked=unmasked,
                                                 filled=filled, fill_from=fill_from)
            thr = detect_threshold(config.detect, loaded.card)
            prob, first_seen = detect_mod.combine_pairs(events, aligned, thr)
            stamps = aligned["time"].values  # the events' indices, before the dates kept below
            same_sun = same_season_decisions(events, unmasked, stamps, config.detect)
            if index is None and dates is not None and config.detect.rebuilds:
                rebuilt = rebuilds(events, aligned["time"].values, thr, dates, dates.pixel_m2)
            if index is not None:  # the later stages start at the first pair's BEFORE date
                kept = (index[0][0], max(j for _, j in index))
    every, aligned = aligned, aligned.isel(time=slice(kept[0], kept[1] + 1))  # (filled's indices: every's)
    dropped_rows = None
    with clock.stage("vectorize"):
        presence = presence_rasters(prob, config, dates, kept)
        footprints = vec_mod.vectorize(prob, first_seen=first_seen, before=_clear_first(every, kept[0], filled),
                                       after=aligned.isel(time=-1), previous=previous, presence=presence,
                                       config=config.vectorize, progress=progress)
        if events is not None and config.detect.same_sun_share is not None:
            drop = unconfirmed_mask(footprints, events, stamps, config.detect, thr, unmasked=unmasked, dates=dates)
            dropped_rows = footprints[drop]
            footprints = without(footprints, drop)
        if rebuilt is not None:  # a building put up on a lot demolished earlier: a footprint of its own
            footprints = with_rebuilds(footprints, rebuilt, previous, config.vectorize)
        # the pairs compared, as indices into the dates kept (one before the first kept: left out)
        compared = None if index is None else [(i - kept[0], j - kept[0]) for i, j in index if i >= kept[0]]
        footprints = fill_first_seen(footprints, aligned, compared)
        if filled:  # found where the pair's BEFORE was cloudy: the last image without it is the clear view's
            footprints = clear_before_dates(footprints, filled, every)
    return Found(prob, first_seen, same_sun, footprints, kept, carried_ids(footprints, previous), dropped_rows,
                 filled, dates.bounds() if isinstance(dates, Watched) else None)


def _clear_first(every: xr.DataArray, first: int, filled: dict[tuple[int, int], np.ndarray | None]) -> xr.DataArray:
    """Date ``first`` of ``every`` as the pairs from it compared it: filled from the last clear view
    where they filled it (a nightly pair's cloudy BEFORE), so that ``change_type`` without a
    segmenter reads the lot the network saw, not the cloud's no data."""
    from changedetect._fill_before import filled_image

    before = every.isel(time=first)
    source = next((s for (i, _), s in filled.items() if i == first and s is not None), None)
    return before if source is None else filled_image(every, before, source)


def carried_ids(footprints: gpd.GeoDataFrame, previous: gpd.GeoDataFrame | None) -> int | None:
    """How many of the final ``footprints`` (after the same-sun drop, with the rebuilds) kept a
    ``previous`` footprint's id; None without previous footprints."""
    if previous is None:
        return None
    return int(footprints["footprint_id"].astype(str).isin(set(previous["footprint_id"].astype(str))).sum())


__all__ = ["Found", "carried_ids", "find"]
