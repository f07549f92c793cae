"""A building put up where one was demolished earlier in the series: a second event (private).

:func:`changedetect.detect.combine_pairs` keeps, per pixel, the first pair whose probability
reaches the threshold, so a house demolished between the first two dates and a new one put up
on its lot between the next two lie under one footprint, the demolition's: matched against the
demolition's permit, the new house is never checked against any (an unlicensed rebuild on a
permitted demolition's lot would pass).  :func:`rebuilds` finds those second events, for
:func:`changedetect.pipeline.run` to trace and match as footprints of their own.

An object is a rebuild when, over its pixels:

* a consecutive pair reaches the threshold (the first event) and a *later* consecutive pair
  reaches it again (the second);
* the building segmenter (:class:`~changedetect.presence.DatePresence`) sees a building go on
  the first event and one come on the second: its mean falls by ``delta`` from at least
  ``presence`` and then rises by ``delta`` to at least ``presence`` (0.5 and 0.3, the kinds of
  :func:`changedetect._change_presence.presence_types`);
* most of the change around it (the connected region of pixels that any consecutive pair
  changed) was first seen before the second event: a lot demolished earlier, not a house of the
  second event whose fringe an earlier pair also touched (on 80 fresh generated cities, four of
  the thirty objects found without this test were such fringes);
* the network decides change over at least ``decided`` of it on a pair of the series that spans
  both events (in a yearly series, the same-season pair from the first event's BEFORE date to
  the second's AFTER date).  A winter shadow that the segmenter reads as a roof, gone in July
  and back the next January, passes the first two tests; between the two Januaries it is the
  same shadow and the network sees nothing.  A house rebuilt exactly as it was is therefore not
  reported (there is nothing to see between the spanning dates either).

Without a segmenter or a spanning pair nothing is reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr
from scipy import ndimage

if TYPE_CHECKING:
    from changedetect.presence import DatePresence

__all__ = ["RebuildCheck", "rebuilds"]


@dataclass(frozen=True)
class RebuildCheck:
    """The thresholds of :func:`rebuilds` (see the module docstring)."""

    presence: float = 0.5
    delta: float = 0.3
    decided: float = 0.25
    min_area_m2: float = 10.0


def rebuilds(events: list[tuple[int, int, xr.DataArray]], times: np.ndarray, threshold: float,
             dates: DatePresence, pixel_m2: float,
             check: RebuildCheck = RebuildCheck()) -> tuple[xr.DataArray, xr.DataArray] | None:
    """The second events of a series: ``(probability, first_seen)`` on the pairs' grid, or None.

    Parameters
    ----------
    events
        :func:`changedetect.detect.detect_each_pair`'s ``(before, after, probability)``.
    times
        The stack's dates (``events`` index them).
    threshold
        The network's decision threshold.
    dates
        The building segmenter's rasters of the same stack.
    pixel_m2
        A pixel's ground area (``check.min_area_m2``).

    Returns
    -------
    (xarray.DataArray, xarray.DataArray) or None
        ``(y, x)`` float32: the second event's pair probability inside each rebuild, 0 elsewhere
        (NaN where no pair of ``events`` has data); ``(y, x)`` datetime64[ns]: that pair's AFTER
        date there, NaT elsewhere.
        None when the series has no rebuild.
    """
    steps = sorted(((i, p) for i, j, p in events if j == i + 1), key=lambda e: e[0])
    if len(steps) < 2:
        return None
    template = steps[0][1]
    # per pixel, the first consecutive step that reaches the threshold and the next one after it
    # (two int16 rasters, whatever the number of dates)
    first = np.full(template.shape, -1, dtype=np.int16)
    second = np.full(template.shape, -1, dtype=np.int16)
    for k, (_, p) in enumerate(steps):
        hit = np.nan_to_num(p.values) >= threshold
        second[hit & (first >= 0) & (second < 0)] = k
        first[hit & (first < 0)] = k
    if (second < 0).all():
        return None
    raw = second >= 0
    labels, n = ndimage.label(ndimage.binary_opening(raw), structure=np.ones((3, 3), bool))
    if n == 0:
        return None
    # the opening drops specks (and an object's corners): give the corners back
    labels = np.where(raw, ndimage.maximum_filter(labels, size=3), 0)
    lots, _ = ndimage.label(first >= 0, structure=np.ones((3, 3), bool))  # what changed at all
    lot_boxes = ndimage.find_objects(lots)
    min_px = int(np.ceil(check.min_area_m2 / pixel_m2)) if pixel_m2 > 0 else 0
    out = np.zeros(template.shape, dtype=np.float32)
    seen = np.full(template.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    for k, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        mask = labels[box] == k
        if int(mask.sum()) < min_px:
            continue
        # the object's events: the most common first and second step over it
        k1 = int(np.bincount(first[box][mask].clip(0)).argmax())
        k2 = int(np.bincount(second[box][mask].clip(0)).argmax())
        if k2 <= k1 or not _earlier_lot(lots, lot_boxes, first, box, mask, k2):
            continue
        a, b = steps[k1][0], steps[k1][0] + 1  # the first event's dates
        c, d = steps[k2][0], steps[k2][0] + 1  # the second's
        pa, pb, pc, pd = (float(np.nanmean(dates.raster(t).values[box][mask])) for t in (a, b, c, d))
        went = pa >= check.presence and pa - pb >= check.delta
        came = pd >= check.presence and pd - pc >= check.delta
        if not (went and came and _spanned(events, a, d, box, mask, threshold, check.decided)):
            continue
        prob = steps[k2][1].values[box]
        inside = mask & (np.nan_to_num(prob) >= threshold)
        out[box][inside] = prob[inside]
        seen[box][inside] = times[d]
    if np.isnat(seen).all():
        return None
    # no data where no pair has any (not where the first pair has none: a rebuild on a lot the
    # first date does not cover is still one)
    out[np.logical_and.reduce([np.isnan(p.values) for _, _, p in events])] = np.nan
    prob_da = template.copy(data=out)
    prob_da.attrs = {**template.attrs, "event": "rebuilt"}
    seen_da = xr.DataArray(seen, dims=template.dims, coords={k: template[k] for k in template.dims if k in template.coords},
                           name="first_seen")
    return prob_da, seen_da


def _earlier_lot(lots: np.ndarray, lot_boxes: list[tuple[slice, ...] | None], first: np.ndarray,
                 box: tuple[slice, ...], mask: np.ndarray, k2: int) -> bool:
    """Whether most of the change the object lies in (its connected region of ``lots``) was
    first seen before step ``k2``: a lot demolished earlier, not a structure of the second event
    some of whose pixels an earlier pair also touched."""
    lot = int(np.bincount(lots[box][mask]).argmax())
    where_box = lot_boxes[lot - 1] if lot else None
    if where_box is None:
        return False
    where = lots[where_box] == lot
    return float(np.median(first[where_box][where])) < k2


def _spanned(events: list[tuple[int, int, xr.DataArray]], a: int, d: int, box: tuple[slice, ...],
             mask: np.ndarray, threshold: float, share: float) -> bool:
    """Whether a pair of ``events`` from ``a`` or before to ``d`` or after decides change over at
    least ``share`` of ``mask`` (within ``box``)."""
    for i, j, p in events:
        if i <= a and j >= d and float(np.mean(np.nan_to_num(p.values[box][mask]) >= threshold)) >= share:
            return True
    return False
