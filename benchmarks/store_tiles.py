"""Peak memory of storing a lazily warped band, in one call of dask against tile by tile.

A co-registration warp reads each block's neighbours' edges (``dask.array.overlap``).  This
warps an all-nodata ``SIZE`` x ``SIZE`` band (1024 px blocks, as a sparse mosaic's empty tiles)
by a constant shift and stores it with :func:`changedetect.io.raster.store_drained` into a sink
that keeps nothing, in a fresh process per case, and prints the peak RSS above the process's
baseline (sampled every 50 ms) and the wall time:

    .venv/bin/python benchmarks/store_tiles.py --sizes 20000 40000
"""

from __future__ import annotations

import argparse
import subprocess
import sys

_CASE = """
import threading, time, psutil, numpy as np, dask.array as da
from changedetect._registration.field import ShiftField
from changedetect._registration.warp import warp_lazy
from changedetect.io.raster import store_drained
size, tile = {size}, {tile}
proc, peak = psutil.Process(), [0]
def watch():
    while True:
        peak[0] = max(peak[0], proc.memory_info().rss)
        time.sleep(0.05)
threading.Thread(target=watch, daemon=True).start()
empty = da.map_blocks(lambda b: np.full(b.shape, np.nan, np.float32),
                      da.zeros((size, size), chunks=1024, dtype=np.float32), dtype=np.float32)
warped = warp_lazy(empty, ShiftField.uniform((size, size), 0.94, 3.33))[None]
class Sink:
    def __setitem__(self, key, block):
        pass
base = proc.memory_info().rss
t0 = time.perf_counter()
store_drained([warped.rechunk((-1, 1024, 1024))], [Sink()], tile=tile)
print(f"{{(peak[0] - base) / 2**20:.0f}} {{time.perf_counter() - t0:.1f}}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20000, 40000])
    parser.add_argument("--tile", type=int, default=4096, help="the tiles' side (default STORE_TILE)")
    args = parser.parse_args()
    print(f"| grid | one call: peak MiB above baseline, s | by tiles of {args.tile}²: peak MiB, s |")
    print("|---|---|---|")
    for size in args.sizes:
        cells = []
        for tile in (10**9, args.tile):
            out = subprocess.run([sys.executable, "-c", _CASE.format(size=size, tile=tile)], check=True,
                                 capture_output=True, text=True).stdout.split()
            cells.append(f"{out[0]} MiB, {out[1]} s")
        print(f"| {size}² | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
