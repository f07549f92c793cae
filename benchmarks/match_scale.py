"""Matching at city scale: N footprints against M generated permits.

Time and peak memory (RSS sampled every 5 ms, above the level before the call, freed heap
memory having been returned to the OS first with glibc's ``malloc_trim``) of
:func:`changedetect.match.match` beside a bare ``geopandas.sjoin(footprints, permits,
predicate="intersects")`` on the same frames.  Each measurement runs in a fresh
process on freshly generated data (so no spatial index is reused), and is repeated.

The data: M permits on a regular grid of 12 m x 15 m lots (EPSG:32648, Ho Chi Minh
City), random types, dates and statuses; N footprints on random lots, each its lot's
permit grown or shrunk by up to 30 % and shifted by up to 2 m, some on lots without
a permit.  ``--register-crs EPSG:9210`` stores the permits in VN-2000 so that
``match`` also reprojects its candidates (sjoin is then given both in EPSG:32648).
``--rotate D`` turns every lot and every footprint by its own angle in [-D, D] degrees
(axis-aligned boxes are the easy case for nothing in ``match``, but this shows it).

Time is wall-clock; CPU is the calling thread's CPU time (both are single-threaded), which
varies less than wall time when other jobs share the machine.  The load average is printed
before and after.

Usage::

    .venv/bin/python benchmarks/match_scale.py [--footprints 100000] [--permits 1000000] [--repeat 3]
        [--register-crs EPSG:9210] [--rotate 15]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import statistics
import time

import geopandas as gpd
import numpy as np
import psutil
import shapely
from _memory import peak_rss  # benchmarks/ is on sys.path when run as a script

X0, Y0 = 600_000.0, 1_180_000.0
TYPES = np.array(["new_construction", "extension", "renovation", "demolition"], dtype=object)
STATUSES = np.array(["active", "completed", "expired", "revoked"], dtype=object)


def _rectangles(x0: np.ndarray, y0: np.ndarray, w: np.ndarray, h: np.ndarray, degrees: np.ndarray) -> np.ndarray:
    """Rectangles ``(x0, y0, x0 + w, y0 + h)`` turned about their centres (counter-clockwise rings)."""
    if not np.any(degrees):
        return shapely.box(x0, y0, x0 + w, y0 + h)
    a = np.radians(degrees)[:, None]
    cx, cy = (x0 + w / 2)[:, None], (y0 + h / 2)[:, None]
    u = np.array([-1, 1, 1, -1, -1])[None, :] * (np.asarray(w) / 2)[..., None]
    v = np.array([-1, -1, 1, 1, -1])[None, :] * (np.asarray(h) / 2)[..., None]
    ring = np.stack([cx + u * np.cos(a) - v * np.sin(a), cy + u * np.sin(a) + v * np.cos(a)], axis=-1)
    return shapely.polygons(ring)


def make_data(n_fp: int, n_pm: int, seed: int = 0, register_crs: str | None = None, rotate: float = 0.0
              ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    rng = np.random.default_rng(seed)
    rng_rot = np.random.default_rng(seed + 1)  # its own stream: --rotate 0 gives the same data as before
    side = int(np.ceil(np.sqrt(n_pm)))
    k = np.arange(n_pm)
    x, y = X0 + 14.0 * (k % side), Y0 + 17.0 * (k // side)
    permits = gpd.GeoDataFrame({
        "permit_id": np.char.add("P-", k.astype(str)).astype(object),
        "permit_type": TYPES[rng.choice(4, n_pm, p=[0.6, 0.2, 0.15, 0.05])],
        "issued_on": (np.datetime64("2023-01-01") + rng.integers(0, 700, n_pm).astype("timedelta64[D]")),
        "valid_until": np.datetime64("2026-01-01"),
        "permitted_area_m2": 180.0,
        "status": STATUSES[rng.choice(4, n_pm, p=[0.5, 0.35, 0.1, 0.05])],
        "geometry": _rectangles(x, y, np.full(n_pm, 12.0), np.full(n_pm, 15.0), rng_rot.uniform(-rotate, rotate, n_pm)
                                if rotate else np.zeros(n_pm)),
    }, crs="EPSG:32648")
    lots = rng.choice(int(n_pm * 1.1), n_fp, replace=False)  # ~10 % of lots have no permit
    lx, ly = X0 + 14.0 * (lots % side), Y0 + 17.0 * (lots // side)
    grow = rng.uniform(0.7, 1.3, n_fp)
    dx, dy = rng.uniform(-2, 2, n_fp), rng.uniform(-2, 2, n_fp)
    footprints = gpd.GeoDataFrame({
        "footprint_id": np.char.add("F-", np.arange(n_fp).astype(str)).astype(object),
        "first_seen": np.datetime64("2024-06-01") + rng.integers(0, 200, n_fp).astype("timedelta64[D]"),
        "change_type": np.where(rng.random(n_fp) < 0.9, "new", "altered").astype(object),
        "prob_mean": rng.uniform(0.5, 1, n_fp),
        "geometry": _rectangles(lx + dx, ly + dy, 12.0 * grow, 15.0 * grow, rng_rot.uniform(-rotate, rotate, n_fp)
                                if rotate else np.zeros(n_fp)),
    }, crs="EPSG:32648")
    if register_crs:
        permits = permits.to_crs(register_crs)
    return footprints, permits


def _release_freed_memory() -> None:
    """Give freed heap pages back to the OS, so that RSS growth measures the call alone."""
    import contextlib
    import ctypes
    import gc

    gc.collect()
    with contextlib.suppress(OSError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _peak_during(fn) -> tuple[float, float, float, object]:  # noqa: ANN001
    """Wall seconds, peak MiB, CPU seconds of the calling thread, and the result of ``fn()``."""
    _release_freed_memory()
    cpu = [0.0]

    def timed() -> object:
        start = time.thread_time()
        try:
            return fn()
        finally:
            cpu[0] = time.thread_time() - start

    result, seconds, mib = peak_rss(timed, interval=0.005)
    return seconds, mib, cpu[0], result


def _child(which: str, n_fp: int, n_pm: int, register_crs: str | None, rotate: float, edge: float,
           queue: mp.Queue) -> None:
    footprints, permits = make_data(n_fp, n_pm, register_crs=register_crs, rotate=rotate)
    if which == "sjoin":
        to_crs = 0.0
        if permits.crs != footprints.crs:  # not timed with sjoin, reported beside it
            start = time.perf_counter()
            permits = permits.to_crs(footprints.crs)
            to_crs = time.perf_counter() - start
        seconds, mib, cpu, out = _peak_during(lambda: gpd.sjoin(footprints, permits, predicate="intersects"))
        queue.put({"seconds": seconds, "mib": mib, "cpu": cpu, "rows": len(out), "to_crs": to_crs})
    elif which == "areas":  # overlap areas of the candidate pairs: GEOS overlay vs the clipper
        from changedetect._match_overlay import intersection_areas

        f = np.asarray(footprints.geometry.values)
        p = np.asarray(permits.to_crs(footprints.crs).geometry.values)
        fi, pi = shapely.STRtree(p).query(f)
        used, inv = np.unique(pi, return_inverse=True)
        geos_s, _, _, geos = _peak_during(lambda: shapely.area(shapely.intersection(f[fi], p[pi])))
        clip_s, _, _, fast = _peak_during(lambda: intersection_areas(f, p[used], fi, inv))
        queue.put({"pairs": len(fi), "geos": geos_s, "clip": clip_s,
                   "max_abs_diff": float(np.abs(geos - fast).max())})
    else:
        from changedetect.match import MatchConfig, match

        config = MatchConfig(edge_tolerance_m=edge)
        seconds, mib, cpu, out = _peak_during(lambda: match(footprints, permits, config=config))
        queue.put({"seconds": seconds, "mib": mib, "cpu": cpu, "rows": len(out),
                   "statuses": {k: int(v) for k, v in out["status"].value_counts().items()}})


def run(which: str, n_fp: int, n_pm: int, register_crs: str | None, rotate: float = 0.0, edge: float = 0.0) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=_child, args=(which, n_fp, n_pm, register_crs, rotate, edge, queue))
    p.start()
    result = queue.get()
    p.join()
    return result


def _load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--footprints", type=int, default=100_000)
    ap.add_argument("--permits", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--register-crs", default=None, help="Store the permits in this CRS (e.g. EPSG:9210).")
    ap.add_argument("--rotate", type=float, default=0.0, help="Turn lots and footprints by up to this many degrees.")
    ap.add_argument("--edge-tolerance", type=float, default=0.0,
                    help="MatchConfig.edge_tolerance_m (0: the library default; `changedetect run` uses the pixel size).")
    args = ap.parse_args()
    print(f"{args.footprints} footprints x {args.permits} permits "
          f"(register in {args.register_crs or 'EPSG:32648'}, rotated up to {args.rotate:g}°, edge tolerance "
          f"{args.edge_tolerance:g} m), {args.repeat} runs "
          f"each, sjoin and match alternating, {psutil.cpu_count()} CPUs, "
          f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {_load()}")
    results: dict[str, list[dict]] = {"sjoin": [], "match": []}
    for _ in range(args.repeat):  # alternating, so that a change of load hits both alike
        for which in results:
            results[which].append(run(which, args.footprints, args.permits, args.register_crs, args.rotate,
                                      args.edge_tolerance))
    for which, runs in results.items():
        secs, cpu, mib = ([r[k] for r in runs] for k in ("seconds", "cpu", "mib"))
        print(f"  {which:<6} median {statistics.median(secs):6.2f} s (min {min(secs):.2f}, max {max(secs):.2f}), "
              f"CPU {statistics.median(cpu):.2f} s, peak +{statistics.median(mib):.0f} MiB, {runs[0]['rows']} rows")
    if args.register_crs:
        print(f"  (sjoin was given the register already reprojected; its to_crs took "
              f"{statistics.median(r['to_crs'] for r in results['sjoin']):.2f} s, median)")
    areas = run("areas", args.footprints, args.permits, args.register_crs, args.rotate)
    print(f"  overlap areas of {areas['pairs']} candidate pairs: GEOS {areas['geos']:.2f} s, "
          f"vectorised clipper {areas['clip']:.2f} s (largest difference {areas['max_abs_diff']:.1e} m²)")

    def ratio(key: str) -> float:
        return statistics.median(r[key] for r in results["match"]) / statistics.median(
            r[key] for r in results["sjoin"])

    print(f"  match / sjoin time: {ratio('seconds'):.2f}x (CPU time: {ratio('cpu'):.2f}x); {_load()}")
    print("  statuses: " + json.dumps(results["match"][0]["statuses"]))


if __name__ == "__main__":
    main()
