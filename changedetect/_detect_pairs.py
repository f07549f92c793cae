"""The date pairs of a series and their combination: which pairs :func:`changedetect.detect.detect_series`
compares (consecutive dates and same-season partners) and how their probabilities make one raster
and a first-seen date.  Private: import the public names from :mod:`changedetect.detect`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from changedetect._detect_engine import _with_georef
from changedetect.presence import same_season


def season_partner(times: np.ndarray, j: int, season_days: int | None = 45) -> int | None:
    """Index of date ``j``'s same-season partner, or ``None``.

    The partner is the latest date ``i < j - 1`` at least 300 days before date ``j`` whose day
    of the year is within ``season_days`` of ``j``'s.  None when ``season_days`` is None, or
    when the predecessor ``j - 1`` is itself such a date (a yearly series' consecutive pairs
    are already same-season: no two-year pair is added).
    """
    if season_days is None or j < 2:
        return None
    days = np.asarray(times, dtype="datetime64[D]")

    def partner(i: int) -> bool:
        return int((days[j] - days[i]).astype(int)) >= 300 and same_season(days[i], days[j], season_days)

    if partner(j - 1):
        return None
    return next((i for i in range(j - 2, -1, -1) if partner(i)), None)


def series_pairs(times: np.ndarray, season_days: int | None = 45) -> list[tuple[int, int]]:
    """The date pairs :func:`detect_series` compares, as ``(before, after)`` indices.

    First every consecutive pair, in order; then, for each date ``j`` and when
    ``season_days`` is not ``None``, its :func:`season_partner`: the latest earlier date
    ``i < j - 1`` that lies at least 300 days before it with a day of the year within
    ``season_days`` of ``j``'s (a same-season pair), unless its predecessor already is one.
    At most one such pair per date, so the work stays linear in the number of dates.

    >>> t = np.array(["2024-01-15", "2024-07-12", "2025-01-20"], dtype="datetime64[D]")
    >>> series_pairs(t)
    [(0, 1), (1, 2), (0, 2)]
    >>> series_pairs(t, None)
    [(0, 1), (1, 2)]
    """
    pairs = [(i, i + 1) for i in range(len(times) - 1)]
    for j in range(2, len(times)):
        i = season_partner(times, j, season_days)
        if i is not None:
            pairs.append((i, j))
    return pairs


def _pair_labels(times: np.ndarray, pairs: list[tuple[int, int]]) -> str:
    """``"before/after;..."`` ISO dates of ``pairs`` (the ``pairs`` / ``mask_pairs`` attrs)."""
    return ";".join(f"{str(times[i])[:10]}/{str(times[j])[:10]}" for i, j in pairs)


def combine_pairs(events: list[tuple[int, int, xr.DataArray]], stack: xr.DataArray,
                  threshold: float) -> tuple[xr.DataArray, xr.DataArray]:
    """The highest probability of :func:`detect_each_pair`'s pairs, and the first-seen date:
    the AFTER date of the first pair, in their order, that reaches ``threshold``.  The pairs'
    own rasters are left as they are.  ``ValueError`` when there are no pairs, or one is not
    on ``stack``'s grid or names dates outside it."""
    times = stack["time"].values
    shape = (stack.sizes["y"], stack.sizes["x"])
    if not events:
        raise ValueError("combine_pairs: no pairs to combine (give detect_each_pair's list)")
    for i, j, prob in events:
        if prob.shape != shape:
            raise ValueError(f"combine_pairs: the pair ({i}, {j}) has a raster of {prob.shape} pixels, "
                             f"the stack {shape}: give rasters on the stack's grid (detect_each_pair's)")
        if not 0 <= i < j < len(times):
            raise ValueError(f"combine_pairs: the pair ({i}, {j}) names indices that are not dates of the "
                             f"stack (0 <= before < after < {len(times)})")
    first = np.full(shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    best = events[0][2].copy(deep=True)  # the pairs' own rasters stay as they are
    for _, j, prob in events:
        values = prob.values
        first[(values >= threshold) & np.isnat(first)] = times[j]
        best.values = np.fmax(best.values, values)
    pairs = [(i, j) for i, j, _ in events]
    # the dates compared (not the stack's ends: explicit pairs may leave some out)
    best.attrs["before"] = str(np.datetime64(times[min(i for i, _ in pairs)], "D"))
    best.attrs["after"] = str(np.datetime64(times[max(j for _, j in pairs)], "D"))
    best.attrs["pairs"] = _pair_labels(times, pairs)
    best.attrs.pop("presence_check", None)  # events[0]'s: set below from every pair
    checked = [(i, j, p.attrs["presence_check"]) for i, j, p in events if "presence_check" in p.attrs]
    if checked:
        best.attrs["presence_check"] = checked[0][2]
        best.attrs["presence_check_pairs"] = _pair_labels(times, [(i, j) for i, j, _ in checked])
    masks = [p.attrs["mask_pairs"] for _, _, p in events if "mask_pairs" in p.attrs]
    if masks:  # the later pairs' mask (detect_each_pair's)
        best.attrs["mask_pairs"] = masks[0]
    first_seen = xr.DataArray(first, dims=("y", "x"), coords={k: best[k] for k in ("y", "x") if k in best.coords},
                              name="first_seen")
    return best, _with_georef(first_seen, stack.isel(time=0))
