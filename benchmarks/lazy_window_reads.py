"""What a window of a lazy co-registered stack costs to read, against the same stack spilled to disk.

``detect_pair`` and ``detect_series`` hold a lazy date in memory up to 2 GiB; a larger one is read
window by window, and a date ``coregister`` warped lazily warps the blocks under each window again
for every window (which is why they warn, and why ``changedetect run`` spills its stack:
``changedetect.io.spill_stack``).  This builds the sample city tiled K x K (``run_scale.py``'s
builder, three dates), co-registers it lazily, and prints for each date the mean time of reading a
256² window of three bands the way the detection does, then the time ``spill_stack`` takes and the
same reads from the spilled stack:

    .venv/bin/python benchmarks/lazy_window_reads.py --k 4 [--workdir /tmp/cd_run_scale]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run_scale import build_tiles  # noqa: E402

WINDOW = 256


def per_window_ms(stack: object, reads: int = 8) -> list[float]:
    """Mean milliseconds to read a 256² window of bands 0-2 of each date (the first read, which opens
    files and caches blocks of the grid's corner, not counted)."""
    from changedetect.detect import _array_reader
    from changedetect.tiling import Window

    out = []
    h = int(stack.sizes["y"])  # type: ignore[attr-defined]
    step = max(h // 4, 1)
    wins = [Window(r, c, WINDOW, WINDOW) for r in range(0, h - WINDOW, step) for c in range(0, h - WINDOW, step)]
    wins = wins[:reads + 1]
    for t in range(int(stack.sizes["time"])):  # type: ignore[attr-defined]
        read = _array_reader(stack.isel(time=t), [0, 1, 2])  # type: ignore[attr-defined]
        read(wins[0])
        t0 = time.perf_counter()
        for w in wins[1:]:
            read(w)
        out.append((time.perf_counter() - t0) / (len(wins) - 1) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=4, help="the sample city tiled k x k (1024 k px a side)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cd_run_scale"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from changedetect.coregister import coregister
    from changedetect.io import open_series, spill_stack

    tiles = build_tiles(args.k, args.workdir / f"k{args.k}")
    series = open_series(tiles)
    aligned, report = coregister(series.to_stack(series.reference_grid()))
    print(f"{tiles}: {aligned.sizes['y']}² px, {aligned.sizes['time']} dates, "
          f"statuses {[d.status for d in report.dates]}")
    lazy = per_window_ms(aligned)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        spilled = spill_stack(aligned, tmp)
        seconds = time.perf_counter() - t0
        from_disk = per_window_ms(spilled)
    print(f"spill_stack: {seconds:.1f} s for the {aligned.sizes['time']} dates")
    print("| date | lazy: ms per 256² window | spilled: ms per 256² window |")
    print("|---|---|---|")
    for t, (a, b) in enumerate(zip(lazy, from_disk, strict=True)):
        print(f"| {str(aligned['time'].values[t])[:10]} | {a:.0f} | {b:.0f} |")


if __name__ == "__main__":
    main()
