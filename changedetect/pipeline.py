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
    violations.gpkg/.csv     one row per footprint with its status (match stage); the CSV
                             with ``[output] csv`` (the default), and ``.geojson`` (EPSG:4326)
                             and ``.parquet`` (GeoParquet) with ``[output] geojson`` / ``parquet``
                             (``OutputConfig.with_formats``; ``--format`` on the command line)
    report.html              the inspectors' self-contained report
    run.json                 provenance: version, model + sha256, inputs + sha256,
                             every parameter, stage timings, dates; written LAST

Every file is written atomically; an existing output folder is refused unless
``overwrite`` is given.  With ``previous`` (the footprints of an earlier run over
the same ground, or its output folder) each footprint that overlaps a previous
one well keeps its ``footprint_id`` (:func:`changedetect._vectorize_shapes.carry_ids`).
The stages themselves are in :mod:`changedetect._pipeline_chain`, the output folder's rules
(names, refusal, staging) in :mod:`changedetect._pipeline_output`.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import platform
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from changedetect._config_toml import stage_config
from changedetect._match_inputs import check_register_datum
from changedetect._pipeline_chain import STAGES, Clock, chain, warn_coverage
from changedetect._pipeline_inputs import input_record, load_parcel_layer
from changedetect._pipeline_output import (
    OUTPUTS,
    REJECTS,
    STAGE_PREFIX,
    check_apart,
    check_out,
    output_names,
    publish,
    removing_new_folders,
)
from changedetect._pipeline_steps import check_pairs, holding, load_segmenter, report_info
from changedetect._state import sha256_file, write_text_atomic
from changedetect.config import PipelineConfig
from changedetect.errors import ConfigError, TimeSeriesError

if TYPE_CHECKING:
    import geopandas as gpd
    import xarray as xr


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
    #: share of the scene with data on both the first and the last compared date (0..1)
    coverage_both_dates: float | None = None
    #: per date with a Sentinel-2 scene classification (SCL): ``date``, ``cloud_share``, ``masked_share``
    #: (clouds and the SCL's no data), ``masked_classes``, where the bands have data; ``masked_where_no_data``
    #: (what it masked where they have none), ``scl`` (its file), ``masked`` (``[run] cloud_mask``); empty without one
    clouds: list[dict[str, Any]] = field(default_factory=list)
    #: run.json's ``coverage``: ``pairs`` (each compared pair's ``coverage_both_dates`` and ``low``)
    #: and ``dates`` (``valid_share``, ``tiles_nodata_share``)
    coverage: dict[str, Any] = field(default_factory=dict)
    #: with a parcel layer (``parcels=``), of the violations: how many stand on a parcel, across parcels,
    #: and have an address only from their parcel (:func:`changedetect.parcels.parcel_counts`); else None
    parcels: dict[str, int] | None = None
    #: compared dates co-registration could not register, compared unaligned: ``date``, ``reference``,
    #: ``reason`` (run.json's ``unregistered``); their changes may be misregistration
    unregistered: list[dict[str, str]] = field(default_factory=list)
    #: what the run warns of, each ``{"kind", "message", ...}`` (run.json's ``warnings``): a model that does not
    #: suit the imagery (:func:`changedetect._model_fit.model_fit`: ``resolution``, ``panchromatic``,
    #: ``unnamed_bands``), a register with no permit near the footprints (``register_far``) or none (``register_empty``)
    warnings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_violations(self) -> int:
        """Footprints whose status is not ``permitted``."""
        return sum(n for s, n in self.counts.items() if s != "permitted")

    def __repr__(self) -> str:
        """What a notebook shows: the counts, dates, model and folder (every field: :meth:`to_dict`)."""
        counts = ", ".join(f"{s} {n}" for s, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])))
        dates = f"{self.dates[0]} .. {self.dates[-1]} ({len(self.dates)} dates)" if self.dates else "no dates"
        unaligned = (f"; NOT CO-REGISTERED: {', '.join(u['date'] for u in self.unregistered)}"
                     if self.unregistered else "")
        warned = (f"; WARNINGS: {', '.join(str(w.get('kind')) for w in self.warnings)} (.warnings)"
                  if self.warnings else "")
        return (f"RunSummary(out='{self.out}', {self.n_footprints} footprints, {self.n_violations} violations"
                f"{': ' + counts if counts else ''}; {dates}; model {self.model} {self.model_sha256[:12]}; "
                f"{sum(self.timings.values()):.1f} s{unaligned}{warned})")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "out": str(self.out), "counts": dict(self.counts), "n_footprints": self.n_footprints,
            "n_violations": self.n_violations, "dates": list(self.dates), "model": self.model,
            "model_sha256": self.model_sha256, "paths": {k: str(v) for k, v in self.paths.items()},
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
            "carried_ids": self.carried_ids, "same_sun_dropped": self.same_sun_dropped,
            "coverage_both_dates": self.coverage_both_dates, "clouds": [dict(c) for c in self.clouds],
            "coverage": dict(self.coverage), "parcels": self.parcels,
            "unregistered": [dict(u) for u in self.unregistered],
            "warnings": [dict(m) for m in self.warnings],
        }


