"""The last clear view (``[detect] fill_masked_before``) on an OSCD city, measured against its change label.

A three-date series is built outside the repository from one OSCD city: date 1 the city's first
image, date 2 a copy of it with ``s2_clouds.py``'s synthetic cloud, shadow and L2A-like SCL (dated
half-way between the two real dates), date 3 the city's second image, with a ``dates.txt``
(``date_1 .. date_3``) that ``open_series`` reads as an OSCD city.  A one-permit register far from
the change (in the city's CRS, about 1 km west of the scene) is written beside it.  ``changedetect run`` is then
run twice (``--model s2-urban``), filling on (the default) and off (``--config`` with
``[detect] fill_masked_before = false``), and once on the city's own two clear dates (the reference:
what a clear middle date would have let it see), and ``change_probability.tif`` at its threshold is scored
against ``labels/<city>/cm/<city>-cm.tif`` (1 no change, 2 change, on the first date's B02 grid):
inside the cloud and its shadow (SCL 3, 8, 9 on the middle date, read onto the output grid by
nearest neighbour) and outside it, each F1 beside the "everything changed" floor::

    nice -n 10 .venv/bin/python benchmarks/s2_clear_view.py ../shared/data/oscd pisa /tmp/clear_view

``--skip-run`` scores the run folders already there (``OUT/fill``, ``OUT/nofill``, ``OUT/clear``).  Write it
outside the repository: it is a copy of the shared data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.warp import Resampling, reproject

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from s2_clouds import clouded  # noqa: E402

from changedetect.io._names import read_dates_txt  # noqa: E402


def build(city: Path, out: Path) -> tuple[Path, Path]:
    """``OUT/series`` (three dates, the middle one clouded) and ``OUT/register.gpkg``; their paths."""
    first, second = sorted((p for p in city.glob("imgs_*") if p.is_dir()), key=lambda p: int(p.name[5:]))
    d1, d2 = read_dates_txt(city / "dates.txt")
    stage, series = out / "stage", out / "series"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    shutil.copytree(first, stage / "imgs_1")
    shutil.copytree(first, stage / "imgs_2")
    clouded(stage, series)  # paints the last folder, imgs_2
    shutil.rmtree(stage)
    shutil.copytree(second, series / "imgs_3")
    middle = d1 + (d2 - d1) / 2
    (series / "dates.txt").write_text(
        "".join(f"date_{i}: {d:%Y%m%d}\n" for i, d in enumerate((d1, middle, d2), 1))
    )
    return series, _register(series, out / "register.gpkg")


def _register(series: Path, path: Path) -> Path:
    """One new-construction permit 1 km west of the scene: nothing on it, so the run only needs a register."""
    import geopandas as gpd
    from shapely.geometry import box

    with rasterio.open(next((series / "imgs_1").glob("*_B02.tif"))) as ds:
        left, bottom, _, _ = ds.bounds
        crs = ds.crs
    west = left - 0.012 if crs.is_geographic else left - 1000
    size = 0.0002 if crs.is_geographic else 20
    gpd.GeoDataFrame(
        {"permit_id": ["CV-1"], "permit_type": ["new_construction"], "issued_on": ["2015-01-01"],
         "valid_until": ["2019-12-31"], "permitted_area_m2": [400.0], "status": ["active"]},
        geometry=[box(west, bottom, west + size, bottom + size)], crs=crs,
    ).to_file(path, layer="permits", driver="GPKG")
    return path


def run_all(city: Path, series: Path, register: Path, out: Path) -> None:
    """``changedetect run`` on the series with filling on (``OUT/fill``) and off (``OUT/nofill``), and on
    the city's own two clear dates (``OUT/clear``, the reference), timed."""
    config = out / "nofill.toml"
    config.write_text("[detect]\nfill_masked_before = false\n")
    exe = str(Path(sys.executable).with_name("changedetect"))
    for name, tiles, extra in (("fill", series, []), ("nofill", series, ["--config", str(config)]), ("clear", city, [])):
        cmd = [exe, "-q", "run", str(tiles), "--model", "s2-urban", "--permits", str(register),
               "--out", str(out / name), "--overwrite", *extra]
        print("$", " ".join(cmd), flush=True)
        start = time.perf_counter()
        subprocess.run(cmd, check=True)
        print(f"  {time.perf_counter() - start:.1f} s", flush=True)


