"""Consistency checks of a series before it is built (private helpers of :mod:`changedetect.io.series`)."""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

from pyproj import CRS
from rasterio.errors import NotGeoreferencedWarning as RioNotGeoreferencedWarning

from changedetect.errors import (
    GeoreferenceError,
    NotGeoreferencedWarning,
    TileReadError,
    TimeSeriesError,
)
from changedetect.io import geo
from changedetect.io._discover import Discovery
from changedetect.io._inspect import RasterMeta
from changedetect.io._model import Scene
from changedetect.io._names import PLAIN_IMAGE_SUFFIXES, is_scl, undated_note

log = logging.getLogger(__name__)

#: Dates given to undated, non-georeferenced image pairs (in file order, one day apart)
#: and to a single undated raster file.
PLACEHOLDER_EPOCH = dt.date(1970, 1, 1)


def check_georeferencing(found: Discovery, metas: dict[Path, RasterMeta]) -> bool:
    plain = [m for m in metas.values() if not m.georeferenced]
    if not plain:
        return True
    for meta in plain:
        if meta.path.suffix.lower() not in PLAIN_IMAGE_SUFFIXES:
            check_gridded(meta, metas)
            if meta.has_transform:
                raise GeoreferenceError(
                    f"'{meta.path}' has a geotransform but no CRS; assign its CRS (e.g. `rio edit-info --crs "
                    f"EPSG:32648 '{meta.path}'` or `gdal_edit.py -a_srs EPSG:32648`) or convert it to PNG to use "
                    "pixel coordinates"
                )
            # a CRS alone would leave it at pixel coordinates (check_gridded refuses that): both are needed
            code = _other_crs(meta, metas) or "EPSG:32648"
            raise GeoreferenceError(
                f"'{meta.path}' has no CRS and no geotransform; georeference it, its CRS and the corners of its "
                f"grid (e.g. `gdal_edit.py -a_srs {code} -a_ullr ULX ULY LRX LRY '{meta.path}'`, or `rio edit-info "
                f"'{meta.path}' --like IMAGE --crs like --transform like` from the image whose grid it shares), or "
                "convert it to PNG to use pixel coordinates"
            )
    if len(plain) != len(metas):
        geo_file = next(m.path for m in metas.values() if m.georeferenced)
        raise GeoreferenceError(
            f"'{plain[0].path}' has no georeferencing but '{geo_file}' has; mix of georeferenced "
            "and plain images in one series: georeference them all or none"
        )
    # rasterio warns on every open of such a file (from worker threads too, where a
    # catch_warnings block is unsafe); ours below says the same once, with the consequence.
    warnings.filterwarnings(
        "ignore", message="Dataset has no geotransform", category=RioNotGeoreferencedWarning
    )
    warnings.warn(
        f"{found.source}: images have no georeferencing ({plain[0].path.name}, ...); "
        "pixel coordinates are used and areas are in pixels, not square metres",
        NotGeoreferencedWarning,
        stacklevel=3,
    )
    return False


def check_raster(meta: RasterMeta, metas: Mapping[Path, RasterMeta] | None = None,
                 bands: Iterable[tuple[int, str]] | None = None) -> None:
    """The read path's checks of one input raster, whichever command reads it: ``open_series`` (info,
    coregister, run, detect --series), ``detect``'s pair of files, ``vectorize``'s and ``report``'s rasters.

    A file georeferenced only by GCPs or RPCs is refused (:func:`check_gridded`), and each of ``bands``
    (``(index, name)``, 1-based; default every band, named by its description) whose values are not
    brightness (:func:`check_band_kind`); a band named SCL (Sentinel-2's scene classification) may carry a
    colour table.  ``metas``: the other inputs, whose CRS the gdalwarp advice names.
    """
    check_gridded(meta, metas or {})
    if bands is None:
        bands = [(i, name or "") for i, name in enumerate(meta.descriptions, 1)]
    for index, name in bands:
        if not is_scl(name):
            check_band_kind(meta, index)


