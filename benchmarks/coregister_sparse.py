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

``--partial``: the second date holds the centre patch alone (a new flight over one ward of a
district).  ``--accuracy``: instead of writing nothing else, also run ``coregister()`` in this process
the way ``changedetect coregister`` does (the files' decimated coverage passed in) and print, in each
patch the second date holds, the error of the fitted shift field against the displacement the sample
city's generator recorded (``sample_tiles/truth/registration.json``), with the estimation's wall time
and the process's peak RSS:

    .venv/bin/python benchmarks/coregister_sparse.py /tmp/sparse --size 20000 --patches 2 --accuracy
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
SIDE = 1024  # the sample city's images, px a side


def patch_origins(size: int, patches: int, side: int) -> list[tuple[int, int]]:
    """Upper-left corners (row, col), on the block grid, of ``patches`` patches of ``side`` px: the
    centre first, then along the diagonal."""
    centre = (size // 2 - side // 2) // BLOCK * BLOCK
    spots = [(centre, centre)]
    for k in range(1, patches):
        at = (size * k // (patches + 1)) // BLOCK * BLOCK
        spots.append((at, at) if at != centre else (at + side, at + side))
    return spots[:patches]


def write_scene(folder: Path, size: int, patches: int, partial: bool = False) -> list[Path]:
    """The two dates' sparse GeoTIFFs in ``folder`` (written again each time); ``partial``: the second
    date holds the first (centre) patch alone."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for day in DATES:
        spots = patch_origins(size, patches, SIDE)
        if partial and day != DATES[0]:
            spots = spots[:1]
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
            for row, col in spots:
                dst.write(image, window=rasterio.windows.Window(col, row, side, side))
            for i, name in enumerate(names, 1):
                dst.set_band_description(i, name or f"B{i}")
        written.append(path)
    return written


def accuracy(folder: Path, size: int, patches: int, partial: bool) -> None:
    """``coregister()`` as the CLI runs it; the field's error against the generator's truth per patch."""
    import json
    import resource
    import time

    from changedetect._registration.synthetic import true_field
    from changedetect.coregister import coregister, needs_coverage
    from changedetect.io import open_series

    truth = next(d for d in json.loads((SAMPLE / "truth/registration.json").read_text())["dates"]
                 if d["date"] == f"{DATES[1][:4]}-{DATES[1][4:6]}-{DATES[1][6:]}")
    m = truth["misregistration"]
    g, terms = m["global_shift_px"], m["warp_terms"]

    def u(r: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ux, uy = np.full(r.shape, g["dx"]), np.full(r.shape, g["dy"])
        for k in terms:
            ph = 2 * np.pi * (k["fc"] * c + k["fr"] * r)
            ux, uy = ux + k["ax"] * np.sin(ph + k["phx"]), uy + k["ay"] * np.sin(ph + k["phy"])
        return ux, uy

    t0 = time.perf_counter()
    series = open_series(folder)
    grid = series.reference_grid()
    coverage = series.coverage(grid) if needs_coverage(grid.height, grid.width) else None
    _, report = coregister(series.to_stack(grid), coverage=coverage)
    seconds = time.perf_counter() - t0
    entry = report.dates[1]
    print(f"{size}² grid, {patches} patch(es), second date {'the centre patch alone' if partial else 'all'}: "
          f"{entry.status}, shift {entry.shift_px[0]:+.3f}, {entry.shift_px[1]:+.3f} px, tie points "
          f"{entry.tie_points_kept}/{entry.tie_points_found}; coregister() {seconds:.1f} s, peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    print(f"truth: global {g['dx']:+.3f}, {g['dy']:+.3f} px plus a smooth warp")
    print("| patch (row, col) | error median px | p95 | max |")
    print("|---|---|---|---|")
    spots = patch_origins(size, patches, SIDE)
    for r0, c0 in spots[:1] if partial else spots:
        rows, cols = np.meshgrid(np.arange(SIDE, dtype=float), np.arange(SIDE, dtype=float), indexing="ij")
        tx, ty = true_field(u, rows, cols)  # the patch is the sample city's image, at (r0, c0)
        if entry.shift_field is None:
            ex, ey = np.zeros_like(tx), np.zeros_like(ty)  # not registered: nothing applied
        else:
            ex, ey = entry.shift_field.dense(r0, r0 + SIDE, c0, c0 + SIDE)
        err = np.hypot(ex - tx, ey - ty)
        print(f"| {r0}, {c0} | {np.median(err):.4f} | {np.percentile(err, 95):.3f} | {err.max():.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--size", type=int, default=200_000)
    parser.add_argument("--patches", type=int, default=2)
    parser.add_argument("--partial", action="store_true", help="the second date holds the centre patch alone")
    parser.add_argument("--accuracy", action="store_true",
                        help="then coregister() the scene and print the field's error against the truth")
    args = parser.parse_args()
    for path in write_scene(args.folder, args.size, args.patches, args.partial):
        print(f"{path}: {args.size} x {args.size} px declared, {path.stat().st_size / 2**20:.1f} MiB on disk")
    if args.accuracy:
        accuracy(args.folder, args.size, args.patches, args.partial)


if __name__ == "__main__":
    main()
