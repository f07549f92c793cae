"""How much the vectoriser itself loses: perfect probabilities in, footprints out.

1. solaris: the 43 real building polygons of ``../shared/data/solaris/geotiff_labels.geojson``
   are rasterised onto the 0.5 m grid of ``sample_geotiff.tif`` (a pixel is a building
   when its centre is inside) and vectorised back; per-building IoU (median, min) and
   object-level precision / recall (a match is IoU >= 0.5, one-to-one), for each
   regulariser: none, ours, and the ``buildingregulariser`` package when installed.
2. LEVIR-CD samples: each change label (0/255) is used as a perfect probability; the
   changed buildings (4-connected components of the label, as polygons) are compared
   with the footprints at IoU >= 0.5: object-level precision and recall.
3. footprint_id stability: 100 scattered rectangles and ~1,500 row houses (0.5 m pixels)
   vectorised, then again with every edge moved by -1, 0 or +1 pixel (3 trials): the share of
   ids that change, without and with the first run's footprints as ``previous``; and how many
   old ids row houses moved by half their pitch take (different structures must take none).
4. The generated sample city: its truth change masks (``sample_tiles/truth/change_*.tif``) as a
   perfect probability, first-seen from the two periods, change types from the first and last
   images -> ``vectorize`` -> ``match`` against ``permits/sample_register.gpkg`` -> agreement with
   ``permits/expected_violations.csv`` (precision and recall per status).  With
   ``--violations out/violations.gpkg`` (from ``changedetect run``) that run is scored too.
5. Optional: with ``--model`` (e.g. vhr-building, if shipped) the same on the model's
   prediction through :func:`changedetect.detect.detect_pair`.

Usage::

    .venv/bin/python benchmarks/vectorize_quality.py [--data ../shared/data] [--model vhr-building]
        [--violations demo_out/violations.gpkg]
    .venv/bin/python benchmarks/vectorize_quality.py --only-ids     # part 3 alone
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.features
import rioxarray  # noqa: F401
import shapely
import xarray as xr
from affine import Affine
from PIL import Image

from changedetect._vectorize_shapes import regularize
from changedetect.vectorize import VectorizeConfig, vectorize


def prob_raster(values: np.ndarray, transform: Affine, crs: str) -> xr.DataArray:
    da = xr.DataArray(values.astype(np.float32), dims=("y", "x"))
    return da.rio.write_crs(crs).rio.write_transform(transform)


def pair_scores(truth: list, pred: list, thr: float = 0.5) -> tuple[np.ndarray, int]:
    """Best IoU of each truth polygon, and the number of one-to-one matches with IoU >= thr."""
    if not truth or not pred:
        return np.zeros(len(truth)), 0
    tree = shapely.STRtree(pred)
    ti, pi = tree.query(truth, predicate="intersects")
    t, p = np.asarray(truth, dtype=object)[ti], np.asarray(pred, dtype=object)[pi]
    ious = shapely.area(shapely.intersection(t, p)) / shapely.area(shapely.union(t, p))
    best = np.zeros(len(truth))
    np.maximum.at(best, ti, ious)
    used_t, used_p, matches = set(), set(), 0
    for k in np.argsort(-ious):
        if ious[k] < thr:
            break
        if ti[k] in used_t or pi[k] in used_p:
            continue
        used_t.add(ti[k])
        used_p.add(pi[k])
        matches += 1
    return best, matches


def solaris(data: Path) -> None:
    truth = gpd.read_file(data / "solaris" / "geotiff_labels.geojson")
    with rasterio.open(data / "solaris" / "sample_geotiff.tif") as src:
        transform, shape, crs = src.transform, (src.height, src.width), src.crs
    truth = truth.to_crs(crs)
    mask = rasterio.features.rasterize(((g, 1) for g in truth.geometry), out_shape=shape, transform=transform)
    prob = prob_raster(mask, transform, crs.to_string())
    print(f"solaris: {len(truth)} buildings rasterised onto {shape[1]}x{shape[0]} px at {transform.a} m")
    variants = {"none": VectorizeConfig(regularize=False, min_area_m2=5),
                "ours": VectorizeConfig(regularize=True, min_area_m2=5)}
    for name, cfg in variants.items():
        t0 = time.perf_counter()
        out = vectorize(prob, config=cfg)
        _report(f"regularize={name}", list(truth.geometry), list(out.geometry), time.perf_counter() - t0)
    raw = vectorize(prob, config=VectorizeConfig(regularize=False, simplify_m=0, min_area_m2=5))
    try:
        from buildingregulariser import regularize_geodataframe
    except ImportError:
        print("  buildingregulariser is not installed: skipped")
    else:
        for simplify, parallel in ((1.0, 1.0), (0.5, 1.0), (0.5, 2.0)):
            t0 = time.perf_counter()
            reg = regularize_geodataframe(raw[["geometry"]], simplify_tolerance=simplify, parallel_threshold=parallel)
            _report(f"buildingregulariser (simplify {simplify}, parallel {parallel})", list(truth.geometry),
                    list(reg.geometry), time.perf_counter() - t0)
    t0 = time.perf_counter()
    ours = [regularize(g, rectangularity=0.8, tolerance=0.5, min_iou=0.0) for g in raw.geometry]
    _report("ours without the IoU guard (squares everything)", list(truth.geometry), ours, time.perf_counter() - t0)


def _report(name: str, truth: list, pred: list, seconds: float) -> None:
    best, matches = pair_scores(truth, pred)
    print(f"  {name:<55} IoU median {np.median(best):.3f} min {best.min():.3f} | "
          f"objects P {matches / max(len(pred), 1):.3f} R {matches / len(truth):.3f} "
          f"({len(pred)} polygons, {seconds:.2f} s)")


def levir(data: Path, model: str | None) -> None:
    folder = data / "levir_samples"
    transform = Affine(0.5, 0, 500_000.0, 0, -0.5, 1_000_000.0)  # no georeferencing: a 0.5 m grid
    totals = {"label": [0, 0, 0], "model": [0, 0, 0]}
    for label_path in sorted((folder / "label").glob("*.png")):
        label = (np.asarray(Image.open(label_path).convert("L")) > 127).astype(np.uint8)
        truth = [shapely.geometry.shape(g) for g, v in rasterio.features.shapes(
            label, mask=label > 0, transform=transform, connectivity=4)]
        truth = [g for g in truth if g.area >= 10.0]  # the same minimum area as the footprints
        cfg = VectorizeConfig(min_area_m2=10.0)
        out = vectorize(prob_raster(label.astype(np.float32), transform, "EPSG:32648"), config=cfg)
        _, m = pair_scores(truth, list(out.geometry))
        _add(totals["label"], m, len(out), len(truth))
        if model:
            prob = _model_prob(folder, label_path.name, model, transform)
            pred = vectorize(prob, config=cfg)
            _, m = pair_scores(truth, list(pred.geometry))
            _add(totals["model"], m, len(pred), len(truth))
    for name, (m, n_pred, n_true) in totals.items():
        if n_true and (name == "label" or model):
            print(f"levir ({name} as probability): {n_true} changed buildings >= 10 m², {n_pred} footprints, "
                  f"object P {m / max(n_pred, 1):.3f} R {m / n_true:.3f} (IoU >= 0.5)")


def _add(acc: list[int], matches: int, n_pred: int, n_true: int) -> None:
    acc[0] += matches
    acc[1] += n_pred
    acc[2] += n_true


def _model_prob(folder: Path, name: str, model: str, transform: Affine) -> xr.DataArray:
    from changedetect.detect import DetectConfig, detect_pair

    def load(sub: str) -> xr.DataArray:
        rgb = np.asarray(Image.open(folder / sub / name).convert("RGB"), dtype=np.float32).transpose(2, 0, 1)
        da = xr.DataArray(rgb, dims=("band", "y", "x"), coords={"band": ["red", "green", "blue"]})
        return da.rio.write_crs("EPSG:32648").rio.write_transform(transform)

    prob = detect_pair(load("A"), load("B"), config=DetectConfig(model=model))
    return prob.rio.write_crs("EPSG:32648").rio.write_transform(transform)


def _rasterise_boxes(boxes: list[tuple[int, int, int, int]], transform: Affine) -> xr.DataArray:
    p = np.zeros((1000, 1000), np.float32)
    for r0, c0, r1, c1 in boxes:
        p[r0:r1, c0:c1] = 0.9
    return prob_raster(p, transform, "EPSG:32648")


def _scattered(rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    """100 rectangles of 7.5-25 m, one per 49 m cell of a 10 x 10 grid."""
    boxes = []
    for i in range(10):
        for j in range(10):
            r0, c0 = 10 + 98 * i + int(rng.integers(0, 20)), 10 + 98 * j + int(rng.integers(0, 20))
            boxes.append((r0, c0, r0 + int(rng.integers(15, 50)), c0 + int(rng.integers(15, 50))))
    return boxes


def _row_houses(rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    """Terraces: houses 4-6 m wide, 11-15 m deep, 2.5 m apart, rows 7 m apart (0.5 m pixels)."""
    boxes = []
    r0 = 8
    while r0 + 30 + 8 <= 1000:
        depth = int(rng.integers(22, 31))
        c0 = 8 + int(rng.integers(0, 6))
        while True:
            width = int(rng.integers(8, 13))
            if c0 + width + 8 > 1000:
                break
            boxes.append((r0, c0, r0 + depth, c0 + width))
            c0 += width + 5
        r0 += depth + 14
    return boxes


def _jitter(boxes: list[tuple[int, int, int, int]], rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    """Every edge moved by -1, 0 or +1 pixel."""
    return [(r0 + int(rng.integers(-1, 2)), c0 + int(rng.integers(-1, 2)), r1 + int(rng.integers(-1, 2)),
             c1 + int(rng.integers(-1, 2))) for r0, c0, r1, c1 in boxes]


def _changed(out: gpd.GeoDataFrame, base: gpd.GeoDataFrame) -> int:
    """Footprints of ``out`` whose id differs from that of the base footprint nearest to their centroid."""
    tree = shapely.STRtree(np.asarray(base.geometry.centroid.values))
    nearest = tree.nearest(np.asarray(out.geometry.centroid.values))
    return int((out["footprint_id"].to_numpy() != base["footprint_id"].to_numpy()[nearest]).sum())


def id_stability(trials: int = 3, seed: int = 0) -> None:
    """footprint_id under +-1 px edge noise, without and with the previous run's footprints.

    The scattered layout draws its boxes and noise from ``seed`` in the same order as before the
    ``previous`` option existed, so its "without" figure is comparable with earlier runs.  Then,
    for the row houses: every house moved by half the terrace pitch (a different structure on
    each lot, overlapping its old house by 0.5-2.5 m and the next by 1 m): how many of them take an old id.
    """
    rng = np.random.default_rng(seed)
    transform = Affine(0.5, 0, 686_000.0, 0, -0.5, 1_192_000.0)
    houses: list[tuple[int, int, int, int]] = []
    for name, layout in (("scattered", _scattered), ("row houses", _row_houses)):
        boxes = layout(rng)
        houses = boxes
        base = vectorize(_rasterise_boxes(boxes, transform))
        counts = {"without previous": 0, "with previous": 0}
        total = 0
        for _ in range(trials):
            prob = _rasterise_boxes(_jitter(boxes, rng), transform)
            plain = vectorize(prob)
            carried = vectorize(prob, previous=base)
            total += len(plain)
            counts["without previous"] += _changed(plain, base)
            counts["with previous"] += _changed(carried, base)
        figures = ", ".join(f"{k} {v}/{total} ({100 * v / max(total, 1):.1f}%)" for k, v in counts.items())
        print(f"footprint_id, {name} ({len(base)} buildings, every edge moved by -1/0/+1 px of 0.5 m, "
              f"{trials} trials): ids changed {figures}")
    base = vectorize(_rasterise_boxes(houses, transform))
    old = set(base["footprint_id"])
    shifted = [(r0, c0 + 7, r1, c1 + 7) for r0, c0, r1, c1 in houses if c1 + 7 + 8 <= 1000]
    prob = _rasterise_boxes(shifted, transform)
    plain, carried = vectorize(prob), vectorize(prob, previous=base)
    print(f"footprint_id, row houses moved by half the pitch (3.5 m; {len(plain)} different structures): "
          f"old ids taken without previous {int(plain['footprint_id'].isin(old).sum())}, "
          f"with previous {int(carried['footprint_id'].isin(old).sum())}")


def sample_city(repo: Path, violations: Path | None) -> None:
    import pandas as pd

    from changedetect.match import agreement, match
    from changedetect.permits import load_register

    truth_dir = repo / "sample_tiles" / "truth"
    if not (truth_dir / "footprints.gpkg").exists():
        print("sample city: not generated (python -m changedetect.samplecity): skipped")
        return
    changes = sorted(truth_dir.glob("change_*.tif"))
    dates = sorted({p.stem.split("_")[1] for p in changes} | {p.stem.split("_")[2] for p in changes})
    steps = [truth_dir / f"change_{a}_{b}.tif" for a, b in zip(dates, dates[1:], strict=False)]
    first = rioxarray.open_rasterio(steps[0]).squeeze("band", drop=True)
    prob = np.zeros(first.shape, np.float32)
    seen = np.full(first.shape, np.datetime64("NaT"), dtype="datetime64[ns]")
    for step, day in zip(steps, dates[1:], strict=True):
        mask = rioxarray.open_rasterio(step).squeeze("band", drop=True).values > 0
        seen[mask & (prob == 0)] = np.datetime64(f"{day[:4]}-{day[4:6]}-{day[6:]}")
        prob[mask] = 1.0
    prob_da = prob_raster(prob, first.rio.transform(), first.rio.crs.to_string())

    def image(day: str) -> xr.DataArray:
        da = rioxarray.open_rasterio(repo / "sample_tiles" / f"district12_{day}.tif").astype("float32")
        return da.assign_coords(band=["red", "green", "blue", "nir"][: da.sizes["band"]])

    footprints = vectorize(prob_da, first_seen=xr.DataArray(seen, dims=("y", "x")),
                           before=image(dates[0]), after=image(dates[-1]))
    permits = load_register(repo / "permits" / "sample_register.gpkg")
    truth = gpd.read_file(truth_dir / "footprints.gpkg", layer="footprints")
    pairs = gpd.sjoin(truth.to_crs(footprints.crs), footprints, predicate="intersects")
    print("sample city change_type (truth rows x vectorised columns, structures touching a footprint):")
    print(pd.crosstab(pairs["change_type_left"], pairs["change_type_right"]).to_string())
    expected = pd.read_csv(repo / "permits" / "expected_violations.csv")
    runs = {"truth change masks": match(footprints, permits)}
    if violations is not None:
        from changedetect.io.vectors import feature_layer

        runs[f"{violations}"] = gpd.read_file(violations, layer=feature_layer(violations))
    for name, found in runs.items():
        table = agreement(found, truth, expected)
        print(f"sample city ({name}): {len(found)} footprints; missed structures {table.attrs['missed']}, "
              f"permitted structures flagged {table.attrs['permitted_flagged']}")
        for status, row in table.iterrows():
            print(f"  {status:<15} truth {int(row.truth):3d} detected {int(row.detected):3d} tp {int(row.tp):3d} "
                  f"precision {row.precision:.3f} recall {row.recall:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data")
    ap.add_argument("--model", default=None, help="Also vectorise a shipped model's prediction on LEVIR.")
    ap.add_argument("--violations", type=Path, default=None,
                    help="Also score this violations file (changedetect run on sample_tiles) against the truth.")
    ap.add_argument("--only-ids", action="store_true", help="Only the footprint_id stability part (no data needed).")
    args = ap.parse_args()
    if args.only_ids:
        id_stability()
        return
    if not args.data.is_dir():
        raise SystemExit(f"{args.data} is absent: the benchmark needs ../shared/data")
    solaris(args.data)
    levir(args.data, args.model)
    id_stability()
    sample_city(Path(__file__).resolve().parents[1], args.violations)


if __name__ == "__main__":
    main()
