"""What a series of tiles holds, as one JSON-ready dict (``changedetect info``).

Everything comes from the metadata except the nodata share, which is measured
on a decimated read (at most ``sample`` pixels on the longest side; GDAL serves
it from the overviews when the file has them), so describing a city never reads
a whole scene into memory.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from pyproj import CRS
from rasterio.errors import RasterioError
from rasterio.windows import Window

from changedetect._grey import grey_warning, looks_grey, rgb_positions, sample_windows
from changedetect.io import geo
from changedetect.io._read import read_failed, read_float
from changedetect.io.clouds import cloud_shares, warn_cloudy
from changedetect.io.series import BandSource, SeriesSource, open_series

log = logging.getLogger(__name__)


def describe(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | SeriesSource,
    *,
    pattern: str | None = None,
    sample: int = 256,
) -> dict[str, Any]:
    """Describe a series: dates, bands and their resolutions, CRS, bounds, size, nodata share.

    The grid, bounds, bands and ``crs`` are the first date's; each scene's ``crs`` and
    ``resolution`` are its own.

    Parameters
    ----------
    source
        Anything :func:`changedetect.io.open_series` accepts, or a :class:`SeriesSource`.
    pattern
        Date pattern passed to :func:`~changedetect.io.open_series`.
    sample
        Longest side, in pixels, of the decimated read used for the nodata share.

    Returns
    -------
    dict
        JSON-serialisable; keys ``source``, ``kind``, ``dates`` (ISO strings),
        ``bands`` (``name``, ``resolution`` in metres, ``resolution_xy``,
        ``nominal_resolution``, ``width``, ``height``, ``dtype``, ``nodata``),
        ``crs``, ``crs_name``, ``grid``, ``bounds``, ``bounds_lonlat``, ``size``,
        ``scenes`` (per date: files, ``crs``, ``resolution`` in metres
        of its finest band, ``nodata_share``, ``panchromatic``: whether its red, green and blue
        are one grey image, from a few full-resolution windows; None without those three bands;
        ``cloud_share``: the share its Sentinel-2 scene classification (SCL, among its files, not a
        band) calls cloud or cloud shadow, None without one; :mod:`changedetect.io.clouds`;
        ``masked_share``: the share it masks, its no data and defective pixels and where it does not
        reach too, both where the bands have data, and ``scl_file``: its file's name, None without one),
        ``scl`` (the scene classification's band record, as ``bands``'; None without one),
        ``nodata_share``, ``georeferenced``, ``placeholder_dates``.
    """
    series = source if isinstance(source, SeriesSource) else open_series(source, pattern=pattern)  # type: ignore[arg-type]
    grid = series.reference_grid()
    crs = CRS.from_user_input(grid.crs) if grid.crs is not None else None
    scenes = [
        {
            "date": s.date.isoformat(),
            "files": [str(p) for p in s.files],
            "crs": _crs_id(CRS.from_user_input(s.grid.crs) if s.grid.crs is not None else None),
            "resolution": _round(geo.resolution_m(s.grid)),  # its finest band's, in metres
            "nodata_share": _round(_scene_nodata_share(s.bands, sample)),
            "panchromatic": _panchromatic(s.bands),
            # filled below for a date with a Sentinel-2 SCL
            "cloud_share": None, "masked_share": None, "scl_file": None,
        }
        for s in series.scenes
    ]
    shares = cloud_shares(series, side=sample)
    by_date = {c["date"]: c for c in shares}
    for sc in scenes:
        c = by_date.get(sc["date"], {})
        sc["cloud_share"], sc["masked_share"], sc["scl_file"] = c.get("cloud_share"), c.get("masked_share"), c.get("scl")
    warn_cloudy(shares, masked=True)  # as run says it (masked: its default)
    for sc, scene in zip(scenes, series.scenes, strict=True):  # once per date
        if sc["panchromatic"]:
            grey_warning(log, f"{sc['date']} ('{Path(scene.files[0]).name}')", None)
    files = series.files
    return {
        "source": series.source,
        "kind": series.kind,
        "dates": [d.isoformat() for d in series.dates],
        "bands": [_band(b) for b in series.bands],
        "crs": _crs_id(crs),
        "crs_name": crs.name if crs is not None else None,
        "grid": {
            "width": grid.width,
            "height": grid.height,
            "resolution": _round(geo.resolution_m(grid)),
            "transform": list(grid.transform)[:6],
        },
        "bounds": list(grid.bounds),
        "bounds_lonlat": list(b) if (b := _lonlat(grid)) is not None else None,
        "size": {
            "dates": len(series.dates),
            "bands": len(series.bands),
            "pixels_per_band": grid.width * grid.height,
            "files": len(files),
            "bytes": sum(Path(f).stat().st_size for f in files),
        },
        "scenes": scenes,
        # the first date's Sentinel-2 scene classification (a date's cloud mask, not a band), or None
        "scl": next((_band(sc.scl.info) for sc in series.scenes if sc.scl is not None), None),
        "nodata_share": _round(float(np.mean([s["nodata_share"] for s in scenes]))),
        "georeferenced": series.georeferenced,
        "placeholder_dates": series.placeholder_dates,
    }


def _band(info: Any) -> dict[str, Any]:
    return {
        "name": info.name,
        "resolution": _round(info.resolution),
        "resolution_xy": [_round(v) for v in info.resolution_xy],
        "nominal_resolution": info.nominal_resolution,
        "width": info.grid.width,
        "height": info.grid.height,
        "dtype": info.dtype,
        "nodata": None if info.nodata is None or math.isnan(info.nodata) else info.nodata,
    }


def _lonlat(grid: Any) -> tuple[float, float, float, float] | None:
    """The grid's bounds in degrees, or None without a CRS or in one with no way to WGS 84 (a local site grid)."""
    from pyproj.exceptions import ProjError

    try:
        return geo.bounds_lonlat(grid)
    except ProjError:
        return None


def _crs_id(crs: CRS | None) -> str | None:
    if crs is None:
        return None
    return geo.crs_code(crs) or crs.to_wkt()


def _round(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def _panchromatic(bands: Sequence[BandSource]) -> bool | None:
    """Whether the scene's red, green and blue are one grey image copied three times
    (:func:`changedetect._grey.looks_grey` on 3 x 3 windows of 128 px); None without the three
    bands, or when they lie on different grids."""
    pos = rgb_positions([b.info.name for b in bands])
    if pos is None:
        return None
    rgb = [bands[i] for i in pos]
    grid = rgb[0].info.grid
    if any((b.info.grid.width, b.info.grid.height) != (grid.width, grid.height) for b in rgb):
        return None

    with contextlib.ExitStack() as files:
        srcs = {p: files.enter_context(rasterio.open(p)) for p in dict.fromkeys(b.path for b in rgb)}

        def read(win: Any) -> np.ndarray:
            at = Window(win.col, win.row, win.width, win.height)
            return np.stack([_read(b, lambda b=b: read_float(srcs[b.path], b.index, at, nodata=b.info.nodata))
                             for b in rgb])

        return looks_grey(sample_windows(read, (grid.height, grid.width)))


def _scene_nodata_share(bands: Sequence[BandSource], sample: int) -> float:
    """Mean over the bands of the share of nodata pixels, from decimated reads."""
    shares = []
    for band in bands:
        grid = band.info.grid
        scale = max(grid.width, grid.height) / sample
        shape = (
            (grid.height, grid.width)
            if scale <= 1
            else (max(1, round(grid.height / scale)), max(1, round(grid.width / scale)))
        )
        def decimated(band: BandSource = band, shape: tuple[int, int] = shape) -> np.ndarray:
            with rasterio.open(band.path) as src:
                return read_float(src, band.index, Window(0, 0, src.width, src.height), out_shape=shape,
                                  nodata=band.info.nodata)

        data = _read(band, decimated)
        shares.append(float(np.isnan(data).mean()))
    log.debug("nodata shares %s", shares)
    return float(np.mean(shares)) if shares else math.nan


def _read(band: BandSource, read: Any) -> np.ndarray:
    """``read()`` of ``band``, a failed read (a corrupt compressed block) said as the file and band's
    :class:`~changedetect.errors.TileReadError`, as every other read of a tile says it: ``info`` reported
    it as an internal error naming no file."""
    try:
        return read()
    except RasterioError as exc:
        raise read_failed(f"band {band.index} of '{band.path}'", exc) from exc


__all__ = ["describe"]