def run(
    tiles: str | Path | Sequence[str | Path],
    *,
    permits: str | Path,
    out: str | Path,
    config: PipelineConfig | Mapping[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = False,
    previous: str | Path | gpd.GeoDataFrame | None = None,
    register_to: str | None = None,
    pairs: Sequence[tuple[str, str]] | None = None,
    mask_pairs: Sequence[tuple[str, str]] | None = None,
    fill_from: Sequence[str] | None = None,
    parcels: str | Path | None = None,
    pattern: str | None = None,
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
        Every parameter; default :class:`~changedetect.config.PipelineConfig`.  A dict of its tables
        (``{"detect": {"model": "s2-urban"}}``) is read as a TOML file's are.
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
    fill_from
        ISO dates of ``tiles`` that a pair of consecutive dates may fill its BEFORE from where it
        has no data (``[detect] fill_masked_before``; default: every earlier date of ``tiles``):
        the nightly job gives the area's dates just before BEFORE, none left out between.
    parcels
        A cadastral parcel layer file or ``postgresql://`` URL (:func:`changedetect.parcels.load_parcels`,
        read with ``config.parcels``' options): each violation gets the parcel it stands on
        (:func:`changedetect.parcels.with_parcels`), in the lists and on the report's card.
    pattern
        A regular expression finding the date in the tiles' file names (``open_series(pattern=)``: a group
        ``date``, or groups ``year``, ``month`` and ``day``); default: the first ``YYYYMMDD``/``YYYY-MM-DD``.

    Raises
    ------
    OutputExistsError, ModelError, TileReadError, PermitSchemaError, ...
        Bad input, with a message naming the file and what to do.
    """
    from geopandas import GeoDataFrame

    if isinstance(permits, GeoDataFrame) or isinstance(parcels, GeoDataFrame):  # run reads the register itself: run.json records its checksum
        raise TypeError("run reads the permit register and the parcel layer itself (run.json records their "
                        "checksums): give a file or postgresql:// URL; for frames already in memory call the "
                        "stages, match(footprints, permits) and with_parcels(violations, parcels)")
    config = PipelineConfig() if config is None else stage_config(config, PipelineConfig, call="run", table="")
    out = Path(out)
    check_out(out, overwrite)
    check_apart(out, tiles)
    with removing_new_folders(out):  # a failed run leaves no folder it made (OUT, its parents) behind
        return _run_in(out, tiles, permits, config, progress, previous, register_to, pairs, mask_pairs, fill_from,
                       parcels, pattern)


def _run_in(out: Path, tiles: str | Path | Sequence[str | Path], permits: str | Path, config: PipelineConfig,
            progress: bool, previous: str | Path | gpd.GeoDataFrame | None,
            register_to: str | None, pairs: Sequence[tuple[str, str]] | None,
            mask_pairs: Sequence[tuple[str, str]] | None, fill_from: Sequence[str] | None = None,
            parcels: str | Path | None = None, pattern: str | None = None) -> RunSummary:
    """:func:`run` once its arguments are checked: make ``out``, stage, publish."""
    from changedetect._detect_inputs import check_stack_bands, fit_measured, said_once
    from changedetect._model_fit import model_fit
    from changedetect.coregister import needs_coverage
    from changedetect.io import open_series
    from changedetect.weights import load_model

    out.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    clock = Clock(progress)
    # every output is written to a staging folder inside OUT (the same filesystem, whatever OUT is
    # mounted on) and moved into OUT at the end, run.json last: an interrupted or failed run leaves
    # OUT as it was, an earlier run's outputs included
    for stale in out.glob(f"{STAGE_PREFIX}*"):  # a killed run's
        shutil.rmtree(stale, ignore_errors=True)
    stage = Path(tempfile.mkdtemp(prefix=STAGE_PREFIX, dir=out))
    spill: Path | None = None
    done = False
    try:
        spill = _spill_folder(config, out)  # a large co-registered stack's scratch files
        loaded = load_model(config.detect.model, device=config.detect.device)  # fail fast: ModelError
        segmenter = load_segmenter(config, loaded)  # the building segmenter for change_type: before any work
        with clock.stage("open"):
            series = open_series(tiles if isinstance(tiles, str | Path) else [Path(t) for t in tiles], pattern=pattern)
            days = [sc.date.isoformat() for sc in series.scenes]
            if len(days) < 2:  # before co-registering anything (detection would refuse it after)
                raise TimeSeriesError(f"change detection needs two or more dates; '{series.source}' holds "
                                      f"{len(days)} ({', '.join(days) or 'none'}): add the tiles of another date")
            check_pairs(pairs, mask_pairs, days)  # before any work
            if set(fill_from or ()) - set(days):
                raise ConfigError(f"fill_from {list(fill_from or ())}: date(s) {sorted(set(fill_from or ()) - set(days))} "
                                  f"are not in the series ({', '.join(days)})")
            # a registration-only reference must not impose its grid: the first compared date's
            # (with pairs, the first pair's BEFORE date's)
            grids = ([sc.grid for sc in series.scenes if sc.date.isoformat() == pairs[0][0]] if pairs
                     else [sc.grid for sc in series.scenes if sc.date.isoformat() != register_to])
            grid = grids[0] if (register_to is not None or pairs) and grids else series.reference_grid()
            stack = series.to_stack(grid=grid, cloud_mask=config.run.cloud_mask)
            clouds = _clouds(series, grid, config.run.cloud_mask)
            # a grid too large to hold: where each date has data (decimated reads), so that a date
            # covering part of it is measured on its data
            coverage = series.coverage(grid) if needs_coverage(grid.height, grid.width) else None
            _check_lonlat(stack, series.source)  # footprint ids, areas, the CSV and GeoJSON need WGS 84
            check_stack_bands(stack, loaded.card, f"tiles '{series.source}'")  # before co-registering the scene
            # said once (a log line; the summary, run.json and the report), and not measured again by detection
            fit = model_fit(loaded.card, grid, series.scenes)
            register = config.permits.load(permits, rejects_path=stage / REJECTS)
            check_register_datum(register, stack.rio.crs)  # match would refuse it after the whole scene's work
            layer = load_parcel_layer(parcels, config, stack.rio.crs)  # its datum too, before any work
            before, before_info = _load_previous(previous)
        if register_to is not None:
            config = replace(config, coregister=replace(config.coregister, reference=register_to))
        # every stage's in-memory holds bounded, not the stack's only; each warning said once in the
        # run, not once per block (a blocked run detects block by block)
        with holding(config.run.hold_gib * 2**30), said_once(), fit_measured(loaded.card):
            paths = chain(stack, register, stage, config, (loaded, segmenter), clock, progress, before,
                          register_to, pairs, mask_pairs, spill=spill, clouds=clouds, fill_from=fill_from,
                          parcels=layer, coverage=coverage, warnings=fit)
        warn_coverage(paths["coverage_both_dates"], paths["times"], clouds, paths["coverage"])
        summary = _finish(series, stack, permits, stage, config, loaded, clock,
                          {**paths, "clouds": clouds},
                          started, before_info, parcels)
        publish(stage, out)
        done = True
    except OSError as exc:  # a full disk: name the output the user asked for, not its staged copy
        named = _unstaged(exc, stage, out)
        if named is None and exc.errno in (errno.ENOSPC, errno.EDQUOT) and not exc.filename:
            named = out  # a write that named no file (GDAL's): the run's folder, which the user chose
        if named is None:
            raise
        raise OSError(exc.errno, exc.strerror, str(named)) from exc
    finally:
        clock.close(failed=not done)
        shutil.rmtree(stage, ignore_errors=True)
        if spill is not None:
            shutil.rmtree(spill, ignore_errors=True)
    return replace(summary, out=out, paths={k: out / p.name for k, p in summary.paths.items()})


def _unstaged(exc: OSError, stage: Path, out: Path) -> Path | None:
    """The output in OUT that a full disk's error (``exc``) names by its copy in the staging folder, or None."""
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not exc.filename:
        return None
    try:
        return out / Path(exc.filename).resolve().relative_to(stage.resolve())
    except ValueError:  # not a staged file
        return None


def _spill_folder(config: PipelineConfig, out: Path) -> Path:
    """A new scratch folder for a co-registered stack too large to hold (``[run] spill_dir``, else
    inside OUT).  Its name carries OUT's: a killed run's (as large as its stack) is removed by the
    next run into the same OUT, as its stages are, and another OUT's run sharing ``spill_dir``
    keeps its own."""
    import hashlib

    where = Path(config.run.spill_dir).expanduser() if config.run.spill_dir else out
    prefix = f"{STAGE_PREFIX}spill-{hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:12]}-"
    try:
        for stale in where.glob(f"{prefix}*"):  # a killed run's
            shutil.rmtree(stale, ignore_errors=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=where))
    except OSError as exc:
        raise ConfigError(f"[run] spill_dir = '{where}': cannot make a scratch folder there "
                          f"({exc.strerror or exc}); give an existing folder you can write to") from None


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


