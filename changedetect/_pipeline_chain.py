"""The stages of :func:`changedetect.pipeline.run` in order (private): co-register, detect,
vectorise, match, write and report into the staging folder, timed by a :class:`Clock`."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from changedetect._pipeline_output import OUTPUTS
from changedetect._pipeline_steps import (
    days_raster,
    drop_unconfirmed,
    fill_first_seen,
    hold,
    pair_indices,
    presence_rasters,
    report_info,
    rgb8,
    same_season_decisions,
    segmenter_info,
    with_addresses,
    with_rebuilds,
)
from changedetect._state import write_text_atomic
from changedetect.config import PipelineConfig
from changedetect.errors import ConfigError
from changedetect.presence import DatePresence

if TYPE_CHECKING:
    import geopandas as gpd
    import numpy as np
    import xarray as xr

log = logging.getLogger("changedetect.pipeline")  # the stages' lines, as before the split

STAGES = ("open", "coregister", "detect", "vectorize", "match", "write", "report")


class Clock:
    """Stage timings and an optional progress bar over the stages."""

    def __init__(self, progress: bool) -> None:
        self.timings: dict[str, float] = {}
        self.bar: Any = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=len(STAGES), desc="run", unit="stage", position=0, leave=True)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.bar is not None:
            self.bar.set_description(f"run: {name}")
        log.info("stage %s", name)
        t0 = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - t0
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.set_description("run: done")
            self.bar.close()


def chain(stack: xr.DataArray, register: gpd.GeoDataFrame, out: Path, config: PipelineConfig,
          models: tuple[Any, Any], clock: Clock, progress: bool, previous: gpd.GeoDataFrame | None,
          register_to: str | None = None, pairs: Sequence[tuple[str, str]] | None = None,
          mask_pairs: Sequence[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The stages; returns the in-memory results the summary needs."""
    from changedetect import coregister as coreg_mod
    from changedetect import detect as detect_mod
    from changedetect import match as match_mod
    from changedetect import vectorize as vec_mod
    from changedetect._detect_engine import _threshold as detect_threshold
    from changedetect._rebuilds import rebuilds
    from changedetect.io import write_cog
    from changedetect.io.vectors import write_vector
    from changedetect.report import violations_qml

    loaded, segmenter = models
    with clock.stage("coregister"):
        aligned, creport = coreg_mod.coregister(stack, config=config.coregister, progress=progress)
        aligned = hold(aligned)
        if register_to is not None:  # a reference for the grid only, unless a pair compares it
            needed = {d for pair in [*(pairs or ()), *(mask_pairs or ())] for d in pair}
            keep = [str(t)[:10] != register_to or str(t)[:10] in needed for t in aligned["time"].values]
            aligned = aligned.isel(time=[i for i, k in enumerate(keep) if k])
            if aligned.sizes["time"] < 2:
                raise ConfigError(f"register_to={register_to!r}: the reference date is used for "
                                  "registration only; give two more dates to compare")
        write_text_atomic(out / OUTPUTS["coregistration"],
                          json.dumps(creport.to_dict(), indent=1, default=str, ensure_ascii=False))
    first_seen = rebuilt = events = same_sun = None
    unmasked: dict[tuple[int, int], np.ndarray] | None = None
    dropped = 0
    with clock.stage("detect"):
        index, masks = pair_indices(aligned, pairs), pair_indices(aligned, mask_pairs or None)
        if index is not None and len(index) == 1:  # one explicit pair: just those two dates
            aligned, index = aligned.isel(time=list(index[0])), None
        # each date's building probability, computed once: for the presence check and change_type
        dates = None if segmenter is None else DatePresence(aligned, segmenter, config.detect, progress)
        kept = (0, aligned.sizes["time"] - 1)  # the dates the later stages keep, as indices here
        if index is None and aligned.sizes["time"] == 2:  # one pair: its probability, no first-seen raster
            prob = detect_mod.detect_each_pair(aligned, config=config.detect, progress=progress, model=loaded,
                                               pairs=[(0, 1)], segmenter=dates)[0][2]
        else:
            unmasked = {} if masks else None
            events = detect_mod.detect_each_pair(aligned, config=config.detect, progress=progress, model=loaded,
                                                 pairs=index, mask_pairs=masks, segmenter=dates, unmasked=unmasked)
            thr = detect_threshold(config.detect, loaded.card)
            prob, first_seen = detect_mod.combine_pairs(events, aligned, thr)
            stamps = aligned["time"].values  # the events' indices, before the dates kept below
            same_sun = same_season_decisions(events, unmasked, stamps, config.detect)
            if same_sun is not None:  # the nightly job checks earlier nights' violations on it
                write_cog(same_sun, out / OUTPUTS["same_season"], dtype="uint8", nodata=255, overwrite=True,
                          tags={"PAIR": same_sun.attrs["pair"]})
            if index is None and dates is not None and config.detect.rebuilds:
                rebuilt = rebuilds(events, aligned["time"].values, thr, dates, dates.pixel_m2)
            if index is not None:  # the later stages start at the first pair's BEFORE date
                kept = (index[0][0], max(j for _, j in index))
                aligned = aligned.isel(time=slice(kept[0], kept[1] + 1))
        write_cog(prob, out / OUTPUTS["probability"], overwrite=True)
        if first_seen is not None and config.output.first_seen:
            write_cog(days_raster(first_seen), out / OUTPUTS["first_seen"], overwrite=True)
    with clock.stage("vectorize"):
        presence = presence_rasters(prob, config, dates, kept)
        footprints = vec_mod.vectorize(prob, first_seen=first_seen, before=aligned.isel(time=0),
                                       after=aligned.isel(time=-1), previous=previous, presence=presence,
                                       config=config.vectorize, progress=progress)
        carried = footprints.attrs.get("carried_ids", 0) if previous is not None else None
        if events is not None and config.detect.same_sun_share is not None:
            footprints = drop_unconfirmed(footprints, events, stamps, config.detect, thr, unmasked=unmasked,
                                          dates=dates)
            dropped = int(footprints.attrs.get("unconfirmed_across_seasons", 0))
        if rebuilt is not None:  # a building put up on a lot demolished earlier: a footprint of its own
            footprints = with_rebuilds(footprints, rebuilt, previous, config.vectorize)
        footprints = fill_first_seen(footprints, aligned)
        write_vector(footprints, out / OUTPUTS["footprints"], overwrite=True)
    with clock.stage("match"):
        mconfig = config.match
        if mconfig.edge_tolerance_m is None:  # outlines traced from pixels: one pixel of positional tolerance
            from changedetect.io.geo import resolution_m
            from changedetect.types import Grid

            mconfig = replace(mconfig, edge_tolerance_m=round(resolution_m(Grid.of(prob)), 4))
        violations = with_addresses(match_mod.match(footprints, register, config=mconfig), register)
    with clock.stage("write"):
        write_vector(violations, out / OUTPUTS["violations"], overwrite=True, qgis_style=violations_qml())
        if config.output.csv:
            write_vector(violations, out / OUTPUTS["violations_csv"], overwrite=True)
        for key, at in (("before_rgb", 0), ("after_rgb", -1)):
            write_cog(rgb8(aligned.isel(time=at), config.report.rgb_bands), out / OUTPUTS[key],
                      dtype="uint8", nodata=0, overwrite=True)
    times = [str(t)[:10] for t in aligned["time"].values]
    with clock.stage("report"):
        if config.output.report:
            from changedetect.report import write_report

            write_report(violations, out_path=out / OUTPUTS["report"], before=out / OUTPUTS["before_rgb"],
                         after=out / OUTPUTS["after_rgb"], config=config.report, overwrite=True,
                         run_info=report_info(times, loaded, len(footprints)))
    skipped = {"first_seen": first_seen is None or not config.output.first_seen,
               "violations_csv": not config.output.csv, "report": not config.output.report,
               "same_season": same_sun is None}
    written = {k for k in OUTPUTS if not skipped.get(k, False)}
    return {"violations": violations, "footprints": footprints, "times": times, "prob": prob,
            "edge_tolerance_m": mconfig.edge_tolerance_m, "carried_ids": carried,
            "change_type_model": segmenter_info(segmenter), "same_sun_dropped": dropped,
            "written": written}


__all__ = ["STAGES", "Clock", "chain"]
