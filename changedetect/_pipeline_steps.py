"""The helpers of :func:`changedetect.pipeline.run` (private): the building segmenter and its
presence rasters, explicit date pairs, holding the aligned stack, first-seen dates, report
images and addresses.  Pure functions on in-memory objects; the pipeline opens the files."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from changedetect.config import PipelineConfig
from changedetect.errors import ConfigError
from changedetect.types import transform_of

if TYPE_CHECKING:
    import geopandas as gpd
    import xarray as xr

    from changedetect.presence import DatePresence

#: An aligned stack up to this size is computed once and held in memory (``[run] hold_gib``'s default).
PERSIST_BYTES = 2 << 30

#: The largest array :func:`hold` keeps in memory by default: ``PERSIST_BYTES``, or ``[run] hold_gib``
#: while a run is under :func:`holding`, so that detection, the presence check and the change
#: types respect the run's bound as the co-registered stack does.
HOLD_LIMIT: ContextVar[float] = ContextVar("changedetect_hold_limit", default=PERSIST_BYTES)


@contextmanager
def holding(limit: float) -> Iterator[None]:
    """Within the block, :func:`hold` keeps arrays of at most ``limit`` bytes in memory."""
    token = HOLD_LIMIT.set(limit)
    try:
        yield
    finally:
        HOLD_LIMIT.reset(token)


def load_segmenter(config: PipelineConfig, loaded: Any) -> Any:
    """The single-date building segmenter ``config.vectorize.change_type_model`` names, loaded
    (None: none; ``"auto"``: the change model's ``buildings/`` stage when it has one)."""
    from changedetect.weights import building_segmenter, load_model

    name = config.vectorize.change_type_model
    if name == "auto":
        return building_segmenter(loaded, device=config.detect.device)
    if not name:
        return None
    seg = load_model(name, device=config.detect.device)
    if seg.card.name == loaded.card.name and seg.card.sha256 == loaded.card.sha256:
        raise ConfigError(f"change_type_model {name!r} is the change model itself; give its building "
                          "segmenter (e.g. 'vhr-building/buildings') or '' for the image heuristic")
    return seg


def presence_rasters(prob: xr.DataArray, config: PipelineConfig, dates: DatePresence | None,
                     kept: tuple[int, int]) -> tuple[xr.DataArray, xr.DataArray] | None:
    """Building probability of the first and last dates the later stages keep (``kept``: their
    indices in ``dates``' stack), reused from the presence check where it computed them (None
    without a segmenter, or when no pixel can become a footprint).  The first date as its pair
    compared it where that pair's BEFORE was filled (``DatePresence.before``: explicit pairs that
    start on a cloudy date; the series' first date is never filled)."""
    if dates is None or not bool(np.nanmax(prob.values, initial=0.0) >= config.vectorize.for_probability(prob).threshold):
        return None  # no segmenter, or no pixel can become a footprint: nothing to type
    first = dates.raster(kept[0])
    pair = next((p for p, src in sorted(dates.filled.items()) if p[0] == kept[0] and src is not None), None)
    if pair is not None:  # its last clear view where it was filled
        first = first.copy(data=dates.before(*pair))
    return first, dates.raster(kept[1])


def segmenter_info(seg: Any) -> dict[str, Any] | None:
    if seg is None:
        return None
    return {"name": seg.card.name, "version": seg.card.version, "sha256": seg.card.sha256, "path": str(seg.path)}


def check_pairs(pairs: Sequence[tuple[str, str]] | None, mask_pairs: Sequence[tuple[str, str]] | None,
                days: list[str]) -> None:
    """ConfigError unless ``pairs`` and ``mask_pairs`` are (before, after) dates of the series."""
    if mask_pairs and not pairs:
        raise ConfigError("mask_pairs needs pairs: the pairs after the first are the ones masked")
    if pairs is not None and not pairs:
        raise ConfigError("pairs: give at least one (before, after) pair of dates, or None for the default")
    every = [*(pairs or ()), *(mask_pairs or ())]
    missing = sorted({d for pair in every for d in pair} - set(days))
    if missing:
        raise ConfigError(f"pairs {every}: date(s) {missing} are not in the series ({', '.join(days)})")
    reversed_ = [pair for pair in every if pair[0] >= pair[1]]
    if reversed_:
        raise ConfigError(f"pairs {reversed_}: each pair is (before, after) with before earlier than after")


def pair_indices(aligned: xr.DataArray, pairs: Sequence[tuple[str, str]] | None) -> list[tuple[int, int]] | None:
    """``pairs`` (ISO dates, checked by :func:`check_pairs`) as indices into ``aligned``'s time, or None."""
    if pairs is None:
        return None
    days = [str(t)[:10] for t in aligned["time"].values]
    return [(days.index(b), days.index(a)) for b, a in pairs]


def hold(aligned: xr.DataArray, *, limit: float | None = None, spill: Path | None = None) -> xr.DataArray:
    """Compute the (lazy) aligned stack once: held in memory when it is at most ``limit`` bytes
    (None: :data:`HOLD_LIMIT`'s, 2 GiB outside a run),
    else written to scratch files in ``spill`` and read back window by window
    (:func:`changedetect.io.spill.spill_stack`), or left lazy (recomputed at every read) when
    ``spill`` is None.  Every later stage reads it."""
    if aligned.chunks is None:
        return aligned
    if aligned.nbytes <= (HOLD_LIMIT.get() if limit is None else limit):
        return aligned.persist(scheduler="threads")
    if spill is None:
        return aligned
    from changedetect.io.spill import spill_stack

    return spill_stack(aligned, spill)


def fill_first_seen(footprints: gpd.GeoDataFrame, aligned: xr.DataArray,
                    pairs: list[tuple[int, int]] | None = None) -> gpd.GeoDataFrame:
    """A pair has no first-seen raster: its footprints were first seen on the after date.  Each
    footprint's ``before_date`` is the last image without it (it changed after that date), NaT when
    none is: the last of ``aligned``'s dates before its ``first_seen`` when ``pairs`` is None (the
    series' own pairs, which compare every date with the next); with explicit ``pairs`` (indices
    into ``aligned``), which may skip dates, the latest BEFORE date of the pairs that end on its
    ``first_seen`` (else the last date a pair compared before it), never a date no pair compared."""
    import pandas as pd

    after = pd.Timestamp(aligned["time"].values[-1])
    if "first_seen" not in footprints:
        footprints = footprints.assign(first_seen=after)
    elif footprints["first_seen"].isna().any():
        filled = pd.to_datetime(footprints["first_seen"]).fillna(after)
        footprints = footprints.assign(first_seen=filled)
    stamps = np.asarray(aligned["time"].values, dtype="datetime64[D]")
    seen = pd.to_datetime(footprints["first_seen"]).to_numpy(dtype="datetime64[D]")
    days = np.unique(stamps if pairs is None else stamps[[k for p in pairs for k in p]])
    at = np.searchsorted(days, seen, side="left") - 1  # the last (compared) date strictly before first_seen
    before = (np.where(at >= 0, days[np.clip(at, 0, None)], np.datetime64("NaT")) if len(days)
              else np.full(len(seen), np.datetime64("NaT"), dtype="datetime64[D]"))
    if pairs is not None:
        ends: dict[np.datetime64, np.datetime64] = {}
        for i, j in pairs:  # the latest BEFORE date of the pairs ending on each after date
            if stamps[i] < stamps[j]:
                ends[stamps[j]] = max(ends.get(stamps[j], stamps[i]), stamps[i])
        before = np.array([ends.get(s, b) for s, b in zip(seen, before, strict=True)], dtype="datetime64[D]")
    out = footprints.assign(before_date=pd.to_datetime(before.astype("datetime64[ns]")))
    cols = [c for c in out.columns if c != "before_date"]
    return out[[*cols[:cols.index("first_seen") + 1], "before_date", *cols[cols.index("first_seen") + 1:]]]


def with_rebuilds(footprints: gpd.GeoDataFrame, rebuilt: tuple[xr.DataArray, xr.DataArray],
                  previous: gpd.GeoDataFrame | None, config: Any) -> gpd.GeoDataFrame:
    """``footprints`` plus the rebuilds' own (:func:`changedetect._rebuilds.rebuilds`): typed
    ``new``, dated by their pair, largest first.  Their ids come from
    :func:`~changedetect._vectorize_shapes.carry_ids` with ``footprints``' ids reserved: carried
    over from a previous footprint that was not a demolition (the lot's demolition keeps its own),
    else the first free ``-2``, ``-3`` ... of their cell."""
    import pandas as pd

    from changedetect._vectorize_shapes import carry_ids
    from changedetect.vectorize import vectorize

    extra = vectorize(rebuilt[0], first_seen=rebuilt[1], config=config)
    if not len(extra):
        return footprints
    extra["change_type"] = "new"
    extra["footprint_id"] = carry_ids(extra.geometry, previous, min_iou=config.carry_min_iou,
                                      min_cover=config.carry_min_cover, kinds=list(extra["change_type"]),
                                      reserved=set(footprints["footprint_id"].astype(str)))
    both = pd.concat([footprints, extra.to_crs(footprints.crs) if footprints.crs else extra], ignore_index=True)
    both = both.sort_values("area_m2", ascending=False, kind="stable").reset_index(drop=True)
    both.attrs = {**footprints.attrs, "rebuilds": len(extra), "rebuild_ids": list(extra["footprint_id"].astype(str))}
    return type(footprints)(both, geometry="geometry", crs=footprints.crs)


def same_season_decisions(events: list[tuple[int, int, xr.DataArray]],
                          unmasked: dict[tuple[int, int], np.ndarray] | None, times: np.ndarray,
                          config: Any) -> xr.DataArray | None:
    """The first masked same-season pair's decisions before the mask (uint8 ``(y, x)``, 1 = change,
    0 = none, 255 = no data), with ``attrs["pair"]`` ``"before/after"``; None without one (or without
    ``config.same_sun_share``).

    In the nightly job that pair is ``(partner, new)``: a year apart, under the same sun.  What
    earlier nights reported across seasons between those dates is checked against it
    (``changedetect._merge.withdraw_unconfirmed``)."""
    from changedetect.presence import same_season

    if not unmasked or config.same_sun_share is None:
        return None
    days = config.season_days if config.season_days is not None else 45
    for i, j, prob in events:
        if (i, j) in unmasked and j > i + 1 and same_season(times[i], times[j], days):
            d = unmasked[(i, j)]
            out = prob.copy(data=np.where(np.isfinite(d), d, 255).astype(np.uint8))
            out.attrs = {"pair": f"{str(times[i])[:10]}/{str(times[j])[:10]}"}
            return out
    return None


def segmenter_held(dates: Any) -> Any:
    """For :func:`changedetect._same_sun.unconfirmed`: the footprints first seen on a pair of two
    seasons that the building segmenter sees come or go between the two same-season dates that
    bracket the pair (``DatePresence.same_sun``, by the presence check's thresholds): a change
    confirmed under the same sun, not a moved shadow, even where the same-season network pair
    does not decide it (the presence check raised it on that evidence)."""
    from changedetect._change_presence import presence_means

    def held(i: int, j: int, geoms: np.ndarray) -> np.ndarray:
        sun = dates.same_sun(i, j)
        if sun is None or not len(geoms):
            return np.zeros(len(geoms), dtype=bool)
        transform = transform_of(dates.raster(sun[1]))
        # BEFORE as the pair compared it (its last clear view where it was filled): DatePresence's
        views = dates.same_sun_rasters(i, j) if hasattr(dates, "same_sun_rasters") else (
            dates.raster(sun[0]).values, dates.raster(sun[1]).values)
        a, b = (presence_means(geoms, r, transform) for r in views)
        return np.asarray(dates.check.appeared(a, b) | dates.check.appeared(b, a), dtype=bool)

    return held


def unconfirmed_mask(footprints: gpd.GeoDataFrame, events: list[tuple[int, int, xr.DataArray]],
                     times: np.ndarray, config: Any, threshold: float,
                     unmasked: dict[tuple[int, int], np.ndarray] | None = None,
                     dates: Any = None) -> np.ndarray:
    """Which ``footprints`` (a bool per row) were first seen across seasons and are not confirmed
    by a same-season pair spanning their pair (:func:`changedetect._same_sun.unconfirmed`).
    ``times`` are the dates the events' indices name; a pair in ``unmasked``
    (:func:`changedetect.detect.detect_each_pair`'s) is checked on its decisions before the mask,
    which hides what earlier nights reported and so what the pair saw.  ``dates`` (a
    :class:`changedetect.presence.DatePresence` on the events' stack): what its segmenter sees
    change between two same-season dates is confirmed too (:func:`segmenter_held`)."""
    from changedetect._same_sun import unconfirmed

    if unmasked:
        events = [(i, j, p.copy(data=unmasked[(i, j)].astype(np.float32)) if (i, j) in unmasked else p)
                  for i, j, p in events]
    days = config.season_days if config.season_days is not None else 45
    held = segmenter_held(dates) if dates is not None and config.presence_check else None
    return np.asarray(unconfirmed(footprints, events, times, threshold, config.same_sun_share, days, held), dtype=bool)


def drop_unconfirmed(footprints: gpd.GeoDataFrame, events: list[tuple[int, int, xr.DataArray]],
                     times: np.ndarray, config: Any, threshold: float,
                     unmasked: dict[tuple[int, int], np.ndarray] | None = None,
                     dates: Any = None) -> gpd.GeoDataFrame:
    """``footprints`` without those :func:`unconfirmed_mask` marks; the count dropped is
    ``attrs["unconfirmed_across_seasons"]``."""
    return without(footprints, unconfirmed_mask(footprints, events, times, config, threshold, unmasked, dates))


def without(footprints: gpd.GeoDataFrame, drop: np.ndarray) -> gpd.GeoDataFrame:
    """``footprints`` without the rows ``drop`` marks, their count in ``attrs["unconfirmed_across_seasons"]``."""
    import logging

    if not drop.any():
        return footprints
    logging.getLogger("changedetect.pipeline").info(
        "dropped %d footprints first seen across seasons and not seen under the same sun", int(drop.sum()))
    kept = footprints[~drop].reset_index(drop=True)
    kept.attrs = {**footprints.attrs, "unconfirmed_across_seasons": int(drop.sum())}
    return kept


def days_raster(first_seen: xr.DataArray) -> xr.DataArray:
    """datetime64 (y, x) -> float32 days since 1970-01-01, NaN where NaT, in memory; its only attribute
    the ``units``."""
    from changedetect.io.raster import dates_as_days

    out = dates_as_days(first_seen.copy(data=np.asarray(first_seen.values)))
    out.attrs = {"units": out.attrs["units"]}
    return out


def rgb8(image: xr.DataArray, rgb_bands: Sequence[str]) -> xr.DataArray:
    """(band, y, x) -> lazily stretched uint8-range (3, y, x): 2-98 % per band from a subsample."""
    from changedetect._imagery import _percentiles, _pick_bands

    names = [str(b) for b in image["band"].values]
    rgb = image.isel(band=[i - 1 for i in _pick_bands(names, len(names), rgb_bands)])
    step = max(1, int(np.ceil(np.sqrt(rgb.sizes["y"] * rgb.sizes["x"] / 250_000))))
    sample = np.asarray(rgb.isel(y=slice(None, None, step), x=slice(None, None, step)).values, dtype=np.float32)
    flat = sample.reshape(sample.shape[0], -1)
    if np.isfinite(flat).any() and np.nanmax(flat) <= 255 and np.nanmin(flat) >= 0:
        lo, hi = np.zeros(3), np.full(3, 255.0)  # already 8-bit: keep the radiometry
    else:  # a band with no data (a date its SCL masks whole) stays no data, without numpy's warning
        lo, hi = _percentiles(flat)
    scaled = ((rgb - lo[:, None, None]) / (hi - lo)[:, None, None] * 254 + 1).clip(1, 255)
    return scaled.where(rgb.notnull()).astype(np.float32)


def with_addresses(violations: gpd.GeoDataFrame, register: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Add ``address``: the matched permits' addresses (for inspectors), when the register has them."""
    if "address" not in register or "permit_ids" not in violations or "address" in violations:
        return violations
    # only the permits that give one: astype(str) keeps a missing address NaN (pandas 3), a float in join
    given = register["address"].notna()
    lookup = dict(zip(register["permit_id"][given].astype(str), register["address"][given].astype(str), strict=False))

    def addresses(ids: Any) -> str:
        if ids is None or (isinstance(ids, float) and np.isnan(ids)):
            return ""
        items = ids if isinstance(ids, list | tuple | np.ndarray) else str(ids).replace(";", ",").split(",")
        return "; ".join(lookup[i.strip()] for i in map(str, items) if i.strip() in lookup)

    out = violations.copy()
    out.insert(out.columns.get_loc("geometry"), "address", out["permit_ids"].map(addresses))
    return out


def report_info(times: list[str], loaded: Any, n_footprints: int) -> dict[str, Any]:
    return {"before": times[0], "after": times[-1], "dates": len(times), "model": loaded.card.name,
            "model_version": getattr(loaded.card, "version", ""), "footprints": n_footprints}
