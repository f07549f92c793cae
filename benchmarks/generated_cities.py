"""Detection on fresh generated cities that no model trained on: structures found and false alarms.

The committed sample city has one held-out date pair with 22 changed structures: too few to
tell two models apart.  This benchmark generates cities with seeds that no training config
uses (default 301-310; training uses 101-299 and the sample city's seed 12), each 512 px at
0.5 m with three dates, runs ``coregister`` and each model's ``detect`` on both consecutive
pairs, and scores every changed structure of the generator's truth
(``truth/footprints.gpkg``) as the sample-city table of ``detection_accuracy.py`` does: found
when at least 25 % of its footprint's pixels reach the model's threshold in the pair where it
changed.  It also prints pixel precision / recall / F1 against the union of those footprints,
the "everything changed" floor, and false alarms: connected flagged blobs of at least 20 m²
that touch no changed structure, per km².

    .venv/bin/python benchmarks/generated_cities.py --seeds 301-320 \
        --models vhr-building models/vhr-building/stage1 cva tinycd-levir

The cities are generated once into ``.cache_bench/gencity/`` (git-ignored; ~5 s each).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
KINDS = ("new", "extension", "demolition")


def city(seed: int, folder: Path, size: int, *, shaded: float = 0.0) -> Path:
    """The generated city ``seed`` (generated on first use; ``shaded``: its shaded-demolition share)."""
    from changedetect.samplecity import generate
    from changedetect.samplecity.spec import CityConfig
    from changedetect.training.generated import HELD_OUT_CITY_SEED

    if seed == HELD_OUT_CITY_SEED or 101 <= seed <= 299:
        sys.exit(f"seed {seed} is the sample city's or a training city's: choose seeds outside 12 and 101-299")
    if shaded:
        folder = folder.with_name(folder.name + "_shaded")
    tiles = folder / f"seed_{seed}" / "tiles"
    if not (tiles / "manifest.json").is_file():
        generate(tiles, tiles.parent / "permits", config=CityConfig(seed=seed, size=size, shaded_demolitions=shaded),
                 overwrite=True)
    return tiles


def _totals() -> dict[str, Any]:
    """Counters of one model: [found, total] per change type, pixel counts, false-alarm blobs, km²."""
    return {k: [0, 0] for k in KINDS} | {"tp": 0, "fp": 0, "fn": 0, "n": 0, "blobs": 0, "km2": 0.0}


def score_city(tiles: Path, predictors: dict[str, Callable[[Any, Any], np.ndarray]],
               thresholds: dict[str, float], share: float = 0.25, min_blob_m2: float = 20.0
               ) -> dict[str, dict[str, Any]]:
    """Per model: found/total per change type, pixel counts, false-alarm blobs and area (km²)."""
    import geopandas as gpd
    from rasterio.features import rasterize
    from scipy import ndimage as ndi

    from changedetect.coregister import coregister
    from changedetect.io import open_stack

    stack, _ = coregister(open_stack(tiles))
    stack = stack.sel(band=["red", "green", "blue"])
    days = [np.datetime_as_string(t, "D") for t in stack["time"].values]
    foot = gpd.read_file(tiles / "truth" / "footprints.gpkg", layer="footprints").to_crs(stack.rio.crs)
    shape = (stack.sizes["y"], stack.sizes["x"])
    tr = stack.rio.transform()
    px_m2 = abs(tr.a * tr.e)
    masks = [rasterize([g], out_shape=shape, transform=tr).astype(bool) for g in foot.geometry]
    pair_of = [days.index(str(d)[:10]) for d in foot["first_seen"]]
    dates = [stack.isel(time=k).compute() for k in range(len(days))]  # once, for every model
    out: dict[str, dict[str, Any]] = {}
    for name, pred in predictors.items():
        res = _totals()
        for k in range(1, len(days)):
            prob = np.nan_to_num(pred(dates[k - 1], dates[k]))
            flag = prob >= thresholds[name]
            truth = np.zeros(shape, bool)
            for m, p, kind in zip(masks, pair_of, foot["change_type"], strict=True):
                if p != k:
                    continue
                truth |= m
                res[kind][1] += 1
                res[kind][0] += int(m.any() and flag[m].mean() >= share)
            res["tp"] += int((flag & truth).sum())
            res["fp"] += int((flag & ~truth).sum())
            res["fn"] += int((~flag & truth).sum())
            res["n"] += flag.size
            lab, n = ndi.label(flag)
            if n:
                sizes = ndi.sum_labels(np.ones(shape), lab, index=np.arange(1, n + 1)) * px_m2
                hit = np.zeros(n + 1, bool)
                hit[np.unique(lab[ndi.binary_dilation(truth, iterations=2) & flag])] = True
                res["blobs"] += int(((sizes >= min_blob_m2) & ~hit[1:]).sum())
            res["km2"] += flag.size * px_m2 / 1e6
        out[name] = res
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["vhr-building", "cva"],
                    help="shipped model names, model folders, 'cva', 'tinycd-levir' or 'tinycd-whu'")
    ap.add_argument("--seeds", default="301-310", help="first-last; never 12 or 101-299 (training cities)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--cities", type=Path, default=REPO / ".cache_bench" / "gencity")
    ap.add_argument("--shaded-demolitions", type=float, default=0.0, metavar="P",
                    help="generate the cities with this share of house demolitions drawn from houses half "
                         "in a taller neighbour's winter shadow (the hard case; cities go to CITIES_shaded)")
    args = ap.parse_args()
    from changedetect.evaluate import make_predictor

    lo, _, hi = args.seeds.partition("-")
    seeds = list(range(int(lo), int(hi or lo) + 1))
    preds: dict[str, Any] = {}
    for m in args.models:
        if m.startswith("tinycd-"):  # the anchor weights, comparison only (benchmarks/tinycd.py)
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from tinycd import TinyCDPredictor

            preds[m] = TinyCDPredictor(m.split("-", 1)[1])
        else:
            preds[m] = make_predictor(m)
    thresholds = {m: float(p.threshold) for m, p in preds.items()}
    total: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    for seed in seeds:
        res = score_city(city(seed, args.cities, args.size, shaded=args.shaded_demolitions), preds, thresholds)
        for name, r in res.items():
            acc = total.setdefault(name, _totals())
            for key, v in r.items():
                if key in KINDS:
                    acc[key] = [acc[key][0] + v[0], acc[key][1] + v[1]]
                else:
                    acc[key] += v
        print(f"  seed {seed} done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    print(f"\nFresh generated cities (seeds {args.seeds}, {args.size} px at 0.5 m, never trained on), after "
          "coregister; a structure is found when >= 25 % of its footprint reaches the model's threshold:\n")
    print("| model | new | extension | demolition | all | pixel P / R / F1 (floor F1) | false-alarm blobs >= 20 m² per km² |")
    print("|---|---|---|---|---|---|---|")
    for name, a in total.items():
        found = sum(a[k][0] for k in KINDS)
        n = sum(a[k][1] for k in KINDS)
        p = a["tp"] / max(a["tp"] + a["fp"], 1)
        r = a["tp"] / max(a["tp"] + a["fn"], 1)
        f1 = 2 * p * r / max(p + r, 1e-12)
        pos = (a["tp"] + a["fn"]) / max(a["n"], 1)
        floor = 2 * pos / (1 + pos)
        cells = " | ".join(f"{a[k][0]}/{a[k][1]}" for k in KINDS)
        print(f"| {name} | {cells} | {found}/{n} ({100 * found / max(n, 1):.0f} %) | {p:.3f} / {r:.3f} / "
              f"{f1:.3f} ({floor:.3f}) | {a['blobs'] / max(a['km2'], 1e-9):.0f} |")


if __name__ == "__main__":
    main()
