"""A larger Sentinel-2 band-per-file delivery from an OSCD city: each band file mirrored K x K times.

Every band keeps its own grid (10, 20 and 60 m) and pixel size, so the result reads like the city's
folder over K² times the area (``dates.txt`` and the folder layout copied)::

    .venv/bin/python benchmarks/s2_mirrored.py ../shared/data/oscd/images/pisa /tmp/pisa4 --k 4
    .venv/bin/changedetect run /tmp/pisa4 --model s2-urban --permits REG --out /tmp/out

Write it outside the repository: it is a crop of the shared data.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import rasterio


def mirrored(band: np.ndarray, k: int) -> np.ndarray:
    """``band`` tiled ``k`` x ``k`` times, every other copy flipped so that no seam is an edge."""
    row = np.concatenate([band if i % 2 == 0 else band[:, ::-1] for i in range(k)], axis=1)
    return np.concatenate([row if i % 2 == 0 else row[::-1] for i in range(k)], axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("city", type=Path, help="an OSCD city folder (imgs_1/, imgs_2/, dates.txt)")
    parser.add_argument("out", type=Path, help="the new folder (replaced)")
    parser.add_argument("--k", type=int, default=4, help="copies a side (default 4)")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    for path in sorted(p for p in args.city.rglob("*") if p.is_file()):
        target = args.out / path.relative_to(args.city)
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() != ".tif":
            shutil.copy(path, target)
            continue
        with rasterio.open(path) as src:
            data, profile = mirrored(src.read(1), args.k), src.profile
        profile.update(width=data.shape[1], height=data.shape[0], tiled=True, blockxsize=256, blockysize=256,
                       compress="deflate")
        with rasterio.open(target, "w", **profile) as dst:
            dst.write(data, 1)
    print(f"{args.out}: {args.city.name} mirrored {args.k} x {args.k}")


if __name__ == "__main__":
    main()
