"""Peak resident memory of a call, sampled from a background thread (benchmarks only)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psutil


def peak_rss(fn: Callable[[], Any], *, interval: float = 0.01) -> tuple[Any, float, float]:
    """Run ``fn``; return its result, wall seconds and peak RSS above the start, in MiB.

    RSS is sampled every ``interval`` seconds while ``fn`` runs, and once more at its end.
    """
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(interval)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    try:
        result = fn()
    finally:
        elapsed = time.perf_counter() - start
        done.set()
        thread.join()
        peak[0] = max(peak[0], proc.memory_info().rss)
    return result, elapsed, (peak[0] - base) / 2**20
