"""A sparse, huge two-date scene for ``changedetect coregister``'s memory (H124).

Writes two dates of a SIZE x SIZE grid (default 200 000 px a side at the sample city's 0.5 m: a
100 km square) as tiled, sparse GeoTIFFs (``SPARSE_OK``: tiles never written take no bytes and read as
nodata 0), where only PATCHES 1024 px patches hold data: the sample city's 2024-01-15 and 2024-07-12
images (``sample_tiles``, in this repository), at the grid's centre and, for more patches, along its
diagonal.  Such a file is what a city-wide mosaic of a few flown districts looks like; opening it costs
nothing, reading it whole costs the whole grid.

    nice -n 10 .venv/bin/python benchmarks/coregister_sparse.py /tmp/sparse --size 200000 --patches 2
    /usr/bin/time -v .venv/bin/changedetect coregister /tmp/sparse --out /tmp/sparse_out

Peak RSS is /usr/bin/time's "Maximum resident set size".
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

SAMPLE = Path(__file__).resolve().parents[1] / "sample_tiles"
DATES = ("20240115", "20240712")
BLOCK = 512


def patch_origins(size: int, patches: int, side: int) -> list[tuple[int, int]]:
    """Upper-left corners (row, col), on the block grid, of ``patches`` patches of ``side`` px: the
    centre first, then along the diagonal."""
    centre = (size // 2 - side // 2) // BLOCK * BLOCK
    spots = [(centre, centre)]
    for k in range(1, patches):
        at = (size * k // (patches + 1)) // BLOCK * BLOCK
        spots.append((at, at) if at != centre else (at + side, at + side))
    return spots[:patches]


def write_scene(folder: Path, size: int, patches: int) -> list[Path]:
    """The two dates' sparse GeoTIFFs in ``folder`` (written again each time)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for day in DATES:
        with rasterio.open(SAMPLE / f"district12_{day}.tif") as src:
            image = np.clip(src.read(), 1, 255).astype(np.uint8)  # 0 is the sparse file's nodata
            crs, pixel = src.crs, src.transform.a
            names = src.descriptions
        side = image.shape[1]
        transform = Affine(pixel, 0, 600_000, 0, -pixel, 1_250_000)
        path = folder / f"sparse_{day}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=image.shape[0],
                           dtype="uint8", crs=crs, transform=transform, nodata=0, tiled=True,
                           blockxsize=BLOCK, blockysize=BLOCK, compress="deflate", sparse_ok=True,
                           bigtiff="YES") as dst:
            for row, col in patch_origins(size, patches, side):
                dst.write(image, window=rasterio.windows.Window(col, row, side, side))
            for i, name in enumerate(names, 1):
                dst.set_band_description(i, name or f"B{i}")
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--patches", type=int, default=2)
    args = parser.parse_args()
    for path in write_scene(args.folder, args.size, args.patches):
        print(f"{path}: {args.size} x {args.size} px declared, {path.stat().st_size / 2**20:.1f} MiB on disk")


if __name__ == "__main__":
    main()
