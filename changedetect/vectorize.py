"""From a change probability raster to building footprints.

Steps (each strip of rows of the raster at a time, so memory stays bounded)::

    hysteresis threshold -> opening / closing / small holes filled -> label
    -> polygons (rasterio.features.shapes) -> merge across strip seams
    -> drop small -> simplify -> regularise -> attributes

*Hysteresis*: a pixel is kept when its probability reaches ``low_threshold``
and it is connected (8-neighbours) to a pixel reaching ``threshold``, so the
weak edges of a strongly detected building stay attached while weak blobs on
their own are dropped.  Strips overlap by ``strip_overlap`` rows, so the mask
of a strip's own rows is the same as if the whole raster had been processed
at once (as long as a building's weak part is within the overlap of a strong
part); a building cut by a strip seam comes out as pieces sharing an edge on
the seam, and pieces sharing a seam edge are dissolved: one building, one
polygon.

*Regularisation* (``regularize=True``): a polygon filling at least
``rectangularity`` of its minimum rotated rectangle becomes that rectangle
(scaled to the polygon's area); other shapes are squared to their dominant
direction (see :func:`changedetect._vectorize_shapes.regularize`).  The
``buildingregulariser`` package (MIT) was evaluated too; see ``docs/permits.md``.

Columns of the result (CRS of the probability raster):
``footprint_id`` (stable: see :func:`changedetect._vectorize_shapes.footprint_ids`; with the
previous run's footprints, carried over by overlap: :func:`changedetect._vectorize_shapes.carry_ids`),
``area_m2``, ``prob_mean``, ``prob_max`` (over the footprint's pixels),
``first_seen`` (median first-seen date of its pixels, ``NaT`` without a series),
``change_type`` (``new`` / ``altered`` / ``demolished``: see
:func:`changedetect._change_types.change_types`), ``model``, ``model_version``, ``geometry``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from changedetect._change_presence import presence_means, presence_types
from changedetect._change_types import change_types
from changedetect._config_toml import stage_config
from changedetect._vectorize_config import VectorizeConfig
from changedetect._vectorize_raster import (
    clean_mask,
    first_seen_days,
    hysteresis,
    merge_seams,
    trace_strip,
)
from changedetect._vectorize_shapes import carry_ids, regularize
from changedetect.io.geo import ground_pixel, in_metres
from changedetect.io.vectors import load_previous
from changedetect.types import Grid, nodata_as_nan, transform_of

log = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = (
    "footprint_id", "area_m2", "prob_mean", "prob_max", "first_seen", "change_type", "model", "model_version",
)

#: the column types of a result with footprints (:func:`_attributes`), given to one without
_EMPTY_TYPES: dict[str, object] = {
    "footprint_id": str, "area_m2": np.float64, "prob_mean": np.float32, "prob_max": np.float32,
    "first_seen": pd.to_datetime(pd.Series([], dtype=float), unit="D").dtype, "change_type": str,
    "model": str, "model_version": str,
}


def vectorize(
    prob: xr.DataArray,
    *,
    first_seen: xr.DataArray | None = None,
    before: xr.DataArray | None = None,
    after: xr.DataArray | None = None,
    buildings: gpd.GeoDataFrame | None = None,
    previous: gpd.GeoDataFrame | None = None,
    presence: tuple[xr.DataArray, xr.DataArray] | None = None,
    config: VectorizeConfig | Mapping[str, Any] = VectorizeConfig(),
    progress: bool = False,
) -> gpd.GeoDataFrame:
    """Building footprints of a change probability raster.

    Parameters
    ----------
    prob
        ``(y, x)`` float in [0, 1], NaN for no data, georeferenced (rioxarray);
        attrs ``model`` and ``model_sha256`` / ``model_version`` are copied.  A one-band
        ``(band, y, x)`` raster, as ``rioxarray.open_rasterio`` reads a file, is taken as ``(y, x)``
        (so are ``first_seen`` and ``presence``).
    first_seen
        ``(y, x)`` datetime64, or float days since 1970-01-01 (NaN: never), on the same grid.
    before, after
        ``(band, y, x)`` images on the same grid (band names ``red``, ``green``,
        ``blue``, ``nir``), used to tell new / altered / demolished; a declared nodata
        (``da.rio.nodata``) is no pixel.
    buildings
        Existing buildings before the change (any CRS), used the same way.
    presence
        ``(before, after)`` building probabilities ``(y, x)`` on the same grid (a
        single-date building segmenter's): ``change_type`` is then read from them
        (:mod:`changedetect._change_presence`); an existing-buildings layer still wins.
        They also keep the clean-up's closing from joining a building that appeared to one
        that went (:func:`~changedetect._vectorize_raster.close_within`).
    previous
        The footprints of the previous run over the same ground (any CRS, with
        their ``footprint_id``): a footprint that overlaps one of them well
        takes its id, so a structure keeps its id from run to run even when its
        outline changes a little (see ``carry_min_iou``).
    config
        Thresholds, clean-up and regularisation: a :class:`VectorizeConfig`, or a dict of its fields
        as the TOML file's ``[vectorize]`` table has them.
    progress
        Show a progress bar over the raster's strips of ``config.strip_rows`` rows.

    Returns
    -------
    geopandas.GeoDataFrame
        :data:`COLUMNS` + ``geometry``, largest first.
    """
    config = stage_config(config, VectorizeConfig, call="vectorize", table="vectorize")
    prob = _plane(prob, "a change probability")
    first_seen = None if first_seen is None else _plane(first_seen, "a first-seen raster")
    if presence is not None:
        presence = (_plane(presence[0], "a building probability"), _plane(presence[1], "a building probability"))
    config = config.for_probability(prob)
    transform = transform_of(prob)
    crs = prob.rio.crs
    shape = (int(prob.shape[0]), int(prob.shape[1]))
    pixel_m2, unit_m = ground_pixel(Grid.of(prob)) if prob.rio.crs is not None else (
        abs(transform.a * transform.e), 1.0)
    if presence is not None and any(tuple(p.shape) != shape for p in presence):
        raise ValueError(f"presence rasters {[tuple(p.shape) for p in presence]} are not on the probability's "
                         f"grid {shape}: give the segmenter's rasters of the same scene")
    days = first_seen_days(first_seen, shape)
    if progress:  # tqdm.auto warns in a notebook without ipywidgets, bar or not
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm

    strips = range(0, shape[0], config.strip_rows)
    pieces = [p for r0 in tqdm(strips, desc="vectorize", unit="strip", disable=not progress or len(strips) < 2)
              for p in trace_strip(prob, days, r0, transform, pixel_m2, config, presence)]
    merged = merge_seams(pieces)
    frame = _attributes(merged, crs, config, pixel_m2, unit_m)
    means = None
    if presence is not None and len(frame):
        geoms = np.asarray(frame.geometry.values)
        pb, pa = (presence_means(geoms, np.asarray(p.values), transform) for p in presence)
        if config.min_presence is not None:  # before the ids: a dropped blob takes none from a building
            unbuilt = (pb < config.min_presence) & (pa < config.min_presence)  # NaN on either: kept
            frame, pb, pa = frame[~unbuilt].reset_index(drop=True), pb[~unbuilt], pa[~unbuilt]
            if unbuilt.any():
                log.info("dropped %d footprints with no building on either date (building probability "
                         "< %.2f before and after)", int(unbuilt.sum()), config.min_presence)
        means = (pb, pa)
    if len(frame):  # the kind before the ids: a demolition and a rebuild on its lot are two structures
        from changedetect._pipeline_steps import hold

        # each footprint reads a window of both images: a lazy warp (coregister's) is computed once, not per footprint
        # a date's declared nodata (rioxarray's _FillValue) is no pixel, not black ground that stretches the
        # brightness range the contrasts are measured on
        before, after = (None if im is None else hold(nodata_as_nan(im)) for im in (before, after))
        frame["change_type"] = change_types(frame.geometry, before=before, after=after, buildings=buildings,
                                            transform=transform, shape=shape)
        if means is not None and (buildings is None or not len(buildings)):  # a buildings layer wins for the kind
            frame["change_type"] = presence_types(*means, list(frame["change_type"]))
    # the kinds keep a demolition's id from a rebuild on its lot, when they rest on evidence
    # (without images, presence or a buildings layer every footprint is `new` by default)
    typed = means is not None or (buildings is not None and len(buildings) > 0) or (
        before is not None and after is not None)
    frame["footprint_id"] = carry_ids(frame.geometry, previous, min_iou=config.carry_min_iou,
                                      min_cover=config.carry_min_cover,
                                      kinds=list(frame["change_type"]) if typed and len(frame) else None)
    frame["model"] = str(prob.attrs.get("model", ""))
    frame["model_version"] = str(prob.attrs.get("model_version") or str(prob.attrs.get("model_sha256", ""))[:12])
    carried = int(frame["footprint_id"].isin(set(previous["footprint_id"].astype(str))).sum()) \
        if previous is not None and len(previous) else 0
    log.info("vectorised %d footprints (%d pieces before seam merge; %d ids carried over from %d previous)",
             len(frame), len(pieces), carried, 0 if previous is None else len(previous))
    out = gpd.GeoDataFrame(frame[list(COLUMNS) + ["geometry"]], geometry="geometry", crs=crs)
    if not len(out):  # nothing found: the columns of a full result, typed (concat, .dt, a GeoPackage's fields)
        out = out.astype(_EMPTY_TYPES)
    out.attrs["carried_ids"] = carried
    return out


def _plane(raster: xr.DataArray, what: str) -> xr.DataArray:
    """``raster`` as ``(y, x)``: a one-band raster as rioxarray reads a file, ``(band: 1, y, x)``, loses
    its band (attrs, CRS and transform kept)."""
    if not isinstance(raster, xr.DataArray):
        raise TypeError(f"{what} must be an xarray.DataArray (y, x) with its CRS and transform (rioxarray), as "
                        "detect_pair gives it or rioxarray.open_rasterio(path) reads a file; got "
                        f"{type(raster).__name__}")
    if raster.ndim == 3 and "band" in raster.dims and raster.sizes["band"] == 1:
        raster = raster.isel(band=0, drop=True).assign_attrs(raster.attrs)
    if raster.ndim != 2:
        raise ValueError(f"{what} is (y, x); got dims {raster.dims}{dict(raster.sizes)}: select one band "
                         "(.isel(band=i)) or date (.isel(time=i))")
    return raster


def _attributes(pieces: list[dict], crs: object, config: VectorizeConfig, pixel_m2: float,
                unit_m: float = 1.0) -> gpd.GeoDataFrame:
    if not pieces:
        empty = {c: pd.Series(dtype=object) for c in COLUMNS}
        return gpd.GeoDataFrame(empty, geometry=gpd.GeoSeries([], crs=crs), crs=crs)
    frame = gpd.GeoDataFrame(pieces, geometry="geometry", crs=crs)
    frame = frame[in_metres(frame, unit_m).area.to_numpy() >= config.min_area_m2].reset_index(drop=True)
    geoms = frame.geometry.simplify(config.simplify_m / unit_m, preserve_topology=True)
    if config.regularize:
        tol = max(config.simplify_m, pixel_m2 ** 0.5) / unit_m  # in CRS units
        geoms = gpd.GeoSeries([regularize(g, rectangularity=config.rectangularity, tolerance=tol,
                                          min_iou=config.regularize_min_iou) for g in geoms], crs=crs)
    frame = frame.set_geometry(geoms.make_valid() if len(geoms) else geoms)
    frame["area_m2"] = np.round(in_metres(frame, unit_m).area.to_numpy(), 2)
    frame["prob_mean"] = np.round(frame["sum"] / np.maximum(frame["count"], 1), 4).astype(np.float32)
    frame["prob_max"] = frame["max"].astype(np.float32)
    frame["first_seen"] = pd.to_datetime(frame["days"], unit="D", errors="coerce")
    frame = frame.sort_values("area_m2", ascending=False, kind="stable").reset_index(drop=True)
    frame["change_type"] = "new"
    return frame


def vectorize_file(
    prob_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    first_seen_path: str | os.PathLike[str] | None = None,
    before_path: str | os.PathLike[str] | None = None,
    after_path: str | os.PathLike[str] | None = None,
    buildings_path: str | os.PathLike[str] | None = None,
    previous_path: str | os.PathLike[str] | None = None,
    config: VectorizeConfig | Mapping[str, Any] = VectorizeConfig(),
    overwrite: bool = False,
    progress: bool = False,
) -> gpd.GeoDataFrame:
    """:func:`vectorize` a probability GeoTIFF and write the footprints (any :func:`write_vector` format).

    ``first_seen_path``: a raster of days since 1970-01-01 (as ``changedetect
    detect --series`` writes it) on the same grid; ``before_path`` /
    ``after_path``: images on the same grid (bands named in their
    descriptions, else red, green, blue, nir); ``buildings_path``: existing buildings;
    ``previous_path``: the previous run's footprints (:func:`load_previous`), whose ids are carried over.
    """
    config = stage_config(config, VectorizeConfig, call="vectorize_file", table="vectorize")
    import rioxarray

    from changedetect.io.atomic import not_an_input
    from changedetect.io.vectors import write_vector

    # the previous run's footprints may be replaced by tonight's (their ids carried over): not the buildings
    not_an_input(out, {"buildings layer": buildings_path}, becomes="the footprints", where="--out")
    if Path(out).exists() and not overwrite:
        from changedetect.errors import OutputExistsError

        raise OutputExistsError(f"output '{out}' already exists; pass --overwrite to replace it")

    def _open(path: str | os.PathLike[str], *, bands: bool) -> xr.DataArray:
        from rasterio.errors import RasterioIOError

        from changedetect.io._checks import check_raster
        from changedetect.io._inspect import inspect_raster

        try:
            da = rioxarray.open_rasterio(path, masked=True, chunks={"x": 2048, "y": 2048})
        except RasterioIOError:
            inspect_raster(Path(path))  # a missing or foreign file: one TileReadError naming it and why
            raise
        check_raster(inspect_raster(Path(path)))  # GCPs or RPCs alone, a complex or palette band: as io's reads
        if not isinstance(da, xr.DataArray):
            raise ValueError(f"'{path}' holds several subdatasets; give one raster")
        if not bands:
            stored = np.dtype(da.encoding.get("dtype", da.dtype))  # as in the file (masked reads are float)
            if da.sizes.get("band", 1) != 1 or not np.issubdtype(stored, np.floating):
                from changedetect.errors import ConfigError

                raise ConfigError(f"'{path}' has {da.sizes.get('band', 1)} band(s) of {stored}: PROB is a change "
                                  "probability raster, one float band in [0, 1] (what `changedetect detect` "
                                  "writes), not an image")
            return da.isel(band=0, drop=True).assign_attrs(da.attrs)
        names = da.attrs.get("long_name")
        names = list(names) if isinstance(names, list | tuple) else ["red", "green", "blue", "nir"][: da.sizes["band"]]
        return da.assign_coords(band=[str(n).lower() for n in names])

    prob = _open(prob_path, bands=False)
    if prob.rio.crs is None:  # the footprints could not be written, after all the work
        from changedetect.errors import GeoreferenceError

        raise GeoreferenceError(f"'{prob_path}' has no CRS: footprints need one (map coordinates, areas in m²); "
                                "`changedetect detect` writes none when its BEFORE and AFTER have none (PNG/JPEG): "
                                "detect on GeoTIFFs with their CRS and grid, or georeference this raster "
                                "(gdal_edit.py -a_srs EPSG:32648 -a_ullr ULX ULY LRX LRY)")
    try:
        buildings = gpd.read_file(buildings_path) if buildings_path else None
    except Exception as exc:  # noqa: BLE001 - pyogrio raises many kinds
        from changedetect.errors import ConfigError
        from changedetect.io._unreadable import vector_reason

        raise ConfigError(f"buildings: cannot read '{buildings_path}': {vector_reason(str(buildings_path), exc)}") from None
    previous = load_previous(previous_path) if previous_path else None
    frame = vectorize(
        prob,
        first_seen=_open(first_seen_path, bands=False) if first_seen_path else None,
        before=_open(before_path, bands=True) if before_path else None,
        after=_open(after_path, bands=True) if after_path else None,
        buildings=buildings, previous=previous, config=config, progress=progress,
    )
    if not len(frame) and not bool(np.isfinite(prob).any()):  # read again only when nothing was found
        # as rasterio's shapes() and gdal_polygonize do, an empty raster gives an empty layer (a nightly
        # run's quiet night is not a failure); but a PROB with no data at all is not "no change": say so
        log.warning("'%s' has no data (every pixel is NaN or nodata): no footprint can be found in it, and the "
                    "empty %s says nothing about the ground; give the probability raster of a scene with data "
                    "(check the dates' coverage with `changedetect info`)", prob_path, out)
    write_vector(frame, out, overwrite=overwrite, empty_geometry_type="Polygon")
    return frame


__all__ = ["COLUMNS", "VectorizeConfig", "clean_mask", "hysteresis", "load_previous", "vectorize",
           "vectorize_file"]
