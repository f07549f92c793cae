"""Reading the permit register from PostGIS: time and peak memory of ``load_register``.

Starts a throwaway PostgreSQL + PostGIS server (:func:`changedetect.testing_postgis.throwaway_postgis`:
initdb in a temporary folder, a free localhost port, as the ``postgres`` system user when run as
root), fills a ``permits`` table with N generated permits (``match_scale.make_data``'s 12 m x 15 m
lots in EPSG:32648, random types, dates and statuses, plus a Vietnamese address; the columns of
``permits/schema.json``) and writes the same register to a GeoPackage.  Then it measures, each in
a fresh process, ``load_register(url, table="permits")`` and ``load_register("permits.gpkg")``:
wall time, the calling thread's CPU time, and peak RSS (sampled every 5 ms) above the level
before the call.  Before the call the child has imported everything and read a 100-permit
register of the same kind once (so lazy imports, the PROJ database and psycopg's type adapters are
in the baseline), and freed heap memory has been returned to the OS with glibc's ``malloc_trim``.
The server's own memory is not counted (another process).

``--batch N`` reads the PostGIS table N rows at a time (the library's ``_postgis._BATCH``, 10 000
by default); ``--batch 0`` reads all rows in one FETCH, as the client held them before commit
9ffd8ac (libpq's whole reply and every row at once).  Several values measure each.

The load average is printed before and after; other jobs sharing the machine change wall time
more than CPU time.

Usage::

    .venv/bin/python benchmarks/postgis_read.py [--permits 100000 300000] [--repeat 3] [--batch 10000 0]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import psutil
from _memory import peak_rss  # benchmarks/ is on sys.path when run as a script
from match_scale import _release_freed_memory, make_data

STREETS = np.array(["Đường Lê Lợi", "Đường Nguyễn Huệ", "Đường Hai Bà Trưng", "Đường Điện Biên Phủ",
                    "Đường Cách Mạng Tháng Tám", "Đường Võ Văn Tần"], dtype=object)
COLUMNS_SQL = ("permit_id text, permit_type text, issued_on date, valid_until date, "
               "permitted_area_m2 double precision, address text, status text, geom geometry(Polygon, 32648)")
WARM_UP = 100


def make_register(n: int, seed: int = 0) -> gpd.GeoDataFrame:
    """``n`` permits as the register schema names them (dates as dates, an address)."""
    _, permits = make_data(0, n, seed=seed)
    k = np.arange(n)
    permits["issued_on"] = permits["issued_on"].dt.date
    permits["valid_until"] = permits["valid_until"].dt.date
    permits.insert(5, "address", np.char.add(np.char.add("Số ", (k % 300 + 1).astype(str)).astype(object),
                                             " " + STREETS[k % len(STREETS)] + ", Quận " + (k % 12 + 1).astype(str)))
    return permits


def fill_table(url: str, table: str, register: gpd.GeoDataFrame) -> None:
    """``register`` as table ``table`` (geometries as hex EWKB, by COPY), then analysed."""
    import psycopg
    import shapely
    from psycopg import sql

    ewkb = shapely.to_wkb(shapely.set_srid(np.asarray(register.geometry.values), 32648), hex=True, include_srid=True)
    cols = ["permit_id", "permit_type", "issued_on", "valid_until", "permitted_area_m2", "address", "status"]
    values = [register[c].tolist() for c in cols]
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (" + COLUMNS_SQL + ")").format(sql.Identifier(table)))
        with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(table))) as copy:
            for row in zip(*values, ewkb, strict=True):
                copy.write_row(row)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))


def _child(source: str, table: str | None, batch: int | None, warm: tuple[str, str | None], queue: Any) -> None:
    import changedetect.io._postgis as pg
    from changedetect.permits import load_register

    if batch is not None:
        pg._BATCH = batch if batch > 0 else 2**31 - 1  # 0: one FETCH of every row (FETCH's count is an int4)
    load_register(warm[0], table=warm[1])  # lazy imports, PROJ, adapters: into the baseline
    _release_freed_memory()
    base = psutil.Process().memory_info().rss
    cpu = [0.0]

    def timed() -> Any:
        start = time.thread_time()
        try:
            return load_register(source, table=table)
        finally:
            cpu[0] = time.thread_time() - start

    frame, seconds, mib = peak_rss(timed, interval=0.005)
    queue.put({"seconds": seconds, "cpu": cpu[0], "mib": mib, "base_mib": base / 2**20, "rows": len(frame)})


def measure(source: str, table: str | None, batch: int | None, warm: tuple[str, str | None]) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=_child, args=(source, table, batch, warm, queue))
    p.start()
    try:
        result: dict[str, Any] = queue.get(timeout=1800)
    finally:
        p.join()
    if p.exitcode:
        raise SystemExit(f"the measuring process failed (exit {p.exitcode}); see its traceback above")
    return result


def _load() -> str:
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Needs PostgreSQL + PostGIS (bash scripts/setup_postgis.sh) and psycopg.")
    ap.add_argument("--permits", type=int, nargs="+", default=[100_000, 300_000], help="Register sizes to measure.")
    ap.add_argument("--repeat", type=int, default=3, help="Runs of each measurement (median, min and max shown).")
    ap.add_argument("--batch", type=int, nargs="+", default=None,
                    help="Rows fetched at a time from PostGIS (default: the library's, 10000); 0: all in one FETCH.")
    args = ap.parse_args()
    if min(args.permits) < 1 or args.repeat < 1 or (args.batch and min(args.batch) < 0):
        ap.error("--permits and --repeat must be at least 1, --batch at least 0")

    from changedetect.io import _postgis
    from changedetect.testing_postgis import PostgisUnavailable, throwaway_postgis

    batches: list[int | None] = list(args.batch) if args.batch else [None]
    print(f"load_register from PostGIS vs GeoPackage: {', '.join(map(str, args.permits))} permits, "
          f"{args.repeat} runs each, alternating, {psutil.cpu_count()} CPUs, "
          f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {_load()}", flush=True)
    rows: list[tuple[str, int, list[dict[str, Any]]]] = []
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(throwaway_postgis("bench", prefix="cd-pgbench-"))
        except PostgisUnavailable as exc:
            print(f"postgis_read: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        import psycopg

        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cd-pgbench-")))
        warm_reg = make_register(WARM_UP, seed=1)
        fill_table(url, "warm", warm_reg)
        warm_reg.to_file(tmp / "warm.gpkg", layer="permits")
        for n in args.permits:
            start = time.perf_counter()
            register = make_register(n)
            fill_table(url, "permits", register)
            gpkg = tmp / f"permits_{n}.gpkg"
            register.to_file(gpkg, layer="permits")
            del register
            print(f"  {n} permits generated, in PostGIS and in {gpkg.name} "
                  f"({gpkg.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - start:.0f} s", flush=True)
            kinds: list[tuple[str, str, str | None, int | None, tuple[str, str | None]]] = [
                ("GeoPackage", str(gpkg), None, None, (str(tmp / "warm.gpkg"), None))]
            for b in batches:
                rows_at_once = b if b is not None else getattr(_postgis, "_BATCH", None)  # None: before 9ffd8ac
                what = ("PostGIS, one FETCH (as fetchall)" if rows_at_once == 0 else "PostGIS, fetchall"
                        if rows_at_once is None else f"PostGIS, {rows_at_once} rows a batch")
                kinds.append((what, url, "permits", b, (url, "warm")))
            results: dict[str, list[dict[str, Any]]] = {k[0]: [] for k in kinds}
            for _ in range(args.repeat):  # alternating, so that a change of load hits all alike
                for what, source, table, b, warm in kinds:
                    r = measure(source, table, b, warm)
                    if r["rows"] != n:
                        raise SystemExit(f"{what}: read {r['rows']} permits of {n}")
                    results[what].append(r)
            rows.extend((what, n, runs) for what, runs in results.items())
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("DROP TABLE permits")
            gpkg.unlink()
    print("\n| permits | read | median wall | runs | median CPU | peak RSS above baseline | baseline |\n"
          "|---|---|---|---|---|---|---|")
    for what, n, runs in rows:
        secs, cpu, mib, base = ([r[k] for r in runs] for k in ("seconds", "cpu", "mib", "base_mib"))
        print(f"| {n:,} | {what} | {statistics.median(secs):.2f} s | {min(secs):.2f}–{max(secs):.2f} s | "
              f"{statistics.median(cpu):.2f} s | +{statistics.median(mib):.0f} MiB "
              f"({min(mib):.0f}–{max(mib):.0f}) | {statistics.median(base):.0f} MiB |")
    print(f"\n{_load()}")


if __name__ == "__main__":
    main()
