"""Co-registration of a tile time series: every date aligned, sub-pixel, onto the reference date.

Pure functions over a :data:`~changedetect.types.TileStack` already on one grid
(reading onto one grid, whatever each file's CRS and resolution, happens in
:meth:`changedetect.io.SeriesSource.to_stack`).  For each date against the reference:

1. a **global sub-pixel shift** by phase correlation of gradient magnitudes (of the band mean,
   or for a stack with red and green bands of the *material edges*: brightness edges weighted
   by their share of colour change, so that cast shadows and sun-lit slopes, which move with the
   sun, hardly count), the sub-pixel peak located on the band-limited correlation surface
   (Newton's method on its exact derivatives), with a reliability test
   (peak-to-second-peak ratio and SNR); a date that fails it gets a warning and is left
   unshifted, never shifted by a guess;
2. **tie points** on a grid of windows, low-texture windows dropped, outliers (changed
   blocks, clouds, shadows) rejected against a robust trend and against neighbours, and a
   smooth **local shift field** (thin-plate smoothing spline, as smooth as the tie points'
   own noise asks), applied where it departs
   from the global shift by more than ``local_min_variation``;
3. a lazy **warp** (cubic by default), block by block with a halo: bounded memory;
4. a per-band **radiometric normalisation** on pseudo-invariant pixels (IR-MAD-style weights).

Example
-------
>>> from changedetect.io import open_stack
>>> stack = open_stack("sample_tiles")                                # doctest: +SKIP
>>> aligned, report = coregister(stack)                               # doctest: +SKIP
>>> report.to_json("out/coregistration.json")                          # doctest: +SKIP

Lower-level functions on numpy arrays, used by the benchmark and handy in notebooks:
:func:`estimate_shift`, :func:`estimate_shift_field`, :func:`apply_shift_field`,
:func:`normalize_radiometry`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from collections.abc import Mapping
from typing import Any

import dask.array as da
import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)

from changedetect._config_toml import stage_config
from changedetect._coregister_config import CoregisterConfig, _config_dict, _reference_index
from changedetect._dask_cull import compute
from changedetect._registration.blocks import BlockImage, prefetch
from changedetect._registration.field import ShiftField, estimate_shift_field
from changedetect._registration.matching import chromatic_bands, matching_kind, material_edges_of
from changedetect._registration.radiometry import (
    Radiometry,
    fit_radiometry_sampled,
    normalize_radiometry,
)
from changedetect._registration.report import CoregistrationReport, DateRegistration
from changedetect._registration.shift import ShiftEstimate, estimate_shift
from changedetect._registration.warp import apply_shift_field, warp_lazy
from changedetect._registration.windows import (
    check_coverage,
    finite_cover,
    pair_cover,
    place_windows,
    regular_origins,
)
from changedetect.errors import SAID_IN_RESULT, CoregistrationError, CoregistrationWarning
from changedetect.types import (
    Grid,
    TileStack,
    band_names,
    check_tilestack,
    nodata_as_nan,
    transform_of,
)

logger = logging.getLogger(__name__)

#: Matching images up to this many pixels are held in memory; larger ones are read window by window.
_IN_MEMORY_PIXELS = 4096 * 4096
#: Below this many pixels across, a date's report warns that its shift is rough (tests/test_review_coregister.py)
SMALL_SCENE_PX = 64


def needs_coverage(height: int, width: int) -> bool:
    """Whether dates on a grid this large are read window by window (over 4096² px), so that
    :func:`coregister` cannot find where a date has data on its own and takes ``coverage``."""
    return height * width > _IN_MEMORY_PIXELS


def coregister(
    stack: TileStack, *, config: CoregisterConfig | Mapping[str, Any] = CoregisterConfig(), progress: bool = False,
    coverage: Any = None,
) -> tuple[TileStack, CoregistrationReport]:
    """Align every date of ``stack`` onto its reference date.

    Parameters
    ----------
    stack
        ``(time, band, y, x)`` TileStack on one grid (numpy- or dask-backed); NaN is no data, and so
        is the value it declares as its nodata (``stack.rio.nodata``: dates read with
        ``rioxarray.open_rasterio(path)``, a uint16 collar of 0), which the aligned stack has as NaN
        (:func:`changedetect.types.nodata_as_nan`).
    config
        See :class:`CoregisterConfig`; or a dict of its fields, as the TOML file's ``[coregister]``.
    progress
        Show a progress bar over the dates.
    coverage
        Where each date has data: ``(time, y', x')`` bool on a coarser grid of the same extent
        (:meth:`changedetect.io.SeriesSource.coverage`), or ``(y', x')`` for every date.  Only worth
        giving for a date too large to hold (over 4096² px) that covers part of its grid: its
        measuring windows are then moved into the data it shares with the reference instead of
        failing on no data, and its tie points spread over that data.  Smaller dates find their own.

    Returns
    -------
    (TileStack, CoregistrationReport)
        The aligned stack (same grid, coords and attrs; lazy, dask-backed) and the report.

    Raises
    ------
    CoregistrationError
        The reference date is not in the stack or the stack is too small to register.

    Warns
    -----
    CoregistrationWarning
        For each date that cannot be registered reliably (it is left unshifted).
    """
    config = stage_config(config, CoregisterConfig, call="coregister", table="coregister")
    check_tilestack(stack)
    stack = nodata_as_nan(stack)  # a declared nodata (a uint16 collar of 0) is no data, not black ground
    start = time.perf_counter()
    ref_idx = _reference_index(stack, config.reference)
    cover = check_coverage(coverage, stack.sizes["time"])
    data = stack.data if isinstance(stack.data, da.Array) else da.from_array(np.asarray(stack.data), chunks=(1, 1, 1024, 1024))
    kind = matching_kind(band_names(stack), config.band, config.matching)
    _check_size(stack)  # before the matching image: its gradients need two pixels a side
    ref_match = _matching_image(stack, data, ref_idx, config.band, kind)
    h, w = ref_match.shape
    bands = band_names(stack)
    dates = [str(np.datetime_as_string(t, unit="D")) for t in stack["time"].values]
    out_dates, entries = [], []
    iterator = range(stack.sizes["time"])
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="co-registering", unit="date")
    for i in iterator:
        if i == ref_idx:
            out_dates.append(data[i])
            entries.append(_reference_entry(dates[i], bands))
            continue
        mov_match = _matching_image(stack, data, i, config.band, kind)
        aligned, entry = _register_date(data, ref_idx, i, ref_match, mov_match, stack, config, dates[i], bands,
                                        kind, pair_cover(cover, ref_idx, i))
        out_dates.append(aligned)
        entries.append(entry)
    result = stack.copy(data=da.stack(out_dates, axis=0).astype(np.float32))
    report = CoregistrationReport(
        reference=dates[ref_idx],
        crs=_crs_string(stack),
        transform=tuple(float(v) for v in tuple(transform_of(stack))[:6]),
        shape=(h, w),
        dates=entries,
        config=_config_dict(config),
        seconds=time.perf_counter() - start,
    )
    return result, report


def _register_date(
    data: da.Array, ref_idx: int, i: int, ref_match: Any, mov_match: Any, stack: TileStack,
    config: CoregisterConfig, date: str, bands: list[str], kind: str, cover: np.ndarray | None = None,
) -> tuple[da.Array, DateRegistration]:
    """Estimate, warp and normalise one date (lazily); ``cover``: where both dates have data, coarse."""
    glob = estimate_global_shift(ref_match, mov_match, config=config, edges=kind == "material", coverage=cover)
    if not glob.reliable and kind == "material":  # e.g. a grey scene: fall back to brightness
        ref_match = _matching_image(stack, data, ref_idx, config.band, "mean")
        mov_match = _matching_image(stack, data, i, config.band, "mean")
        glob, kind = estimate_global_shift(ref_match, mov_match, config=config, coverage=cover), "mean"
    entry = DateRegistration(date=date, status="global", peak_ratio=glob.peak_ratio, snr=glob.snr,
                             reliability=glob.reliability, matching=kind if config.band is None else config.band)
    if not glob.reliable:
        msg = (f"date {date} could not be registered reliably against {_date_of(stack, ref_idx)}: "
               f"{glob.reason or 'the match failed'} (measured shift {glob.dx:+.2f}, {glob.dy:+.2f} px, "
               f"peak ratio {glob.peak_ratio:.2f}, SNR {glob.snr:.1f}; not trusted): no shift applied. "
               + _advice(glob, config))
        # logged first: a command that prints the report's warnings drops this record (SAID_IN_RESULT), and
        # with it the warning of the same text
        logger.warning(msg, extra=SAID_IN_RESULT)
        warnings.warn(msg, CoregistrationWarning, stacklevel=3)
        entry.status, entry.reliability, entry.reason = "unreliable", 0.0, glob.reason or "the match failed"
        entry.warnings.append(msg)
        entry.gain, entry.offset = dict.fromkeys(bands, 1.0), dict.fromkeys(bands, 0.0)
        return data[i], entry
    entry.shift_px = (glob.dx, glob.dy)
    entry.shift_m = _to_metres(stack, glob.dx, glob.dy)
    side = min(stack.sizes["y"], stack.sizes["x"])
    if side < SMALL_SCENE_PX:  # measured: 0.15-0.7 px off at 32-40 px, 0.02-0.09 px from 64 px
        entry.warnings.append(f"the scene is only {side} px across: a shift measured on so few pixels is "
                              "accurate to a few tenths of a pixel at best; register a larger area")
    field_cover = cover if cover is not None else finite_cover(ref_match, mov_match, config.window)
    fld = _choose_field(ref_match, mov_match, glob, config, entry, edges=kind == "material", cover=field_cover)
    entry.shift_field = fld
    warped = da.stack([warp_lazy(data[i, b], fld, order=config.order) for b in range(len(bands))], axis=0)
    if config.radiometric:
        radio = fit_radiometry_sampled(data[ref_idx], warped, cover=cover if cover is not None else
                                       finite_cover(ref_match, mov_match, 256), mov=data[i], fld=fld,
                                       order=config.order)
        entry.gain = dict(zip(bands, radio.gain, strict=True))
        entry.offset = dict(zip(bands, radio.offset, strict=True))
        entry.invariant_fraction = radio.invariant_fraction
        if radio.unfitted:
            entry.warnings.append(
                f"radiometric normalisation not applied to band(s) {', '.join(bands[b] for b in radio.unfitted)}: "
                "on its pseudo-invariant pixels the fit explains little (clouds, haze or change over most of the date?)")
        gain = np.asarray(radio.gain, np.float32)[:, None, None]
        offset = np.asarray(radio.offset, np.float32)[:, None, None]
        warped = warped * gain + offset
    return warped, entry


def _advice(glob: ShiftEstimate, config: CoregisterConfig) -> str:
    """What to do about a date refused for ``glob.reason``."""
    if "max_shift" in glob.reason and "peak ratio" not in glob.reason and "SNR" not in glob.reason:
        return ("If the dates really are that far apart, raise CoregisterConfig(max_shift=...) "
                f"(now {config.max_shift:g} px)")
    if "disagree" in glob.reason:
        return ("Check that both dates are orthorectified onto the same grid and resolution; the central "
                "window alone is CoregisterConfig(global_grid=1)")
    if "every pixel is nodata" in glob.reason:
        return ("Check that date's tiles (`changedetect info` gives each date's nodata share): copy them again, "
                "or leave the date out")
    if "windows matched" in glob.reason:
        return ("Most of the scene has too little texture in common (water, bare ground, cloud, a changed "
                "area?): check the date's coverage and cloud, or register a smaller, textured area")
    return "Check that it covers the same place and is not cloud-covered"


def estimate_global_shift(
    ref: Any, mov: Any, *, config: CoregisterConfig | Mapping[str, Any] = CoregisterConfig(), edges: bool = False,
    coverage: np.ndarray | None = None,
) -> ShiftEstimate:
    """Global shift of ``mov`` against ``ref`` (2-D numpy or dask arrays of one shape).

    Measured on a representative subset: the whole image when it is hardly larger than
    ``config.global_window``; else its central window (falling back to the whole image
    when that window cannot be matched, e.g. under a cloud); and on scenes over four
    windows wide, the median of a ``global_grid`` x ``global_grid`` grid of windows, which
    must agree (within 1 px); when fewer than a third of them match (texture in one corner only),
    the whole image (when in memory) confirmed by the windows that did.  Only those windows are read.
    A window mostly on no data (where either image has none) is moved to the nearest place on data
    first (:func:`~changedetect._registration.windows.place_windows`): a date covering one corner of
    the grid is measured in that corner.  ``coverage``: where both have data, a coarse ``(h', w')`` bool
    image on the same extent, for images too large to hold (the in-memory ones give their own).
    An unreliable estimate's ``reason`` says which test it failed.  ``edges``: ``ref`` and ``mov`` are edge-strength
    images (``matching="material"``), correlated as they are.
    """
    config = stage_config(config, CoregisterConfig, call="estimate_global_shift", table="coregister")
    h, w = ref.shape
    kw: dict[str, Any] = {"max_shift": config.max_shift, "min_peak_ratio": config.min_peak_ratio,
                          "min_snr": config.min_snr, "iterations": config.iterations, "edges": edges}
    size = config.global_window
    if max(h, w) <= 1.25 * size:
        return estimate_shift(np.asarray(ref), np.asarray(mov), **kw)
    n = 1 if max(h, w) < 4 * size else max(1, config.global_grid)
    origins = regular_origins((h, w), size, n)
    if n > 1:
        cover = coverage if coverage is not None else finite_cover(ref, mov, size)
        origins = place_windows(origins, (h, w), size, cover)
    for img in (ref, mov):  # a BlockImage's blocks under every window in one go
        prefetch(img, [(r, r + size, c, c + size) for r, c in origins])
    ests = [estimate_shift(np.asarray(ref[r:r + size, c:c + size]), np.asarray(mov[r:r + size, c:c + size]), **kw)
            for r, c in origins]
    good = [e for e in ests if e.reliable]
    if n == 1:
        if good or h * w > _IN_MEMORY_PIXELS:
            return ests[0]
        return estimate_shift(np.asarray(ref), np.asarray(mov), **kw)
    need = max(2, len(ests) // 3)
    if len(good) < need:
        best = max(good or ests, key=lambda e: e.peak_ratio)
        if good and h * w <= _IN_MEMORY_PIXELS:
            # texture in a corner only (the rest smooth, water, cloud): the whole scene, matched on its
            # own, confirmed by every window that matched
            whole = estimate_shift(np.asarray(ref), np.asarray(mov), **kw)
            if whole.reliable and all(np.hypot(e.dx - whole.dx, e.dy - whole.dy) < 1.0 for e in good):
                return whole
        why = (f"only {len(good)} of {len(ests)} measuring windows matched (at least {need} needed"
               + ("" if h * w > _IN_MEMORY_PIXELS or not good else
                  ", and the whole scene, matched on its own, did not confirm them") + ")")
        return ShiftEstimate(best.dx, best.dy, 0.0, best.peak_ratio, best.snr, False,
                             why + ("" if good else f"; the best window: {best.reason}"))
    dx = float(np.median([e.dx for e in good]))
    dy = float(np.median([e.dy for e in good]))
    spread = float(np.median([np.hypot(e.dx - dx, e.dy - dy) for e in good]))
    reliable = spread < 1.0
    why = "" if reliable else (
        f"the {len(good)} matched windows disagree (their shifts lie a median {spread:.1f} px from the "
        "median shift; under 1 px needed): the date is rotated, scaled or distorted against the reference")
    return ShiftEstimate(dx, dy, float(np.median([e.reliability for e in good])) if reliable else 0.0,
                         float(np.median([e.peak_ratio for e in good])), float(np.median([e.snr for e in good])),
                         reliable, why)


def _choose_field(
    ref: Any, mov: Any, glob: ShiftEstimate, config: CoregisterConfig, entry: DateRegistration, *,
    edges: bool = False, cover: np.ndarray | None = None,
) -> ShiftField:
    """Tie points (spread over ``cover``, where both dates have data, when given); the local field if it is
    asked for, well supported and not constant, else the global shift."""
    shape = tuple(ref.shape)
    uniform = ShiftField.uniform(shape, glob.dx, glob.dy)  # type: ignore[arg-type]
    params = dataclasses.replace(config.field_params(), edges=edges)
    fld = estimate_shift_field(ref, mov, params=params, initial=(glob.dx, glob.dy), cover=cover)
    entry.tie_points_found, entry.tie_points_kept = fld.n_found, fld.n_kept
    if config.local and fld.n_kept < config.min_tie_points:
        entry.warnings.append(f"local field not applied: only {fld.n_kept} reliable tie points "
                              f"(at least {config.min_tie_points} needed); global shift applied")
    if fld.n_kept == 0:
        return uniform
    k = fld.kept
    dev = np.hypot(fld.dx[k] - glob.dx, fld.dy[k] - glob.dy)
    rms_global = float(np.sqrt(np.mean(dev**2)))
    use_local = config.local and fld.n_kept >= config.min_tie_points and rms_global > config.local_min_variation
    if not use_local:
        entry.residual_rmse_px = rms_global
        return uniform
    entry.status = "local"
    res = fld.residuals()
    entry.residual_rmse_px = float(np.sqrt(np.mean(res**2))) if res.size else None
    h, w = shape
    rr, cc = np.meshgrid(np.linspace(0, h - 1, 33), np.linspace(0, w - 1, 33), indexing="ij")
    if cover is not None and cover.any():  # where there is data: the field is extrapolated elsewhere
        on = cover[np.minimum((rr * cover.shape[0] / h).astype(int), cover.shape[0] - 1),
                   np.minimum((cc * cover.shape[1] / w).astype(int), cover.shape[1] - 1)]
        rr, cc = (rr[on], cc[on]) if on.any() else (rr, cc)
    ex, ey = fld.evaluate(rr, cc)
    entry.max_local_px = float(np.max(np.hypot(ex - glob.dx, ey - glob.dy)))
    return fld


def _matching_image(stack: TileStack, data: da.Array, i: int, band: str | None, kind: str = "mean") -> Any:
    """The 2-D image used for matching: one band, the material edges, or the NaN-aware mean of all bands;
    in memory up to :data:`_IN_MEMORY_PIXELS`, else a :class:`BlockImage`, computed only under the windows
    the shifts are measured on (a sparse mosaic's empty blocks cost neither memory nor disk)."""
    names = band_names(stack)
    if band is not None:
        img = data[i, _band_index(stack, names, band)]
        return compute(img)[0] if img.size <= _IN_MEMORY_PIXELS else BlockImage(img, dtype=img.dtype)
    if kind == "material":
        red, green = chromatic_bands(names)  # type: ignore[misc]
        return material_edges_of(data[i], red, green, in_memory_pixels=_IN_MEMORY_PIXELS)
    if data[i, 0].size <= _IN_MEMORY_PIXELS:  # small: read once
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return compute(da.nanmean(data[i], axis=0))[0]
    return BlockImage(data[i], _band_mean)


def _band_index(stack: TileStack, names: list[str], band: str) -> int:
    """Where the matching ``band`` is: its name, else (a file read by rioxarray, whose bands take their
    descriptions as names) the file's band number it has in the ``band`` coordinate."""
    if band in names:
        return names.index(band)
    numbers = [str(v) for v in np.atleast_1d(stack["band"].values)] if "band" in stack.coords else []
    if band in numbers and numbers != names:
        return numbers.index(band)
    also = f" (band numbers {numbers})" if numbers and numbers != names else ""
    raise CoregistrationError(f"matching band {band!r} is not in the stack; bands are {names}{also}")


def _band_mean(bands: np.ndarray) -> np.ndarray:
    """The NaN-aware mean of ``(b, h, w)`` bands (NaN where no band has data)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(bands, axis=0)


def _check_size(stack: TileStack) -> None:
    """Refuse a grid too small to register on, saying how large it is on the ground and what to do."""
    h, w = int(stack.sizes["y"]), int(stack.sizes["x"])
    if min(h, w) >= 32:
        return
    try:
        res = abs(float(transform_of(stack).a))
        ground = f" ({w * res:g} x {h * res:g} m at {res:g} m a pixel)"
    except Exception:  # noqa: BLE001 - only the message's detail
        ground = ""
    raise CoregistrationError(f"the stack is {h}x{w} pixels{ground}; at least 32x32 pixels are needed to "
                              "register dates: give a finer resolution (--resolution, resolution= in Python) "
                              "or tiles that cover more ground")


def _reference_entry(date: str, bands: list[str]) -> DateRegistration:
    return DateRegistration(date=date, status="reference", gain=dict.fromkeys(bands, 1.0),
                            offset=dict.fromkeys(bands, 0.0))


def _date_of(stack: TileStack, i: int) -> str:
    return str(np.datetime_as_string(stack["time"].values[i], unit="D"))


def _to_metres(stack: TileStack, dx: float, dy: float) -> tuple[float, float]:
    """``(east, north)`` ground displacement in metres (pixels where there is no CRS)."""
    from changedetect.io.geo import pixel_size_m

    try:
        grid = Grid.of(stack)
        xs, ys = pixel_size_m(grid)
    except Exception:  # no georeferencing: pixel units
        return (dx, -dy)
    if not (np.isfinite(xs) and np.isfinite(ys)):
        return (dx, -dy)
    t = grid.transform
    return (float(dx * xs * np.sign(t.a or 1.0)), float(dy * ys * np.sign(t.e or -1.0)))


def _crs_string(stack: TileStack) -> str | None:
    crs = stack.rio.crs
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_wkt()


__all__ = [
    "CoregisterConfig",
    "CoregistrationReport",
    "DateRegistration",
    "Radiometry",
    "ShiftEstimate",
    "ShiftField",
    "apply_shift_field",
    "coregister",
    "estimate_global_shift",
    "needs_coverage",
    "estimate_shift",
    "estimate_shift_field",
    "normalize_radiometry",
]
