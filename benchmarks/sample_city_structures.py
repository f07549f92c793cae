"""Per-structure diagnostics of a change model and its building segmenter on the sample city.

For each of the sample city's 43 changed structures (``sample_tiles/truth/footprints.gpkg``),
after ``coregister``: the change network's probability inside the footprint on the consecutive
pair where it changed and, for the second pair, on the January -> January pair that
``detect_series`` adds (share of the footprint at the threshold, and the largest value), and
the building segmenter's mean probability inside it on each of the three dates, and the median
brightness (mean of R, G, B) of its west and east halves on each date (a change in shade:
S041 is as dark on both Januaries).  A structure
counts as *found by the network* when 25 % of its footprint reaches the threshold on one of those
pairs (as ``benchmarks/detection_accuracy.py --objects-only`` counts, without the presence
check), and *found on the series raster* when 25 % of it reaches the threshold on the highest
probability of those pairs (what ``detect_series`` writes for the series, without the presence
check: a pixel flagged by either pair counts), and as *clear to the segmenter* when its mean building probability rises (falls, for a
demolition) by at least ``PresenceCheck.delta`` across its pair and reaches
``PresenceCheck.presence`` on the date it stands.  Then the share of the scene flagged away from
any change (4 px from it) on each pair.

Used to see why a structure is missed (S032, S041 of issue 4) and whether a candidate model
changes that; the whole chain's figures are ``benchmarks/sample_city_agreement.py``'s::

    .venv/bin/python benchmarks/sample_city_structures.py --model vhr-building
    .venv/bin/python benchmarks/sample_city_structures.py --model /tmp/candidate --all
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _segmenter import segmenter_days  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FOUND_SHARE = 0.25


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="vhr-building", help="shipped name or model folder (with buildings/)")
    ap.add_argument("--segmenter", help="building segmenter folder (default: the model's buildings/)")
    ap.add_argument("--all", action="store_true", help="print every structure, not only the doubtful ones")
    args = ap.parse_args()

    import geopandas as gpd
    import rasterio
    from rasterio.features import rasterize
    from scipy import ndimage as ndi

    from changedetect.coregister import coregister
    from changedetect.evaluate import make_predictor
    from changedetect.io import open_stack
    from changedetect.presence import PresenceCheck
    from changedetect.weights import building_segmenter, load_model

    tiles = REPO / "sample_tiles"
    stack, _ = coregister(open_stack(tiles))
    rgb = stack.sel(band=["red", "green", "blue"])
    dates = [np.datetime_as_string(t, "D") for t in rgb["time"].values]
    days = [rgb.isel(time=k).compute() for k in range(len(dates))]
    predict = make_predictor(args.model)
    prob = {(0, 1): predict(days[0], days[1]), (1, 2): predict(days[1], days[2]), (0, 2): predict(days[0], days[2])}
    seg = load_model(args.segmenter, fold_bn=False, channels_last=False) if args.segmenter else \
        building_segmenter(load_model(args.model))
    if seg is None:
        raise SystemExit(f"{args.model} has no buildings/ stage: pass --segmenter")
    built = segmenter_days(seg, days)
    check = PresenceCheck()
    truth = gpd.read_file(tiles / "truth" / "footprints.gpkg", layer="footprints").to_crs(stack.rio.crs)
    shape, transform = (stack.sizes["y"], stack.sizes["x"]), stack.rio.transform()
    changed = np.zeros(shape, bool)
    for path in (tiles / "truth").glob("change_*.tif"):
        with rasterio.open(path) as src:
            changed |= src.read(1) > 0
    near = ndi.binary_dilation(changed, iterations=4)
    # how much the colour changes under the same sun (January -> January), against unchanged ground
    colour = np.sqrt(np.square(days[2].values.astype(np.float32) - days[0].values.astype(np.float32)).sum(axis=0))
    far = ~ndi.binary_dilation(changed, iterations=6)
    ground = np.nanpercentile(colour[far], [50, 95])
    found = clear = series_found = 0
    print(f"model {args.model}, segmenter {seg.path}\n")
    print(f"colour change January -> January (length of the RGB difference) on unchanged ground: median "
          f"{ground[0]:.1f}, 95th percentile {ground[1]:.1f}\n")
    bright = [np.nanmean(day.values.astype(np.float32), axis=0) for day in days]  # mean of R, G, B
    print("| structure | type | pair | network: share >= threshold, max | Jan->Jan: share, max | "
          "series raster: share | segmenter mean per date | median brightness per date (west / east half) | "
          "Jan->Jan colour change: median, share over ground's 95th pct | found | clear |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for _, f in truth.iterrows():
        m = rasterize([f.geometry], out_shape=shape, transform=transform).astype(bool)
        j = dates.index(str(f["first_seen"])[:10])
        pairs = [(j - 1, j)] + ([(0, 2)] if j == 2 else [])
        shares = {p: float((np.nan_to_num(prob[p])[m] >= 0.5).mean()) for p in pairs}
        peaks = {p: float(np.nan_to_num(prob[p])[m].max()) for p in pairs}
        s = [float(b[m].mean()) for b in built]
        rise = s[j] - s[j - 1] if f["change_type"] != "demolition" else s[j - 1] - s[j]
        is_found = max(shares.values()) >= FOUND_SHARE
        series = float((np.max([np.nan_to_num(prob[p])[m] for p in pairs], axis=0) >= 0.5).mean())
        series_found += series >= FOUND_SHARE
        is_clear = rise >= check.delta and max(s[j - 1], s[j]) >= check.presence
        found, clear = found + is_found, clear + is_clear
        if args.all or not (is_found and is_clear):
            jj = f"{shares[(0, 2)]:.2f}, {peaks[(0, 2)]:.2f}" if j == 2 else ""
            print(f"| {f['structure_id']} | {f['change_type']} | {dates[j - 1]} -> {dates[j]} | "
                  f"{shares[(j - 1, j)]:.2f}, {peaks[(j - 1, j)]:.2f} | {jj} | {series:.2f} | {' / '.join(f'{v:.2f}' for v in s)} | "
                  f"{_halves(bright, m)} | {np.nanmedian(colour[m]):.1f}, {(colour[m] > ground[1]).mean():.2f} | "
                  f"{'yes' if is_found else 'no'} | {'yes' if is_clear else 'no'} |")
    print(f"\nfound by the network: {found} of {len(truth)} on one pair, {series_found} on the series raster; "
          f"clear to the segmenter: {clear} of {len(truth)}")
    for p, v in prob.items():
        print(f"pair {dates[p[0]]} -> {dates[p[1]]}: {((np.nan_to_num(v) >= 0.5) & ~near).mean():.4f} of the scene "
              "flagged away from any change")


def _halves(bright: list[np.ndarray], mask: np.ndarray) -> str:
    """Median brightness inside ``mask`` per date, as ``west / east`` halves (split at its middle column)."""
    rows, cols = np.nonzero(mask)
    west = cols < (cols.min() + cols.max()) / 2
    return "; ".join(f"{np.nanmedian(b[rows[west], cols[west]]):.0f} / {np.nanmedian(b[rows[~west], cols[~west]]):.0f}"
                     for b in bright)


if __name__ == "__main__":
    main()
