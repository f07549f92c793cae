"""One accuracy table: every shipped model on every held-out set, beside CVA, TinyCD and the floor.

Sets (all held out from every model's training):

- ``levir``: the 11 LEVIR-CD samples (0.5 m, Texas; never trained on);
- ``oscd-heldout``: the OSCD cities in the s2-urban card's ``val_groups``;
- ``buildings-heldout``: seeded change pairs synthesised (``changedetect.training.synth.make_pair``)
  from the fair_oam areas in the vhr-building card's ``val_groups`` (areas never trained on);
- ``sample-city-heldout``: the sample city's consecutive pairs in the vhr-building card's
  ``val_groups`` (``sample_city_<k>`` = k-th pair), after ``coregister`` when that module
  exists, against ``sample_tiles/truth/change_<d1>_<d2>.tif``.

Then, per change type (new, extension, demolition), how many of the sample city's changed
structures each model finds in the pair where they changed.

Scores: F1 and IoU of the change class from pixel counts pooled over each set; the floor
is "everything changed".  RGB models (vhr-building, TinyCD) are not run on Sentinel-2 and
s2-urban not on RGB sets ("n/a").

Usage::

    .venv/bin/python benchmarks/detection_accuracy.py [--data ../shared/data] [--pairs 64] [--no-tinycd]
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

RGB = ("red", "green", "blue")


def _da(x: np.ndarray, bands: tuple[str, ...] = RGB) -> xr.DataArray:
    return xr.DataArray(np.asarray(x, np.float32), dims=("band", "y", "x"), coords={"band": list(bands)})


def val_groups(name: str) -> list[str]:
    """Held-out groups of a model: its card's training record, else its train.toml."""
    from changedetect.errors import ModelError
    from changedetect.weights import find_model, read_card

    try:
        groups = read_card(find_model(name)).training.get("val_groups")
        if groups:
            return list(groups)
    except ModelError:
        pass
    toml = REPO / "models" / name / "train.toml"
    return list(tomllib.loads(toml.read_text()).get("val_groups", [])) if toml.is_file() else []


# ----------------------------------------------------------------------------- sets
def levir_pairs(data: Path) -> list[Any]:
    from changedetect.evaluate import iter_pairs

    return list(iter_pairs(data / "levir_samples"))


def building_pairs(data: Path, groups: list[str], n: int, seed: int = 2026) -> list[Any]:
    from changedetect.evaluate import Pair
    from changedetect.training.datasets import load_fair_oam_area
    from changedetect.training.synth import SynthConfig, make_pair

    images = [im for g in groups if g.startswith("fair_oam_")
              for im in load_fair_oam_area(data / "buildings" / "fair_oam", int(g.rsplit("_", 1)[1]))]
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        sp = make_pair(images, rng, SynthConfig())
        out.append(Pair(f"synth_{i:03d}", _da(sp.a * 255), _da(sp.b * 255), sp.label.astype(bool)))
    return out


def sample_city_pairs(groups: list[str]) -> tuple[list[Any], str]:
    import rasterio

    from changedetect.evaluate import Pair
    from changedetect.io import open_stack

    folder = REPO / "sample_tiles"
    stack = open_stack(folder)
    how = "as written (no coregister module)"
    try:
        from changedetect.coregister import coregister

        stack, _ = coregister(stack)
        how = "after coregister"
    except ImportError:
        pass
    bands = [b for b in RGB if b in [str(x) for x in stack["band"].values]]
    stack = stack.sel(band=bands)
    days = [np.datetime_as_string(t, "D").replace("-", "") for t in stack["time"].values]
    wanted = {int(g.rsplit("_", 1)[1]) for g in groups if g.startswith("sample_city_")}
    out = []
    for k in range(1, len(days)):
        if k not in wanted:
            continue
        truth = folder / "truth" / f"change_{days[k - 1]}_{days[k]}.tif"
        with rasterio.open(truth) as src:
            label = src.read(1) > 0
        a, b = (stack.isel(time=t).compute() for t in (k - 1, k))
        out.append(Pair(f"sample_{days[k - 1]}_{days[k]}", a, b, label))
    return out, how