def _finish(series: Any, stack: xr.DataArray, permits: str | Path, out: Path, config: PipelineConfig,
            loaded: Any, clock: Clock, results: dict[str, Any], started: dt.datetime,
            previous: dict[str, Any] | None, parcels: str | Path | None = None) -> RunSummary:
    """Write run.json (last) and build the summary."""
    from changedetect import __version__
    from changedetect.parcels import parcel_counts

    violations = results["violations"]
    counts = {str(k): int(v) for k, v in violations["status"].value_counts().sort_index().items()}
    written = results["written"]
    paths = {k: out / name for k, name in output_names().items() if k in written}
    card = loaded.card
    inputs = [{"path": str(p), "sha256": sha256_file(p) if config.output.checksum_inputs else None}
              for p in series.files]
    prev = None if previous is None else {**previous, "carried_ids": results["carried_ids"]}
    provenance = {
        "changedetect_version": __version__,
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "model": {"name": card.name, "version": getattr(card, "version", ""), "sha256": card.sha256,
                  "path": str(getattr(loaded, "path", ""))},
        "inputs": {"tiles": inputs, "permits": input_record(permits), "previous_footprints": prev,
                   # the cadastral parcel layer (--parcels), like the register; None without one
                   "parcels": None if parcels is None else input_record(parcels)},
        "dates": results["times"],
        "crs": str(stack.rio.crs),
        # co-registration is measured on every band read; the bands used are warped, held and detected on
        "bands": results["bands"],
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
        # share of the scene with data on both the first and the last compared date (docs/report.md)
        "coverage_both_dates": results["coverage_both_dates"],
        # per date with a Sentinel-2 scene classification: its cloud share and whether it was masked
        "clouds": results["clouds"],
        # per compared pair: its share with data on both dates (low: under half); per date: with data,
        # without data beyond what its SCL masked (docs/report.md)
        "coverage": results["coverage"],
        # per consecutive pair whose BEFORE could be filled from earlier dates ([detect] fill_masked_before):
        # the share of the scene filled, in all and per date it came from (docs/detection.md)
        "filled_before": results["filled_before"],
        # compared dates co-registration could not register (no shift applied): their changes may be
        # misregistration, each {"date", "reference", "reason"} (docs/coregistration.md)
        "unregistered": results["unregistered"],
        # what the run warns of: a model that does not suit the imagery, a register far away (summary.warnings)
        "warnings": results["warnings"],
        "parcels": parcel_counts(violations) if parcels is not None else None,  # of the violations
        "outputs": {k: p.name for k, p in paths.items()},
        "report_info": report_info(results["times"], loaded, len(results["footprints"])),
    }
    write_text_atomic(out / OUTPUTS["run"], json.dumps(provenance, indent=1, ensure_ascii=False, default=str))
    return RunSummary(out=out, counts=counts, n_footprints=len(results["footprints"]), dates=results["times"],
                      model=card.name, model_sha256=card.sha256, paths=paths, timings=clock.timings,
                      carried_ids=results["carried_ids"], same_sun_dropped=results["same_sun_dropped"],
                      coverage_both_dates=results["coverage_both_dates"], clouds=results["clouds"],
                      coverage=results["coverage"], parcels=provenance["parcels"],
                      unregistered=results["unregistered"], warnings=results["warnings"])


