"""Co-registration benchmark: changedetect against AROSICS on the same cases, in the same run.

Cases are built from real imagery in ``../shared/data`` (never copied into the repo):

* OSCD Sentinel-2 B04 (10 m) of 10 cities, the solaris 0.5 m GeoTIFF, fAIr VHR chips (~0.07 m);
* ``global``: a known sub-pixel shift (uniform in +-10 px), observed sensor-like (each pixel
  integrates 3x3 cubic sub-samples, so the generator is not the resampler under test);
* ``global+radiometry``: the same with gain, offset, gamma and noise on the moving image;
* ``shared nodata``: the ``global`` case with both dates clipped to one area (an L-shaped nodata
  margin over the top 30 % and the left 25 % of the grid, the same pixels in both): a missing-data
  edge both dates share must not pull the shift towards zero;
* ``real change``: the OSCD second date (real change, season, sensor) shifted by a known amount;
  its own residual misregistration is unknown, so the error is differential:
  ``(estimate(shifted) - estimate(unshifted)) - known shift``, for both tools alike;
* ``local``: a global shift plus a smooth sinusoidal warp (0.5-1.5 px, 0.25-0.6 cycles per image);
  errors at each tool's kept tie points against the true field, and ours on every pixel;
* ``unregistrable``: pure noise, or another city, as the moving image: a tool that returns a
  confident shift there is wrong;
* ``RGB chips``: the fAIr chips' three bands shifted alike; ours matched on material edges, as
  :func:`~changedetect.coregister.coregister` matches a stack with red and green bands (AROSICS
  on the band mean); with radiometry: one gamma, a gain and an offset per band, noise.

Both tools get the same arrays (float32, as a TileStack holds them) and a 12 px search range.
Ours: :func:`estimate_global_shift` and :func:`estimate_shift_field` with :class:`CoregisterConfig`
defaults (window 128, spacing 64);
AROSICS: ``COREG`` (window 256 or the largest power of two that fits) and ``COREG_LOCAL``
(window 128, grid 64).  Times are wall-clock seconds of the estimation only (no warping), on
this machine, in the same process.

``--memory``: peak RSS of a full ``coregister`` run (estimation + lazy warp streamed through a
reduction) on dask-backed synthetic scenes of two sizes, each in a fresh subprocess.

``--sample``: alignment of the generated sample city against the truth in
``sample_tiles/truth/registration.json``; then what the scene itself moves: the residual after
the generator's own alignment, on all pixels and without cast-shadow changes (or without trees,
vehicles and new buildings).

Run::

    /work/bench-venv/bin/python benchmarks/coregistration.py --data ../shared/data
    /work/bench-venv/bin/python benchmarks/coregistration.py --memory --sizes 2048 8192
    .venv/bin/python benchmarks/coregistration.py --sample sample_tiles
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from changedetect._registration.matching import material_edges  # noqa: E402
from changedetect._registration.synthetic import SmoothWarp, observe, true_field  # noqa: E402
from changedetect.coregister import (  # noqa: E402
    CoregisterConfig,
    estimate_global_shift,
    estimate_shift_field,
)

CITIES = ["abudhabi", "aguasclaras", "bercy", "bordeaux", "cupertino", "nantes", "paris", "pisa",
          "rennes", "saclay_e"]
MARGIN = 16


def _read(path: Path, bands: list[int] | None = None) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as src:
        arr = src.read(bands or list(range(1, src.count + 1))).astype(np.float64)
    return arr.mean(axis=0)


def sources(data: Path, n_chips: int) -> dict[str, np.ndarray]:
    """Reference images: OSCD B04 of every city, solaris, fAIr chips (band mean)."""
    out = {}
    for city in CITIES:
        out[f"oscd/{city}"] = _read(next((data / f"oscd/images/{city}/imgs_1").glob("*_B04.tif")))
    out["solaris"] = _read(data / "solaris/sample_geotiff.tif")
    chips = sorted((data / "buildings/fair_oam/chips").glob("*.tif"))
    for p in chips[:: max(1, len(chips) // n_chips)][:n_chips]:
        out[f"fair/{p.stem}"] = _read(p)
    return out


def _const(dx: float, dy: float) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    return lambda r, c: (np.full(r.shape, dx), np.full(r.shape, dy))


def _crop(a: np.ndarray) -> np.ndarray:
    return a[MARGIN:-MARGIN, MARGIN:-MARGIN]


def _f32(a: np.ndarray) -> np.ndarray:
    """A case image as a TileStack holds it (float32), for both tools, before either is timed."""
    return np.asarray(a, dtype=np.float32)


def _radiometry(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    lo, hi = np.nanpercentile(img, [1, 99])
    x = np.clip((img - lo) / (hi - lo + 1e-9), 0, None)
    x = x ** rng.uniform(0.7, 1.4)
    x = rng.uniform(0.6, 1.4) * x + rng.uniform(-0.1, 0.2)
    return x + rng.normal(0, 0.01, x.shape)


def run_global(srcs: dict[str, np.ndarray], rng: np.random.Generator, aro: object | None,
               per_source: int, radiometric: bool) -> list[dict]:
    rows = []
    for name, img in srcs.items():
        ref = _crop(observe(img))
        for _ in range(per_source):
            dx, dy = rng.uniform(-10, 10, 2)
            mov = _crop(observe(img, _const(dx, dy)))
            if radiometric:
                mov = _radiometry(mov, rng)
            rows.append(_both_global(name, ref, mov, (dx, dy), aro))
    return rows


CONFIG = CoregisterConfig()


def sources_rgb(data: Path, n_chips: int) -> dict[str, np.ndarray]:
    """The fAIr VHR chips as ``(3, h, w)`` red, green, blue (what ``coregister`` matches on material edges)."""
    import rasterio

    chips = sorted((data / "buildings/fair_oam/chips").glob("*.tif"))
    out = {}
    for p in chips[:: max(1, len(chips) // n_chips)][:n_chips]:
        with rasterio.open(p) as src:
            out[f"fair/{p.stem}"] = src.read([1, 2, 3]).astype(np.float64)
    return out


def run_global_rgb(srcs: dict[str, np.ndarray], rng: np.random.Generator, aro: object | None,
                   per_source: int, radiometric: bool) -> list[dict]:
    """Known shifts of RGB chips; ours matched on material edges (as ``coregister`` does for an RGB
    stack), AROSICS on the band mean.  Radiometry: one gamma, a gain and offset per band, noise."""
    rows = []
    for name, img in srcs.items():
        ref = _f32(np.stack([_crop(observe(b)) for b in img]))
        t0 = time.perf_counter()
        ref_edges = material_edges(ref, 0, 1)  # once per chip, timed: the reference of a series of dates
        ref_s = time.perf_counter() - t0
        for _ in range(per_source):
            dx, dy = rng.uniform(-10, 10, 2)
            mov = np.stack([_crop(observe(b, _const(dx, dy))) for b in img])
            if radiometric:
                gamma = rng.uniform(0.7, 1.4)
                mov = np.stack([rng.uniform(0.6, 1.4) * 255 * (np.clip(b, 0, None) / 255) ** gamma
                                + rng.uniform(-10, 20) for b in mov]) + rng.normal(0, 2.0, mov.shape)
            mov = _f32(mov)
            t0 = time.perf_counter()
            material_edges(ref, 0, 1)  # per pair: the reference's edges again (the same), timed in every case
            pair_ref_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            est = estimate_global_shift(ref_edges, material_edges(mov, 0, 1), config=CONFIG, edges=True)
            mov_s = time.perf_counter() - t0
            # per pair: the reference's edges computed and timed in every case; as a series (what coregister
            # does with one reference and per_source other dates): once per chip
            row = {"case": name, "truth": (dx, dy), "ours_s": pair_ref_s + mov_s, "ours_series_s": ref_s / per_source + mov_s,
                   "ours_ok": est.reliable,
                   "ours_err": float(np.hypot(est.dx - dx, est.dy - dy)) if est.reliable else np.nan}
            if aro is not None:
                res = aro.arosics_global(ref.mean(axis=0), mov.mean(axis=0), max_shift=12)
                row.update(aro_s=res.seconds, aro_ok=res.ok,
                           aro_err=float(np.hypot(res.dx - dx, res.dy - dy)) if res.ok else np.nan)
            rows.append(row)
    return rows


def _both_global(name: str, ref: np.ndarray, mov: np.ndarray, truth: tuple[float, float],
                 aro: object | None, base: tuple[tuple[float, float], tuple[float, float]] | None = None) -> dict:
    ref, mov = _f32(ref), _f32(mov)
    t0 = time.perf_counter()
    est = estimate_global_shift(ref, mov, config=CONFIG)
    ours_s = time.perf_counter() - t0
    b_ours, b_aro = base or ((0.0, 0.0), (0.0, 0.0))
    row = {"case": name, "truth": truth, "ours_s": ours_s, "ours_ok": est.reliable,
           "ours_err": float(np.hypot(est.dx - b_ours[0] - truth[0], est.dy - b_ours[1] - truth[1]))
           if est.reliable else np.nan}
    if aro is not None:
        res = aro.arosics_global(ref, mov, max_shift=12)
        row.update(aro_s=res.seconds, aro_ok=res.ok,
                   aro_err=float(np.hypot(res.dx - b_aro[0] - truth[0], res.dy - b_aro[1] - truth[1]))
                   if res.ok else np.nan)
    return row


def run_shared_nodata(srcs: dict[str, np.ndarray], rng: np.random.Generator, aro: object | None,
                      per_source: int) -> list[dict]:
    """``run_global``'s cases with one L-shaped nodata margin on both dates' grid (top 30 %, left 25 %)."""
    rows = []
    for name, img in srcs.items():
        ref = _crop(observe(img))
        h, w = ref.shape
        r, c = np.mgrid[:h, :w]
        clip = (r < 0.3 * h) | (c < 0.25 * w)
        ref = np.where(clip, np.nan, ref)
        for _ in range(per_source):
            dx, dy = rng.uniform(-10, 10, 2)
            mov = np.where(clip, np.nan, _crop(observe(img, _const(dx, dy))))
            rows.append(_both_global(name, ref, mov, (dx, dy), aro))
    return rows


def run_real_change(data: Path, rng: np.random.Generator, aro: object | None) -> list[dict]:
    from changedetect.io import open_series

    rows = []
    for city in CITIES:
        stack = open_series(data / f"oscd/images/{city}").to_stack(bands=["B04"]).values[:, 0].astype(np.float64)
        ref = _f32(_crop(observe(stack[0])))
        base_mov = _f32(_crop(observe(stack[1])))
        b_ours = estimate_global_shift(ref, base_mov, config=CONFIG)
        b_aro = aro.arosics_global(ref, base_mov, max_shift=12) if aro is not None else None
        for _ in range(2):
            dx, dy = rng.uniform(-10, 10, 2)
            mov = _crop(observe(stack[1], _const(dx, dy)))
            base = ((b_ours.dx, b_ours.dy), (b_aro.dx, b_aro.dy) if b_aro is not None else (0.0, 0.0))
            row = _both_global(f"oscd/{city} date 2", ref, mov, (dx, dy), aro, base)
            if not b_ours.reliable:
                row["ours_ok"], row["ours_err"] = False, np.nan
            if b_aro is not None and not b_aro.ok:
                row["aro_ok"], row["aro_err"] = False, np.nan
            rows.append(row)
    return rows


def run_local(srcs: dict[str, np.ndarray], rng: np.random.Generator, aro: object | None) -> tuple[list[dict], dict]:
    config = CoregisterConfig()
    rows, pooled = [], {"ours_tp": [], "aro_tp": [], "ours_dense": []}
    for name, img in srcs.items():
        if min(img.shape) < 500:
            continue
        warp = SmoothWarp(img.shape, *rng.uniform(-4, 4, 2), *rng.uniform(0.5, 1.5, 2),
                          *rng.uniform(0.25, 0.6, 2), *rng.uniform(0, 2 * np.pi, 2))
        ref, mov = _f32(_crop(observe(img))), _f32(_crop(observe(img, warp)))
        t0 = time.perf_counter()
        glob = estimate_global_shift(ref, mov, config=config)
        fld = estimate_shift_field(ref, mov, params=config.field_params(), initial=(glob.dx, glob.dy))
        ours_s = time.perf_counter() - t0
        k = fld.kept
        tx, ty = true_field(warp, fld.rows[k] + MARGIN, fld.cols[k] + MARGIN)
        tp = np.hypot(fld.dx[k] - tx, fld.dy[k] - ty)
        h, w = ref.shape
        rr, cc = np.meshgrid(np.arange(h, dtype=float), np.arange(w, dtype=float), indexing="ij")
        ex, ey = fld.dense(0, h, 0, w)
        tx, ty = true_field(warp, rr + MARGIN, cc + MARGIN)
        dense = np.hypot(ex - tx, ey - ty).ravel()
        pooled["ours_tp"].append(tp)
        pooled["ours_dense"].append(dense)
        row = {"case": name, "ours_s": ours_s, "ours_kept": int(k.sum()), "ours_found": fld.n_found,
               "ours_tp_p95": float(np.percentile(tp, 95)), "ours_dense_p95": float(np.percentile(dense, 95))}
        if aro is not None:
            res = aro.arosics_local(ref, mov, grid_res=64, window=128, max_shift=12)
            atx, aty = true_field(warp, res.rows + MARGIN, res.cols + MARGIN)
            atp = np.hypot(res.dx - atx, res.dy - aty)
            pooled["aro_tp"].append(atp)
            row.update(aro_s=res.seconds, aro_kept=int(res.rows.size),
                       aro_tp_p95=float(np.percentile(atp, 95)) if atp.size else np.nan)
        rows.append(row)
    return rows, {k: np.concatenate(v) if v else np.zeros(0) for k, v in pooled.items()}


def run_unregistrable(srcs: dict[str, np.ndarray], rng: np.random.Generator, aro: object | None) -> list[dict]:
    rows = []
    names = [n for n in srcs if n.startswith("oscd/")]
    for i, name in enumerate(names):
        ref = _crop(srcs[name])
        if i % 2 == 0:
            mov, what = rng.normal(0, 1, ref.shape), "noise"
        else:
            other = srcs[names[(i + 3) % len(names)]]
            h, w = min(ref.shape[0], other.shape[0] - 2 * MARGIN), min(ref.shape[1], other.shape[1] - 2 * MARGIN)
            ref, mov, what = ref[:h, :w], _crop(other)[:h, :w], f"vs {names[(i + 3) % len(names)]}"
        ref, mov = _f32(ref), _f32(mov)
        t0 = time.perf_counter()
        est = estimate_global_shift(ref, mov, config=CONFIG)
        row = {"case": f"{name} {what}", "ours_s": time.perf_counter() - t0, "ours_confident": est.reliable}
        if aro is not None:
            res = aro.arosics_global(ref, mov, max_shift=12)
            row.update(aro_s=res.seconds, aro_confident=res.ok)
        rows.append(row)
    return rows


def _summ(rows: list[dict], key: str) -> str:
    v = np.array([r[key] for r in rows if key in r], dtype=float)
    ok = v[np.isfinite(v)]
    if ok.size == 0:
        return "n/a"
    return f"{np.median(ok):.3f} / {np.percentile(ok, 95):.3f} ({ok.size}/{v.size})"


def _time(rows: list[dict], key: str) -> float:
    return float(sum(r.get(key, 0.0) for r in rows))


def _vs(aro_t: float, ours_t: float, aro_ok: bool) -> str:
    """AROSICS's time and the speed-up cells: '-' when AROSICS was not run."""
    if not aro_ok:
        return "- | -"
    return f"{aro_t:.2f} | {aro_t / ours_t:.1f}x" if ours_t else f"{aro_t:.2f} | -"


