"""`changedetect run` on the sample city tiled K x K times: wall time and peak RSS of the whole chain.

A whole city must never have to fit in memory (tiles are read lazily and windowed; since the
blocked run, a scene larger than ``[run] block_px`` is detected and vectorised block by block);
this measures the whole chain (co-registration, the series' pairs with the
building segmenter's presence check, vectorise, match, write, report) on scenes far larger
than the 1024² sample city.

For each K of ``--sizes`` it builds, under ``--workdir`` (reused when present):

* one tiled GeoTIFF per date (512² blocks, deflate) whose tile (i, j) is that date's sample
  image placed i * 512 m east and j * 512 m south of the sample's origin, written window by
  window (the builder holds one 1024² image at a time), with the sample's band names and tags
  (acquisition date, sun angles);
* a permit register repeating each sample permit with the same offsets (ids suffixed
  ``_i_j``), in the sample register's CRS (EPSG:9210: shifted in the tiles' UTM metres, then
  projected back);

then runs ``changedetect run TILES --permits REG --out OUT --overwrite --json`` (the venv's
console script, with ``-v``) in a child process, sampling the RSS of the child's process tree every 50 ms
(and taking ``os.wait4``'s ``ru_maxrss`` for the child), and prints: K, Mpx per date, wall,
peak RSS, footprints, violations and violations per copy of the city (the sample city alone
gives about 20). The child is killed (and the row marked) when its tree passes
``--max-rss-gb`` or the machine's available memory falls under 1.5 GiB.

    nice -n 5 .venv/bin/python benchmarks/run_scale.py --sizes 2 4 [--workdir /tmp/cd_run_scale]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_tiles"
REGISTER = ROOT / "permits" / "sample_register.gpkg"
CLI = ROOT / ".venv" / "bin" / "changedetect"
SIDE = 1024  # the sample city's side in pixels


def build_tiles(k: int, folder: Path) -> Path:
    """The sample city's dates tiled k x k into ``folder`` (reused when complete)."""
    import rasterio
    from rasterio.windows import Window

    tiles = folder / "tiles"
    done = tiles / ".complete"
    if done.exists():
        return tiles
    shutil.rmtree(tiles, ignore_errors=True)
    tiles.mkdir(parents=True)
    for src_path in sorted(SAMPLE.glob("district12_*.tif")):
        with rasterio.open(src_path) as src:
            image = src.read()
            profile = src.profile.copy()
            profile.update(width=SIDE * k, height=SIDE * k, tiled=True, blockxsize=512, blockysize=512,
                           compress="deflate", BIGTIFF="IF_SAFER")
            tmp = tiles / (src_path.name + ".part")
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.update_tags(**src.tags())
                dst.descriptions = src.descriptions
                for j in range(k):  # rows, southwards
                    for i in range(k):  # columns, eastwards
                        dst.write(image, window=Window(i * SIDE, j * SIDE, SIDE, SIDE))
            tmp.rename(tiles / src_path.name)
    manifest = json.loads((SAMPLE / "manifest.json").read_text())
    manifest["name"] = f"{manifest['name']} tiled {k}x{k}"
    (tiles / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    done.touch()
    return tiles


def build_register(k: int, folder: Path, res_m: float, utm: Any) -> Path:
    """The sample register repeated k x k times with the tiles' offsets (reused when present)."""
    import geopandas as gpd
    import pandas as pd

    path = folder / "register.gpkg"
    if path.exists():
        return path
    base = gpd.read_file(REGISTER)
    in_utm = base.to_crs(utm)
    copies = []
    for j in range(k):
        for i in range(k):
            copy = in_utm.copy()
            copy["geometry"] = in_utm.geometry.translate(xoff=i * SIDE * res_m, yoff=-j * SIDE * res_m)
            copy["permit_id"] = base["permit_id"] + f"_{i}_{j}"
            copies.append(copy)
    frame = gpd.GeoDataFrame(pd.concat(copies, ignore_index=True), crs=utm).to_crs(base.crs)
    tmp = folder / "register.part.gpkg"
    frame.to_file(tmp, layer="permits", driver="GPKG")
    tmp.rename(path)
    return path


def tree_rss(proc: psutil.Process) -> int:
    """RSS of ``proc`` and its descendants, in bytes (0 once gone)."""
    total = 0
    try:
        for p in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
    except psutil.Error:
        return 0
    return total


def measure(cmd: list[str], max_rss: float, log: Path) -> dict[str, Any]:
    """Run ``cmd``; its wall time, peak tree RSS (sampled, and ru_maxrss), stdout, and whether it was killed.

    The child's log lines go to ``log``, each prefixed with the seconds since the start and the
    tree's RSS then (MiB), and a line every 10 s with the RSS and the peak so far: where the
    memory goes, stage by stage (run with ``-v``)."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc = psutil.Process(child.pid)
    peak, now = [0], [0]
    killed: list[str] = []
    done = threading.Event()
    with log.open("w") as err:
        lock = threading.Lock()

        def note(line: str) -> None:
            with lock:
                err.write(f"{time.perf_counter() - start:8.1f} s {now[0] / 2**20:6.0f} MiB | {line}")
                err.flush()

        def sample() -> None:
            last = 0.0
            while not done.is_set():
                rss = tree_rss(proc)
                now[0], peak[0] = rss, max(peak[0], rss)
                avail = psutil.virtual_memory().available
                if not killed and (rss > max_rss or avail < 1.5 * 2**30):
                    killed.append(f"killed at {rss / 2**30:.2f} GiB (available {avail / 2**30:.2f} GiB)")
                    child.kill()
                if time.perf_counter() - last >= 10:
                    last = time.perf_counter()
                    note(f"(peak {peak[0] / 2**20:.0f} MiB, load {os.getloadavg()[0]:.2f})\n")
                time.sleep(0.05)

        def relay() -> None:
            assert child.stderr is not None
            for line in child.stderr:
                note(line)

        threads = [threading.Thread(target=sample, daemon=True), threading.Thread(target=relay, daemon=True)]
        for t in threads:
            t.start()
        assert child.stdout is not None
        out = child.stdout.read()  # the --json object (small)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        for t in threads:
            t.join()
    return {"wall_s": wall, "peak_rss": peak[0], "maxrss": usage.ru_maxrss * 1024, "rc": child.returncode,
            "stdout": out, "killed": killed[0] if killed else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 4, 8],
                        help="K: the sample city tiled K x K (1024*K pixels a side)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cd_run_scale"))
    parser.add_argument("--max-rss-gb", type=float, default=6.0,
                        help="kill the run when its process tree passes this many GiB (default 6)")
    parser.add_argument("--cli", type=Path, default=CLI, help="the changedetect console script")
    parser.add_argument("--block-px", type=int, default=None,
                        help="run with [run] block_px = N (a scene larger than N px a side is detected and "
                             "vectorised block by block); default: the library's (4096)")
    parser.add_argument("--hold-gib", type=float, default=None,
                        help="run with [run] hold_gib = G (a co-registered stack larger than G GiB is written "
                             "to scratch files and read back window by window); default: the library's (2)")
    args = parser.parse_args(argv)

    import rasterio

    with rasterio.open(next(SAMPLE.glob("district12_*.tif"))) as src:
        res_m, utm = float(src.res[0]), src.crs
    rows = []
    print(f"load average {os.getloadavg()}", flush=True)
    for k in args.sizes:
        folder = args.workdir / f"k{k}"
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        tiles = build_tiles(k, folder)
        register = build_register(k, folder, res_m, utm)
        print(f"K={k}: inputs ready in {time.perf_counter() - t0:.1f} s ({tiles}, {register})", flush=True)
        cmd = [str(args.cli), "-v", "run", str(tiles), "--permits", str(register), "--out", str(folder / "out"),
               "--overwrite", "--json"]
        keys = {"block_px": args.block_px, "hold_gib": args.hold_gib}
        if any(v is not None for v in keys.values()):
            config = folder / ("run_" + "_".join(f"{k}{v}" for k, v in keys.items() if v is not None) + ".toml")
            config.write_text("[run]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items() if v is not None),
                              encoding="utf-8")
            cmd += ["--config", str(config)]
        load0 = os.getloadavg()[0]
        res = measure(cmd, args.max_rss_gb * 2**30, folder / "run.stderr.log")
        load1 = os.getloadavg()[0]
        row: dict[str, Any] = {"k": k, "mpx": (SIDE * k) ** 2 / 1e6, "wall_s": res["wall_s"],
                               "peak_mib": res["peak_rss"] / 2**20, "maxrss_mib": res["maxrss"] / 2**20,
                               "rc": res["rc"], "killed": res["killed"], "load": (load0, load1)}
        try:
            summary = json.loads(res["stdout"])
            row.update(footprints=summary["n_footprints"], violations=summary["n_violations"],
                       timings=summary.get("timings_s", {}))
        except (json.JSONDecodeError, KeyError):
            row.update(footprints=None, violations=None, timings={})
        rows.append(row)
        print(json.dumps(row, default=str), flush=True)
        if res["rc"] != 0:
            print(f"K={k}: exit {res['rc']} {res['killed'] or ''}; stderr in {folder / 'run.stderr.log'}",
                  file=sys.stderr, flush=True)

    print()
    print("| K | side px | Mpx per date | wall s | peak RSS MiB (tree, sampled) | ru_maxrss MiB | footprints "
          "| violations | violations per copy | stage seconds | load 1-min start/end |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        per = "" if r["violations"] is None else f"{r['violations'] / r['k'] ** 2:.2f}"
        stages = ", ".join(f"{s} {v:.0f}" for s, v in r["timings"].items())
        status = "" if r["rc"] == 0 else f" (exit {r['rc']}{'; ' + r['killed'] if r['killed'] else ''})"
        print(f"| {r['k']} | {SIDE * r['k']} | {r['mpx']:.1f} | {r['wall_s']:.1f}{status} | {r['peak_mib']:.0f} "
              f"| {r['maxrss_mib']:.0f} | {r['footprints']} | {r['violations']} | {per} | {stages} "
              f"| {r['load'][0]:.2f} / {r['load'][1]:.2f} |")
    return 0 if all(r["rc"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
