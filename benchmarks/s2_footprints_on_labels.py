"""``changedetect run --model s2-urban`` on an OSCD city, its footprints and probability against the city's label.

For each city: ``changedetect run ../shared/data/oscd/images/<city> --model s2-urban`` into ``OUT/<city>``
(a one-permit register 1 km west of the scene, ``s2_clear_view._register``: the footprints do not depend on
the register), then, on the run's output grid (``change_probability.tif``), with
``labels/<city>/cm/<city>-cm.tif`` (1 no change, 2 change, on the first date's B02 grid) read onto it by
nearest neighbour and ``footprints.gpkg`` rasterised onto it (pixel centres):

* the share of the labelled change pixels that lie inside a footprint;
* the share of the footprints' pixels that lie on labelled change (and of the ``demolished`` ones');
* the pixel F1 of ``change_probability.tif`` at its threshold (precision, recall; the "everything
  changed" floor);
* footprints, how many are typed ``demolished``, and the smallest ``area_m2``.

    nice -n 10 .venv/bin/python benchmarks/s2_footprints_on_labels.py ../shared/data/oscd /tmp/s2_labels pisa rennes

``--skip-run`` scores the run folders already in OUT.  Write OUT outside the repository (licensed data).
The README's *Sentinel-2 (10 m)* figures for pisa and rennes come from this script.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import rasterio
from rasterio.features import rasterize

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from s2_clear_view import _on_grid, _register  # noqa: E402


def run_city(oscd: Path, city: str, out: Path) -> Path:
    """``changedetect run`` of one OSCD city into ``OUT/<city>``; the run folder."""
    tiles = oscd / "images" / city
    out.mkdir(parents=True, exist_ok=True)
    register = _register(tiles, out / f"{city}_register.gpkg")
    cmd = [sys.executable, "-m", "changedetect", "-q", "run", str(tiles), "--model", "s2-urban",
           "--permits", str(register), "--out", str(out / city), "--overwrite"]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return out / city


def score(oscd: Path, city: str, run: Path) -> None:
    """Print the footprints' and the probability's agreement with the city's change label."""
    import geopandas as gpd

    b02 = next((oscd / "images" / city / "imgs_1").glob("*_B02.tif"))
    with rasterio.open(run / "change_probability.tif") as grid:
        label = _on_grid(oscd / "labels" / city / "cm" / f"{city}-cm.tif", grid, like=b02)
        prob = np.nan_to_num(grid.read(1), nan=0.0)
        threshold = float(grid.tags().get("threshold", 0.5))
        shape, transform, crs = (grid.height, grid.width), grid.transform, grid.crs
    fp = gpd.read_file(run / "footprints.gpkg")
    on_grid = fp.to_crs(crs)

    def burn(rows: gpd.GeoDataFrame) -> np.ndarray:
        if rows.empty:
            return np.zeros(shape, bool)
        return rasterize(((g, 1) for g in rows.geometry), out_shape=shape, transform=transform, dtype="uint8") > 0

    known, truth = label > 0, label == 2
    inside = burn(on_grid) & known
    demolished = burn(on_grid[on_grid["change_type"] == "demolished"]) & known
    flagged = (prob >= threshold) & known
    tp, n_flag, n_true = int((flagged & truth).sum()), int(flagged.sum()), int(truth.sum())
    share = n_true / max(int(known.sum()), 1)
    print(f"\n{city}: {len(fp)} footprints ({int((fp['change_type'] == 'demolished').sum())} demolished), "
          f"smallest {fp['area_m2'].min():.0f} m²; label {n_true} changed of {int(known.sum())} px")
    print(f"  labelled change inside a footprint: {(inside & truth).sum() / max(n_true, 1):.1%}")
    print(f"  footprints' pixels on labelled change: {(inside & truth).sum() / max(int(inside.sum()), 1):.1%} "
          f"(demolished: {(demolished & truth).sum() / max(int(demolished.sum()), 1):.1%})")
    print(f"  change_probability.tif >= {threshold}: F1 {2 * tp / max(n_flag + n_true, 1):.3f} "
          f"(P {tp / max(n_flag, 1):.3f}, R {tp / max(n_true, 1):.3f}; floor {2 * share / (1 + share):.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("oscd", type=Path, help="the OSCD folder (images/, labels/)")
    parser.add_argument("out", type=Path, help="a folder outside the repository for the runs")
    parser.add_argument("cities", nargs="+", help="OSCD cities (s2-urban's held-out ones: cupertino, pisa, rennes)")
    parser.add_argument("--skip-run", action="store_true", help="score OUT/<city> as it is")
    args = parser.parse_args()
    for city in args.cities:
        run = args.out / city if args.skip_run else run_city(args.oscd, city, args.out)
        score(args.oscd, city, run)


if __name__ == "__main__":
    main()
