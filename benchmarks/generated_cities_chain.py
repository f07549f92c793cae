"""The whole chain on fresh generated cities: violations against the generator's truth.

``benchmarks/generated_cities.py`` scores the network pair by pair; this one scores what an
inspector gets.  For each city (seeds that no training config uses; default 301-320, the
same cities, cached in ``.cache_bench/gencity/``), it runs :func:`changedetect.run` on the
city's three dates and its permit register, once per variant of the configuration, and
compares ``violations.gpkg`` with the city's truth (``truth/footprints.gpkg`` and
``permits/expected_violations.csv``) by :func:`changedetect.match.agreement`, as
``sample_city_agreement.py`` does for the committed sample city.  Printed, per variant and
summed over the cities:

* precision and recall per status (a detection counts when it overlaps a truth structure by
  half of the smaller one and has that structure's expected status);
* planted violations found with the right status (every status but ``permitted``);
* permitted structures flagged with another status;
* false blobs: non-``permitted`` detections that lie over no planted structure (less than a
  tenth of their area on one);
* other wrong rows: the remaining non-``permitted`` rows that are not a planted violation with
  its status (a wrong status, an extra fragment of a structure), permitted ones flagged apart.

Variants: ``default`` (the default configuration: consecutive dates plus same-season pairs,
``DetectConfig.season_days = 45``; footprints with no building on either date dropped,
``VectorizeConfig.min_presence = 0.3``; the segmenter's presence check,
``DetectConfig.presence_check``); ``no-presence-check`` (without the check);
``no-presence-filter`` (without the check nor ``min_presence``); ``consecutive-only``
(``season_days = None`` too: the chain before all three); ``same-season-check`` (the presence
check on same-season pairs only, as it was until 2026-11-30: no pair of different seasons
checked against two same-season dates that bracket it: ``DetectConfig.presence_across_seasons``
off); ``no-same-sun`` (every footprint first seen across seasons kept, as until 2026-11-30:
``DetectConfig.same_sun_share = None``)::

    .venv/bin/python benchmarks/generated_cities_chain.py --seeds 301-320
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generated_cities import city  # noqa: E402  (the same cached cities)

REPO = Path(__file__).resolve().parents[1]
#: name: (DetectConfig.season_days, VectorizeConfig.min_presence, DetectConfig.presence_check,
#: DetectConfig.presence_across_seasons, DetectConfig.same_sun_share)
VARIANTS: dict[str, tuple[int | None, float | None, bool, bool, float | None]] = {
    "default": (45, 0.3, True, True, 0.05),
    "no-presence-check": (45, 0.3, False, True, 0.05),
    "no-presence-filter": (45, None, False, True, 0.05),
    "consecutive-only": (None, None, False, True, None),
    "same-season-check": (45, 0.3, True, False, 0.05),
    "no-same-sun": (45, 0.3, True, True, None),
}


def false_blobs(violations: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """The non-``permitted`` rows of ``violations`` that lie over no truth structure (under a tenth
    of their area on one)."""
    flagged = violations[violations["status"] != "permitted"]
    if flagged.empty:
        return flagged
    area = truth.to_crs(violations.crs).union_all()
    on_truth = flagged.geometry.intersection(area).area / flagged.geometry.area.clip(lower=1e-12)
    return flagged[on_truth < 0.1]


def add_city_args(ap: argparse.ArgumentParser) -> None:
    """The options every generated-cities chain benchmark takes."""
    ap.add_argument("--seeds", default="301-320", help="first-last; never 12 or 101-299 (training cities)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--cities", type=Path, default=REPO / ".cache_bench" / "gencity")
    ap.add_argument("--model", default="vhr-building",
                    help="change model (a shipped name or a candidate's folder, with its buildings/ stage)")


def score(run_dir: Path, tiles: Path) -> tuple[pd.DataFrame, dict[str, int]]:
    """Agreement table of one run, and the counts the summary needs."""
    import geopandas as gpd

    from changedetect.io.vectors import feature_layer
    from changedetect.match import agreement

    path = run_dir / "violations.gpkg"  # run's, or the nightly's open register copied there
    violations = gpd.read_file(path, layer=feature_layer(path))
    truth = gpd.read_file(tiles / "truth" / "footprints.gpkg", layer="footprints")
    expected = pd.read_csv(tiles.parent / "permits" / "expected_violations.csv")
    table = agreement(violations, truth, expected)
    planted = expected[expected["expected_status"] != "permitted"]
    found = int(sum(table.loc[s, "tp"] for s in set(planted["expected_status"]) if s in table.index))
    flagged = violations[violations["status"] != "permitted"]
    blobs = len(false_blobs(violations, truth))
    flagged_right = int(table.loc["all", "tp"]) - int(table.loc["permitted", "tp"] if "permitted" in table.index else 0)
    permitted_flagged = int(table.attrs["permitted_flagged"])
    counts = {"violations": len(planted), "found": found, "permitted_flagged": permitted_flagged,
              "blobs": blobs, "other_wrong": len(flagged) - flagged_right - permitted_flagged - blobs,
              "missed": int(table.attrs["missed"]), "structures": len(expected)}
    return table, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_city_args(ap)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--keep", type=Path, help="keep each run's output folder under this folder")
    args = ap.parse_args()
    from changedetect.config import PipelineConfig
    from changedetect.pipeline import run

    lo, _, hi = args.seeds.partition("-")
    seeds = list(range(int(lo), int(hi or lo) + 1))
    tables: dict[str, list[pd.DataFrame]] = {v: [] for v in args.variants}
    totals: dict[str, dict[str, int]] = {v: {} for v in args.variants}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cd-chain-") as scratch:
        tmp = args.keep or Path(scratch)
        for seed in seeds:
            tiles = city(seed, args.cities, args.size)
            for v in args.variants:
                base = PipelineConfig()
                season, presence, check, across, sun = VARIANTS[v]
                config = replace(base, detect=replace(base.detect, model=str(args.model), season_days=season,
                                                      presence_check=check, presence_across_seasons=across,
                                                      same_sun_share=sun),
                                 vectorize=replace(base.vectorize, min_presence=presence))
                out = Path(tmp) / f"{seed}-{v}"
                run(tiles, permits=tiles.parent / "permits" / "sample_register.gpkg", out=out, config=config,
                    overwrite=True)
                table, counts = score(out, tiles)
                tables[v].append(table[["truth", "detected", "tp"]])
                for k, n in counts.items():
                    totals[v][k] = totals[v].get(k, 0) + n
            print(f"  seed {seed} done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    print(f"\nThe whole chain (`changedetect run`, model {args.model}) on fresh generated cities (seeds "
          f"{args.seeds}, {args.size} px at 0.5 m, three dates each, never trained on):\n")
    print("| variant | structures found right (recall) | precision | planted violations found right | "
          "permitted flagged | false blobs | other wrong rows | structures missed |")
    print("|---|---|---|---|---|---|---|---|")
    for v in args.variants:
        s = pd.concat(tables[v]).groupby(level=0).sum()
        a, t = s.loc["all"], totals[v]
        print(f"| {v} | {a.tp}/{a.truth} ({a.tp / max(a.truth, 1):.3f}) | {a.tp / max(a.detected, 1):.3f} | "
              f"{t['found']}/{t['violations']} | {t['permitted_flagged']} | {t['blobs']} | {t['other_wrong']} | "
              f"{t['missed']} |")
    for v in args.variants:
        s = pd.concat(tables[v]).groupby(level=0).sum()
        s["precision"] = (s["tp"] / s["detected"]).round(3)
        s["recall"] = (s["tp"] / s["truth"]).round(3)
        print(f"\n{v}: precision and recall per status, summed over the cities\n")
        print(s.to_string())


if __name__ == "__main__":
    main()
