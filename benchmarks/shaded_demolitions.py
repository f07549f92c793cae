"""Houses demolished in a neighbour's winter shadow: which date pair sees them (the sample city's S041).

The one sample-city structure the shipped ``vhr-building`` network misses is S041, a low house
pulled down inside a taller neighbour's winter shadow between July and January.  Is it an
outlier, or what the network does with every such demolition?  This benchmark generates the
cities whose house demolitions are all drawn from houses a taller neighbour's first-date shadow
half covers (``CityConfig(shaded_demolitions=1)``, as ``generated_cities.py
--shaded-demolitions 1``; seeds 701-740 by default, never trained on), co-registers each,
and for every demolition between the second date (July) and the third (January) prints the share
of its footprint at the model's threshold on that consecutive pair (July -> January, the sun
moved) and on the same-sun pair (January -> January, where ``detect_series`` and the same-sun
rule of ``changedetect run`` look for confirmation), and the largest value there.  A structure is
found on a pair when 25 % of its footprint reaches the threshold, as the other benchmarks count.

    .venv/bin/python benchmarks/shaded_demolitions.py --seeds 701-740 [--model DIR]

The sample city's S041, for comparison: 0.11 on July -> January, 0.00 on January -> January
(``sample_city_structures.py``).  Cities are generated once into ``.cache_bench/gencity_shaded/``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generated_cities import REPO, city  # noqa: E402

FOUND_SHARE = 0.25


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="vhr-building", help="shipped model name or model folder")
    ap.add_argument("--seeds", default="701-740", help="first-last; never 12 or 101-299 (training cities)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--cities", type=Path, default=REPO / ".cache_bench" / "gencity",
                    help="cities go to CITIES_shaded/ (as generated_cities.py --shaded-demolitions 1)")
    args = ap.parse_args()

    import geopandas as gpd
    from rasterio.features import rasterize

    from changedetect.coregister import coregister
    from changedetect.evaluate import make_predictor
    from changedetect.io import open_stack

    warnings.filterwarnings("ignore", module="pyogrio")
    predict = make_predictor(args.model)
    thr = float(predict.threshold)
    lo, _, hi = args.seeds.partition("-")
    rows: list[tuple[int, str, float, float, float]] = []
    t0 = time.perf_counter()
    for seed in range(int(lo), int(hi or lo) + 1):
        tiles = city(seed, args.cities, args.size, shaded=1.0)
        stack, _ = coregister(open_stack(tiles))
        rgb = stack.sel(band=list(predict.bands))
        days = [rgb.isel(time=k).compute() for k in range(rgb.sizes["time"])]
        dates = [np.datetime_as_string(t, "D") for t in rgb["time"].values]
        truth = gpd.read_file(tiles / "truth" / "footprints.gpkg", layer="footprints").to_crs(stack.rio.crs)
        last = truth[(truth["change_type"] == "demolition") & (truth["first_seen"].astype(str).str[:10] == dates[-1])]
        if len(dates) < 3 or not len(last):
            continue
        pair = np.nan_to_num(np.asarray(predict(days[-2], days[-1])))
        same_sun = np.nan_to_num(np.asarray(predict(days[0], days[-1])))
        shape, transform = (stack.sizes["y"], stack.sizes["x"]), stack.rio.transform()
        for _, f in last.iterrows():
            m = rasterize([f.geometry], out_shape=shape, transform=transform).astype(bool)
            rows.append((seed, str(f["structure_id"]), float((pair[m] >= thr).mean()),
                         float((same_sun[m] >= thr).mean()), float(same_sun[m].max())))
        print(f"  seed {seed} done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)

    print(f"\nmodel {args.model}; house demolitions in a neighbour's winter shadow between the last two dates "
          f"of cities {args.seeds}; share of the footprint >= {thr} and the largest value:\n")
    print(f"| seed | structure | {dates[-2]} -> {dates[-1]} share | {dates[0]} -> {dates[-1]} share | "
          "same-sun max |")
    print("|---|---|---|---|---|")
    for seed, sid, a, b, peak in sorted(rows, key=lambda r: max(r[2], r[3])):
        print(f"| {seed} | {sid} | {a:.2f} | {b:.2f} | {peak:.2f} |")
    v = np.array([r[2:4] for r in rows]) >= FOUND_SHARE
    print(f"\n{len(rows)} demolitions: found on the consecutive pair {v[:, 0].sum()}, on the same-sun pair "
          f"{v[:, 1].sum()}, on either {(v[:, 0] | v[:, 1]).sum()}; on the consecutive pair alone "
          f"{(v[:, 0] & ~v[:, 1]).sum()} (as S041's 0.11 / 0.00 would be, had it reached 0.25)")


if __name__ == "__main__":
    main()
