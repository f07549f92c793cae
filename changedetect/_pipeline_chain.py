"""The stages of :func:`changedetect.pipeline.run` in order (private): co-register, detect,
vectorise, match, write and report into the staging folder, timed by a :class:`Clock`."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from changedetect._pipeline_bands import chain_bands
from changedetect._pipeline_output import LIST_KEYS, OUTPUTS, output_names
from changedetect._pipeline_steps import (
    days_raster,
    hold,
    pair_indices,
    report_info,
    rgb8,
    segmenter_info,
    with_addresses,
)
from changedetect._state import write_text_atomic
from changedetect.config import PipelineConfig
from changedetect.errors import ConfigError

if TYPE_CHECKING:
    import geopandas as gpd
    import xarray as xr

log = logging.getLogger("changedetect.pipeline")  # the stages' lines, as before the split

STAGES = ("open", "coregister", "detect", "vectorize", "match", "write", "report")


class Clock:
    """Stage timings and an optional progress bar over the stages."""

    def __init__(self, progress: bool) -> None:
        self.timings: dict[str, float] = {}
        #: " (block i of n)" while a blocked run is in one of its blocks (in the bar and the log)
        self.block = ""
        self.bar: Any = None
        self.current = ""  # the stage entered last
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=len(STAGES), desc="run", unit="stage", position=0, leave=True)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time stage ``name`` (a stage entered again, as each block enters detect: the times add up)."""
        if self.bar is not None:
            self.bar.set_description(f"run: {name}{self.block}")
        log.info("stage %s%s", name, self.block)
        self.current = name
        t0 = time.perf_counter()
        yield
        again = name in self.timings
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0
        if self.bar is not None and not again:
            self.bar.update(1)

    def close(self, failed: bool = False) -> None:
        """End the bar: ``run: done``, or where a failed run stopped (its error is printed below)."""
        if self.bar is not None:
            self.bar.set_description(f"run: stopped in {self.current or 'setup'}" if failed else "run: done")
            self.bar.close()


def _fills(pair: tuple[int, int], sources: list[int] | None, config: PipelineConfig) -> bool:
    """Whether an explicit pair's BEFORE may be filled from earlier dates of the stack (a pair of
    consecutive dates, with one of ``sources`` earlier, or any earlier date when None)."""
    i, j = pair
    return config.detect.fill_masked_before and j == i + 1 and any(k < i for k in (range(i) if sources is None
                                                                                  else sources))


