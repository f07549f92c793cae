"""The nightly job on fresh generated cities: its open violations against the generator's truth.

``benchmarks/generated_cities_chain.py`` scores ``changedetect run`` on each city's whole
series; the nightly job sees one date a night and never the series at once.  For each city
(seeds no training config uses; default 301-320, the same cities, cached in
``.cache_bench/gencity/``) this copies the three dates into a catalog one night at a time,
runs :func:`changedetect.nightly.run_nightly` after each (night = the day after the date),
and compares the open register (``open_violations.gpkg``) with the truth as
``generated_cities_chain.py`` does (:func:`changedetect.match.agreement`): planted violations
open with their right status, permitted structures flagged, false blobs, other wrong rows,
and the false blobs by the night that first reported them.  Variants: ``default``; and
``no-same-sun`` (``DetectConfig.same_sun_share = None``)::

    .venv/bin/python benchmarks/generated_cities_nightly.py --seeds 301-320
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generated_cities import city  # noqa: E402  (the same cached cities)
from generated_cities_chain import add_city_args, false_blobs, score  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
VARIANTS: dict[str, float | None] = {"default": 0.05, "no-same-sun": None}


def nights(tiles: Path, work: Path, config: object) -> tuple[Path, list[str]]:
    """Feed ``tiles``' dates into a catalog one per night; the output folder and the nights run."""
    import datetime as dt
    import json

    from changedetect.nightly import run_nightly

    manifest = json.loads((tiles / "manifest.json").read_text())
    catalog, state, out = work / "catalog" / "city", work / "state", work / "out"
    catalog.mkdir(parents=True)
    done = []
    for image in sorted(manifest["images"], key=lambda d: d["date"]):
        shutil.copy(tiles / image["path"], catalog / image["path"])
        night = (dt.date.fromisoformat(image["date"]) + dt.timedelta(days=1)).isoformat()
        summary = run_nightly(work / "catalog", permits=tiles.parent / "permits" / "sample_register.gpkg",
                              state=state, out=out, night=night, config=config, workers=1)
        if summary.failed:
            raise SystemExit(f"{tiles}: night {night} failed: {summary.failed}")
        done.append(night)
    return out, done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_city_args(ap)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = ap.parse_args()
    import geopandas as gpd

    from changedetect.config import PipelineConfig

    lo, _, hi = args.seeds.partition("-")
    seeds = list(range(int(lo), int(hi or lo) + 1))
    totals: dict[str, Counter[str]] = {v: Counter() for v in args.variants}
    blob_nights: dict[str, Counter[str]] = {v: Counter() for v in args.variants}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cd-nightly-") as scratch:
        for seed in seeds:
            tiles = city(seed, args.cities, args.size)
            for v in args.variants:
                base = PipelineConfig()
                config = replace(base, detect=replace(base.detect, model=str(args.model), same_sun_share=VARIANTS[v]))
                work = Path(scratch) / f"{seed}-{v}"
                out, done = nights(tiles, work, config)
                withdrawn = _withdrawn(out, done, tiles)
                totals[v]["withdrawn"] += len(withdrawn)
                totals[v]["withdrawn_planted"] += int(withdrawn.sum())
                run_dir = work / "scored"
                run_dir.mkdir()
                shutil.copy(out / "open_violations.gpkg", run_dir / "violations.gpkg")
                table, counts = score(run_dir, tiles)
                totals[v].update(counts)
                totals[v]["detected"] += int(table.loc["all", "detected"])
                totals[v]["right"] += int(table.loc["all", "tp"])
                totals[v]["truth"] += int(table.loc["all", "truth"])
                blob_nights[v].update(_blob_nights(gpd.read_file(out / "open_violations.gpkg",
                                                                 layer="open_violations"), tiles))
            print(f"  seed {seed} done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    print(f"\nThe nightly job (model {args.model}) fed one date a night on fresh generated cities (seeds "
          f"{args.seeds}, {args.size} px at 0.5 m, three dates each, never trained on); the open register "
          "after the third night:\n")
    print("| variant | precision | planted violations right | permitted flagged | "
          "false blobs (by first-seen date) | other wrong rows | withdrawn (of them planted violations) |")
    print("|---|---|---|---|---|---|---|")
    for v in args.variants:
        t = totals[v]
        by_night = ", ".join(f"{d}: {n}" for d, n in sorted(blob_nights[v].items()))
        print(f"| {v} | {t['right'] / max(t['detected'], 1):.3f} | "
              f"{t['found']}/{t['violations']} | {t['permitted_flagged']} | {t['blobs']} ({by_night}) | "
              f"{t['other_wrong']} | {t['withdrawn']} ({t['withdrawn_planted']}) |")


def _withdrawn(out: Path, nights_run: list[str], tiles: Path) -> pd.Series:
    """Each withdrawn violation: True when it lay on a planted violation (half its area on one)."""
    import geopandas as gpd

    frames = [gpd.read_file(f, layer=f.stem) for n in nights_run if (f := out / f"withdrawn-{n}.gpkg").is_file()]
    if not frames:
        return pd.Series(dtype=bool)
    geoms = gpd.GeoSeries(pd.concat([f.geometry for f in frames], ignore_index=True), crs=frames[0].crs)
    truth = gpd.read_file(tiles / "truth" / "footprints.gpkg", layer="footprints")
    expected = pd.read_csv(tiles.parent / "permits" / "expected_violations.csv")
    planted = truth[truth["structure_id"].isin(expected.loc[expected["expected_status"] != "permitted", "structure_id"])]
    area = planted.to_crs(geoms.crs).union_all()
    return pd.Series((geoms.intersection(area).area / geoms.area.clip(lower=1e-12)).to_numpy() >= 0.5)


def _blob_nights(violations: pd.DataFrame, tiles: Path) -> Counter[str]:
    """False blobs (as ``score`` counts them) by their first-seen date."""
    import geopandas as gpd

    truth = gpd.read_file(tiles / "truth" / "footprints.gpkg", layer="footprints")
    return Counter(str(d)[:10] for d in false_blobs(violations, truth)["first_seen"])


if __name__ == "__main__":
    main()
