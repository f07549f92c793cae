"""GDAL's raster block cache, capped while changedetect reads or writes a large raster (private).

GDAL keeps one block cache per process (``GDALSetCacheMax64``; by default 5 % of the RAM).  Writing or
streaming a scene window by window, the cache holds the blocks of the windows around the one being
worked on; left at its default it grows with the scene up to gigabytes, so changedetect caps it at
:data:`CAP_BYTES` (32 MiB: a row of 512 px float32 tiles across a 16384 px scene) while it works (:func:`capped`).

Why not ``rasterio.Env(GDAL_CACHEMAX=256)``, as this code did before: rasterio sets the cache with
``GDALSetCacheMax64`` in *bytes*, so ``256`` gave a cache of 256 bytes (no cache at all: every
overlapping window decoded its tiles again); and two such ``Env`` entered in two threads (a nightly
job's pairs run at once) restored each other's values out of order and left the whole process with
that 256-byte cache once both had left: every later read of the process ran without a cache (a
1200 px read took 13 s instead of 0.01 s).  :func:`capped` counts who is inside: the first to enter
lowers the cache (never raises it: a smaller cache the user set stays), the last to leave puts back
what it found, whatever the threads' order.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: The block cache while changedetect writes or streams a raster, in bytes.
CAP_BYTES = 32 * 2**20

_lock = threading.Lock()
_inside = 0
_found: int | None = None  # the cache size the first one in found, put back by the last one out


def _get() -> int:
    from rasterio.env import get_gdal_config

    return int(get_gdal_config("GDAL_CACHEMAX"))


def _set(value: int) -> None:
    from rasterio.env import set_gdal_config

    set_gdal_config("GDAL_CACHEMAX", int(value))


@contextmanager
def capped(cap: int = CAP_BYTES) -> Iterator[None]:
    """GDAL's block cache at most ``cap`` bytes inside the block, for every thread of the process; what
    it was is back when the last thread inside leaves (thread-safe, re-entrant)."""
    global _inside, _found
    with _lock:
        if _inside == 0:
            _found = _get()
            if _found > cap:
                _set(cap)
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0 and _found is not None:
                if _get() != _found:
                    _set(_found)
                _found = None


__all__ = ["CAP_BYTES", "capped"]
