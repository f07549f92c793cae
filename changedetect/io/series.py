"""Open a time series of tiles: metadata first (:func:`open_series`), pixels lazily (:meth:`SeriesSource.to_stack`).

Accepted inputs (see ``docs/io.md``):

* a folder of GeoTIFF/COG files with the date in their names
  (``district12_20240131.tif``, ``scene_2024-01-31.tif``); several single-band
  files of one date are that date's bands when their names end in a band
  token (``..._B02.tif``);
* a manifest, CSV or JSON, with ``path``, ``date`` and optional ``bands``
  (relative paths are resolved against the manifest's folder); a folder
  holding ``manifest.json`` / ``manifest.csv`` is read through it;
* a Sentinel-2 band-per-file city folder as in OSCD
  (``<city>/imgs_1/*_B01.tif ... *_B12.tif``, ``imgs_2/...``, dates in ``<city>/dates.txt``),
  or one date's band folder;
* a list of paths; a single raster file;
* PNG/JPEG pairs without georeferencing (a warning, pixel coordinates);
* a STAC item (or item collection, or a folder of items) whose assets are local COGs.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import rasterio
from pyproj import CRS
from rasterio.errors import RasterioError

from changedetect.errors import TileReadError, TimeSeriesError
from changedetect.io import geo
from changedetect.io._checks import (
    PLACEHOLDER_EPOCH,
    check_georeferencing,
    check_overlap,
    check_raster,
    check_same_bands,
    dates_from_metadata,
    fill_placeholder_dates,
)
from changedetect.io._discover import Discovery, Entry, PathLike, discover
from changedetect.io._inspect import RasterMeta, inspect_raster
from changedetect.io._model import BandInfo, BandSource, Scene
from changedetect.io._names import (
    PLAIN_IMAGE_SUFFIXES,
    S2_AUX_RE,
    S2_BANDS,
    band_sort_key,
    is_scl,
    landsat_band,
    landsat_product,
    s2_band,
)
from changedetect.io._read import alpha_mask_band, read_failed
from changedetect.types import STACK_DIMS, Grid, TileStack  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    import xarray as xr

log = logging.getLogger(__name__)


def open_series(
    source: PathLike | Sequence[PathLike], *, pattern: str | None = None
) -> SeriesSource:
    """Describe a time series of tiles, reading metadata only (no pixels).

    Parameters
    ----------
    source
        A folder, a manifest (``.csv``/``.json``), a STAC item JSON, a raster
        file or a list of raster files (see the module docstring).
    pattern
        Regular expression finding the date in a file name; its group named
        ``date`` (else group 1) holds ``YYYYMMDD`` or ``YYYY-MM-DD``.  By default
        the first valid date of that form in the name is used.

    Returns
    -------
    SeriesSource
        Dates, bands (each on its own native grid), CRS and files; call
        :meth:`SeriesSource.to_stack` for the pixels.

    Raises
    ------
    TileReadError
        A path is missing, not a raster, or truncated.
    GeoreferenceError
        A GeoTIFF has no CRS, or dates do not overlap.
    TimeSeriesError
        A file has no date, a date appears twice, or dates differ in their bands.

    Examples
    --------
    >>> series = open_series("../shared/data/oscd/images/paris")  # doctest: +SKIP
    >>> series.dates, [b.name for b in series.bands]               # doctest: +SKIP
    >>> stack = series.to_stack()          # 13 bands on the 10 m grid, lazy
    """
    found = discover(source, pattern=pattern)
    if not found.entries:
        raise TimeSeriesError(f"'{found.source}' lists no tiles; give at least one file with its date")
    for e in found.entries:
        if e.origin.startswith(("manifest '", "STAC item '")) and not Path(e.path).exists():
            raise TileReadError(f"tile '{e.path}', listed in {e.origin}, does not exist; check the path (relative "
                                "paths are resolved against the folder of the file that lists it)")
    metas = {e.path: inspect_raster(e.path) for e in found.entries}
    georeferenced = check_georeferencing(found, metas)
    dates_from_metadata(found, metas)  # a name without a date: the file's acquisition date, if it says it
    placeholder = fill_placeholder_dates(found, georeferenced, pattern)
    scenes = _build_scenes(found, metas)
    check_same_bands(scenes)
    if georeferenced:
        check_overlap(scenes)
    series = SeriesSource(
        scenes,
        kind=found.kind,
        source=found.source,
        georeferenced=georeferenced,
        placeholder_dates=placeholder,
    )
    log.info("opened %s: %d dates, %d bands", found.source, len(scenes), len(scenes[0].bands))
    return series


def open_stack(
    source: PathLike | Sequence[PathLike], *, pattern: str | None = None, **kwargs: object
) -> TileStack:
    """``open_series(source, pattern=pattern).to_stack(**kwargs)``: a lazy :data:`TileStack`."""
    return open_series(source, pattern=pattern).to_stack(**kwargs)  # type: ignore[arg-type]


class SeriesSource:
    """Metadata of a time series of tiles; pixels are read by :meth:`to_stack`."""

    def __init__(
        self,
        scenes: Sequence[Scene],
        *,
        kind: str,
        source: str,
        georeferenced: bool = True,
        placeholder_dates: bool = False,
    ) -> None:
        if not scenes:
            raise TimeSeriesError(f"{source}: a series needs at least one date")
        self.scenes: tuple[Scene, ...] = tuple(scenes)
        #: What the input was: directory, manifest, sentinel2, list, file, stac.
        self.kind = kind
        #: The input, as given.
        self.source = source
        #: False for PNG/JPEG without georeferencing (pixel coordinates).
        self.georeferenced = georeferenced
        #: True when the dates are placeholders (undated plain images or a single undated file).
        self.placeholder_dates = placeholder_dates

    def __repr__(self) -> str:
        days = [d.isoformat() for d in self.dates]
        dates = ", ".join(days if len(days) <= 8 else [*days[:3], "...", *days[-2:]])  # a year of dates: one line
        return f"<SeriesSource {self.kind} '{self.source}': {len(self.dates)} dates [{dates}], bands {self.band_names}>"

    @property
    def dates(self) -> list[dt.date]:
        """Acquisition dates, increasing."""
        return [s.date for s in self.scenes]

    @property
    def bands(self) -> list[BandInfo]:
        """The bands of the first date, in order, each with its native grid and resolution."""
        return [b.info for b in self.scenes[0].bands]

    @property
    def band_names(self) -> list[str]:
        """Band names in order."""
        return [b.name for b in self.bands]

    @property
    def crs(self) -> CRS | None:
        """CRS of the reference grid (``None`` for non-georeferenced images)."""
        return self.reference_grid().crs

    @property
    def files(self) -> list[Path]:
        """Every file of the series, date by date."""
        return [p for s in self.scenes for p in s.files]

    def reference_grid(self, resolution: float | None = None) -> Grid:
        """The finest band grid of the first date, or that extent at ``resolution`` metres."""
        grid = self.scenes[0].grid
        return grid if resolution is None else geo.regrid(grid, resolution)

    def coverage(self, grid: Grid | None = None, *, side: int = 1024) -> xr.DataArray:
        """Where each date has data: ``(time, y, x)`` bool on ``grid`` (default :meth:`reference_grid`)
        decimated to at most ``side`` px a side, from decimated reads (cheap at any size).  Pass it
        to :func:`changedetect.coregister.coregister` for a large grid that a date covers only part of."""
        from changedetect.io.clouds import data_coverage

        return data_coverage(self, grid, side=side)

    def to_stack(
        self,
        grid: Grid | None = None,
        *,
        resampling: str = "bilinear",
        chunks: int | tuple[int, int] = 1024,
        bands: Sequence[str] | None = None,
        cloud_mask: bool = True,
    ) -> TileStack:
        """A lazy :data:`~changedetect.types.TileStack` of every date on ``grid``.

        Parameters
        ----------
        grid
            Target grid; default :meth:`reference_grid` (the finest band of the first date).
        resampling
            rasterio resampling name used where a band's grid differs from ``grid``.
        chunks
            Block size in pixels (``y`` and ``x``); each block is one windowed read.
        bands
            Names of the bands to read, in the wanted order; default all.
        cloud_mask
            Where a date has a Sentinel-2 L2A scene classification (:attr:`Scene.scl`), its pixels
            of no data, defective, cloud shadow, cloud (medium, high) and thin cirrus
            (:data:`changedetect.io.clouds.SCL_MASKED`) are NaN in every band of that date; the
            SCL is read onto ``grid`` by nearest neighbour.  ``False`` reads them as data.

        Returns
        -------
        TileStack
            ``(time, band, y, x)`` float32 dask-backed DataArray, nodata as NaN.
        """
        from changedetect.io._stack import build_stack

        return build_stack(
            self, grid or self.reference_grid(), resampling=resampling, chunks=chunks, bands=bands,
            cloud_mask=cloud_mask,
        )


# --------------------------------------------------------------------------- assembly


def _build_scenes(found: Discovery, metas: dict[Path, RasterMeta]) -> list[Scene]:
    by_date: dict[dt.date, list[Entry]] = {}
    for entry in found.entries:
        if entry.date is not None:
            by_date.setdefault(entry.date, []).append(entry)
    return [_scene(date, by_date[date], metas) for date in sorted(by_date)]


def _scene(date: dt.date, entries: list[Entry], metas: dict[Path, RasterMeta]) -> Scene:
    scl_files = [e for e in entries if e.bands is None and is_scl(e.path.stem)]  # L2A's SCL: the mask
    entries = [e for e in entries if e not in scl_files]
    if any(s2_band(e.path) for e in entries):  # a Sentinel-2 folder: its L2A side products are not bands
        aux = [e for e in entries if e.bands is None and S2_AUX_RE.search(e.path.stem)]
        if aux:
            log.info("date %s: leaving out Sentinel-2 side products %s", date.isoformat(),
                     ", ".join(e.path.name for e in aux))
            entries = [e for e in entries if e not in aux]
    if any(landsat_band(e.path) for e in entries):  # a Landsat product: its QA and atmospheric files are not bands
        aux = [e for e in entries if e.bands is None and landsat_product(e.path) and not landsat_band(e.path)]
        if aux:
            log.info("date %s: leaving out Landsat side products %s", date.isoformat(),
                     ", ".join(e.path.name for e in aux))
            entries = [e for e in entries if e not in aux]
    bands: list[BandSource] = []
    for entry in entries:
        meta = metas[entry.path]
        alpha = _alpha_mask(meta)
        indexes = [i for i in range(1, meta.count + 1) if i != alpha]
        named = _band_names(entry, meta, indexes)
        unnamed = named == [f"B{i}" for i in range(1, len(named) + 1)]  # io's B1..Bn: not Sentinel-2's B10..B12
        check_raster(meta, metas, zip(indexes, named, strict=True))  # as detect's files and others are
        for index, name in zip(indexes, named, strict=True):
            bands.append(
                BandSource(info=_band_info(name, meta, index, unnamed=unnamed), path=entry.path, index=index)
            )
    scl = _scl(date, [*[BandSource(info=_band_info("SCL", metas[e.path], 1, unnamed=True), path=e.path, index=1)
                        for e in scl_files], *[b for b in bands if is_scl(b.info.name)]])
    bands = [b for b in bands if not is_scl(b.info.name)]
    names = [b.info.name for b in bands]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        files = [str(e.path) for e in entries]
        per_file = {e.path: sorted(b.info.name for b in bands if b.path == e.path) for e in entries}
        if len({tuple(v) for v in per_file.values()}) == 1 and len({metas[e.path].grid for e in entries}) > 1:
            raise TimeSeriesError(  # the tiles of one date's mosaic: same bands, different places
                f"date {date.isoformat()} comes as {len(files)} tiles with the same bands ({', '.join(files[:3])}"
                f"{', ...' if len(files) > 3 else ''}): mosaic them into one file per date, e.g. `gdalbuildvrt "
                f"-addalpha {date.isoformat()}.vrt TILE1 TILE2 ...` (gaps between tiles then read as nodata), and "
                "give that file (in another folder, or in a manifest) instead of the tiles"
            )
        raise TimeSeriesError(
            f"date {date.isoformat()} appears more than once ({', '.join(files[:3])}) with the same "
            f"band(s) {', '.join(dupes)}; keep one file per date, or name each file's bands in a manifest"
        )
    if all(s2_band(b.path) == b.info.name for b in bands) and len(entries) > 1:
        bands.sort(key=lambda b: band_sort_key(b.info.name))
    elif all((lb := landsat_band(b.path)) and lb[0] == b.info.name for b in bands) and len(entries) > 1:
        bands.sort(key=lambda b: (landsat_band(b.path) or ("", 0, 0.0))[1])  # B2 before B10
    return Scene(date=date, bands=tuple(bands), scl=scl)


def _scl(date: dt.date, found: list[BandSource]) -> BandSource | None:
    """The date's one scene classification layer (Sentinel-2 L2A's SCL), or None."""
    if len(found) > 1:
        raise TimeSeriesError(
            f"date {date.isoformat()} has {len(found)} scene classification layers (SCL: "
            f"{', '.join(f'{b.path.name} band {b.index}' for b in found)}); keep one per date"
        )
    if found:
        log.info("date %s: '%s' (band %d) is its scene classification (SCL), masking clouds, not a band",
                 date.isoformat(), found[0].path.name, found[0].index)
    return found[0] if found else None


def _alpha_mask(meta: RasterMeta) -> int | None:
    """The band of ``meta``'s file that is its validity mask (a binary alpha band), else None.

    Only files with a band GDAL calls alpha and no nodata value are opened for the sample
    :func:`~changedetect.io._read.alpha_mask_band` reads.
    """
    if "alpha" not in meta.colorinterp or meta.nodata is not None:
        return None
    try:
        with rasterio.open(meta.path) as src:
            return alpha_mask_band(src)
    except RasterioError as exc:
        raise read_failed(f"the alpha band of '{meta.path}'", exc) from exc


def _band_names(entry: Entry, meta: RasterMeta, indexes: list[int]) -> list[str]:
    """Names of the bands ``indexes`` (all but an alpha mask): manifest/STAC names, else band
    descriptions, else a Sentinel-2 or Landsat band file's band, else RGB, else B1..Bn."""
    count = len(indexes)
    alpha = meta.count != count  # one band is the file's alpha mask, not a band
    descriptions = [meta.descriptions[i - 1] for i in indexes]
    if entry.bands is not None and entry.bands_from_key and count > 1:  # 'visual', 'image': not a band's name
        log.info("%s: asset '%s' has no eo:bands and '%s' %d bands: the file's own band names are used",
                 entry.origin, entry.bands[0], entry.path, count)
        entry = replace(entry, bands=None)
    if entry.bands is not None:
        given = list(entry.bands)
        if alpha and len(given) == meta.count:  # a name for the alpha band too: it stays the mask
            (extra,) = sorted(set(range(1, meta.count + 1)) - set(indexes))
            log.info("%s: band %d (%r) of '%s' is its alpha mask, not a band", entry.origin, extra,
                     given[extra - 1], entry.path)
            given = [given[i - 1] for i in indexes]
        if len(given) != count:
            mask = f" and an alpha band used as its mask; give {count} names or {meta.count}" if alpha else ""
            raise TimeSeriesError(
                f"{entry.origin}: {len(entry.bands)} band names {entry.bands} given for '{entry.path}', "
                f"which has {count} band(s){mask}; give one name per band"
            )
        if all(descriptions) and descriptions != given:
            log.warning(
                "%s names the bands of '%s' %s; the file's descriptions say %s: using the former",
                entry.origin,
                entry.path,
                given,
                descriptions,
            )
        return given
    if all(descriptions) and len(set(descriptions)) == count:
        return [str(d) for d in descriptions]
    landsat = landsat_band(entry.path)
    token = s2_band(entry.path) or (landsat[0] if landsat else None)
    if count == 1 and token:
        return [token]
    rgb = [meta.colorinterp[i - 1] for i in indexes[:3]] == ["red", "green", "blue"]
    if rgb and count == 3:
        return ["red", "green", "blue"]
    if rgb and count == 4 and meta.path.suffix.lower() in PLAIN_IMAGE_SUFFIXES:
        return ["red", "green", "blue", "alpha"]
    # A 4-band GeoTIFF is RGBA to GDAL by default, whatever it holds (RGB+NIR, BGR+NIR):
    # without descriptions its order is unknown, so the bands stay B1..B4 (unless the 4th is a
    # binary alpha band: then it is the mask, and the three others are RGB as an RGB file's).
    return [f"B{i}" for i in range(1, count + 1)]


