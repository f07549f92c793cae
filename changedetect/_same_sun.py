"""Footprints first seen across seasons must hold under the same sun (private).

Between two dates of different seasons every cast shadow moves, and the change network, trained
to ignore moving shadows, still flags some: on 80 fresh generated cities, 53 of 0.4.0's 60 false
blobs were first seen on a January -> July pair, most of them on a shadow that moved.  A series
often has a pair of the **same season** that spans such a pair (January -> the next January:
:func:`changedetect.detect.series_pairs` adds it), and there a moved shadow is no change at all.
:func:`unconfirmed` marks the footprints first seen on a consecutive pair of different seasons over
which the network decides change on less than ``share`` of the footprint on a same-season pair
of the series that spans that pair.  A footprint without such a pair is never marked.

The nightly job sees one date a night, so a footprint first seen on a January -> July night can
only be checked on the night a same-season partner of a later date arrives (the next January):
:func:`judged` says which earlier nights' violations that pair can check
(``changedetect._merge.withdraw_unconfirmed`` does, on its decisions).

What it costs is a change undone before the spanning pair's last date (a house demolished and
rebuilt to look the same, a temporary structure), and a change the same-season pair cannot see
(an extension in a neighbour's winter shadow on both Januaries): measured in
``docs/benchmarks.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from changedetect.types import transform_of

if TYPE_CHECKING:
    import geopandas as gpd
    import xarray as xr

__all__ = ["judged", "unconfirmed"]


#: ``held(i, j, geometries)``: which footprints first seen on pair ``i -> j`` another judge saw
#: change under the same sun (bool, one per geometry)
Held = Callable[[int, int, np.ndarray], np.ndarray]


def unconfirmed(footprints: gpd.GeoDataFrame, events: list[tuple[int, int, xr.DataArray]], times: np.ndarray,
                threshold: float, share: float, season_days: int, held_by: Held | None = None) -> np.ndarray:
    """Which of ``footprints`` (with ``first_seen``, on the pairs' grid and CRS) were first seen on a
    consecutive pair of different seasons and are decided over less than ``share`` of their area on
    every same-season pair of ``events`` that spans it (:func:`changedetect.detect.detect_each_pair`'s
    ``(before, after, probability)``), and that ``held_by`` (the building segmenter between two
    same-season dates, :func:`changedetect._pipeline_steps.segmenter_held`) does not see change
    under the same sun either.

    Returns
    -------
    numpy.ndarray
        bool, one per footprint: True = not confirmed under the same sun.
    """
    from changedetect._change_presence import presence_means
    from changedetect.presence import same_season

    out = np.zeros(len(footprints), dtype=bool)
    if not len(footprints) or "first_seen" not in footprints:
        return out
    seen = pd.to_datetime(footprints["first_seen"]).to_numpy().astype("datetime64[D]")
    days = np.asarray(times).astype("datetime64[D]")
    spans = [(i, j, p) for i, j, p in events if j > i + 1 and same_season(times[i], times[j], season_days)]
    if not spans:
        return out
    geoms = np.asarray(footprints.geometry.values)
    decided: dict[int, np.ndarray] = {}  # per spanning pair, the decided share of every footprint
    for i, j in [(i, j) for i, j, _ in events if j == i + 1]:
        if same_season(times[i], times[j], season_days):
            continue
        rows = np.flatnonzero(seen == days[j])  # first seen on this pair
        if not len(rows):
            continue
        held = np.zeros(len(rows), dtype=bool)
        checked = False
        for s, (a, b, p) in enumerate(spans):
            if a <= i and b >= j:
                checked = True
                if s not in decided:
                    transform = transform_of(p)
                    v = p.values  # no data stays NaN: a footprint it covers cannot be judged
                    hit = np.where(np.isfinite(v), v >= threshold, np.nan).astype(np.float32)
                    decided[s] = presence_means(geoms, hit, transform)
                held |= np.nan_to_num(decided[s][rows], nan=1.0) >= share
        if checked and held_by is not None and not held.all():
            rest = rows[~held]
            held[~held] = held_by(i, j, geoms[rest])
        if checked:
            out[rows[~held]] = True
    return out


def judged(before: np.ndarray, after: np.ndarray, span: tuple[np.datetime64, np.datetime64],
           season_days: int) -> np.ndarray:
    """Which pairs ``before[k] -> after[k]`` the same-season pair ``span`` judges: those within it,
    not ``span`` itself, that span two seasons (bool, one per pair)."""
    from changedetect.presence import same_season

    start, end = np.asarray(span).astype("datetime64[D]")
    b = np.asarray(before).astype("datetime64[D]")
    a = np.asarray(after).astype("datetime64[D]")
    inside = (b >= start) & (a <= end) & ~((b == start) & (a == end)) & (a > b)
    return inside & np.array([not same_season(x, y, season_days) for x, y in zip(b, a, strict=True)], dtype=bool)
