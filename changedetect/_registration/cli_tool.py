"""The file-level tool under ``changedetect coregister``: read onto one grid, register, write.

Kept apart from :mod:`changedetect.coregister` (which is pure): this module opens and
writes files, through :mod:`changedetect.io` only.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
from pathlib import Path
from typing import Any

from changedetect._registration.report import CoregistrationReport
from changedetect.errors import ConfigError, CoregistrationError, OutputExistsError
from changedetect.types import Grid

logger = logging.getLogger(__name__)


def coregister_files(
    source: Any,
    out: str | os.PathLike[str],
    *,
    reference: str | None = None,
    crs: str | None = None,
    resolution: float | None = None,
    local: bool = True,
    radiometric: bool = True,
    pattern: str | None = None,
    overwrite: bool = False,
    progress: bool = False,
    cloud_mask: bool = True,
) -> tuple[CoregistrationReport, list[Path]]:
    """Co-register the tiles of ``source`` and write ``out/aligned_YYYYMMDD.tif`` + ``out/coregistration.json``.

    ``cloud_mask``: a date's Sentinel-2 scene classification (SCL) masks its clouds (:mod:`changedetect.io.clouds`).

    Returns the report and the written COG paths.
    """
    from changedetect.coregister import CoregisterConfig, coregister, needs_coverage
    from changedetect.io import open_series, write_cog
    from changedetect.io.clouds import cloud_shares, warn_cloudy

    report_path = Path(out) / "coregistration.json"
    if report_path.exists() and not overwrite:  # refused before any image is written, not half-way
        raise OutputExistsError(f"output '{report_path}' already exists; pass --overwrite (overwrite=True) "
                                "to replace that run's files, or choose another --out folder")
    series = open_series(source, pattern=pattern)
    ref_idx = reference_index(series, reference)
    grid = target_grid(series.scenes[ref_idx].grid, crs=crs, resolution=resolution)
    stack = series.to_stack(grid, cloud_mask=cloud_mask)
    warn_cloudy(cloud_shares(series, grid=grid), masked=cloud_mask)
    # a grid too large to hold: where each date has data, from decimated reads, for the warning and
    # for the measuring windows of a date that covers part of it
    coverage = series.coverage(grid) if needs_coverage(grid.height, grid.width) else None
    warn_sparse(series, grid, coverage=coverage)  # before the work: a mostly empty grid is cropped faster
    config = CoregisterConfig(reference=ref_idx, local=local, radiometric=radiometric)
    aligned, report = coregister(stack, config=config, progress=progress, coverage=coverage)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    dates = list(series.dates)
    iterator: Any = range(len(dates))
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="writing", unit="date")
    for i in iterator:
        path = out / f"aligned_{dates[i]:%Y%m%d}.tif"
        entry = report.dates[i]
        tags = {"date": dates[i].isoformat(), "coregistration": entry.status,
                "shift_px": f"{entry.shift_px[0]:.4f},{entry.shift_px[1]:.4f}"}
        written.append(write_cog(aligned.isel(time=i), path, overwrite=overwrite, tags=tags))
    report.to_json(out / "coregistration.json", overwrite=overwrite)
    for stale in set(out.glob("aligned_*.tif")) - set(written):  # an earlier run's other dates (overwrite)
        stale.unlink()
    return report, written


#: Aligned dates this large (float32, before compression) are worth a word when ...
LARGE_OUTPUT_BYTES = 1 << 30
#: ... the dates' data cover at most this share of their grid (the rest is written as nodata).
SPARSE_SHARE = 0.25


def warn_sparse(series: Any, grid: Grid, *, side: int = 1024, coverage: Any = None) -> str | None:
    """One warning, logged and returned, when the aligned dates on ``grid`` would be large
    (:data:`LARGE_OUTPUT_BYTES`) and the union of the dates' data covers at most :data:`SPARSE_SHARE` of
    it: a city-wide mosaic of a few flown districts, 200 000 px a side, would be computed and written
    whole (1.2 TiB of float32 for two dates of four bands) for the 0.006 % of it that holds data.  The
    line gives the box that holds the data and the ``gdal_translate`` that crops a file to it
    (coregister has no bounds option).  The footprint is ``coverage``
    (:meth:`~changedetect.io.SeriesSource.coverage` on ``grid``), read here when not given: decimated,
    at most ``side`` px a side.  ``None`` when there is nothing to say."""
    import numpy as np

    from changedetect.io._checks import crs_name
    from changedetect.io.clouds import data_coverage

    width, height = grid.width, grid.height
    nbytes = width * height * len(series.bands) * len(series.dates) * 4
    if nbytes < LARGE_OUTPUT_BYTES:
        return None
    cover = np.asarray(coverage if coverage is not None else data_coverage(series, grid, side=side), dtype=bool)
    union = np.asarray(cover.any(axis=0) if cover.ndim == 3 else cover, dtype=bool)
    ky, kx = height / union.shape[0], width / union.shape[1]
    share = float(union.mean())
    if share > SPARSE_SHARE:
        return None
    gib = nbytes / 2**30
    size = f"{gib / 1024:.1f} TiB" if gib >= 1024 else f"{gib:.{1 if gib < 10 else 0}f} GiB"
    what = (f"the aligned dates will be {len(series.dates)} x {len(series.bands)} band(s) of {width} x {height} px "
            f"({size} of float32 to compute and write, before compression), but the dates have data on only "
            f"{100 * share:.2g} % of that grid")
    if not union.any():
        msg = f"{what} (none found in a decimated read): check the dates' nodata share with `changedetect info`"
    else:
        rows, cols = np.flatnonzero(union.any(axis=1)), np.flatnonzero(union.any(axis=0))
        # a coarse cell more on each side: the decimated read sees a cell's data from a few of its pixels
        r0, r1 = int(max(int(rows[0]) - 1, 0) * ky), min(math.ceil((int(rows[-1]) + 2) * ky), height)
        c0, c1 = int(max(int(cols[0]) - 1, 0) * kx), min(math.ceil((int(cols[-1]) + 2) * kx), width)
        first = series.scenes[0].files[0]
        if grid.crs is None:
            crop = f"gdal_translate -srcwin {c0} {r0} {c1 - c0} {r1 - r0} '{first}' CROP.tif"
            box = f"pixels {c0}-{c1} x {r0}-{r1}"
        else:
            xs, ys = zip(*(grid.transform @ (c, r) for c in (c0, c1) for r in (r0, r1)), strict=True)
            west, south, east, north = min(xs), min(ys), max(xs), max(ys)
            code = crs_name(grid.crs)
            crop = (f"gdal_translate -projwin {west:.10g} {north:.10g} {east:.10g} {south:.10g} "
                    f"-projwin_srs {code} '{first}' CROP.tif")
            box = f"({west:.10g}, {south:.10g}, {east:.10g}, {north:.10g}) in {code}"
        msg = (f"{what}, within {box} ({c1 - c0} x {r1 - r0} px): crop every date's files to that box first "
               f"(`{crop}`, and likewise for the others) and coregister the crops, as coregister has no "
               "bounds option")
    logger.warning(msg)
    return msg


def reference_index(series: Any, reference: str | None) -> int:
    """Index of the reference date given as ``YYYY-MM-DD``, ``YYYYMMDD`` or one of its files."""
    if reference is None:
        return 0
    dates = [d.isoformat() for d in series.dates]
    try:
        day = dt.date.fromisoformat(reference) if len(reference) in (8, 10) else None
    except ValueError:
        day = None
    if day is not None and day.isoformat() in dates:
        return dates.index(day.isoformat())
    target = Path(reference).resolve()
    for i, scene in enumerate(series.scenes):
        if any(Path(f).resolve() == target for f in scene.files):
            return i
    raise CoregistrationError(
        f"--reference {reference!r} is neither a date of the series nor one of its files; "
        f"dates are {', '.join(dates)}"
    )


def target_grid(reference: Grid, *, crs: str | None, resolution: float | None) -> Grid:
    """The reference date's grid, reprojected to ``crs`` and/or resampled to ``resolution`` metres."""
    from changedetect.io.geo import regrid

    grid = reference
    if crs is not None:
        grid = _reproject(grid, crs)
    if resolution is not None:
        if resolution <= 0:
            raise ConfigError(f"--resolution must be a positive number of metres, got {resolution}")
        grid = regrid(grid, resolution)
    return grid


def _reproject(grid: Grid, crs: str) -> Grid:
    from pyproj import CRS
    from pyproj.exceptions import CRSError
    from rasterio.warp import calculate_default_transform

    try:
        dst = CRS.from_user_input(crs)
    except CRSError as exc:
        raise ConfigError(f"--crs {crs!r} is not a CRS pyproj knows ({exc}); give e.g. EPSG:32648") from exc
    if grid.crs is None:
        raise ConfigError("--crs was given but the tiles carry no CRS; they cannot be reprojected")
    left, bottom, right, top = grid.bounds
    transform, width, height = calculate_default_transform(
        CRS.from_user_input(grid.crs), dst, grid.width, grid.height, left, bottom, right, top
    )
    return Grid(crs=dst, transform=transform, width=int(width), height=int(height))
