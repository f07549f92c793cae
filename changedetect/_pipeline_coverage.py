"""How much of the scene each pair ``run`` compares could be compared (private;
:mod:`changedetect._pipeline_chain`).

A change is only seen where both dates of a pair have data: a cloud its Sentinel-2 SCL masked,
the SCL's own no data, or a tile that does not reach, leaves that part of the scene unchecked,
and "no violation there" means "not looked at".  :func:`coverage_of` measures, from the co-registered
stack decimated to at most 1024 px a side (a held stack: in memory; a spilled one: as sampled while its
scratch files were written, :func:`changedetect.io.spill.sampled_valid`, never by reading them again), each
compared date's share with data in every band and each compared pair's share with data on both dates; ``run`` writes it to ``run.json`` (``coverage``), puts it in
the inspectors' report and says a low pair's reason (:func:`changedetect.io.clouds.coverage_why`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from changedetect.io.clouds import LOW_COVERAGE

if TYPE_CHECKING:
    import xarray as xr


def compared_pairs(aligned: xr.DataArray, index: list[tuple[int, int]] | None,
                   season_days: int | None) -> list[tuple[int, int]]:
    """The pairs detection compares on ``aligned``, as indices: ``index`` when given, else the
    series' own (:func:`changedetect.detect.series_pairs`, as ``detect_each_pair`` chooses them)."""
    if index is not None:
        return list(index)
    from changedetect._detect_pairs import series_pairs

    return series_pairs(aligned["time"].values, season_days)


def valid_masks(aligned: xr.DataArray, dates: Sequence[int], *, side: int = 1024) -> dict[int, np.ndarray]:
    """Date index -> ``(y, x)`` bool, True where the date has data in every band, on ``aligned``'s
    grid decimated (every n-th pixel, nearest) to at most ``side`` px on the longest side: for a
    spilled stack, the sample its spill took (:func:`changedetect.io.spill.sampled_valid`; a strided
    read through dask would decompress every tile of those dates again), else read from ``aligned``."""
    from changedetect.io.spill import sample_step, sampled_valid

    wanted = sorted(set(dates))
    if not wanted:
        return {}
    step = sample_step(aligned.sizes["y"], aligned.sizes["x"], side)
    sampled = sampled_valid(aligned, step)
    times = [str(t) for t in aligned["time"].values]
    if sampled is not None and all(times[i] in sampled for i in wanted):
        return {i: sampled[times[i]] for i in wanted}
    coarse = aligned.isel(time=wanted, y=slice(step // 2, None, step), x=slice(step // 2, None, step))
    valid = np.asarray(coarse.notnull().all("band").values, dtype=bool)
    return dict(zip(wanted, valid, strict=True))


def coverage_of(days: Sequence[str], pairs: Sequence[tuple[int, int]], valid: dict[int, np.ndarray],
             clouds: Sequence[dict[str, Any]], known: dict[tuple[str, str], float] | None = None) -> dict[str, Any]:
    """``run.json``'s ``coverage`` of ``pairs`` (indices into ``days``, the stack's ISO dates;
    ``valid``: :func:`valid_masks` of their dates): ``pairs``, one ``{"before", "after", "coverage_both_dates",
    "low"}`` per compared pair (``low``: under :data:`~changedetect.io.clouds.LOW_COVERAGE`), and
    ``dates``, one ``{"date", "valid_share", "tiles_nodata_share"}`` per date a pair compares
    (``tiles_nodata_share``: without data beyond what the date's SCL masked, ``clouds``: run.json's;
    all of it without a masking SCL).  ``known``: shares already measured, by ``(before, after)``
    (the first and last dates', from the report images, so that one pair has one figure)."""
    scl = {str(c["date"]): float(c.get("masked_share", 0.0)) for c in clouds if c.get("masked")}
    dates = []
    for i, mask in valid.items():
        share = float(mask.mean())
        dates.append({"date": days[i], "valid_share": round(share, 4),
                      "tiles_nodata_share": round(max(0.0, 1.0 - share - scl.get(days[i], 0.0)), 4)})
    out = []
    for i, j in pairs:
        both = (known or {}).get((days[i], days[j]))
        if both is None:
            both = round(float((valid[i] & valid[j]).mean()), 4)
        out.append({"before": days[i], "after": days[j], "coverage_both_dates": both,
                    "low": bool(both < LOW_COVERAGE)})
    return {"pairs": out, "dates": dates}


def tiles_nodata(coverage: dict[str, Any] | None) -> dict[str, float]:
    """Date -> ``tiles_nodata_share`` of :func:`coverage_of`'s dates (what :func:`changedetect.io.clouds.coverage_why` takes)."""
    return {str(d["date"]): float(d["tiles_nodata_share"]) for d in (coverage or {}).get("dates", [])
            if d.get("tiles_nodata_share") is not None}


__all__ = ["compared_pairs", "coverage_of", "tiles_nodata", "valid_masks"]
