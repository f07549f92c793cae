"""How much of the scene each pair ``run`` compares could be compared (private;
:mod:`changedetect._pipeline_chain`).

A change is only seen where both dates of a pair have data: a cloud its Sentinel-2 SCL masked,
the SCL's own no data, or a tile that does not reach, leaves that part of the scene unchecked,
and "no violation there" means "not looked at".  :func:`coverage_of` measures, from the co-registered
stack decimated to at most 1024 px a side (a held stack: in memory; a spilled one: as sampled while its
scratch files were written, :func:`changedetect.io.spill.sampled_valid`, never by reading them again), each
compared date's share with data in every band and each compared pair's share with data on both dates; ``run`` writes it to ``run.json`` (``coverage``), puts it in
the inspectors' report and says a low pair's reason (:func:`changedetect.io.clouds.coverage_why`).

A consecutive pair whose BEFORE detection filled from the last clear view
(:mod:`changedetect._fill_before`) compared more than "data on both dates": a pixel where its AFTER
has data and its BEFORE has data or was filled.  :func:`coverage_of` measures that share
(``compared_share``) with the fill's own rule, on the same sampled masks of the dates it may be
filled from (:func:`fill_orders`), not by filling the scene again; ``filled_share`` and
``filled_from`` say how much of it was compared against which clear view.  A run.json without
``compared_share`` (before 2026-12) reads its ``coverage_both_dates`` (:func:`compared_share`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from changedetect._fill_before import fill_order, fill_sources
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


def fill_orders(days: Sequence[str], pairs: Sequence[tuple[int, int]], filled_before: Sequence[dict[str, Any]],
                sources: Sequence[int] | None) -> dict[tuple[int, int], list[int]]:
    """The dates each compared pair's BEFORE may be filled from, latest first (the order
    :func:`changedetect._fill_before.fill_before` tries them), for the pairs detection filled:
    those ``filled_before`` (run.json's, :func:`changedetect._fill_before.filled_record`) lists;
    ``sources``: ``run``'s ``fill_from`` as indices into ``days`` (None: every earlier date)."""
    fillable = {(str(p["before"]), str(p["after"])) for p in filled_before}
    out = {}
    for i, j in pairs:
        if j == i + 1 and (days[i], days[j]) in fillable:
            out[(i, j)] = fill_order(i, sources)
    return out


def coverage_of(days: Sequence[str], pairs: Sequence[tuple[int, int]], valid: dict[int, np.ndarray],
                clouds: Sequence[dict[str, Any]], known: dict[tuple[str, str], float] | None = None,
                fills: dict[tuple[int, int], list[int]] | None = None) -> dict[str, Any]:
    """``run.json``'s ``coverage`` of ``pairs`` (indices into ``days``, the stack's ISO dates;
    ``valid``: :func:`valid_masks` of their dates and of the dates they may be filled from): ``pairs``, one
    ``{"before", "after", "coverage_both_dates", "compared_share", "low"}`` per compared pair
    (``compared_share``: with data on both dates, and where its BEFORE was filled (``fills``: :func:`fill_orders`)
    its AFTER's data there; ``low``: that under :data:`~changedetect.io.clouds.LOW_COVERAGE`), a filled
    pair with ``filled_share`` (the share of the scene compared against a filled BEFORE, in
    ``compared_share``) and ``filled_from`` (that share per date it came from), and ``dates``, one
    ``{"date", "valid_share", "tiles_nodata_share"}`` per date a pair compares
    (``tiles_nodata_share``: without data beyond what the date's SCL masked, ``clouds``: run.json's;
    all of it without a masking SCL).  ``known``: shares already measured, by ``(before, after)``
    (the first and last dates', from the report images, so that one pair has one figure)."""
    scl = {str(c["date"]): float(c.get("masked_share", 0.0)) for c in clouds if c.get("masked")}
    compared_dates = {d for pair in pairs for d in pair}
    dates = []
    for i, mask in valid.items():
        if i not in compared_dates:  # a date read only to fill a BEFORE: not compared
            continue
        share = float(mask.mean())
        dates.append({"date": days[i], "valid_share": round(share, 4),
                      "tiles_nodata_share": round(max(0.0, 1.0 - share - scl.get(days[i], 0.0)), 4)})
    out = []
    for i, j in pairs:
        both = (known or {}).get((days[i], days[j]))
        if both is None:
            both = round(float((valid[i] & valid[j]).mean()), 4)
        entry: dict[str, Any] = {"before": days[i], "after": days[j], "coverage_both_dates": both,
                                 "compared_share": both}
        order = (fills or {}).get((i, j))
        if order is not None:
            # the fill's own rule on the sampled masks, where the AFTER has data
            source = fill_sources(~valid[i] & valid[j], valid.__getitem__, order)
            took, counts = np.unique(source[source >= 0], return_counts=True)
            filled = round(float((source >= 0).mean()), 4)
            entry.update(compared_share=round(min(1.0, both + filled), 4), filled_share=filled,
                         filled_from={days[int(k)]: round(int(n) / source.size, 4)
                                      for k, n in sorted(zip(took, counts, strict=True), key=lambda kn: -kn[1])})
        out.append({**entry, "low": bool(entry["compared_share"] < LOW_COVERAGE)})
    return {"pairs": out, "dates": dates}


def compared_share(pair: Mapping[str, Any]) -> float | None:
    """A ``coverage`` pair's share compared: its ``compared_share``, or for a run.json written before
    it (2026-12) its ``coverage_both_dates``; None when neither was measured."""
    value = pair.get("compared_share", pair.get("coverage_both_dates"))
    return None if value is None else float(value)


def compared_words(pair: Mapping[str, Any]) -> str:
    """What a low pair's warning says was short: ``has data on both A and B``, or for a pair compared
    against the last clear view where its BEFORE had none, ``was compared between A and B (data on B,
    and on A or its last clear view)``."""
    before, after = pair["before"], pair["after"]
    if not pair.get("filled_share"):
        return f"has data on both {before} and {after}"
    return f"was compared between {before} and {after} (data on {after}, and on {before} or its last clear view)"


def tiles_nodata(coverage: dict[str, Any] | None) -> dict[str, float]:
    """Date -> ``tiles_nodata_share`` of :func:`coverage_of`'s dates (what :func:`changedetect.io.clouds.coverage_why` takes)."""
    return {str(d["date"]): float(d["tiles_nodata_share"]) for d in (coverage or {}).get("dates", [])
            if d.get("tiles_nodata_share") is not None}


__all__ = ["compared_pairs", "compared_share", "compared_words", "coverage_of", "fill_orders", "tiles_nodata",
           "valid_masks"]