def sample_city_objects(predictors: dict[str, Callable[[], Any]], groups: list[str],
                        share: float = 0.25, checked_model: str | None = None) -> None:
    """Per change type: how many of the sample city's changed structures are found.

    A structure (``sample_tiles/truth/footprints.gpkg``, layer ``footprints``) counts as found
    when at least ``share`` of its footprint's pixels reach the model's threshold in the pair
    of dates where it changed (``before_date`` -> ``first_seen``); the "+ same-season" rows
    also count the same-season pairs that ``detect_series`` adds
    (:func:`changedetect.detect.series_pairs`) and that span the change; the "+ presence check"
    rows (``checked_model``, a model with a ``buildings/`` segmenter) are those pairs as
    ``detect_series`` gives them with the segmenter's presence check (``changedetect.presence``).
    """
    import geopandas as gpd
    from rasterio.features import rasterize

    from changedetect.detect import series_pairs
    from changedetect.io import open_stack

    folder = REPO / "sample_tiles"
    stack = open_stack(folder)
    try:
        from changedetect.coregister import coregister

        stack, _ = coregister(stack)
    except ImportError:
        pass
    stack = stack.sel(band=list(RGB))
    days = [np.datetime_as_string(t, "D") for t in stack["time"].values]
    foot = gpd.read_file(folder / "truth" / "footprints.gpkg", layer="footprints").to_crs(stack.rio.crs)
    held = {int(g.rsplit("_", 1)[1]) for g in groups if g.startswith("sample_city_")}
    shape = (stack.sizes["y"], stack.sizes["x"])
    rows = []
    flagged: dict[tuple[str, str], float] = {}
    for name, make in predictors.items():
        pred = make()
        probs = {k: pred(stack.isel(time=k - 1).compute(), stack.isel(time=k).compute())
                 for k in range(1, len(days))}
        season = {(i, j): pred(stack.isel(time=i).compute(), stack.isel(time=j).compute())
                  for i, j in series_pairs(stack["time"].values) if j != i + 1}
        for k, p in probs.items():
            flagged[(name, "held-out" if k in held else "trained")] = float(
                np.mean(np.nan_to_num(p) >= pred.threshold))
        for _, f in foot.iterrows():
            k = days.index(str(f["first_seen"])[:10])
            mask = rasterize([f.geometry], out_shape=shape, transform=stack.rio.transform()).astype(bool)
            hit = _share(probs[k], mask, pred.threshold)
            split = "held-out" if k in held else "trained"
            rows.append((name, split, f["change_type"], hit >= share))
            spanning = [_share(p, mask, pred.threshold) for (i, j), p in season.items() if i < k <= j]
            rows.append((name, f"{split} + same-season", f["change_type"], max([hit, *spanning]) >= share))
    if checked_model is not None:
        rows += _checked_rows(checked_model, stack, foot, days, held, share)
    print(f"\nSample city, structures found (>= {share:.0%} of the footprint at the threshold), "
          "after coregister; pair 'held-out' = sample_city_<k> in vhr-building's val_groups:\n")
    kinds = ["new", "extension", "demolition"]
    print("| model | pair | " + " | ".join(kinds) + " | share of the scene flagged |")
    print("|---|---|" + "---|" * (len(kinds) + 1))
    for name in predictors:
        for split in ("held-out", "held-out + same-season", "held-out + same-season + presence check",
                      "trained", "trained + same-season", "trained + same-season + presence check"):
            cells = []
            for kind in kinds:
                sel = [r[3] for r in rows if r[0] == name and r[1] == split and r[2] == kind]
                cells.append(f"{sum(sel)}/{len(sel)}")
            if not any(r[0] == name and r[1] == split for r in rows):
                continue
            scene = flagged.get((name, split))
            print(f"| {name} | {split} | " + " | ".join(cells) + " | "
                  + ("" if scene is None else f"{100 * scene:.1f} %") + " |")


def _checked_rows(model: str, stack: xr.DataArray, foot: Any, days: list[str], held: set[int],
                  share: float) -> list[tuple[str, str, str, bool]]:
    """The "+ presence check" rows of :func:`sample_city_objects` (none without a segmenter)."""
    from rasterio.features import rasterize

    from changedetect.detect import DetectConfig, detect_each_pair
    from changedetect.weights import building_segmenter, load_model

    loaded = load_model(model)
    segmenter = building_segmenter(loaded)
    if segmenter is None:
        return []
    events = detect_each_pair(stack, config=DetectConfig(model=model), model=loaded, segmenter=segmenter)
    shape = (stack.sizes["y"], stack.sizes["x"])
    rows = []
    for _, f in foot.iterrows():
        k = days.index(str(f["first_seen"])[:10])
        mask = rasterize([f.geometry], out_shape=shape, transform=stack.rio.transform()).astype(bool)
        hit = max(_share(p.values, mask, loaded.card.threshold) for i, j, p in events if i < k <= j)
        split = "held-out" if k in held else "trained"
        rows.append(("vhr-building", f"{split} + same-season + presence check", f["change_type"], hit >= share))
    return rows


def _share(prob: np.ndarray, mask: np.ndarray, threshold: float) -> float:
    """Share of ``mask``'s pixels where ``prob`` reaches ``threshold`` (0 for an empty mask)."""
    return float(np.mean(np.nan_to_num(prob[mask]) >= threshold)) if mask.any() else 0.0


