"""Memory and time of changedetect.io on a scene larger than we want to hold: prints the figures.

Usage (from the repository root)::

    .venv/bin/python benchmarks/io_read_write.py --size 16384 --workdir /tmp/cd-io-bench

1. ``open_series`` on OSCD Paris (26 band files; metadata only), median of 5 runs;
2. ``write_cog`` of a lazy ``size x size`` float32 dask array (chunks 1024), peak RSS
   above the baseline sampled every 10 ms;
3. ``open_stack`` on that COG and a blockwise ``nanmean`` (peak RSS likewise);
4. ``describe`` (``changedetect info``) on that COG.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

import dask.array as da
import numpy as np
import rioxarray  # noqa: F401
import xarray as xr
from _memory import peak_rss  # benchmarks/ is on sys.path when run as a script
from affine import Affine

from changedetect.io import describe, open_series, open_stack, write_cog

REPO = Path(__file__).resolve().parents[1]


def lazy_scene(size: int) -> xr.DataArray:
    y = da.arange(size, chunks=1024, dtype=np.float32)
    x = da.arange(size, chunks=1024, dtype=np.float32)
    data = (da.sin(y[:, None] / 97.0) * da.cos(x[None, :] / 131.0) * 100.0).astype(np.float32)
    arr = xr.DataArray(data, dims=("y", "x"))
    return arr.rio.write_crs("EPSG:32648").rio.write_transform(Affine(0.5, 0, 683_000, 0, -0.5, 1_210_000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=16384, help="scene side in pixels")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cd-io-bench"))
    args = parser.parse_args()
    work = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    city = REPO / ".." / "shared" / "data" / "oscd" / "images" / "paris"
    if city.is_dir():
        times = []
        for _ in range(5):
            start = time.perf_counter()
            open_series(city)
            times.append(time.perf_counter() - start)
        print(f"open_series(oscd/paris, 26 files, metadata only): median {1000 * statistics.median(times):.1f} ms")

    nominal = args.size**2 * 4 / 2**20
    scene = lazy_scene(args.size)
    out = work / f"scene_{args.size}_20240101.tif"
    _, secs, mib = peak_rss(lambda: write_cog(scene, out))
    print(
        f"write_cog {args.size}x{args.size} float32 (array {nominal:.0f} MiB, dask chunks 1024): "
        f"{secs:.1f} s, peak RSS +{mib:.0f} MiB, file {out.stat().st_size / 2**20:.0f} MiB"
    )
    stack = open_stack(out, chunks=1024)
    mean, secs, mib = peak_rss(lambda: float(stack.mean(skipna=True).compute()))
    print(f"open_stack + blockwise nanmean of that COG: {secs:.1f} s, peak RSS +{mib:.0f} MiB (mean {mean:.4f})")
    info, secs, mib = peak_rss(lambda: describe(out))
    print(f"describe (changedetect info) of that COG: {1000 * secs:.0f} ms, peak RSS +{mib:.0f} MiB, nodata share {info['nodata_share']}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