def print_tables(results: dict[str, list[dict]], local_rows: list[dict], pooled: dict, aro_ok: bool) -> None:
    print("\n| case class | cases | ours: median / p95 error px (answered) | AROSICS: median / p95 (answered) "
          "| ours s | AROSICS s | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for cls, rows in results.items():
        ours_t, aro_t = _time(rows, "ours_s"), _time(rows, "aro_s")
        print(f"| {cls} | {len(rows)} | {_summ(rows, 'ours_err')} | "
              f"{_summ(rows, 'aro_err') if aro_ok else 'not run'} | {ours_t:.2f} | {_vs(aro_t, ours_t, aro_ok)} |")
        if any("ours_series_s" in r for r in rows):
            ser_t = _time(rows, "ours_series_s")
            print(f"| ... as a series (the reference's edges once per chip) | {len(rows)} | | | {ser_t:.2f} | "
                  f"{_vs(aro_t, ser_t, aro_ok)} |")
    if local_rows:
        ours_t, aro_t = _time(local_rows, "ours_s"), _time(local_rows, "aro_s")
        tp, atp, dense = pooled["ours_tp"], pooled["aro_tp"], pooled["ours_dense"]

        def q(a: np.ndarray) -> str:
            return f"{np.median(a):.3f} / {np.percentile(a, 95):.3f} ({a.size} pts)" if a.size else "n/a"

        print(f"| local smooth warp, tie points | {len(local_rows)} | {q(tp)} | "
              f"{q(atp) if aro_ok else 'not run'} | {ours_t:.2f} | {_vs(aro_t, ours_t, aro_ok)} |")
        print(f"| local smooth warp, every pixel (ours) | {len(local_rows)} | {q(dense)} | - | | | |")


def print_unregistrable(rows: list[dict], aro_ok: bool) -> None:
    ours = sum(r["ours_confident"] for r in rows)
    line = f"\nunregistrable pairs: {len(rows)}; confident (wrong) answers: ours {ours}"
    if aro_ok:
        line += f", AROSICS {sum(r['aro_confident'] for r in rows)}"
    print(line)
    for r in rows:
        print(f"  {r['case']:<32} ours {'CONFIDENT' if r['ours_confident'] else 'refused'}"
              + (f", AROSICS {'CONFIDENT' if r['aro_confident'] else 'refused'}" if aro_ok else ""))


# --------------------------------------------------------------------------- memory


_MEMORY_CHILD = r"""
import resource, sys, time, numpy as np, dask, dask.array as da, pandas as pd, xarray as xr, rioxarray
from affine import Affine
sys.path.insert(0, {root!r})
from changedetect.coregister import coregister, CoregisterConfig
size, chunk, dx, dy = {size}, 1024, 3.37, -2.61
rng = np.random.default_rng(0)
K = 24
fr, fc = rng.uniform(2 * np.pi / 300, 2 * np.pi / 4, (2, K))
pr, pc = rng.uniform(0, 2 * np.pi, (2, K))
amp = rng.uniform(5, 20, K)
def scene(shift, block_info=None):
    (r0, r1), (c0, c1) = block_info[None]["array-location"]
    r = np.arange(r0, r1) - shift[1]
    c = np.arange(c0, c1) - shift[0]
    a = (amp[:, None] * np.sin(fr[:, None] * r[None, :] + pr[:, None])).T
    b = np.sin(fc[:, None] * c[None, :] + pc[:, None])
    return (100 + a @ b).astype(np.float32)
dates = [da.map_blocks(scene, s, chunks=((chunk,) * (size // chunk),) * 2, dtype=np.float32)
         for s in ((0.0, 0.0), (dx, dy))]
bands = {bands!r}
data = da.stack([da.stack([d * (1 - 0.1 * j) + 10 * j for j in range(len(bands))]) for d in dates])
stack = xr.DataArray(data, dims=("time", "band", "y", "x"),
    coords={{"time": pd.to_datetime(["2024-01-01", "2024-06-01"]).values, "band": bands,
            "y": 1e6 - 0.5 * (np.arange(size) + 0.5), "x": 5e5 + 0.5 * (np.arange(size) + 0.5)}})
stack = stack.rio.write_crs("EPSG:32648").rio.write_transform(Affine(0.5, 0, 5e5, 0, -0.5, 1e6))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
with dask.config.set(scheduler="threads", num_workers=2):
    aligned, report = coregister(stack, config=CoregisterConfig(radiometric=False))
    t1 = time.perf_counter()
    diff = float(abs(aligned[1, 0] - aligned[0, 0]).mean().compute())
t2 = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
d = report.dates[1]
print(f"{{size}} {{base / 1024:.0f}} {{peak / 1024:.0f}} {{t1 - t0:.1f}} {{t2 - t1:.1f}} "
      f"{{d.shift_px[0] - dx:+.4f}} {{d.shift_px[1] - dy:+.4f}} {{d.status}}/{{d.matching}} {{diff:.4f}}")
"""


def run_memory(sizes: list[int], rgb: bool = False) -> None:
    root = str(Path(__file__).resolve().parents[1])
    bands = ["red", "green", "blue"] if rgb else ["pan"]
    print("\n| scene (px) | float32 per date | baseline RSS MiB | peak RSS MiB | estimate s | warp+stream s "
          "| shift error dx, dy px | mode | mean abs diff after |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        code = _MEMORY_CHILD.format(root=root, size=size, bands=bands)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        s, base, peak, t_est, t_warp, ex, ey, mode, diff = out.stdout.split()
        print(f"| {s}² | {int(s) ** 2 * 4 * len(bands) / 2**20:.0f} MiB | {base} | {peak} | {t_est} | {t_warp} | "
              f"{ex}, {ey} | {mode} | {diff} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--per-source", type=int, default=2, help="shifts per source image")
    parser.add_argument("--chips", type=int, default=6, help="fAIr VHR chips used")
    parser.add_argument("--no-arosics", action="store_true")
    parser.add_argument("--memory", action="store_true", help="only the memory test")
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 8192])
    parser.add_argument("--rgb", action="store_true",
                        help="memory test on a red/green/blue stack (matched on material edges)")
    parser.add_argument("--sample", type=Path, default=None, help="only the sample-city test")
    parser.add_argument("--matching", default="auto", choices=["auto", "material", "mean"],
                        help="what coregister matches the sample city on (CoregisterConfig.matching)")
    parser.add_argument("--only", choices=["rgb", "nodata"], default=None,
                        help="only these case classes (rgb: the two RGB-chip classes, for quick runs, other draws; "
                             "nodata: the shared-nodata class)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=None,
                        help="iterations of our global estimate (default: CoregisterConfig's)")
    args = parser.parse_args()
    global CONFIG
    if args.iterations is not None:
        CONFIG = CoregisterConfig(iterations=args.iterations)
        print(f"our global estimate: {args.iterations} iterations")
    if args.memory:
        run_memory(args.sizes, args.rgb)
        return
    if args.sample is not None:
        from _coregistration_sample import run_sample, run_sample_residuals

        run_sample(args.sample, args.matching)
        run_sample_residuals(args.sample)
        return
    aro = None
    if not args.no_arosics:
        import _arosics_runner as aro_mod

        if aro_mod.AVAILABLE:
            aro = aro_mod
            import arosics

            print(f"AROSICS {arosics.__version__} runs on the same cases")
        else:
            print(f"AROSICS is not importable here ({aro_mod.IMPORT_ERROR}): only our figures are printed")
    rng = np.random.default_rng(args.seed)
    srcs = {} if args.only else sources(args.data, args.chips)
    results: dict[str, list[dict]] = {}
    if not args.only:
        print(f"{len(srcs)} source images: " + ", ".join(f"{k} {v.shape[0]}x{v.shape[1]}" for k, v in srcs.items()))
        results["global shift"] = run_global(srcs, rng, aro, args.per_source, radiometric=False)
        results["global shift + radiometry"] = run_global(srcs, rng, aro, args.per_source, radiometric=True)
        results["real change (OSCD date 2), differential"] = run_real_change(args.data, rng, aro)
    if args.only in (None, "nodata"):
        srcs = srcs or sources(args.data, args.chips)
        results["global shift, both dates clipped to one area (shared nodata margin)"] = run_shared_nodata(
            srcs, np.random.default_rng(args.seed + 1), aro, args.per_source)
        if args.only:
            print_tables(results, [], {}, aro is not None)
            return
    rgb = sources_rgb(args.data, args.chips)
    results["RGB chips, global shift (ours on material edges)"] = run_global_rgb(
        rgb, rng, aro, 2 * args.per_source, radiometric=False)
    results["RGB chips, global shift + radiometry (ours on material edges)"] = run_global_rgb(
        rgb, rng, aro, 2 * args.per_source, radiometric=True)
    local_rows, pooled = run_local(srcs, rng, aro)
    unreg = run_unregistrable(srcs, rng, aro)
    print_tables(results, local_rows, pooled, aro is not None)
    if args.only:
        return
    print_unregistrable(unreg, aro is not None)
    print("\nper local case:")
    for r in local_rows:
        print("  " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))


if __name__ == "__main__":
    main()