def _on_grid(path: Path, grid: rasterio.io.DatasetReader, *, like: Path | None = None) -> np.ndarray:
    """Band 1 of ``path`` (on ``like``'s grid: the label has none) read onto ``grid`` by nearest neighbour."""
    with rasterio.open(like or path) as ref:
        transform, crs = ref.transform, ref.crs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            data = ds.read(1)
    dst = np.zeros((grid.height, grid.width), data.dtype)
    reproject(data, dst, src_transform=transform, src_crs=crs, dst_transform=grid.transform, dst_crs=grid.crs,
              resampling=Resampling.nearest, src_nodata=0, dst_nodata=0)
    return dst


def _scores(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, str, str, str, float]:
    """Flagged, found (true positives), recall, precision, F1 (``n/a`` where undefined) and the floor F1."""
    flagged, tp, changed = int(pred.sum()), int((pred & truth).sum()), int(truth.sum())
    r = tp / changed if changed else None
    p = tp / flagged if flagged else None
    f1 = 2 * tp / (flagged + changed) if flagged + changed else None
    share = truth.mean()
    return flagged, tp, *(f"{v:.3f}" if v is not None else "n/a" for v in (r, p, f1)), 2 * share / (1 + share)


def measure(oscd: Path, city: str, out: Path) -> None:
    """Recall, precision, F1 and the floor F1 inside and outside the cloud, filling on and off."""
    series = out / "series"
    with rasterio.open(out / "fill" / "change_probability.tif") as grid:
        b02 = next((series / "imgs_1").glob("*_B02.tif"))
        label = _on_grid(oscd / "labels" / city / "cm" / f"{city}-cm.tif", grid, like=b02)
        scl = _on_grid(next((series / "imgs_2").glob("*_SCL_20m.tif")), grid)
        threshold = float(grid.tags().get("threshold", 0.5))
    known = label > 0
    truth = label == 2
    cloud = np.isin(scl, (3, 8, 9)) & known
    clear = ~np.isin(scl, (3, 8, 9)) & (scl > 0) & known
    print(f"\n{city}: output grid {grid.width} x {grid.height}, threshold {threshold}; cloud + shadow "
          f"{int(cloud.sum())} px ({int((truth & cloud).sum())} changed), outside {int(clear.sum())} px "
          f"({int((truth & clear).sum())} changed)")
    print("| where | filling | changed px | flagged px | found | recall | precision | F1 | floor F1 |")
    print("|---|---|---|---|---|---|---|---|---|")
    flagged = {}
    names = [n for n in ("fill", "nofill", "clear") if (out / n / "change_probability.tif").is_file()]
    for name in names:
        with rasterio.open(out / name / "change_probability.tif") as ds:
            if (ds.shape, ds.transform) != (grid.shape, grid.transform):
                raise SystemExit(f"{out / name}: another grid than {out / 'fill'}'s; rerun without --skip-run")
            flagged[name] = np.nan_to_num(ds.read(1), nan=0.0) >= threshold
    label_of = {"fill": "on", "nofill": "off", "clear": "no cloud (2 dates)"}
    for where, region in (("cloud + shadow", cloud), ("outside", clear)):
        for name in names:
            n, tp, r, p, f1, floor = _scores(flagged[name][region], truth[region])
            print(f"| {where} | {label_of[name]} | {int(truth[region].sum())} | {n} | {tp} | "
                  f"{r} | {p} | {f1} | {floor:.3f} |")
    moved = int((flagged["fill"] != flagged["nofill"])[clear].sum())
    print(f"outside the cloud, {moved} px flagged differently with filling on and off")
    if "clear" in flagged:
        same = int((flagged["fill"] == flagged["clear"])[cloud].sum())
        print(f"under the cloud, filling on flags {same} of {int(cloud.sum())} px as the clear pair does")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("oscd", type=Path, help="the OSCD folder (images/, labels/)")
    parser.add_argument("city", help="an OSCD city, e.g. pisa (s2-urban's held-out cities: cupertino, pisa, rennes)")
    parser.add_argument("out", type=Path, help="a folder outside the repository (replaced)")
    parser.add_argument("--skip-run", action="store_true", help="score OUT/fill and OUT/nofill as they are")
    args = parser.parse_args()
    out = args.out.resolve()
    if out == REPO or REPO in out.parents:
        parser.error(f"{args.out} is inside the repository; write it outside (e.g. /tmp/clear_view)")
    if not args.skip_run:
        series, register = build(args.oscd / "images" / args.city, out)
        print(f"{series}: dates {', '.join(f'{d}' for d in read_dates_txt(series / 'dates.txt'))}; "
              f"built {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC", flush=True)
        run_all(args.oscd / "images" / args.city, series, register, out)
    measure(args.oscd, args.city, out)


if __name__ == "__main__":
    main()