def _band_info(name: str, meta: RasterMeta, index: int, *, unnamed: bool = False) -> BandInfo:
    """``unnamed``: ``name`` is io's B1..Bn for a file without band names, whose B10..B12 are not
    Sentinel-2's (no Sentinel-2 nodata nor nominal resolution for them)."""
    grid = meta.grid
    xy = geo.pixel_size_m(geo.north_up(grid))  # a rotated file's pixels measured along its rows and columns
    s2 = not unnamed
    return BandInfo(
        name=name,
        resolution=math.sqrt(xy[0] * xy[1]),
        grid=grid,
        dtype=meta.dtypes[index - 1],
        nodata=meta.nodata if meta.nodata is not None or not s2 else s2_nodata([name], meta.dtypes[index - 1]),
        resolution_xy=xy,
        nominal_resolution=_nominal(name, meta) if s2 else None,
    )


def s2_nodata(names: Sequence[str], dtype: str) -> float | None:
    """0 for uint16 Sentinel-2 bands (any of ``names`` is B01..B12 or B8A), whose products define 0 as
    NODATA outside the swath: a JP2 converted to GeoTIFF seldom declares it, and zeros read as data
    are a strip of change along the swath's edge.  None otherwise (for a file that declares none)."""
    return 0.0 if dtype == "uint16" and any(str(n) in S2_BANDS for n in names) else None


def _nominal(name: str, meta: RasterMeta) -> float | None:
    """The sensor's nominal resolution of a Sentinel-2 band or a Landsat band file's band."""
    landsat = landsat_band(meta.path)
    if landsat is not None and meta.count == 1:
        return landsat[2] if landsat[0] == name else None
    return float(S2_BANDS[name]) if name in S2_BANDS else None


__all__ = [
    "PLACEHOLDER_EPOCH",
    "STACK_DIMS",
    "BandInfo",
    "BandSource",
    "Scene",
    "SeriesSource",
    "open_series",
    "open_stack",
    "s2_nodata",
]
