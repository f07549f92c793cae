"""The parcel overlay at district scale: N footprints against M cadastral lots.

Time of :func:`changedetect.parcels.with_parcels` (wall-clock and the calling thread's CPU time,
best and all of ``--repeat`` runs) beside a bare
``geopandas.sjoin(footprints, lots, predicate="intersects")``, which only finds the touching lots
(no shares, no crossing test), on the same frames; and what it found: footprints on a lot, footprints across lots (``parcels_crossed``
2 or more), the median share on the lot holding most of each.

The data (seeded): M lots of 12 m x 20 m on a regular grid in EPSG:32648 (Ho Chi Minh City), each
with an id and an address; N footprints of 6-14 m x 8-18 m scattered uniformly over the grid, so
that most straddle a lot boundary (the worst case for the crossing test: real houses stand on
their lots).  ``--layer-crs EPSG:9210`` stores the lots in VN-2000, so that ``with_parcels`` also
reprojects its candidates (sjoin is given both in EPSG:32648).  ``--edge-tolerance`` is the
outline tolerance ``changedetect run`` passes (its pixel size; 0: as drawn).

Usage::

    .venv/bin/python benchmarks/parcels_scale.py [--footprints 10000] [--lots 100000] [--repeat 3]
        [--layer-crs EPSG:9210] [--edge-tolerance 0.5]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def _frames(n_footprints: int, n_lots: int, seed: int) -> tuple[object, object]:
    import geopandas as gpd
    import shapely

    rng = np.random.default_rng(seed)
    nx = int(np.ceil(np.sqrt(n_lots * 20 / 12)))
    ny = int(np.ceil(n_lots / nx))
    x0, y0 = 680_000.0, 1_190_000.0
    gx, gy = np.meshgrid(np.arange(nx) * 12.0 + x0, np.arange(ny) * 20.0 + y0)
    gx, gy = gx.ravel()[:n_lots], gy.ravel()[:n_lots]
    lots = gpd.GeoDataFrame({"parcel_id": [f"{i // 1000}/{i % 1000}" for i in range(n_lots)],
                             "address": [f"Số {i % 900 + 1} Đường Tô Ký" for i in range(n_lots)]},
                            geometry=shapely.box(gx, gy, gx + 12, gy + 20), crs="EPSG:32648")
    cx, cy = rng.uniform(x0, x0 + nx * 12, n_footprints), rng.uniform(y0, y0 + ny * 20, n_footprints)
    w, h = rng.uniform(6, 14, n_footprints), rng.uniform(8, 18, n_footprints)
    footprints = gpd.GeoDataFrame({"footprint_id": np.arange(n_footprints)},
                                  geometry=shapely.box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2),
                                  crs="EPSG:32648")
    return footprints, lots


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--footprints", type=int, default=10_000)
    ap.add_argument("--lots", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--layer-crs", default=None, help="store the lots in this CRS (e.g. EPSG:9210)")
    ap.add_argument("--edge-tolerance", type=float, default=0.0, help="metres (run: the pixel size)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import geopandas as gpd

    from changedetect.parcels import with_parcels

    footprints, lots = _frames(args.footprints, args.lots, args.seed)
    layer = lots if args.layer_crs is None else lots.to_crs(args.layer_crs)
    print(f"{args.footprints} footprints x {args.lots} lots (layer in {layer.crs.to_string()}), "
          f"edge tolerance {args.edge_tolerance} m; load {os.getloadavg()[0]:.1f}")
    for label, call in (
        ("with_parcels", lambda: with_parcels(footprints, layer, edge_tolerance_m=args.edge_tolerance)),
        ("geopandas.sjoin (touching lots only)", lambda: gpd.sjoin(footprints, lots, predicate="intersects")),
    ):
        walls, cpus = [], []
        out = None
        for _ in range(args.repeat):
            t, c = time.perf_counter(), time.thread_time()
            out = call()
            walls.append(time.perf_counter() - t)
            cpus.append(time.thread_time() - c)
        print(f"  {label}: best {min(walls):.2f} s wall, {min(cpus):.2f} s CPU "
              f"(all: {', '.join(f'{w:.2f}' for w in walls)})")
        if label == "with_parcels":
            print(f"    on a lot {int((out['parcel_id'] != '').sum())}, across lots "
                  f"{int((out['parcels_crossed'] >= 2).sum())}, median share on the main lot "
                  f"{float(out['parcel_share'].median()):.2f}")
    print(f"load after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
