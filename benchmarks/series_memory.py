"""Peak memory and speed of ``changedetect detect --series`` whole and block by block.

For each scene size (default 2048² and 4096²) a synthetic three-date series is written under
``--workdir`` (reused when present): uint8 RGB GeoTIFFs (512² tiles, deflate), one per date
(2024-01-15, 2024-03-15, 2024-05-15), a smooth background with "buildings", a tenth of them new on
each later date; generated strip by strip, never from the shared data.  Then, for each ``--block-px``
(default 1024, block by block at both sizes, and 8192, both sizes whole), it runs

    changedetect -q detect TILES --series --out OUT --overwrite --block-px B [--model M]

(the venv's console script) in a child process and prints the wall time, Mpx/s (the scene's pixels
over the wall time), the child's CPU seconds and its peak RSS (``os.wait4``'s ``ru_maxrss``: that
child alone), with the 1-minute load average at its end.  Block by block, the peak RSS should be
about the same at both sizes; whole, it grows with the scene.

    nice -n 10 .venv/bin/python benchmarks/series_memory.py [--sizes 2048 4096] [--block-px 1024 8192]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DATES = ("20240115", "20240315", "20240515")
STRIP = 512
ROOF = np.array([205.0, 90.0, 70.0])


def _strip(top: int, rows: int, width: int, t: int, rects: np.ndarray, seed: int) -> np.ndarray:
    """Rows ``top .. top + rows`` of date ``t`` (3, rows, width) uint8: the buildings of ``rects``
    standing by then (column 4: the date each appears)."""
    y = np.arange(top, top + rows, dtype=np.float32)[:, None]
    x = np.arange(width, dtype=np.float32)[None, :]
    base = 110 + 40 * np.sin(x / 157.0) * np.cos(y / 211.0) + 20 * np.sin((x + y) / 43.0)
    rng = np.random.default_rng([seed, t, top])
    img = np.repeat(base[None], 3, axis=0) + rng.normal(0, 6, (3, rows, width))
    img[1] += 10
    hit = rects[(rects[:, 0] < top + rows) & (rects[:, 0] + rects[:, 2] > top) & (rects[:, 4] <= t)]
    for r, c, h, w, _ in hit:
        r0, r1 = max(r, top) - top, min(r + h, top + rows) - top
        img[:, r0:r1, c : c + w] = ROOF[:, None, None]
    return np.clip(img, 0, 255).astype(np.uint8)


def write_series(folder: Path, size: int, seed: int = 0) -> Path:
    """The three dates of ``size``² px under ``folder`` (kept when already written)."""
    import rasterio
    from affine import Affine

    if all((folder / f"area_{d}.tif").is_file() for d in DATES):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = size * size // 20000
    rects = np.stack([rng.integers(0, size - 40, n), rng.integers(0, size - 40, n), rng.integers(8, 40, n),
                      rng.integers(8, 40, n), rng.choice([0, 0, 0, 0, 0, 0, 0, 0, 1, 2], n)], axis=1)
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 3, "dtype": "uint8",
               "crs": "EPSG:32648", "transform": Affine(0.5, 0, 686000, 0, -0.5, 1190000), "tiled": True,
               "blockxsize": 512, "blockysize": 512, "compress": "deflate", "BIGTIFF": "IF_SAFER"}
    for t, day in enumerate(DATES):
        path = folder / f"area_{day}.tif"
        tmp = path.with_name(f".{path.name}.tmp")
        with rasterio.open(tmp, "w", **profile) as dst:
            for i, name in enumerate(("red", "green", "blue"), 1):
                dst.set_band_description(i, name)
            for top in range(0, size, STRIP):
                rows = min(STRIP, size - top)
                dst.write(_strip(top, rows, size, t, rects, seed), window=rasterio.windows.Window(0, top, size, rows))
        tmp.rename(path)
    return folder


def measure(tiles: Path, out: Path, block_px: int, model: str | None) -> dict[str, float]:
    """One ``detect --series`` in a child process: wall s, CPU s, peak RSS MiB, load average."""
    exe = Path(sys.executable).with_name("changedetect")
    cmd = [str(exe), "-q", "detect", str(tiles), "--series", "--out", str(out), "--overwrite",
           "--block-px", str(block_px), *(["--model", model] if model else [])]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    text = child.stdout.read() if child.stdout else ""
    if status != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({status}):\n{text}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024,
            "load": os.getloadavg()[0], "said": text.strip().splitlines()[-1] if text.strip() else ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--block-px", type=int, nargs="+", default=[1024, 8192])
    parser.add_argument("--model", default=None, help="model name or folder (default: detect's)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cd_series_memory"))
    args = parser.parse_args()
    print(f"# {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs")
    print("| scene | --block-px | blocks | wall (s) | Mpx/s | CPU (s) | peak RSS (MiB) | load |")
    print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        tiles = write_series(args.workdir / f"series_{size}", size)
        for block in args.block_px:
            got = measure(tiles, args.workdir / f"change_{size}_{block}.tif", block, args.model)
            blocks = got["said"].split(" in ")[1].split(" blocks")[0] if " blocks," in got["said"] else "1"
            print(f"| {size}² | {block} | {blocks} | {got['wall']:.1f} | {size * size / 1e6 / got['wall']:.2f} | "
                  f"{got['cpu']:.0f} | {got['rss']:.0f} | {got['load']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
