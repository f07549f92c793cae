"""Change probability between two dates, window by window, for scenes of any size.

:func:`detect_pair` works on two in-memory (or dask-backed) ``(band, y, x)``
DataArrays; :func:`detect_to_file` streams two raster files into a
probability COG with memory bounded whatever the scene's size;
:func:`detect_series` runs between consecutive dates of a TileStack (and same-season
dates a year or more apart, :func:`series_pairs`) and keeps, per pixel, the highest
probability and the date change first appeared.

All three share one engine: the scene is cut into overlapping windows
(:mod:`changedetect.tiling`), windows are normalised with ONE set of statistics
per date computed from a subsample of the whole scene (so neighbouring windows
see the same radiometry and no seam appears), batched through the network
(optionally with flip/rotation test-time augmentation), blended with smooth
weights and handed back strip by strip.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from changedetect._config_toml import stage_config
from changedetect._dask_cull import values
from changedetect._detect_each import _confirm, _date_presence, _fills, _masked, _pair_probability
from changedetect._detect_engine import (
    SCENE_STATS,
    DetectConfig,
    DetectSummary,
    ModelLike,
    Reader,
    _attrs,
    _load_model,
    _run,
    _Runner,
    _scene_stats,
    _threshold,
    _with_georef,
    check_gsd,
    resolve_bands,
    said_once,
    same_transform,
)
from changedetect._detect_file import detect_to_file
from changedetect._detect_inputs import check_colour
from changedetect._detect_pairs import _pair_labels, combine_pairs, season_partner, series_pairs
from changedetect.errors import (
    ChangeDetectWarning,
    GeoreferenceError,
    TimeSeriesError,
    outside_stacklevel,
)
from changedetect.presence import DatePresence
from changedetect.tiling import Window
from changedetect.types import band_names, check_tilestack, nodata_as_nan, transform_of

logger = logging.getLogger(__name__)
#: The lazy warps (their dask layers' names) a too-large input has already been warned of.
_SAID_LAZY: set[str] = set()

__all__ = [
    "DetectConfig",
    "DetectSummary",
    "ModelLike",
    "combine_pairs",
    "detect_each_pair",
    "detect_pair",
    "detect_series",
    "detect_to_file",
    "resolve_bands",
    "season_partner",
    "series_pairs",
]


# ----------------------------------------------------------------------------- in memory
def _band_names(da: xr.DataArray) -> list[str]:
    """The bands' names; a file's band descriptions where rioxarray numbered its bands."""
    return band_names(da)


def _date_of(da: xr.DataArray) -> str:
    if "time" in da.coords and da["time"].size == 1:
        return str(np.datetime_as_string(np.asarray(da["time"].values).reshape(-1)[0], unit="D"))
    return str(da.attrs.get("date", ""))


def _one_date(da: xr.DataArray, which: str) -> xr.DataArray:
    """``da`` as ``(band, y, x)``, its declared nodata NaN (:func:`~changedetect.types.nodata_as_nan`):
    any order of those dims is transposed (lazily); anything else is refused naming what to give."""
    want = ("band", "y", "x")
    if isinstance(da, xr.Dataset):
        raise TypeError(f"{which} is an xarray.Dataset (variables {list(da.data_vars)}); give one DataArray "
                        "(band, y, x): ds.to_dataarray('band'), or a date of a TileStack (stack.isel(time=i))")
    if not isinstance(da, xr.DataArray):
        raise TypeError(f"{which} must be an xarray.DataArray (band, y, x), got {type(da).__name__}")
    if tuple(da.dims) == want:
        return nodata_as_nan(da)
    if set(da.dims) == set(want):
        return nodata_as_nan(da.transpose(*want))
    raise ValueError(f"{which} has dims {tuple(da.dims)}; one date is (band, y, x): select a date of a "
                     "TileStack with stack.isel(time=i), or add a band dim with .expand_dims('band')")


def _held(da: xr.DataArray) -> xr.DataArray:
    """``da`` computed once and held for the call when it is dask-backed and fits (as ``run`` holds the
    aligned stack): every window, pair and presence date reads it, and a lazy warp (coregister's) would
    be recomputed for each of them; a larger one stays lazy and is read window by window (with a
    warning when it is a lazy co-registration: each window then warps its blocks again)."""
    from changedetect._pipeline_steps import HOLD_LIMIT, hold
    from changedetect._registration.warp import lazy_warps

    held = hold(da)
    warps = lazy_warps(held.data)
    if warps - _SAID_LAZY:  # once per stack: a series' pairs and presence dates read the same warps
        msg = (f"the input is a lazy co-registered stack of {held.nbytes / 2**30:.1f} GiB, more than the "
               f"{HOLD_LIMIT.get() / 2**30:.1f} GiB held in memory: every window of the detection warps the blocks "
               "under it again (about 25 times the time of reading it back from disk, docs/detection.md). Write it "
               "to disk once first: aligned = changedetect.io.spill_stack(aligned, 'scratch/'), as "
               "`changedetect run` does")
        warnings.warn(msg, ChangeDetectWarning, stacklevel=outside_stacklevel())
        logger.warning(msg)
        _SAID_LAZY.update(warps)
    return held


def _array_reader(da: xr.DataArray, idx: list[int]) -> Reader:
    sel = da.isel(band=idx)

    def read(win: Window) -> np.ndarray:
        rows, cols = win.slices
        return np.asarray(values(sel.isel(y=rows, x=cols)), dtype=np.float32)

    return read


def _on_grid_of(after: xr.DataArray, before: xr.DataArray) -> xr.DataArray:
    """``after`` on ``before``'s grid (reprojected when the grids differ)."""
    same_shape = after.sizes["y"] == before.sizes["y"] and after.sizes["x"] == before.sizes["x"]
    try:
        crs_b, crs_a = before.rio.crs, after.rio.crs
        same = same_shape and crs_a == crs_b and same_transform(
            transform_of(after), transform_of(before), before.sizes["x"], before.sizes["y"])
    except Exception:  # no georeferencing: only the shapes can be compared
        crs_b = crs_a = None
        same = same_shape
    if same or (same_shape and (crs_a is None or crs_b is None)):
        return after
    if crs_a is None or crs_b is None:
        raise GeoreferenceError(
            f"the two dates differ in size ({before.sizes['y']}x{before.sizes['x']} vs "
            f"{after.sizes['y']}x{after.sizes['x']}) and are not georeferenced, so AFTER cannot "
            "be put onto BEFORE's grid; give georeferenced rasters or images of the same size"
        )
    from rasterio.enums import Resampling

    # float first: NaN is the nodata outside AFTER (an integer array, as open_rasterio gives, cannot hold it)
    return after.astype(np.float32).rio.reproject_match(before, resampling=Resampling.bilinear, nodata=np.nan)


def detect_pair(
    before: xr.DataArray,
    after: xr.DataArray,
    *,
    config: DetectConfig | Mapping[str, Any] = DetectConfig(),
    progress: bool = False,
    model: ModelLike | None = None,
) -> xr.DataArray:
    """Change probability between two dates, on ``before``'s grid.

    Parameters
    ----------
    before, after
        ``(band, y, x)`` DataArrays, their bands named by the ``band`` coordinate (or, as
        ``rioxarray.open_rasterio`` reads a file, by the file's band descriptions in
        ``attrs["long_name"]``: :func:`changedetect.types.band_names`); float with NaN as nodata, or
        any dtype with a declared nodata value (``da.rio.nodata``: a uint16 date read with
        ``rioxarray.open_rasterio(path)``, its 0 collar the file's nodata), which counts as no data
        (:func:`changedetect.types.nodata_as_nan`) (dask-backed is fine: a date of up to 2 GiB is
        computed once and held for the call, a larger one is read window by window).  ``after`` is reprojected
        onto ``before``'s grid when the two differ, whole and in memory
        (:func:`detect_to_file` streams that case too).
    config
        Model, window, overlap, batch size, TTA, threshold: a :class:`DetectConfig`, or a dict of its
        fields as the TOML file's ``[detect]`` table has them (``{"window": 256}``; an unknown key is a
        ``ConfigError`` naming it).
    progress
        Show a progress bar.
    model
        An already loaded model that replaces ``config.model``: :func:`changedetect.weights.load_model`'s
        :class:`~changedetect.weights.LoadedModel`, or any :class:`ModelLike` (``module`` + ``card``).

    Returns
    -------
    xr.DataArray
        ChangeProbability ``(y, x)`` float32 in [0, 1], NaN where either date
        has no data; attrs ``model``, ``model_sha256``, ``model_version``,
        ``threshold``, ``before``, ``after``.
    """
    config = stage_config(config, DetectConfig, call="detect_pair", table="detect")
    before, after = _held(_one_date(before, "BEFORE")), _held(_one_date(after, "AFTER"))
    loaded = _load_model(config, model)
    card = loaded.card
    wanted = list(card.bands)
    aliases = dict(getattr(card, "band_aliases", None) or {})
    idx_b = resolve_bands(_band_names(before), wanted, aliases=aliases, source="BEFORE")
    after = _on_grid_of(after, before)
    flips = _flips(before)  # the networks learnt north-up images: a south-up array is read turned over
    given, before, after = before, before.isel(flips), after.isel(flips)
    idx_a = resolve_bands(_band_names(after), wanted, aliases=aliases, source="AFTER")
    shape = (int(before.sizes["y"]), int(before.sizes["x"]))
    for da, idx in ((before, idx_b), (after, idx_a)):  # a grey date: said once per date
        check_colour(_array_reader(da, idx), shape, card, f"date {_date_of(da)}" if _date_of(da) else "the input")
    scene = SCENE_STATS.get()  # a block of a larger scene: that scene's statistics, not the block's
    stats = tuple(_scene_stats(_array_reader(da, idx), shape, card) if scene is None else scene(da, idx, card)
                  for da, idx in ((before, idx_b), (after, idx_a)))
    out = np.full(shape, np.nan, dtype=np.float32)

    def sink(top: int, rows: np.ndarray) -> None:
        out[top : top + rows.shape[0]] = rows

    runner = _Runner(loaded, config)
    _run(_array_reader(before, idx_b), _array_reader(after, idx_a), shape, runner,
         (stats[0], stats[1]), sink, progress=progress)
    out = out[tuple(flips.get(k, slice(None)) for k in ("y", "x"))]  # back to the input's orientation
    prob = xr.DataArray(out, dims=("y", "x"), coords={k: given[k] for k in ("y", "x") if k in given.coords},
                        name="change_probability")
    prob.attrs.update(_attrs(card, config, _date_of(before), _date_of(after)))
    return _with_georef(prob, given)


def _flips(da: xr.DataArray) -> dict[str, slice]:
    """The reversals that put ``da`` north up, ``y`` falling and ``x`` rising, as every image the networks
    learnt from was (``{}`` for a north-up array): a south-up array (``sortby("y")``, a NetCDF or Zarr
    source) fed as it is gave other probabilities (shadows and roofs upside down), with nothing said."""
    flips: dict[str, slice] = {}
    for dim, falls in (("y", True), ("x", False)):
        if dim in da.coords and da.sizes[dim] > 1 and (float(da[dim][0]) > float(da[dim][-1])) != falls:
            flips[dim] = slice(None, None, -1)
    return flips


@said_once()
def detect_series(
    stack: xr.DataArray,
    *,
    config: DetectConfig | Mapping[str, Any] = DetectConfig(),
    progress: bool = False,
    model: ModelLike | None = None,
    pairs: list[tuple[int, int]] | None = None,
    mask_pairs: list[tuple[int, int]] | None = None,
    segmenter: ModelLike | DatePresence | None = None,
) -> tuple[xr.DataArray, xr.DataArray]:
    """Change between the dates of a TileStack, kept per pixel.

    The pairs are ``pairs`` (``(before, after)`` indices into ``time``, in order of
    precedence for ``first_seen``), by default :func:`series_pairs`: consecutive dates, then
    same-season dates a year or more apart (``config.season_days``).  Where a pair of
    ``mask_pairs`` reaches the threshold (grown by two pixels), the pairs after the first
    count no change: the nightly job compares ``(previous, new)`` and ``(partner, new)``
    and masks ``(partner, previous)``, what changed before tonight's pair (earlier nights'
    news, whose first-seen date this run cannot know).  :func:`detect_each_pair` gives each
    pair's own probability.  With a building ``segmenter`` (a loaded model, e.g. the change
    model's ``buildings/`` stage from :func:`changedetect.weights.building_segmenter`, or a
    :class:`~changedetect.presence.DatePresence` of this stack, to keep its rasters) and
    ``config.presence_check``, the probability of each same-season pair is raised where the
    segmenter confirms what the network hints at (:mod:`changedetect.presence`), and of each
    pair of different seasons that two same-season dates bracket, where they show the same
    change (:meth:`~changedetect.presence.DatePresence.same_sun`); the result's
    ``attrs["presence_check"]`` names the segmenter and ``attrs["presence_check_pairs"]`` the
    pairs it checked.  NaN is no data, and so is the value a stack declares as its nodata
    (``stack.rio.nodata``: dates read with ``rioxarray.open_rasterio(path)`` and concatenated), as
    in :func:`detect_pair`.

    Returns
    -------
    (ChangeProbability, first_seen)
        The highest probability over the pairs, and ``(y, x)`` datetime64[ns]: the AFTER
        date of the first consecutive pair whose probability reaches the threshold; where
        only a same-season pair reaches it, that pair's AFTER date (the first date the
        change is seen for sure: a consecutive pair could not place it); ``NaT`` where
        change never appears.  ``attrs["pairs"]`` lists the pairs compared, ``attrs["before"]``
        and ``attrs["after"]`` are the earliest and the latest date they compare.
    """
    config = stage_config(config, DetectConfig, call="detect_series", table="detect")
    loaded = _load_model(config, model)
    events = detect_each_pair(stack, config=config, progress=progress, model=loaded, pairs=pairs,
                              mask_pairs=mask_pairs, segmenter=segmenter)
    return combine_pairs(events, stack, _threshold(config, loaded.card))


@said_once()
def detect_each_pair(
    stack: xr.DataArray,
    *,
    config: DetectConfig | Mapping[str, Any] = DetectConfig(),
    progress: bool = False,
    model: ModelLike | None = None,
    pairs: list[tuple[int, int]] | None = None,
    mask_pairs: list[tuple[int, int]] | None = None,
    segmenter: ModelLike | DatePresence | None = None,
    unmasked: dict[tuple[int, int], np.ndarray] | None = None,
    filled: dict[tuple[int, int], np.ndarray | None] | None = None,
    fill_from: Sequence[int] | None = None,
) -> list[tuple[int, int, xr.DataArray]]:
    """Each pair's change probability, as ``(before, after, ChangeProbability)`` in order of
    precedence; the pairs, the mask and the presence check (``segmenter``) as in
    :func:`detect_series` (the pairs after the first, the masked ones, carry
    ``attrs["mask_pairs"]``; checked pairs carry ``attrs["presence_check"]``, the segmenter's
    name, version and sha256).  ``unmasked``, a dict, receives each masked pair's decisions
    before the mask (``(y, x)`` float32: 1 at or above the threshold, 0 below, NaN where the pair
    has no data), keyed by ``(before, after)``: the nightly job checks earlier nights'
    violations against them (``changedetect._merge.withdraw_unconfirmed``).

    With ``config.fill_masked_before``, each pair ``(i, i + 1)`` of consecutive dates of the stack
    (the series' own or given in ``pairs``) with ``i > 0`` has its BEFORE filled where it has no data
    from the latest earlier date with data there (:mod:`changedetect._fill_before`): only dates
    strictly earlier than ``i``, and of those only ``fill_from`` (indices) when given (a stack that
    leaves dates out, as the nightly job's, names the dates next to BEFORE with none left out between;
    they need not be compared).  A pair that skips a date of the stack (a same-season pair) is not
    filled.  A mask pair's AFTER that a compared pair fills as its BEFORE is that filled image, so
    that the mask is what changed up to the view that pair starts from (its presence check reads it
    so too: :meth:`~changedetect.presence.DatePresence.after`).  ``filled``, a dict,
    receives for each such consecutive pair the ``(y, x)`` int16 index of the date each BEFORE pixel
    came from (-1: not filled), or None when nothing was filled."""
    config = stage_config(config, DetectConfig, call="detect_each_pair", table="detect")
    check_tilestack(stack)
    stack = _held(nodata_as_nan(stack))
    if stack.sizes.get("time", 0) < 2:
        days = ", ".join(str(t)[:10] for t in stack["time"].values) if "time" in stack.coords else "none"
        raise TimeSeriesError(f"change detection needs two or more dates; the stack holds "
                              f"{stack.sizes.get('time', 0)} ({days}): add the tiles of another date")
    loaded = _load_model(config, model)
    thr = _threshold(config, loaded.card)
    times = stack["time"].values
    n = len(times)
    try:
        crs, transform = stack.rio.crs, transform_of(stack)
    except Exception:  # rioxarray: no georeferencing (no x/y, no transform): nothing to check
        crs = transform = None
    if crs is not None:
        check_gsd(loaded.card, crs, transform, stack.sizes["x"], stack.sizes["y"], "the stack")
    pairs = series_pairs(times, config.season_days) if pairs is None else list(pairs)
    if not pairs or any(not 0 <= i < j < n for i, j in [*pairs, *(mask_pairs or [])]):
        raise ValueError(f"pairs must be (before, after) indices with 0 <= before < after < {n}, "
                         f"got {pairs} (mask {mask_pairs})")
    fills = _fills(stack, pairs, fill_from) if config.fill_masked_before else {}
    presence = _date_presence(stack, segmenter, config, progress)
    # the last clear view where date i has no data, known to the checks before any pair is compared
    done = {(i, j): fills[i] for i, j in pairs if j == i + 1 and i in fills}
    for pair, view in done.items():
        if filled is not None:
            filled[pair] = view.source
        if presence is not None:  # the check reads BEFORE as the network compared it
            presence.filled[pair] = view.source
    masked = _masked(stack, mask_pairs or [], thr, config, loaded, progress, presence, fills)
    events = []
    for i, j in pairs:
        logger.info("detect: %s -> %s%s", str(times[i])[:10], str(times[j])[:10],
                    "" if j == i + 1 else " (same season)")
        before = done[(i, j)].image if (i, j) in done else None
        events.append((i, j, _pair_probability(stack, i, j, config, loaded, progress, presence, before=before)))
    if presence is not None:  # every pair's own decisions first: a confirmed object must not join one
        decided = np.zeros(events[0][2].shape, dtype=bool)
        for _, _, prob in events:
            decided |= np.nan_to_num(prob.values) >= thr
        for i, j, prob in events:
            _confirm(prob, i, j, presence, thr, decided=decided)
    for rank, (i, j, prob) in enumerate(events):
        if rank and masked is not None and unmasked is not None:
            v = prob.values
            unmasked[(i, j)] = np.where(np.isfinite(v), v >= thr, np.nan).astype(np.float32)
        if rank and masked is not None:  # NaN (no data) stays NaN
            prob.values = np.where(masked & np.isfinite(prob.values), np.float32(0), prob.values)
        if rank and mask_pairs:  # the first pair is never masked
            prob.attrs["mask_pairs"] = _pair_labels(times, mask_pairs)
    return events
