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

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

#: set (True) on a BEFORE image that earlier dates filled
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


def fill_before(stack: xr.DataArray, i: int) -> Filled:
    """Date ``i`` of ``stack`` (``(time, band, y, x)``) with its no data filled from the latest
    earlier date with data in every band, pixel by pixel.  Lazy where the stack is: the masks are
    computed (one read of each date needed), the image is a ``where`` over the dates used, read
    window by window by detection.  Date ``i`` itself, untouched, when it has no pixel to fill."""
    before = stack.isel(time=i)
    if i == 0:
        return Filled(before, None)
    need = ~_has_data(before)
    if not need.any():
        return Filled(before, None)
    source = np.full(need.shape, -1, dtype=np.int16)
    data = before.data
    lazy = before.chunks is not None
    for k in range(i - 1, -1, -1):
        earlier = stack.isel(time=k)
        take = need & _has_data(earlier)
        if not take.any():
            continue
        source[take] = k
        need &= ~take
        if lazy:
            import dask.array as dsk

            data = dsk.where(dsk.from_array(take, chunks=earlier.data.chunks[1:])[None], earlier.data, data)
        else:
            data = np.where(take[None], earlier.values, data)
        if not need.any():
            break
    if not (source >= 0).any():
        return Filled(before, None)
    image = before.copy(data=data)
    image.attrs = {**before.attrs, FILLED_ATTR: True}
    return Filled(image, source)


def fill_window(dates: list[np.ndarray]) -> np.ndarray:
    """One window of :func:`fill_before`'s image from the window's arrays of dates ``i, i - 1, ...,
    0`` (``(band, h, w)`` each, latest first): the same pixel rule, on arrays."""
    out = np.array(dates[0], dtype=np.float32, copy=True)
    need = ~np.isfinite(out).all(axis=0)
    for earlier in dates[1:]:
        if not need.any():
            break
        take = need & np.isfinite(earlier).all(axis=0)
        out[:, take] = earlier[:, take]
        need &= ~take
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


__all__ = ["FILLED_ATTR", "Filled", "fill_before", "fill_window", "filled_counts", "filled_record"]