def _clouds(series: Any, grid: Any, mask: bool) -> list[dict[str, Any]]:
    """Each date's cloud share by its Sentinel-2 SCL on the run's grid (none without one), whether it
    is masked (``[run] cloud_mask``), and one warning for the dates that are mostly cloud."""
    from changedetect.io.clouds import cloud_shares, warn_cloudy

    shares = [{**c, "masked": mask} for c in cloud_shares(series, grid=grid)]
    warn_cloudy(shares, masked=mask)
    return shares


def _check_lonlat(stack: xr.DataArray, source: str) -> None:
    """GeoreferenceError when the tiles have no CRS (PNG/JPEG pairs: pixel coordinates), or one with no
    transformation to WGS 84 (a local site grid)."""
    from pyproj import CRS, Transformer
    from pyproj.exceptions import ProjError

    from changedetect.errors import GeoreferenceError

    crs = stack.rio.crs
    if crs is None:  # else the whole chain ran, and writing the footprints failed: an internal error
        sources = stack.attrs.get("sources") or [source]  # one ';'-joined list of files per date
        first = str(sources[0] if isinstance(sources, list | tuple) else sources).split(";")[0]
        raise GeoreferenceError(
            f"tiles '{source}' have no georeferencing ('{Path(first).name}' has no CRS: pixel coordinates), and "
            "run places footprints on the ground, measures them in m² and matches them against the permit "
            "register, which all need map coordinates; give GeoTIFFs of the dates with their CRS and grid "
            "(`gdal_translate -a_srs EPSG:32648 -a_ullr ULX ULY LRX LRY in.png out.tif`), or compare images "
            "without georeferencing with `changedetect detect BEFORE AFTER` (`changedetect evaluate` for a "
            "labelled set)")
    try:
        Transformer.from_crs(CRS.from_user_input(crs), 4326, always_xy=True)
    except ProjError:
        name = CRS.from_user_input(crs).name
        raise GeoreferenceError(
            f"tiles '{source}' are in the local CRS '{name}', which has no transformation to WGS 84: footprint "
            "ids, areas and the CSV/GeoJSON violation lists need one; reproject the tiles to a map projection "
            "(e.g. gdalwarp -t_srs EPSG:32648 in.tif out.tif, your UTM zone or VN-2000)") from None


__all__ = ["OUTPUTS", "STAGES", "RunSummary", "check_out", "run"]
