"""The last clear view (private): a consecutive pair's BEFORE image filled, pixel by pixel, from the
latest earlier date of the same stack with data there (``DetectConfig.fill_masked_before``).

A date masked by its Sentinel-2 SCL (a cloud, its shadow) is NaN there; a building put up under
that cloud between the dates around it is then seen by no consecutive pair.  Filling the BEFORE of
each consecutive pair ``(i, i + 1)`` where date ``i`` has no data, from date ``i - 1``, else
``i - 2`` ..., lets the pair ``(i, i + 1)`` see it and date it ``i + 1``.  A pixel is filled where
date ``i`` lacks data in ANY band (detection counts a pixel as data only where every band has
one), and only from a date with data in EVERY band there: a pixel's bands all come from one date,
never from a later date, never from another stack.  Where no earlier date has data it stays NaN.
The filled image keeps date ``i``'s ``time`` coordinate; ``attrs[FILLED_ATTR]`` marks it, so that
a blocked run draws its normalisation statistics from the filled scene too
(:class:`changedetect._pipeline_blocks.SceneStats`, through :func:`fill_window`)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from affine import Affine

from changedetect.types import transform_of

if TYPE_CHECKING:
    import geopandas as gpd
    import xarray as xr

#: set on a BEFORE image that earlier dates may fill (whether or not they filled a pixel of it): the
#: ISO dates it may be filled from, latest first
FILLED_ATTR = "filled_before"


@dataclass(frozen=True)
class Filled:
    """A consecutive pair's BEFORE image and where its pixels came from."""

    image: xr.DataArray
    #: ``(y, x)`` int16: the index of the date each pixel was filled from, -1 where it was not
    #: filled (date ``i``'s own data, or no earlier date has data); None when nothing was filled
    source: np.ndarray | None

    def share(self) -> float:
        """The share of the scene's pixels filled from an earlier date."""
        return 0.0 if self.source is None else float((self.source >= 0).mean())


def _has_data(date: xr.DataArray) -> np.ndarray:
    """``(y, x)`` bool: where every band of ``date`` (``(band, y, x)``) has data."""
    return np.asarray(date.notnull().all("band").values, dtype=bool)


def fill_order(i: int, sources: Collection[int] | None = None) -> list[int]:
    """The dates date ``i``'s no data may be filled from, in the order they are tried (the latest
    first): those earlier than ``i``, of ``sources`` when given (None: every earlier date)."""
    return [k for k in range(i - 1, -1, -1) if sources is None or k in sources]


def fill_sources(need: np.ndarray, has_data: Callable[[int], np.ndarray], order: Sequence[int]) -> np.ndarray:
    """The pixel rule of the last clear view, on masks: ``(y, x)`` int16, for each pixel of ``need``
    the first date of ``order`` whose ``has_data(k)`` mask (data in every band) holds there, -1
    where none does or the pixel needs nothing.  Stops asking for masks once nothing is left."""
    need = need.copy()
    source = np.full(need.shape, -1, dtype=np.int16)
    for k in order:
        if not need.any():
            break
        take = need & has_data(k)
        source[take] = k
        need &= ~take
    return source


def fill_before(stack: xr.DataArray, i: int, sources: Collection[int] | None = None,
                masks: dict[int, np.ndarray] | None = None) -> Filled:
    """Date ``i`` of ``stack`` (``(time, band, y, x)``) with its no data filled from the latest
    earlier date with data in every band, pixel by pixel (:func:`fill_sources`).  ``sources``: the
    indices of the dates it may be filled from (those earlier than ``i`` count; None: every earlier
    date of ``stack``): a stack that leaves dates of the series out (the nightly job's: its partner a
    year back) must not fill from a date beyond such a gap, where a date left out may have seen the
    change.  ``masks``: each date's data mask by index, shared by the calls on one stack so that
    no date is read for it twice (filled in place).  Lazy where the stack is: the masks are
    computed (one read of each date needed), the image is a ``where`` over the dates used, read
    window by window by detection.  Date ``i``'s own pixels when it has no pixel to fill, marked
    (``FILLED_ATTR``) whenever it has an earlier date to fill from."""
    before = stack.isel(time=i)
    order = fill_order(i, sources)
    if not order:
        return Filled(before, None)
    known = {} if masks is None else masks

    def has_data(k: int) -> np.ndarray:
        if k not in known:
            known[k] = _has_data(stack.isel(time=k))
        return known[k]

    days = [str(t)[:10] for t in stack["time"].values]
    # marked even where nothing is filled: a block the cloud misses is normalised with the filled
    # scene's statistics, as the whole scene is (SceneStats), not with the cloudy date's own
    before = before.copy(deep=False)
    before.attrs = {**before.attrs, FILLED_ATTR: tuple(days[k] for k in order)}
    source = fill_sources(~has_data(i), has_data, order)
    if not (source >= 0).any():
        return Filled(before, None)
    return Filled(filled_image(stack, before, source), source)


def filled_image(stack: xr.DataArray, before: xr.DataArray, source: np.ndarray) -> xr.DataArray:
    """``before`` (a date of ``stack``) with each pixel of ``source`` (:attr:`Filled.source`: indices
    into ``stack``'s dates, -1 to keep) taken from that date; lazy where the stack is."""
    data = before.data
    for k in np.unique(source[source >= 0]).tolist():
        earlier, take = stack.isel(time=k), source == k
        if before.chunks is not None:
            import dask.array as dsk

            data = dsk.where(dsk.from_array(take, chunks=earlier.data.chunks[1:])[None], earlier.data, data)
        else:
            data = np.where(take[None], earlier.values, data)
    return before.copy(data=data)


