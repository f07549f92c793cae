"""Speed, peak memory and seams of ``changedetect.detect.detect_to_file``.

For each scene size (default 4096^2 and 16384^2) a synthetic uint8 RGB GeoTIFF
pair is written under ``--workdir`` (a smooth background with "buildings";
the after date has new ones), then ``detect_to_file`` runs in a fresh
subprocess so that its peak resident memory (``ru_maxrss``) is its own.  The
figures: wall time end to end (reading, normalisation statistics, the network,
blending, writing the COG), Mpx/s, peak RSS, and the child's CPU seconds (user +
system) with the 1-minute load average at its end: on a shared machine the wall
time depends on what else runs, Mpx per CPU-second much less so (x2 on two free
cores is what the wall figure would be on an idle machine, at best).

Seam check (on the first size): the mean absolute gradient of the probability
across the columns (rows) where a window starts or ends is compared with the
same on every other column (row): the ratio and a Mann-Whitney U test.  The
same check on a naive tiling (no overlap, each window normalised on its own)
shows that the test does see seams when there are some.

Usage::

    .venv/bin/python benchmarks/detection_speed.py                     # 4096 and 16384
    .venv/bin/python benchmarks/detection_speed.py --sizes 4096 --model vhr-building
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

STRIP = 512


def _scene_strip(rows: slice, width: int, seed: int, buildings: np.ndarray, later: np.ndarray | None) -> np.ndarray:
    """Rows ``rows`` of a synthetic RGB scene (3, n, width) uint8; deterministic per pixel."""
    y = np.arange(rows.start, rows.stop, dtype=np.float32)[:, None]
    x = np.arange(width, dtype=np.float32)[None, :]
    base = 110 + 40 * np.sin(x / 157.0) * np.cos(y / 211.0) + 20 * np.sin((x + y) / 43.0)
    rng = np.random.default_rng([seed, rows.start])
    img = np.repeat(base[None], 3, axis=0) + rng.normal(0, 6, (3, rows.stop - rows.start, width))
    img[1] += 10
    for rects, value in ((buildings, 215.0), (later, 60.0)):
        if rects is None:
            continue
        hit = rects[(rects[:, 0] < rows.stop) & (rects[:, 0] + rects[:, 2] > rows.start)]
        for r, c, h, w in hit:
            r0, r1 = max(r, rows.start) - rows.start, min(r + h, rows.stop) - rows.start
            img[:, r0:r1, c : c + w] = value + rng.normal(0, 4, (3, r1 - r0, min(w, width - c)))
    return np.clip(img, 0, 255).astype(np.uint8)


def write_pair(workdir: Path, size: int, seed: int = 0) -> tuple[Path, Path]:
    """Before/after GeoTIFFs of ``size``^2 px (tiled, deflate), written strip by strip."""
    import rasterio
    from affine import Affine

    workdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = size * size // 20000
    rects = np.stack([rng.integers(0, size - 40, n), rng.integers(0, size - 40, n),
                      rng.integers(8, 40, n), rng.integers(8, 40, n)], axis=1)
    new = rects[: n // 10] + np.array([20, 20, 0, 0])
    new = np.clip(new, 0, size - 40)
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 3, "dtype": "uint8",
               "crs": "EPSG:32648", "transform": Affine(0.5, 0, 686000, 0, -0.5, 1190000),
               "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate",
               "BIGTIFF": "IF_SAFER"}
    paths = []
    for name, later in (("before", None), ("after", new)):
        path = workdir / f"{name}_{size}.tif"
        paths.append(path)
        if path.exists():
            continue
        tmp = path.with_suffix(".tmp.tif")
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.descriptions = ("red", "green", "blue")
            for r in range(0, size, STRIP):
                rows = slice(r, min(r + STRIP, size))
                data = _scene_strip(rows, size, seed, rects[n // 10 :], later)
                dst.write(data, window=rasterio.windows.Window(0, r, size, rows.stop - rows.start))
        tmp.rename(path)
    return paths[0], paths[1]


def load(model: str) -> tuple[Any, str]:
    """The shipped model, or (when none is shipped yet) its architecture with random weights."""
    from changedetect.errors import ModelError
    from changedetect.weights import load_model

    try:
        return load_model(model), "shipped weights"
    except ModelError as exc:
        from changedetect.nn import get_model
        from changedetect.nn.blocks import fold_batchnorm
        from changedetect.weights import LoadedModel, ModelCard

        print(f"note: {exc}\n  -> timing the default architecture 'siamese_unet' with random weights",
              file=sys.stderr)
        module = get_model("siamese_unet", in_channels=3).eval()
        fold_batchnorm(module)
        card = ModelCard(name=f"{model}-untrained", version="0", arch="siamese_unet",
                         bands=("red", "green", "blue"))
        return LoadedModel(module=module, card=card, path=Path(".")), "random weights, same architecture"


def model_only(model: str, window: int, batch: int, repeats: int = 5) -> dict[str, float]:
    """Throughput of the network alone (random input windows): what the pipeline cannot beat."""
    import torch

    loaded, _ = load(model)
    torch.set_num_threads(os.cpu_count() or 1)
    a, b = torch.randn(batch, 3, window, window), torch.randn(batch, 3, window, window)
    with torch.inference_mode():
        loaded.module(a, b)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            loaded.module(a, b)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    mpx = repeats * batch * window * window / 1e6
    return {"mpx_per_s": mpx / wall, "mpx_per_cpu_s": mpx / cpu, "load_avg_1min": os.getloadavg()[0]}


def child(before: str, after: str, out: str, model: str, window: int, overlap: int, batch: int) -> None:
    """Run detect_to_file once and print one JSON line with the figures."""
    from changedetect.detect import DetectConfig, detect_to_file

    loaded, what = load(model)
    cfg = DetectConfig(model=model, window=window, overlap=overlap, batch_size=batch)
    t0 = time.perf_counter()
    s = detect_to_file(before, after, out, config=cfg, overwrite=True, model=loaded)
    wall = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    mpx = s.width * s.height / 1e6
    print(json.dumps({"size": s.width, "seconds": wall, "mpx_per_s": mpx / wall,
                      "cpu_seconds": cpu, "mpx_per_cpu_s": mpx / cpu,
                      "peak_rss_mb": usage.ru_maxrss * 1024 / 2**20, "weights": what, "model": s.model,
                      "threads": os.cpu_count(), "load_avg_1min": os.getloadavg()[0]}))


# ----------------------------------------------------------------------------- seams
def _edge_lines(size: int, window: int, overlap: int) -> np.ndarray:
    from changedetect.tiling import offsets

    starts = np.array(offsets(size, window, overlap))
    lines = np.concatenate([starts, starts + window - 1])
    return np.unique(lines[(lines > 0) & (lines < size - 1)])


def seam_stats(prob: np.ndarray, window: int, overlap: int) -> dict[str, float]:
    """Border vs other lines: mean |gradient| ratio and Mann-Whitney p-value (columns and rows)."""
    from scipy.stats import mannwhitneyu

    out: dict[str, float] = {}
    for axis, label in ((1, "cols"), (0, "rows")):
        g = np.abs(np.diff(prob, axis=axis))  # g[..., j] between line j and j+1
        per_line = np.nanmean(g, axis=1 - axis)
        edges = _edge_lines(prob.shape[axis], window, overlap)
        # a seam at line e shows as a jump between e-1 and e or between e and e+1
        border = np.zeros(per_line.size, bool)
        border[np.clip(np.concatenate([edges - 1, edges]), 0, per_line.size - 1)] = True
        a, b = per_line[border], per_line[~border]
        out[f"{label}_ratio"] = float(np.mean(a) / np.mean(b))
        out[f"{label}_p"] = float(mannwhitneyu(a, b).pvalue)
    return out


def naive_tiling(before: Path, after: Path, loaded: Any, size: int, window: int) -> np.ndarray:
    """Hard tiles, no overlap, each window normalised on its own: what seams look like."""
    import rasterio
    import torch

    out = np.zeros((size, size), np.float32)
    with rasterio.open(before) as a, rasterio.open(after) as b:
        for r in range(0, size, window):
            for c in range(0, size, window):
                win = rasterio.windows.Window(c, r, window, window)
                xa = loaded.card.preprocess(a.read(window=win).astype(np.float32))
                xb = loaded.card.preprocess(b.read(window=win).astype(np.float32))
                with torch.inference_mode():
                    p = torch.sigmoid(loaded.module(torch.from_numpy(xa)[None], torch.from_numpy(xb)[None]))
                out[r : r + window, c : c + window] = p[0, 0].numpy()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/changedetect_speed"))
    ap.add_argument("--model", default="vhr-building")
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--overlap", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seam-size", type=int, default=4096, help="side of the scene used for the seam check")
    ap.add_argument("--no-seams", action="store_true", help="skip the seam check")
    ap.add_argument("--child", nargs=3, metavar=("BEFORE", "AFTER", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child, args.model, args.window, args.overlap, args.batch_size)
        return
    print(f"detect_to_file, model {args.model}, window {args.window}, overlap {args.overlap}, "
          f"batch {args.batch_size}, {os.cpu_count()} cores")
    print("| scene | wall (s) | Mpx/s (wall) | CPU (s) | Mpx per CPU-s | peak RSS (MB) | load avg | weights |")
    print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        t0 = time.perf_counter()
        before, after = write_pair(args.workdir, size)
        gen = time.perf_counter() - t0
        out = args.workdir / f"prob_{size}.tif"
        cmd = [sys.executable, __file__, "--child", str(before), str(after), str(out), "--model", args.model,
               "--window", str(args.window), "--overlap", str(args.overlap), "--batch-size", str(args.batch_size)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode:
            print(res.stderr, file=sys.stderr)
            raise SystemExit(f"child failed for {size}")
        r = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"| {size}x{size} | {r['seconds']:.1f} | {r['mpx_per_s']:.2f} | {r['cpu_seconds']:.0f} | "
              f"{r['mpx_per_cpu_s']:.2f} | {r['peak_rss_mb']:.0f} | {r['load_avg_1min']:.1f} | {r['weights']} |"
              f"  (inputs generated in {gen:.0f} s)", flush=True)
    m = model_only(args.model, args.window, args.batch_size)
    print(f"\nnetwork alone ({args.batch_size} x {args.window}^2 windows, no overlap, no I/O): "
          f"{m['mpx_per_s']:.2f} Mpx/s wall, {m['mpx_per_cpu_s']:.2f} Mpx per CPU-s "
          f"(load avg {m['load_avg_1min']:.1f}); overlap {args.overlap} costs a factor "
          f"{(args.window / (args.window - args.overlap)) ** 2:.2f} in windows", flush=True)
    if not args.no_seams:
        seam_check(args)


def seam_check(args: argparse.Namespace) -> None:
    import rasterio

    size = args.seam_size
    before, after = write_pair(args.workdir, size)
    out = args.workdir / f"prob_{size}.tif"
    if not out.exists():
        subprocess.run([sys.executable, __file__, "--child", str(before), str(after), str(out), "--model",
                        args.model, "--window", str(args.window), "--overlap", str(args.overlap)], check=True,
                       capture_output=True)
    with rasterio.open(out) as src:
        prob = src.read(1)
    ours = seam_stats(prob, args.window, args.overlap)
    loaded, _ = load(args.model)
    naive = seam_stats(naive_tiling(before, after, loaded, size, args.window), args.window, 0)
    print(f"\nSeam check on {size}x{size} (mean |gradient| on window-border lines / elsewhere; "
          "Mann-Whitney p):")
    print("| tiling | columns ratio | columns p | rows ratio | rows p |")
    print("|---|---|---|---|---|")
    for name, s in (("changedetect (overlap, blending, scene-wide stats)", ours),
                    ("naive (no overlap, per-window stats)", naive)):
        print(f"| {name} | {s['cols_ratio']:.3f} | {s['cols_p']:.3g} | {s['rows_ratio']:.3f} | {s['rows_p']:.3g} |")


if __name__ == "__main__":
    main()