def check_gridded(meta: RasterMeta, metas: Mapping[Path, RasterMeta]) -> None:
    """:class:`GeoreferenceError` for a file georeferenced by GCPs or RPCs alone (no geotransform), or
    with a CRS and no geotransform: GDAL gives such a file 1-unit pixels from (0, 0), which would put
    its footprints off the coast of Africa (or, in a UTM zone, at the zone's false origin)."""
    if meta.crs is None and (meta.gcps or meta.rpcs):
        raise GeoreferenceError(_not_gridded(meta, metas))
    if meta.crs is not None and not meta.has_transform:
        raise GeoreferenceError(
            f"'{meta.path}' has a CRS ({crs_name(meta.crs)}) but no geotransform, so its pixels have no place on "
            f"the ground (GDAL would put them 1 unit apart from (0, 0)); give it the corners of its grid "
            f"(`gdal_edit.py -a_ullr ULX ULY LRX LRY '{meta.path}'`, or `rio edit-info '{meta.path}' --like IMAGE "
            "--transform like` from the image whose grid it shares) and give that file again"
        )


def _other_crs(meta: RasterMeta, metas: Mapping[Path, RasterMeta]) -> str | None:
    """The EPSG code of another input's CRS (the one ``meta``'s file most likely shares), or None."""
    return next((code for m in metas.values() if m is not meta and m.crs is not None
                 and (code := geo.crs_code(m.crs))), None)


def _not_gridded(meta: RasterMeta, metas: Mapping[Path, RasterMeta]) -> str:
    """Why a file georeferenced by GCPs or RPCs alone (no geotransform) is not read, and the gdalwarp
    that makes it a map grid (onto the CRS of another date where there is one): assigning a CRS, the
    advice for a file without any georeferencing, would place it at pixel coordinates."""
    target = next((code for m in metas.values() if m.crs is not None and (code := geo.crs_code(m.crs))), None)
    if meta.gcps:
        srs = f" in {crs_name(meta.gcp_crs)}" if meta.gcp_crs is not None else ""
        what = f"only by {meta.gcps} ground control points (GCPs{srs})"
        warp = f"gdalwarp{f' -t_srs {target}' if target else ''} -r bilinear '{meta.path}' OUT.tif"
        how = "warp it onto a map grid first"
    else:
        what = "only by RPCs (a satellite's rational polynomial camera model)"
        warp = f"gdalwarp -rpc -to RPC_DEM=DEM.tif -t_srs {target or 'EPSG:4326'} -r bilinear '{meta.path}' OUT.tif"
        how = "orthorectify it first, with a DEM of the area"
    return (f"'{meta.path}' is georeferenced {what}, not by a geotransform, and changedetect reads map grids: "
            f"{how} (`{warp}`), and give that file instead")


def check_band_kind(meta: RasterMeta, index: int) -> None:
    """Refuse band ``index`` of ``meta``'s file where its values are not brightness: a complex band (SAR
    single-look complex: numpy would drop its imaginary part with a warning) or a palette image's colour
    indices (bilinear resampling and the radiometric fit would blend index 3 and 5 into a colour 4 that
    has nothing to do with either)."""
    dtype = meta.dtypes[index - 1]
    if dtype.startswith("complex"):
        raise TileReadError(
            f"'{meta.path}' band {index} is {dtype} (complex SAR data: amplitude and phase), and changedetect "
            f"reads real-valued imagery: give its amplitude instead (`gdal_calc.py -A '{meta.path}' --allBands=A "
            "--calc='abs(A)' --type=Float32 --outfile=OUT.tif`, or your SAR tool's amplitude product)"
        )
    if meta.colorinterp[index - 1] == "palette":
        raise TileReadError(
            f"'{meta.path}' is a palette (colour-mapped) image: its values are indices into a colour table, not "
            f"brightness, and resampling or comparing them means nothing; expand it to RGB first "
            f"(`gdal_translate -expand rgb '{meta.path}' OUT.tif`) and give that file instead"
        )


