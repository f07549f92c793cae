"""An OSCD city with a synthetic cloud and its shadow on the last date, and an L2A-like SCL beside it.

The cloud (bright, 6000-7000 in every band) and its shadow (the bands times 0.35) are painted into
the last date's band files, each on its own grid; ``T.._SCL_20m.tif`` (20 m, nodata 0) classes them
9 (cloud, high probability), 8 (its medium-probability rim) and 3 (shadow), the rest 4.  Then::

    .venv/bin/python benchmarks/s2_clouds.py ../shared/data/oscd/images/pisa /tmp/pisa_cloud
    .venv/bin/changedetect run /tmp/pisa_cloud --model s2-urban --permits REG --out /tmp/masked
    .venv/bin/changedetect run /tmp/pisa_cloud --model s2-urban --permits REG --out /tmp/kept --no-cloud-mask
    .venv/bin/python benchmarks/s2_clouds.py --measure /tmp/pisa_cloud /tmp/masked /tmp/kept [/tmp/clear]

``--measure`` prints each run's footprints, their area and those on the cloud, their change types and
the smallest; with more than one run folder, also how many of each run's footprints overlap the last
folder's (a clear run of the same city, say) at IoU >= 0.5, touch one, and keep its ``footprint_id``.
Write it outside the repository: it is a copy of the shared data.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine


def _coords(t: Affine, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    return t * (cols, rows)


def clouded(city: Path, out: Path) -> Path:
    """A copy of ``city`` with a cloud, its shadow and an SCL on its last date; the SCL's path."""
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(city, out, ignore=shutil.ignore_patterns("pair"))
    last = sorted(out.glob("imgs_*"))[-1]
    b02 = next(last.glob("*_B02.tif"))
    with rasterio.open(b02) as ref:
        t, w, h, crs = ref.transform, ref.width, ref.height, ref.crs
    cloud, shadow = t * (w * 0.55, h * 0.45), t * (w * 0.55 + 55, h * 0.45 + 40)
    rx, ry = abs(t.a) * 110, abs(t.e) * 80

    def inside(x: np.ndarray, y: np.ndarray, c: tuple[float, float], k: float = 1.0) -> np.ndarray:
        return ((x - c[0]) / (rx * k)) ** 2 + ((y - c[1]) / (ry * k)) ** 2 <= 1

    for path in sorted(last.glob("*_B*.tif")):
        with rasterio.open(path, "r+") as ds:
            x, y = _coords(ds.transform, ds.width, ds.height)
            data = ds.read(1).astype(np.float32)
            white = inside(x, y, cloud, 1.15)
            data[inside(x, y, shadow) & ~white] *= 0.35
            data[white] = 6500 + 500 * np.sin(x[white] * 1e4)
            ds.write(data.round().clip(1, 65535).astype(ds.dtypes[0]), 1)
    t20 = t @ Affine.scale(2)
    w20, h20 = (w + 1) // 2, (h + 1) // 2
    x, y = _coords(t20, w20, h20)
    scl = np.full((h20, w20), 4, np.uint8)
    scl[inside(x, y, shadow)] = 3
    scl[inside(x, y, cloud, 1.15)] = 8
    scl[inside(x, y, cloud)] = 9
    path = last / b02.name.replace("_B02.tif", "_SCL_20m.tif")
    with rasterio.open(path, "w", driver="GTiff", width=w20, height=h20, count=1, dtype="uint8", nodata=0,
                       crs=crs, transform=t20) as ds:
        ds.write(scl, 1)
    print(f"{path}: {100 * np.isin(scl, (3, 8, 9)).mean():.1f} % cloud and shadow")
    return path


def measure(city: Path, runs: list[Path]) -> None:
    """Per run folder: footprints, their area, and those on the SCL's cloud and shadow."""
    import geopandas as gpd
    from rasterio.features import shapes
    from shapely.geometry import shape
    from shapely.ops import unary_union

    with rasterio.open(next(city.glob("imgs_*/*_SCL_20m.tif"))) as ds:
        blob = np.isin(ds.read(1), (3, 8, 9)).astype("uint8")
        cloud = unary_union([shape(g) for g, v in shapes(blob, transform=ds.transform) if v == 1])
        crs = ds.crs
    last = gpd.read_file(runs[-1] / "footprints.gpkg")
    last_metric = last.to_crs(last.estimate_utm_crs())
    for run in runs:
        fp = gpd.read_file(run / "footprints.gpkg").to_crs(crs)
        on = fp.intersects(cloud)
        metric = fp.to_crs(last_metric.crs)
        kinds = ", ".join(f"{n} {k}" for k, n in fp["change_type"].value_counts().items())
        print(f"{run}: {len(fp)} footprints, {metric.area.sum() / 1e6:.3f} km2; {int(on.sum())} on the cloud "
              f"or its shadow, {metric[on].area.sum() / 1e6:.3f} km2; {kinds}; smallest {fp['area_m2'].min():.0f} m2")
        if len(runs) > 1 and run != runs[-1]:
            best = [max((g.intersection(h).area / g.union(h).area for h in last_metric.geometry if h.intersects(g)),
                        default=None) for g in metric.geometry]
            print(f"  against {runs[-1]}: {sum(b is not None and b >= 0.5 for b in best)} at IoU >= 0.5, "
                  f"{sum(b is not None for b in best)} touch one, "
                  f"{int(fp['footprint_id'].isin(last['footprint_id']).sum())} keep its footprint_id")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("city", type=Path, help="an OSCD city folder (or, with --measure, the clouded copy)")
    parser.add_argument("out", type=Path, nargs="+", help="the new folder (replaced), or with --measure run folders")
    parser.add_argument("--measure", action="store_true", help="count the run folders' footprints on the cloud")
    args = parser.parse_args()
    if args.measure:
        measure(args.city, args.out)
    else:
        clouded(args.city, args.out[0])


if __name__ == "__main__":
    main()