# ----------------------------------------------------------------------------- table
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO / ".." / "shared" / "data")
    ap.add_argument("--pairs", type=int, default=64, help="synthetic pairs from the held-out building areas")
    ap.add_argument("--no-tinycd", action="store_true")
    ap.add_argument("--objects-only", action="store_true", help="only the sample city's per-structure table")
    ap.add_argument("--vhr-model", default="vhr-building",
                    help="model folder to score in the vhr-building column (default: the shipped one)")
    args = ap.parse_args()
    from changedetect.evaluate import _CvaPredictor, evaluate_pairs, iter_pairs, make_predictor
    from changedetect.weights import list_shipped

    shipped = {c.name for c in list_shipped()}
    vhr_val, s2_val = val_groups("vhr-building"), val_groups("s2-urban")
    cities = [c for c in s2_val] or None
    sc_pairs, sc_how = sample_city_pairs(vhr_val or ["sample_city_2"])
    sets: dict[str, Callable[[], list[Any]]] = {
        "levir (11 LEVIR-CD samples)": lambda: levir_pairs(args.data),
        f"buildings-heldout ({args.pairs} synthetic pairs, {', '.join(g for g in vhr_val if 'fair' in g)})":
            lambda: building_pairs(args.data, vhr_val, args.pairs),
        f"sample-city-heldout ({len(sc_pairs)} pair(s), {sc_how})": lambda: sc_pairs,
    }
    predictors: dict[str, Callable[[], Any]] = {}
    if "vhr-building" in shipped:
        predictors["vhr-building"] = lambda: make_predictor(args.vhr_model)
    predictors["cva"] = lambda: _CvaPredictor()
    if not args.no_tinycd:
        from tinycd import TinyCDPredictor

        predictors["tinycd-levir"] = lambda: TinyCDPredictor("levir")
        predictors["tinycd-whu"] = lambda: TinyCDPredictor("whu")
    checked = args.vhr_model if "vhr-building" in predictors else None
    if args.objects_only:
        sample_city_objects(predictors, vhr_val or ["sample_city_2"], checked_model=checked)
        return
    cols = ["vhr-building", "s2-urban", "cva", "tinycd-levir", "tinycd-whu", "floor"]
    rows: dict[str, dict[str, str]] = {}
    for set_name, make in sets.items():
        pairs = make()
        row = rows.setdefault(set_name, {})
        for pname, pmake in predictors.items():
            t0 = time.perf_counter()
            ev = evaluate_pairs(pairs, model=pmake())
            s = ev.scores()
            row[pname] = f"{s['f1']:.3f} / {s['iou']:.3f}"
            row["floor"] = f"{ev.floor()['f1']:.3f} / {ev.floor()['iou']:.3f}"
            print(f"  {set_name} | {pname}: p {s['precision']:.3f} r {s['recall']:.3f} f1 {s['f1']:.3f} "
                  f"iou {s['iou']:.3f} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    if args.data.joinpath("oscd").is_dir():
        label = f"oscd-heldout ({', '.join(cities) if cities else 'ALL cities: no s2-urban card'})"
        row = rows.setdefault(label, {})
        oscd_preds = {"cva": make_predictor("cva", oscd=True)}
        if "s2-urban" in shipped:
            oscd_preds["s2-urban"] = make_predictor("s2-urban")
        for pname, pred in oscd_preds.items():
            ev = evaluate_pairs(iter_pairs(args.data / "oscd", bands=pred.bands, cities=cities), model=pred)
            s = ev.scores()
            row[pname] = f"{s['f1']:.3f} / {s['iou']:.3f}"
            row["floor"] = f"{ev.floor()['f1']:.3f} / {ev.floor()['iou']:.3f}"
            print(f"  {label} | {pname}: p {s['precision']:.3f} r {s['recall']:.3f} f1 {s['f1']:.3f}",
                  file=sys.stderr, flush=True)
    print("F1 / IoU of the change class (pixel counts pooled over each set; threshold: each model's card, "
          "0.5 = Otsu for CVA, 0.5 for TinyCD)\n")
    print("| held-out set | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for set_name, row in rows.items():
        print(f"| {set_name} | " + " | ".join(row.get(c, "n/a") for c in cols) + " |")
    sample_city_objects(predictors, vhr_val or ["sample_city_2"], checked_model=checked)
    for card in list_shipped():
        print(f"\n{card.name} {card.version}: weights sha256 {card.sha256[:16]}...", end="")
    print()
    missing = [m for m in ("vhr-building", "s2-urban") if m not in shipped]
    if missing:
        print(f"\n(not shipped yet, so not in the table: {', '.join(missing)})")


if __name__ == "__main__":
    main()