def dates_from_metadata(found: Discovery, metas: dict[Path, RasterMeta]) -> None:
    """Each entry without a date (none in its name) takes its file's acquisition date from GDAL's
    ``IMAGERY`` metadata (:attr:`RasterMeta.acquired`), where the file has one."""
    from changedetect.io._names import parse_date

    for entry in found.entries:
        acquired = metas[entry.path].acquired if entry.date is None and entry.path in metas else None
        if acquired is not None and (day := parse_date(acquired)) is not None:
            entry.date, entry.origin = day, "IMAGERY metadata (ACQUISITIONDATETIME)"
            log.info("%s: date %s from its IMAGERY metadata (%s)", entry.path, day, acquired)


def fill_placeholder_dates(found: Discovery, georeferenced: bool, pattern: str | None) -> bool:
    undated = [e for e in found.entries if e.date is None]
    if not undated:
        return False
    single_file = found.kind == "file"
    if (single_file or not georeferenced) and len(undated) == len(found.entries):
        for i, entry in enumerate(found.entries):
            entry.date, entry.origin = PLACEHOLDER_EPOCH + dt.timedelta(days=i), "file order"
        log.warning(
            "no date in the name(s) of %s: using placeholder dates from %s in file order",
            found.source,
            PLACEHOLDER_EPOCH,
        )
        return True
    how = f"the pattern {pattern!r}" if pattern else "a date like 20240131 or 2024-01-31"
    note = "" if pattern else undated_note(undated[0].path.name)
    raise TimeSeriesError(
        f"no date in the file name '{undated[0].path}'{note} (looked for {how}) nor in its IMAGERY metadata "
        "(ACQUISITIONDATETIME); rename it like "
        "'tile_20240131.tif', give a date pattern (pattern=... / --pattern REGEX), or list the files "
        "with their dates in a manifest (CSV/JSON with columns path,date)"
    )


def _unnamed(names: list[str]) -> bool:
    """Whether ``names`` are io's B1..Bn for a file whose bands have no names."""
    return names == [f"B{i}" for i in range(1, len(names) + 1)]


def check_same_bands(scenes: list[Scene]) -> None:
    first = scenes[0]
    ref = [b.info.name for b in first.bands]
    for i, scene in enumerate(scenes[1:], 1):
        names = [b.info.name for b in scene.bands]
        if len(names) != len(ref):
            lacks, extra = [n for n in ref if n not in names], [n for n in names if n not in ref]
            which = "" if _unnamed(names) or _unnamed(ref) else "".join(
                f"; it {verb} {', '.join(these)}" for verb, these in (("lacks", lacks), ("also has", extra)) if these)
            raise TimeSeriesError(
                f"{scene.date.isoformat()} ('{scene.files[0]}') has {len(names)} band(s) but "
                f"{first.date.isoformat()} ('{first.files[0]}') has {len(ref)}{which}; every date must have the "
                "same bands: drop the extra bands or list the wanted files in a manifest"
            )
        if names != ref:
            if sorted(names) != sorted(ref):
                unnamed = next(((s, n) for s, n in ((scene, names), (first, ref)) if _unnamed(n)), None)
                why = "" if unnamed is None else (
                    f": '{unnamed[0].files[0]}' has no band names (no band descriptions, and not tagged RGB), "
                    f"so its bands are {unnamed[1]}; name them in a manifest (path,date,bands with e.g. "
                    "red;green;blue) or set the file's band descriptions")
                raise TimeSeriesError(
                    f"{scene.date.isoformat()} ('{scene.files[0]}') has bands {names} but "
                    f"{first.date.isoformat()} has {ref}"
                    + (why or "; name the bands consistently (manifest 'bands' column)")
                )
            order = {n: k for k, n in enumerate(ref)}
            scenes[i] = Scene(
                scene.date, tuple(sorted(scene.bands, key=lambda b: order[b.info.name])), scl=scene.scl
            )