def chain(stack: xr.DataArray, register: gpd.GeoDataFrame, out: Path, config: PipelineConfig,
          models: tuple[Any, Any], clock: Clock, progress: bool, previous: gpd.GeoDataFrame | None,
          register_to: str | None = None, pairs: Sequence[tuple[str, str]] | None = None,
          mask_pairs: Sequence[tuple[str, str]] | None = None, spill: Path | None = None,
          clouds: Sequence[dict[str, Any]] = (), fill_from: Sequence[str] | None = None,
          parcels: gpd.GeoDataFrame | None = None, coverage: Any = None,
          warnings: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The stages; returns the in-memory results the summary needs (``spill``: a scratch folder for
    a co-registered stack larger than ``[run] hold_gib``; ``clouds``: run.json's, for the coverage;
    ``fill_from``: :func:`changedetect.pipeline.run`'s; ``parcels``: the cadastral layer, whose
    parcel each violation gets after the match; ``coverage``: each date's data, coarse, for
    :func:`changedetect.coregister.coregister`; ``warnings``: what the run warns of before any work (:func:`changedetect._model_fit.model_fit`), to which
    the match's are added (a register far from the footprints, an empty one), for the report and the summary)."""
    from changedetect import coregister as coreg_mod
    from changedetect import match as match_mod
    from changedetect._fill_before import filled_counts, filled_record
    from changedetect._pipeline_blocks import is_blocked, run_blocks
    from changedetect._pipeline_coverage import (
        compared_pairs,
        coverage_of,
        fill_orders,
        valid_masks,
    )
    from changedetect._pipeline_find import find
    from changedetect.io import write_cog
    from changedetect.io.vectors import write_vector
    from changedetect.report import violations_qml

    loaded, segmenter = models
    with clock.stage("coregister"):
        aligned, creport = coreg_mod.coregister(stack, config=config.coregister, progress=progress,
                                               coverage=coverage)
        if register_to is not None:  # a reference for the grid only, unless a pair compares it
            needed = {d for pair in [*(pairs or ()), *(mask_pairs or ())] for d in pair} | set(fill_from or ())
            keep = [str(t)[:10] != register_to or str(t)[:10] in needed for t in aligned["time"].values]
            aligned = aligned.isel(time=[i for i, k in enumerate(keep) if k])
            if aligned.sizes["time"] < 2:
                raise ConfigError(f"register_to={register_to!r}: the reference date is used for "
                                  "registration only; give two more dates to compare")
        read = [str(b) for b in aligned["band"].values]
        used = chain_bands(read, [m.card for m in models if m is not None], config.report.rgb_bands)
        if used is not None and len(used) < len(read):  # measured on every band, warped on these only
            aligned = aligned.sel(band=used)
        # computed once, held or spilled: the dates compared and the bands read after (inf: always held)
        aligned = hold(aligned, limit=config.run.hold_gib * 2**30, spill=spill)
        unregistered = unregistered_dates(creport, [str(t)[:10] for t in aligned["time"].values])
        write_text_atomic(out / OUTPUTS["coregistration"],
                          json.dumps(creport.to_dict(), indent=1, default=str, ensure_ascii=False))
    index, masks = pair_indices(aligned, pairs), pair_indices(aligned, mask_pairs or None)
    days = [str(t)[:10] for t in aligned["time"].values]
    sources = None if fill_from is None else [days.index(d) for d in fill_from if d in days]
    if index is not None and len(index) == 1 and not _fills(index[0], sources, config):
        aligned, index = aligned.isel(time=list(index[0])), None  # one explicit pair: just those two dates
    compared = compared_pairs(aligned, index, config.detect.season_days)
    compared_days = [str(t)[:10] for t in aligned["time"].values]
    # before the dates are cut: the compared dates', and those a consecutive pair's BEFORE may be filled from
    fillable = [{"before": compared_days[i], "after": compared_days[j]} for i, j in compared
                if config.detect.fill_masked_before and j == i + 1 and i > 0]
    may_fill = fill_orders(compared_days, compared, fillable, sources)
    valid = valid_masks(aligned, [d for pair in compared for d in pair] + [k for o in may_fill.values() for k in o])
    written_rasters: set[str] = set()
    if is_blocked(aligned, config):  # a scene larger than one block: memory bounded by the block
        blocked = run_blocks(aligned, index, masks, config, models, clock, progress, previous, out, sources)
        prob, footprints, kept = blocked.prob, blocked.footprints, blocked.kept
        carried, dropped, written_rasters = blocked.carried, blocked.dropped, blocked.written
        filled = blocked.filled
    else:
        found = find(aligned, index, masks, config, models, clock, progress, previous, sources)
        prob, footprints, kept, carried, dropped = (found.prob, found.footprints, found.kept, found.carried,
                                                    found.dropped)
        filled = [filled_counts(found.filled, aligned["time"].values)]
        with clock.stage("detect"):
            if found.same_sun is not None:  # the nightly job checks earlier nights' violations on it
                write_cog(found.same_sun, out / OUTPUTS["same_season"], dtype="uint8", nodata=255,
                          overwrite=True, tags={"PAIR": found.same_sun.attrs["pair"]})
                written_rasters.add("same_season")
            write_cog(prob, out / OUTPUTS["probability"], overwrite=True)
            if found.first_seen is not None and config.output.first_seen:
                write_cog(days_raster(found.first_seen), out / OUTPUTS["first_seen"], overwrite=True)
                written_rasters.add("first_seen")
    aligned = aligned.isel(time=slice(kept[0], kept[1] + 1))
    with clock.stage("vectorize"):
        write_vector(footprints, out / OUTPUTS["footprints"], overwrite=True, empty_geometry_type="Polygon")
    with clock.stage("match"):
        mconfig = config.match
        if mconfig.edge_tolerance_m is None:  # outlines traced from pixels: one pixel of positional tolerance
            from changedetect.io.geo import resolution_m
            from changedetect.types import Grid

            mconfig = replace(mconfig, edge_tolerance_m=round(resolution_m(Grid.of(prob)), 4))
        with match_mod.warnings_carried():  # in run.json, the summary and the report (warnings, below)
            matched = match_mod.match(footprints, register, config=mconfig)
        warnings = [*warnings, *matched.attrs.get("warnings", [])]  # -q drops match's log lines: said in run.json
        violations = with_addresses(matched, register)
        if parcels is not None:  # the parcel each stands on: an inspector finds an unlicensed building by it
            from changedetect.parcels import with_parcels

            violations = with_parcels(violations, parcels, edge_tolerance_m=mconfig.edge_tolerance_m or 0.0)
    with clock.stage("write"):
        write_vector(violations, out / OUTPUTS["violations"], overwrite=True, qgis_style=violations_qml(),
                     empty_geometry_type="Polygon")
        lists = [LIST_KEYS[f] for f in config.output.formats]  # the GeoPackage, and the formats asked
        for key in lists[1:]:  # by extension: CSV (+ .prj, .csvt), GeoJSON (EPSG:4326), GeoParquet
            write_vector(violations, out / output_names()[key], overwrite=True)
        for key, at in (("before_rgb", 0), ("after_rgb", -1)):
            write_cog(rgb8(aligned.isel(time=at), config.report.rgb_bands), out / OUTPUTS[key],
                      dtype="uint8", nodata=0, overwrite=True)
    times = [str(t)[:10] for t in aligned["time"].values]
    coverage = _coverage(out, times)
    filled_before = filled_record(filled, int(aligned.sizes["y"]) * int(aligned.sizes["x"]))
    pairs_coverage = coverage_of(compared_days, compared, valid, clouds, {(times[0], times[-1]): coverage},
                                 fills=fill_orders(compared_days, compared, filled_before, sources))
    with clock.stage("report"):
        if config.output.report:
            from changedetect.report import write_report

            write_report(violations, out_path=out / OUTPUTS["report"], before=out / OUTPUTS["before_rgb"],
                         after=out / OUTPUTS["after_rgb"], config=config.report, overwrite=True,
                         run_info=report_info(times, loaded, len(footprints)),
                         coverage={**pairs_coverage, "clouds": list(clouds), "unregistered": unregistered,
                                   "warnings": list(warnings)})
    skipped = {"first_seen": "first_seen" not in written_rasters, "violations_csv": "violations_csv" not in lists,
               "report": not config.output.report, "same_season": "same_season" not in written_rasters}
    written = {k for k in OUTPUTS if not skipped.get(k, False)} | set(lists)
    return {"violations": violations, "footprints": footprints, "times": times, "prob": prob,
            "edge_tolerance_m": mconfig.edge_tolerance_m, "carried_ids": carried,
            "change_type_model": segmenter_info(segmenter), "same_sun_dropped": dropped,
            "written": written, "bands": {"read": read, "used": [str(b) for b in aligned["band"].values]},
            "coverage_both_dates": coverage, "coverage": pairs_coverage,
            "filled_before": filled_before, "unregistered": unregistered, "warnings": list(warnings)}


def unregistered_dates(report: Any, days: Sequence[str]) -> list[dict[str, str]]:
    """The compared ``days`` that co-registration could not register (status ``unreliable``: no shift
    applied), each ``{"date", "reference", "reason"}``, for ``run.json``, the summary, the report and the
    nightly's warnings.  Such a date is compared as it lies: 15 m of bad georeferencing turned every
    building edge into change (55 violations, none permitted, on the sample city) while only a log line
    said so, and ``-q`` hid that."""
    return [{"date": d.date, "reference": report.reference, "reason": d.reason or "the match failed"}
            for d in report.dates if d.status == "unreliable" and d.date in days]


def _coverage(out: Path, times: list[str]) -> float:
    """The share of the scene with data on both the first and the last compared date, from the masks
    of the RGB images just written (their overviews: not the scene again); :func:`warn_coverage` says
    when it is under half."""
    from changedetect.io.raster import valid_share

    return round(valid_share([out / OUTPUTS["before_rgb"], out / OUTPUTS["after_rgb"]]), 4)


def warn_coverage(share: float, times: Sequence[str], clouds: Sequence[dict[str, Any]],
                  coverage: Mapping[str, Any] | None = None) -> None:
    """A warning when under half the scene has data on both the first and the last compared date,
    and one for each other compared pair under half (``coverage``: run.json's, its ``pairs``; each
    pair once), naming what masked it (:func:`changedetect.io.clouds.coverage_why`): the classes the
    dates' SCL masked (``clouds``: run.json's, per date) and the tiles' own no data (``coverage``'s
    ``dates``).  A pair's share is the share it compared (``compared_share``: where its BEFORE was
    filled from the last clear view, that counts; :func:`changedetect._pipeline_coverage.compared_share`),
    the first and last dates' too when they are a compared pair.  All said here: the nightly job
    leaves this function's warnings to its summary."""
    from changedetect._pipeline_coverage import compared_share, compared_words, tiles_nodata
    from changedetect.io.clouds import LOW_COVERAGE, coverage_why

    nodata = tiles_nodata(dict(coverage or {}))
    first_last = (times[0], times[-1])
    pairs = {(str(p["before"]), str(p["after"])): p for p in (coverage or {}).get("pairs") or []}
    ends = pairs.get(first_last, {"before": times[0], "after": times[-1]})
    if ends.get("filled_share"):  # compared against the last clear view where the first date had none
        share = compared_share(ends) or 0.0
    if share < LOW_COVERAGE:
        log.warning("only %.1f %% of the scene %s (the first and last compared dates): "
                    "no change can be seen elsewhere; %s", 100 * share, compared_words(ends),
                    coverage_why(clouds, first_last, tiles_nodata=nodata))
    for (before, after), pair in pairs.items():
        pair_share = compared_share(pair)
        if (before, after) != first_last and pair.get("low") and pair_share is not None:
            log.warning("only %.1f %% of the scene %s (a compared pair): no change between "
                        "them can be seen elsewhere; %s", 100 * pair_share, compared_words(pair),
                        coverage_why(clouds, (before, after), tiles_nodata=nodata))


__all__ = ["STAGES", "Clock", "chain", "unregistered_dates", "warn_coverage"]