def fill_window(dates: list[np.ndarray]) -> np.ndarray:
    """One window of :func:`fill_before`'s image from the window's arrays of dates ``i, i - 1, ...,
    0`` (``(band, h, w)`` each, latest first): the same pixel rule (:func:`fill_sources`), on arrays."""
    out = np.array(dates[0], dtype=np.float32, copy=True)
    source = fill_sources(np.asarray(~np.isfinite(out).all(axis=0)), lambda k: np.isfinite(dates[k]).all(axis=0),
                          range(1, len(dates)))
    for k in np.unique(source[source >= 0]).tolist():
        take = source == k
        out[:, take] = dates[k][:, take]
    return out


Counts = dict[tuple[str, str], dict[str, int]]


def filled_counts(filled: dict[tuple[int, int], np.ndarray | None], times: np.ndarray,
                  core: tuple[slice, slice] | None = None) -> Counts:
    """For each pair whose BEFORE could be filled (``(before, after)`` ISO dates), the pixels filled
    (in ``core``, a block's, when given) per date they came from (none where ``filled`` holds None)."""
    out: Counts = {}
    for (i, j), source in filled.items():
        if source is None:
            out[(str(times[i])[:10], str(times[j])[:10])] = {}
            continue
        src = source if core is None else source[core]
        dates, counts = np.unique(src[src >= 0], return_counts=True)
        out[(str(times[i])[:10], str(times[j])[:10])] = {
            str(times[int(d)])[:10]: int(c) for d, c in zip(dates, counts, strict=True)}
    return out


def filled_record(parts: list[Counts], pixels: int) -> list[dict[str, object]]:
    """run.json's ``filled_before``: the blocks' (or the whole scene's) :func:`filled_counts` summed
    pair by pair, each pair with its ``share`` of the scene's ``pixels`` filled and, per date the
    pixels came from, its share."""
    total: Counts = {}
    for part in parts:
        for pair, by_date in part.items():
            have = total.setdefault(pair, {})
            for day, n in by_date.items():
                have[day] = have.get(day, 0) + n
    return [{"before": b, "after": a, "share": round(sum(by.values()) / max(pixels, 1), 6),
             "from": {day: round(n / max(pixels, 1), 6) for day, n in sorted(by.items())}}
            for (b, a), by in sorted(total.items())]


def clear_before_dates(footprints: gpd.GeoDataFrame, filled: dict[tuple[int, int], np.ndarray | None],
                       stack: xr.DataArray) -> gpd.GeoDataFrame:
    """``footprints`` (with ``first_seen`` and ``before_date``, on ``stack``'s grid) whose pixels on
    the consecutive pair ending on their ``first_seen`` were mostly (more than half) filled from
    earlier dates get as ``before_date`` the date most of those pixels came from: the last clear
    view of the lot, not the pair's BEFORE date, which was cloudy there and saw nothing.
    ``filled``: :func:`changedetect.detect.detect_each_pair`'s, indices into ``stack``'s dates."""
    import pandas as pd

    by_after = {j: src for (_, j), src in filled.items() if src is not None}
    if not by_after or footprints.empty or "before_date" not in footprints:
        return footprints
    days = np.asarray(stack["time"].values, dtype="datetime64[D]")
    transform = transform_of(stack)
    seen = pd.to_datetime(footprints["first_seen"]).to_numpy(dtype="datetime64[D]")
    before = pd.to_datetime(footprints["before_date"]).copy()
    for k, geom in enumerate(footprints.geometry):
        at = np.nonzero(days == seen[k])[0]
        source = by_after.get(int(at[0])) if len(at) else None
        if source is None or geom is None or geom.is_empty:
            continue
        src = _inside(geom, source, transform)
        took = src[src >= 0]
        if not src.size or 2 * took.size <= src.size:
            continue
        dates, counts = np.unique(took, return_counts=True)
        before.iloc[k] = pd.Timestamp(days[int(dates[np.argmax(counts)])])
    return footprints.assign(before_date=before)


def _inside(geom: object, raster: np.ndarray, transform: Affine) -> np.ndarray:
    """``raster``'s values at the pixels whose centres ``geom`` covers, burnt in its own bounding
    window (footprints may touch: one burn per footprint, not one raster of ids)."""
    from rasterio.features import rasterize
    from rasterio.transform import rowcol

    x0, y0, x1, y1 = geom.bounds  # type: ignore[attr-defined]
    rows, cols = rowcol(transform, [x0, x1, x0, x1], [y0, y0, y1, y1])
    r0, r1 = max(min(rows), 0), min(max(rows) + 1, raster.shape[0])
    c0, c1 = max(min(cols), 0), min(max(cols) + 1, raster.shape[1])
    if r0 >= r1 or c0 >= c1:
        return raster[:0, :0].ravel()
    window = transform @ Affine.translation(c0, r0)
    mask = rasterize([(geom, 1)], out_shape=(r1 - r0, c1 - c0), transform=window, fill=0, dtype="uint8")
    return raster[r0:r1, c0:c1][mask.astype(bool)]


__all__ = ["FILLED_ATTR", "Filled", "clear_before_dates", "fill_before", "fill_order", "fill_sources", "fill_window",
           "filled_counts",
           "filled_record"]
