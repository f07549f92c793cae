"""The whole chain in one call: read, co-register, detect, vectorise, match, write, report.

:func:`run` is the one orchestrator that the ``changedetect run`` command and
the nightly job call.  It writes into one output folder::

    coregistration.json      the co-registration report
    change_probability.tif   float32 COG in [0, 1] on the aligned grid
    first_seen.tif           float32 COG, days since 1970-01-01 of the first date a pixel
                             changed (NaN: never); series of 3+ dates only
    before_rgb.tif           uint8 RGB COGs of the first and last aligned dates (for the
    after_rgb.tif            report's image chips and for GIS viewing)
    footprints.gpkg          building footprints (vectorise stage)
    violations.gpkg/.csv     one row per footprint with its status (match stage)
    report.html              the inspectors' self-contained report
    run.json                 provenance: version, model + sha256, inputs + sha256,
                             every parameter, stage timings, dates; written LAST

Every file is written atomically; an existing output folder is refused unless
``overwrite`` is given.  With ``previous`` (the footprints of an earlier run over
the same ground, or its output folder) each footprint that overlaps a previous
one well keeps its ``footprint_id`` (:func:`changedetect._vectorize_shapes.carry_ids`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from changedetect._pipeline_steps import (
    check_pairs,
    days_raster,
    drop_unconfirmed,
    fill_first_seen,
    hold,
    load_segmenter,
    pair_indices,
    presence_rasters,
    report_info,
    rgb8,
    same_season_decisions,
    segmenter_info,
    with_addresses,
    with_rebuilds,
)
from changedetect._state import sha256_file, write_text_atomic
from changedetect.config import PipelineConfig
from changedetect.errors import ConfigError, OutputExistsError
from changedetect.presence import DatePresence

if TYPE_CHECKING:
    import geopandas as gpd
    import numpy as np
    import xarray as xr

log = logging.getLogger(__name__)

#: Output file names (keys of :attr:`RunSummary.paths`).
OUTPUTS: dict[str, str] = {
    "coregistration": "coregistration.json",
    "probability": "change_probability.tif",
    "first_seen": "first_seen.tif",
    "before_rgb": "before_rgb.tif",
    "after_rgb": "after_rgb.tif",
    "footprints": "footprints.gpkg",
    "violations": "violations.gpkg",
    "violations_csv": "violations.csv",
    "report": "report.html",
    "run": "run.json",
    #: explicit pairs with a masked same-season pair only (the nightly job): that pair's decisions
    "same_season": "same_season_change.tif",
}
STAGES = ("open", "coregister", "detect", "vectorize", "match", "write", "report")
#: the rows of the register that a lenient run set aside (``[permits] strict = false``)
REJECTS = "permit_rejects.gpkg"
_STAGE_PREFIX = ".run.tmp-"


@dataclass
class RunSummary:
    """What a run found and wrote."""

    out: Path
    counts: dict[str, int]
    n_footprints: int
    dates: list[str]
    model: str
    model_sha256: str
    paths: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    #: footprint ids carried over from ``previous`` (None: no previous footprints given)
    carried_ids: int | None = None
    #: footprints first seen across seasons and dropped: the same-season pair did not see them
    same_sun_dropped: int = 0

    @property
    def n_violations(self) -> int:
        """Footprints whose status is not ``permitted``."""
        return sum(n for s, n in self.counts.items() if s != "permitted")

    def __repr__(self) -> str:
        """What a notebook shows: the counts, dates, model and folder (every field: :meth:`to_dict`)."""
        counts = ", ".join(f"{s} {n}" for s, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])))
        dates = f"{self.dates[0]} .. {self.dates[-1]} ({len(self.dates)} dates)" if self.dates else "no dates"
        return (f"RunSummary(out='{self.out}', {self.n_footprints} footprints, {self.n_violations} violations"
                f"{': ' + counts if counts else ''}; {dates}; model {self.model} {self.model_sha256[:12]}; "
                f"{sum(self.timings.values()):.1f} s)")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "out": str(self.out), "counts": dict(self.counts), "n_footprints": self.n_footprints,
            "n_violations": self.n_violations, "dates": list(self.dates), "model": self.model,
            "model_sha256": self.model_sha256, "paths": {k: str(v) for k, v in self.paths.items()},
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "carried_ids": self.carried_ids, "same_sun_dropped": self.same_sun_dropped,
        }


class _Clock:
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


def check_out(out: Path, overwrite: bool, *, hint: str = "overwrite=True (--overwrite)") -> None:
    """OutputExistsError when ``out`` is a file, or already holds a run and ``overwrite`` is off
    (``hint`` names how to pass it: the command line says ``--overwrite``)."""
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"output '{out}' is a file; give a folder for the run's outputs")
    try:
        held = out.is_dir() and any(p for p in out.iterdir() if p.name in OUTPUTS.values())
    except OSError as exc:  # a folder that cannot be listed
        from changedetect.errors import OutputLocationError

        raise OutputLocationError(f"cannot read the output folder '{out}': {exc.strerror or exc}; choose "
                                  "another folder") from None
    if held and not overwrite:
        raise OutputExistsError(f"output folder '{out}' already holds a run; pass {hint} to replace it, "
                                "or choose another folder")


def run(
    tiles: str | Path | Sequence[str | Path],
    *,
    permits: str | Path,
    out: str | Path,
    config: PipelineConfig | None = None,
    overwrite: bool = False,
    progress: bool = False,
    previous: str | Path | gpd.GeoDataFrame | None = None,
    register_to: str | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    mask_pairs: Sequence[tuple[str, str]] | None = None,
) -> RunSummary:
    """Run the whole chain on a stack of tiles and a permit register.

    Parameters
    ----------
    tiles
        Anything :func:`changedetect.io.open_series` reads (folder, manifest, list of files, ...).
        Two dates: one pair; three or more: the series (highest change, first-seen date).
    permits
        A permit register file or ``postgresql://`` URL (:func:`changedetect.permits.load_register`).
    out
        Output folder (created, with any missing parents; a failed run removes again the folders
        it made and leaves an existing one as it was); see the module docstring for its files.
    config
        Every parameter; default :class:`~changedetect.config.PipelineConfig`.
    overwrite
        Replace the outputs of an earlier run in ``out``.
    progress
        Progress bars (stages, and detection windows).
    previous
        The footprints of an earlier run over the same ground: a GeoDataFrame, a
        footprints file, or an earlier run's output folder (its ``footprints.gpkg``).
        Footprints that overlap one of them well keep its ``footprint_id``.
    register_to
        ISO date of one date of ``tiles`` used only as the co-registration reference: every
        other date is aligned onto it, then it is dropped before detection unless a pair of
        ``pairs`` or ``mask_pairs`` compares it (the nightly job registers every pair of an area
        onto the area's pinned reference acquisition, so that all nights' footprints share one
        grid).
    pairs
        ISO ``(before, after)`` dates of the pairs to compare, in order of precedence for
        ``first_seen`` (default: :func:`changedetect.detect.series_pairs`, or the one pair of
        two dates).  The stages after detection (change type, report images) start at the
        first pair's BEFORE date, whose grid the run keeps: the nightly job compares
        ``(previous, new)`` and a same-season partner ``(partner, new)``.
    mask_pairs
        ISO pairs whose changes the pairs after the first do not count (the nightly job
        masks ``(partner, previous)``: earlier nights' news); needs ``pairs``.

    Raises
    ------
    OutputExistsError, ModelError, TileReadError, PermitSchemaError, ...
        Bad input, with a message naming the file and what to do.
    """
    from geopandas import GeoDataFrame

    if isinstance(permits, GeoDataFrame):  # run reads the register itself: run.json records its checksum
        raise TypeError("run reads the permit register itself (run.json records its checksum): give its file or "
                        "postgresql:// URL; for permits already in memory call the stages, "
                        "match(footprints, permits)")
    config = config or PipelineConfig()
    out = Path(out)
    check_out(out, overwrite)
    with removing_new_folders(out):  # a failed run leaves no folder it made (OUT, its parents) behind
        return _run_in(out, tiles, permits, config, progress, previous, register_to, pairs, mask_pairs)


@contextmanager
def removing_new_folders(out: Path) -> Iterator[None]:
    """Should the body raise, remove again the folders on the way to ``out`` (``out`` included) that
    did not exist on entry and are empty: a failed run (or the CLI's write check before it) leaves no
    new folder behind; a folder that existed before, or holds anything, stays."""
    missing = [p for p in (out, *out.parents) if not p.exists()]  # deepest first
    try:
        yield
    except BaseException:
        for folder in missing:
            try:
                if folder.is_dir():
                    folder.rmdir()  # OSError when not empty: then neither are its parents
            except OSError:
                break
        raise


def _run_in(out: Path, tiles: str | Path | Sequence[str | Path], permits: str | Path, config: PipelineConfig,
            progress: bool, previous: str | Path | gpd.GeoDataFrame | None,
            register_to: str | None, pairs: Sequence[tuple[str, str]] | None,
            mask_pairs: Sequence[tuple[str, str]] | None) -> RunSummary:
    """:func:`run` once its arguments are checked: make ``out``, stage, publish."""
    from changedetect.io import open_series
    from changedetect.weights import load_model

    out.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    clock = _Clock(progress)
    # every output is written to a staging folder inside OUT (the same filesystem, whatever OUT is
    # mounted on) and moved into OUT at the end, run.json last: an interrupted or failed run leaves
    # OUT as it was, an earlier run's outputs included
    for stale in out.glob(f"{_STAGE_PREFIX}*"):  # a killed run's
        shutil.rmtree(stale, ignore_errors=True)
    stage = Path(tempfile.mkdtemp(prefix=_STAGE_PREFIX, dir=out))
    try:
        loaded = load_model(config.detect.model, device=config.detect.device)  # fail fast: ModelError
        segmenter = load_segmenter(config, loaded)  # the building segmenter for change_type: before any work
        with clock.stage("open"):
            series = open_series(tiles if isinstance(tiles, str | Path) else [Path(t) for t in tiles])
            check_pairs(pairs, mask_pairs, [sc.date.isoformat() for sc in series.scenes])  # before any work
            # a registration-only reference must not impose its grid: the first compared date's
            # (with pairs, the first pair's BEFORE date's)
            grids = ([sc.grid for sc in series.scenes if sc.date.isoformat() == pairs[0][0]] if pairs
                     else [sc.grid for sc in series.scenes if sc.date.isoformat() != register_to])
            stack = series.to_stack(grid=grids[0] if (register_to is not None or pairs) and grids else None)
            _check_lonlat(stack, series.source)  # footprint ids, areas, the CSV and GeoJSON need WGS 84
            register = config.permits.load(permits, rejects_path=stage / REJECTS)
            before, before_info = _load_previous(previous)
        if register_to is not None:
            config = replace(config, coregister=replace(config.coregister, reference=register_to))
        paths = _chain(stack, register, stage, config, (loaded, segmenter), clock, progress, before, register_to,
                       pairs, mask_pairs)
        summary = _finish(series, stack, permits, stage, config, loaded, clock, paths, started, before_info)
        _publish(stage, out)
    finally:
        clock.close()
        shutil.rmtree(stage, ignore_errors=True)
    return replace(summary, out=out, paths={k: out / p.name for k, p in summary.paths.items()})


def _publish(stage: Path, out: Path) -> None:
    """Move a finished run's outputs from ``stage`` into ``out``: the old run.json first goes (a
    crash in between leaves no run.json: an unfinished folder), the outputs an earlier run left
    and this one did not write go, and the new run.json comes last."""
    (out / OUTPUTS["run"]).unlink(missing_ok=True)
    written = {p.name for p in stage.iterdir()}
    for name in sorted(written - {OUTPUTS["run"]}):
        os.replace(stage / name, out / name)
    for name in {*OUTPUTS.values(), REJECTS} - written:  # left by an earlier run in this folder (overwrite)
        (out / name).unlink(missing_ok=True)
    os.replace(stage / OUTPUTS["run"], out / OUTPUTS["run"])


def _load_previous(previous: str | Path | gpd.GeoDataFrame | None) -> tuple[gpd.GeoDataFrame | None,
                                                                           dict[str, Any] | None]:
    """The previous footprints and their provenance (read before any output is written)."""
    if previous is None:
        return None, None
    if not isinstance(previous, str | Path):
        from changedetect._vectorize_shapes import check_previous

        frame = check_previous(previous, "the previous footprints given to run()")
        return frame, {"path": None, "sha256": None, "footprints": len(frame)}
    from changedetect.vectorize import load_previous

    path = Path(previous) / OUTPUTS["footprints"] if Path(previous).is_dir() else Path(previous)
    frame = load_previous(previous)
    return frame, {"path": str(path), "sha256": sha256_file(path), "footprints": len(frame)}


def _chain(stack: xr.DataArray, register: gpd.GeoDataFrame, out: Path, config: PipelineConfig,
           models: tuple[Any, Any], clock: _Clock, progress: bool, previous: gpd.GeoDataFrame | None,
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


def _finish(series: Any, stack: xr.DataArray, permits: str | Path, out: Path, config: PipelineConfig,
            loaded: Any, clock: _Clock, results: dict[str, Any], started: dt.datetime,
            previous: dict[str, Any] | None) -> RunSummary:
    """Write run.json (last) and build the summary."""
    from changedetect import __version__

    violations = results["violations"]
    counts = {str(k): int(v) for k, v in violations["status"].value_counts().sort_index().items()}
    written = results["written"]
    paths = {k: out / name for k, name in OUTPUTS.items() if k in written}
    card = loaded.card
    inputs = [{"path": str(p), "sha256": sha256_file(p) if config.output.checksum_inputs else None}
              for p in series.files]
    ppath = Path(str(permits))
    prev = None if previous is None else {**previous, "carried_ids": results["carried_ids"]}
    provenance = {
        "changedetect_version": __version__,
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "model": {"name": card.name, "version": getattr(card, "version", ""), "sha256": card.sha256,
                  "path": str(getattr(loaded, "path", ""))},
        "inputs": {"tiles": inputs, "permits": {"path": _shown(permits),
                   "sha256": _register_sha256(ppath) if ppath.is_file() else None},
                   "previous_footprints": prev},
        "dates": results["times"],
        "crs": str(stack.rio.crs),
        "config": config.to_dict(),
        "effective": {"match.edge_tolerance_m": results["edge_tolerance_m"],
                      "detect.pairs": str(results["prob"].attrs.get("pairs", "/".join(results["times"][:2]))),
                      "detect.mask_pairs": results["prob"].attrs.get("mask_pairs"),
                      "vectorize.change_type_model": results["change_type_model"]},
        "timings_s": {k: round(v, 3) for k, v in clock.timings.items()},
        "counts": counts,
        "n_footprints": len(results["footprints"]),
        # footprints first seen across seasons that the same-season pair did not see (docs/detection.md)
        "same_sun_dropped": results["same_sun_dropped"],
        "outputs": {k: p.name for k, p in paths.items()},
        "report_info": report_info(results["times"], loaded, len(results["footprints"])),
    }
    write_text_atomic(out / OUTPUTS["run"], json.dumps(provenance, indent=1, ensure_ascii=False, default=str))
    return RunSummary(out=out, counts=counts, n_footprints=len(results["footprints"]), dates=results["times"],
                      model=card.name, model_sha256=card.sha256, paths=paths, timings=clock.timings,
                      carried_ids=results["carried_ids"], same_sun_dropped=results["same_sun_dropped"])


def _check_lonlat(stack: xr.DataArray, source: str) -> None:
    """GeoreferenceError when the tiles' CRS has no transformation to WGS 84 (a local site grid)."""
    from pyproj import CRS, Transformer
    from pyproj.exceptions import ProjError

    from changedetect.errors import GeoreferenceError

    crs = stack.rio.crs
    if crs is None:
        return
    try:
        Transformer.from_crs(CRS.from_user_input(crs), 4326, always_xy=True)
    except ProjError:
        name = CRS.from_user_input(crs).name
        raise GeoreferenceError(
            f"tiles '{source}' are in the local CRS '{name}', which has no transformation to WGS 84: footprint "
            "ids, areas and the CSV/GeoJSON violation lists need one; reproject the tiles to a map projection "
            "(e.g. gdalwarp -t_srs EPSG:32648 in.tif out.tif, your UTM zone or VN-2000)") from None


#: the files of a Shapefile whose content the register's checksum covers (attributes live in the .dbf)
_SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


def _register_sha256(path: Path) -> str:
    """The register file's sha256; for a Shapefile, the sha256 of its parts' (name: sha256) lines."""
    if path.suffix.lower() != ".shp":
        return sha256_file(path)
    import hashlib

    lines = [f"{p.suffix.lower()}: {sha256_file(p)}\n" for suffix in _SHAPEFILE_PARTS
             for p in [path.with_suffix(suffix), path.with_suffix(suffix.upper())] if p.is_file()]
    return hashlib.sha256("".join(dict.fromkeys(lines)).encode()).hexdigest()


def _shown(permits: str | Path) -> str:
    """The register as run.json records it: a database URL without its password."""
    from changedetect.io.registers import _safe_url

    text = str(permits)
    return _safe_url(text) if "://" in text else text


__all__ = ["OUTPUTS", "STAGES", "RunSummary", "check_out", "run"]