def check_overlap(scenes: list[Scene]) -> None:
    first = scenes[0]
    crs = first.grid.crs
    ref = first.grid.bounds
    for scene in scenes[1:]:
        bounds = geo.bounds_in(scene.grid, crs)
        if geo.intersection(ref, bounds) is None:
            _check_same_crs(scenes, scene)
            name = crs_name(crs) if crs is not None else "pixels"
            own = crs_name(scene.grid.crs) if scene.grid.crs is not None else name
            raise GeoreferenceError(
                f"{scene.date.isoformat()} ('{scene.files[0]}') covers {_fmt(bounds)} in {name}"
                f"{f' (its own CRS is {own})' if own != name else ''}, which does not overlap "
                f"{first.date.isoformat()} ('{first.files[0]}') at {_fmt(ref)}; check that the "
                "tiles show the same place and carry the right CRS"
            )


def _check_same_crs(scenes: list[Scene], apart: Scene) -> None:
    """Raise the error naming the CRS of the odd one out when ``apart`` does not overlap the first
    date, the two are in different CRSs and no date in ``apart``'s CRS overlaps the first: a tile
    tagged with the wrong CRS (or in another UTM zone) lands far away, and its CRS is what to fix."""
    first = scenes[0]
    if first.grid.crs is None or apart.grid.crs is None:
        return
    names = [crs_name(s.grid.crs) for s in scenes]
    if names[0] == crs_name(apart.grid.crs):
        return
    if any(n == crs_name(apart.grid.crs) and geo.intersection(first.grid.bounds, geo.bounds_in(s.grid, first.grid.crs))
           for s, n in zip(scenes, names, strict=True)):
        return  # a date in that CRS lies on the first: the CRS is not the trouble, the place is
    # the odd one out: the CRS fewer dates have; a tie (two dates): the later one, the first being the reference
    odd = first if names.count(names[0]) < names.count(crs_name(apart.grid.crs)) else apart
    mine = crs_name(odd.grid.crs)
    others = [s for s, n in zip(scenes, names, strict=True) if n != mine]
    stack = max(dict.fromkeys(crs_name(s.grid.crs) for s in others), key=lambda n: names.count(n))
    with_stack = [s for s in others if crs_name(s.grid.crs) == stack]
    tie = len(with_stack) == names.count(mine)
    what = (f"'{with_stack[0].files[0]}' ({with_stack[0].date.isoformat()}) is" if len(with_stack) == 1
            else f"the other {len(with_stack)} dates ('{with_stack[0].files[0]}', ...) are")
    which = "whichever CRS tag is wrong" if tie else "its CRS tag if that is wrong"
    raise GeoreferenceError(
        f"'{odd.files[0]}' ({odd.date.isoformat()}) is in {mine} but {what} in {stack}, and in these CRSs "
        f"they do not overlap: every date must show the same place; set {which} (e.g. `gdal_edit.py -a_srs "
        f"{stack} '{odd.files[0]}'`), else reproject the file onto {stack} (`gdalwarp -t_srs {stack} "
        f"'{odd.files[0]}' OUT.tif`) and give that file instead"
    )


def crs_name(crs: object) -> str:
    """``EPSG:32648`` for a registered CRS (:func:`changedetect.io.geo.crs_code`), else its name."""
    c = CRS.from_user_input(crs)
    return geo.crs_code(c) or c.name or c.to_string()[:80]


def _fmt(bounds: tuple[float, float, float, float]) -> str:
    return "(" + ", ".join(f"{v:.10g}" for v in bounds) + ")"


__all__ = [
    "PLACEHOLDER_EPOCH",
    "check_band_kind",
    "check_georeferencing",
    "check_gridded",
    "check_raster",
    "check_overlap",
    "check_same_bands",
    "dates_from_metadata",
    "fill_placeholder_dates",
]
