"""Sentinel-2 L2A's scene classification layer (SCL) as a date's cloud mask.

An L2A delivery carries, beside its bands, the scene classification at 20 m (``*_SCL_20m.jp2``, or a
band named ``SCL``).  :meth:`~changedetect.io.SeriesSource.to_stack` makes the pixels of the classes
:data:`SCL_MASKED` NaN in every band of that date, as a no-data pixel is: a cloud on one date is
then neither change nor data (the SCL is read onto the grid by nearest neighbour, never
interpolated: a class is a label, not a quantity).  :func:`cloud_shares` says how much of each date
is cloud, from a decimated read, for ``info`` and ``run``'s summary.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import dask.array as da
import numpy as np
import rasterio
import xarray as xr
from affine import Affine
from rasterio.crs import CRS as RioCRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.warp import reproject
from rasterio.windows import Window

from changedetect.io._model import BandSource
from changedetect.io._read import ReadSpec, lazy_band, read_failed, read_float, read_window
from changedetect.types import Grid

if TYPE_CHECKING:
    from changedetect.io.series import SeriesSource

log = logging.getLogger(__name__)

#: SCL classes that are cloud: 3 cloud shadow, 8 cloud (medium probability), 9 cloud (high
#: probability), 10 thin cirrus.
SCL_CLOUD: tuple[int, ...] = (3, 8, 9, 10)
#: SCL classes masked as no data: the clouds, 0 no data and 1 saturated or defective.  Snow (11),
#: water (6), dark areas (2) and unclassified (7) are data.
SCL_MASKED: tuple[int, ...] = (0, 1, *SCL_CLOUD)
#: What each class of :data:`SCL_MASKED` is called in ``cloud_shares``' ``masked_classes``, the
#: low-coverage warnings and the report (its number in brackets).
SCL_NAMES: dict[int, str] = {0: "no data (0)", 1: "saturated or defective (1)", 3: "cloud shadow (3)",
                             8: "cloud, medium probability (8)", 9: "cloud, high probability (9)",
                             10: "thin cirrus (10)"}
#: ``masked_classes``' name for the pixels where the SCL itself has no data or does not reach.
OUTSIDE_SCL = "outside the SCL"
#: A date more cloud than this (a share of the scene) is said to be mostly cloud.
CLOUDY = 0.5
#: A masked cloud share of a date from which a pair's low coverage is put down to its clouds.
EXPLAINS = 0.1
#: A pair's share of the scene with data on both its dates under which ``run`` and the nightly
#: job warn.
LOW_COVERAGE = 0.5


def _spec(scl: BandSource, grid: Grid) -> ReadSpec:
    """The SCL read onto ``grid`` by nearest neighbour; its own nodata (if it declares one) reads NaN."""
    return ReadSpec(path=scl.path, index=scl.index, source_grid=scl.info.grid, grid=grid,
                    resampling=Resampling.nearest, nodata=None)


def _masked(classes: Any) -> Any:
    """Where ``classes`` (float, NaN where the SCL has no data) is one of :data:`SCL_MASKED`."""
    return np.isnan(classes) | np.isin(classes, SCL_MASKED)


def scl_mask(scl: BandSource, grid: Grid, chunks: tuple[int, int]) -> da.Array:
    """Lazy ``(y, x)`` bool on ``grid``: True where the SCL says :data:`SCL_MASKED` (or has no data),
    in blocks of ``chunks`` as :func:`~changedetect.io._read.lazy_band`'s, so that it masks the
    bands block by block."""
    classes = lazy_band(_spec(scl, grid), chunks)
    return da.map_blocks(_masked, classes, dtype=bool)


def cloud_shares(series: SeriesSource, *, grid: Grid | None = None, side: int = 1024) -> list[dict[str, Any]]:
    """Per date with an SCL: ``date``, ``cloud_share`` (classes :data:`SCL_CLOUD`),
    ``masked_share`` (:data:`SCL_MASKED`, the no data and defective pixels too, and where the SCL
    does not reach), ``masked_classes`` (:data:`SCL_NAMES` / :data:`OUTSIDE_SCL` -> share, the
    classes present only), these three where the date's bands have data (:func:`bands_have_data`);
    ``masked_where_no_data`` (what it masks where they have none: a swath edge's no data is the
    tiles', not the SCL's) and ``scl`` (its file's name); shares of ``grid`` (default
    the series' reference grid), read by nearest neighbour on that grid decimated to at most
    ``side`` px a side (the 20 m SCL's overviews serve it when it has some); dates without an SCL
    are left out."""
    from changedetect.io.geo import regrid, resolution_m

    if all(scene.scl is None for scene in series.scenes):  # nothing to read (and no grid to decimate)
        return []
    grid = grid or series.reference_grid()
    scale = max(grid.width, grid.height) / side
    step = resolution_m(grid)
    if not math.isfinite(step):  # pixel coordinates (a PNG pair): their units are pixels
        step = abs(grid.transform.a)
    coarse = grid if scale <= 1 else regrid(grid, step * scale)
    shares = []
    for scene in series.scenes:
        if scene.scl is None:
            continue
        classes = read_window(_spec(scene.scl, coarse), (0, 0, coarse.height, coarse.width))
        data = bands_have_data(scene.bands, coarse)
        counted = np.where(data, classes, -1.0)  # -1: the bands' own no data, neither masked nor a class
        shares.append({"date": scene.date.isoformat(),
                       "cloud_share": round(float(np.isin(counted, SCL_CLOUD).mean()), 4),
                       "masked_share": round(float(_masked(counted).mean()), 4),
                       "masked_classes": _classes(counted),
                       "masked_where_no_data": round(float((_masked(classes) & ~data).mean()), 4),
                       "scl": scene.scl.path.name})
    return shares


def bands_have_data(bands: Sequence[BandSource], grid: Grid) -> np.ndarray:
    """``(y, x)`` bool on ``grid`` (a coarse one): True where every one of ``bands`` has data, each
    read decimated (its overviews, a JPEG 2000's resolution levels) to about ``grid``'s resolution and
    then put on ``grid`` by nearest neighbour: a validity, not the pixels, so never at full resolution."""
    data = np.ones(grid.shape, dtype=bool)
    for band in bands:
        data &= ~np.isnan(_decimated(band, grid))
    return data


def coarse_grid(grid: Grid, side: int) -> Grid:
    """``grid``'s extent in at most ``side`` px a side (``grid`` itself when it is no larger): cell ``i``
    covers rows ``i * height / h'`` to ``(i + 1) * height / h'``, exactly the same extent."""
    k = max(grid.width, grid.height) / side
    if k <= 1:
        return grid
    width, height = max(1, math.ceil(grid.width / k)), max(1, math.ceil(grid.height / k))
    transform = grid.transform @ Affine.scale(grid.width / width, grid.height / height)
    return Grid(crs=grid.crs, transform=transform, width=width, height=height)


def data_coverage(series: SeriesSource, grid: Grid | None = None, *, side: int = 1024) -> xr.DataArray:
    """``(time, y, x)`` bool on ``grid`` (default the series' reference grid) decimated to at most
    ``side`` px a side (:func:`coarse_grid`): True where the date's first band has data.  Read
    decimated (the files' overviews serve it where they have some; a sparse GeoTIFF's empty tiles cost
    nothing), so it costs a few reads of ``side``² px a date however large the grid: what a date covers
    of a city-wide mosaic, before anything reads it (see
    :func:`changedetect.coregister.coregister`'s ``coverage``)."""
    import pandas as pd

    from changedetect.io._block_cache import capped

    grid = grid or series.reference_grid()
    coarse = coarse_grid(grid, side)
    with capped():  # a decimated read of a large file without overviews fills GDAL's cache with its blocks
        cover = np.stack([bands_have_data(scene.bands[:1], coarse) for scene in series.scenes])
    t = coarse.transform
    return xr.DataArray(
        cover, dims=("time", "y", "x"), name="coverage",
        coords={"time": pd.to_datetime([s.date for s in series.scenes]).values,
                "y": t.f + t.e * (np.arange(coarse.height) + 0.5), "x": t.c + t.a * (np.arange(coarse.width) + 0.5)},
        attrs={"long_name": "the date has data", "source_shape": [grid.height, grid.width]},
    )


def _decimated(band: BandSource, grid: Grid) -> np.ndarray:
    """One band on ``grid``, float32 with NaN where it has no data, from a decimated read."""
    source = band.info.grid
    spec = ReadSpec(path=band.path, index=band.index, source_grid=source, grid=grid,
                    resampling=Resampling.nearest, nodata=band.info.nodata)
    if spec.mode != "warp":  # the same grid, or none to warp on: read_window reads it decimated already
        return read_window(spec, (0, 0, grid.height, grid.width))
    from changedetect.io.geo import resolution_m

    step = max(1.0, resolution_m(grid) / resolution_m(source) / 2)  # about 2 source px a grid px
    shape = (max(1, round(source.height / step)), max(1, round(source.width / step)))
    out = np.full(grid.shape, np.nan, dtype=np.float32)
    try:
        with rasterio.open(band.path) as src:
            values = read_float(src, band.index, Window(0, 0, src.width, src.height), out_shape=shape,
                                nodata=band.info.nodata)
            reproject(values, out, src_transform=src.transform @ Affine.scale(src.width / shape[1],
                                                                               src.height / shape[0]),
                      src_crs=src.crs, src_nodata=np.nan, dst_transform=grid.transform,
                      dst_crs=RioCRS.from_user_input(grid.crs), dst_nodata=np.nan, resampling=Resampling.nearest)
    except RasterioError as exc:
        raise read_failed(f"band {band.index} of '{band.path}' (decimated, for its share under its SCL)", exc) from exc
    return out


def _classes(classes: np.ndarray) -> dict[str, float]:
    """Share of each masked class present in ``classes`` (NaN: :data:`OUTSIDE_SCL`)."""
    found = {name: float(np.mean(classes == c)) for c, name in SCL_NAMES.items()}
    found[OUTSIDE_SCL] = float(np.isnan(classes).mean())
    return {name: round(v, 4) for name, v in found.items() if v > 0}


def warn_cloudy(shares: Sequence[dict[str, Any]], *, masked: bool, say: Callable[..., None] | None = None) -> None:
    """One warning naming the dates that are mostly cloud, or mostly masked (over :data:`CLOUDY`):
    an SCL that says no data where the bands have some (another tile's SCL, one that covers part of
    the scene) would take the date away in silence.  ``say(fmt, *args)`` says it (default: this
    module's logger; ``info --json`` collects it)."""
    cloudy = [s for s in shares if max(s["cloud_share"], s.get("masked_share", 0.0)) > CLOUDY]
    if not cloudy:
        return
    dates = ", ".join(_said(s) for s in cloudy)
    what = ("masked as no data: little of it can be compared" if masked else
            "NOT masked ([run] cloud_mask = false / --no-cloud-mask): its clouds read as change")
    (say or log.warning)("mostly cloud by its Sentinel-2 scene classification (SCL): %s; %s; choose a clearer "
                         "date if there is one", dates, what)


def masked_clouds(clouds: Sequence[Mapping[str, Any]], dates: Sequence[str]) -> dict[str, float]:
    """Date -> cloud share of those of ``dates`` whose SCL masked their clouds, from ``run.json``'s
    ``clouds`` (each pair's ``clouds`` in the nightly summary's ``coverage``)."""
    return {str(c["date"]): float(c["cloud_share"]) for c in clouds if c.get("masked") and c.get("date") in dates}


def coverage_why(clouds: Sequence[Mapping[str, Any]], dates: Sequence[str], *,
                 tiles_nodata: Mapping[str, float] | None = None) -> str:
    """Why little of a pair's scene has data on both its dates, naming what masked it: on each of
    ``dates`` whose SCL masked :data:`EXPLAINS` or more (``clouds``: ``run.json``'s, per date; those
    not ``masked``, as with ``--no-cloud-mask``, left out), the SCL classes it masked
    (``masked_classes``), and the tiles' own no data (``tiles_nodata``: date -> share outside what
    the SCL masked, when known); then what to do: a clearer date for clouds, the SCL's date and tile
    for its no data, the tiles' coverage for theirs (or when nothing else explains it)."""
    by_date = {str(c.get("date")): c for c in clouds if c.get("masked")}
    said, todo = [], []
    for date in dict.fromkeys(dates):
        c = by_date.get(date)
        if c is not None and float(c.get("masked_share", 0.0)) >= EXPLAINS:
            cloud, masked = float(c.get("cloud_share", 0.0)), float(c.get("masked_share", 0.0))
            classes = c.get("masked_classes") or {"cloud": cloud, "no data, defective or outside the SCL":
                                                  max(masked - cloud, 0.0)}
            shown = sorted(((v, k) for k, v in classes.items() if v >= 0.005), key=lambda vk: -vk[0])
            said.append(f"{date} is {100 * masked:.0f} % masked by its Sentinel-2 scene classification (SCL): "
                        + ", ".join(f"{100 * v:.0f} % {k}" for v, k in shown))
            if cloud >= EXPLAINS:
                todo.append("a clearer date will see more")
            if masked - cloud >= EXPLAINS:
                scl = f"'{c['scl']}'" if c.get("scl") else "its SCL"
                todo.append(f"check that {scl} is this date's SCL, of the bands' tile")
        if tiles_nodata and tiles_nodata.get(date, 0.0) >= EXPLAINS:
            said.append(f"{date}'s tiles have no data over {100 * tiles_nodata[date]:.0f} % of the scene")
            todo.append(_CHECK_TILES)
    if not said:
        return _CHECK_TILES
    return "; ".join(said) + ": " + "; ".join(dict.fromkeys(todo))


_CHECK_TILES = "check that the tiles cover the area (`changedetect info` gives each date's nodata share)"


def _said(share: dict[str, Any]) -> str:
    """``2018-02-11 (62 % cloud)``, with the SCL's no data when that is what masks most of it."""
    cloud, masked = share["cloud_share"], share.get("masked_share", 0.0)
    if masked - cloud <= CLOUDY / 2:
        return f"{share['date']} ({100 * cloud:.0f} % cloud)"
    return (f"{share['date']} ({100 * cloud:.0f} % cloud, {100 * masked:.0f} % masked: its SCL "
            f"'{share.get('scl', '?')}' says no data or defective there, or does not reach there; check "
            "that it is this date's SCL, of the bands' tile)")


__all__ = ["CLOUDY", "EXPLAINS", "LOW_COVERAGE", "OUTSIDE_SCL", "SCL_CLOUD", "SCL_MASKED", "SCL_NAMES",
           "bands_have_data", "cloud_shares", "coverage_why", "masked_clouds", "scl_mask", "warn_cloudy"]
