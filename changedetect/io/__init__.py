"""Reading and writing tiles: the only package (with :mod:`changedetect.pipeline`) that opens files.

Reading::

    series = open_series("sample_tiles")     # metadata only: dates, bands, grids, CRS
    stack = series.to_stack()                # lazy (time, band, y, x) float32 TileStack
    stack = open_stack("../shared/data/oscd/images/paris", resampling="bilinear")

Writing::

    write_cog(probability, "out/change.tif")            # float32 Cloud-Optimized GeoTIFF, atomic
    write_cog(mask, "out/mask.tif", dtype="uint8", nodata=255)

Vectors are written by :func:`changedetect.io.vectors.write_vector`.  A co-registered stack too
large to hold in memory is computed once into scratch GeoTIFFs and read back window by window by
:func:`changedetect.io.spill.spill_stack` (as ``changedetect run`` does above ``[run] hold_gib``).
"""

from __future__ import annotations

from typing import Any

from changedetect.io.atomic import atomic_path
from changedetect.io.raster import write_cog
from changedetect.io.series import (
    BandInfo,
    BandSource,
    Scene,
    SeriesSource,
    open_series,
    open_stack,
)
from changedetect.io.summary import describe

_LAZY = {"write_vector": "changedetect.io.vectors", "spill_stack": "changedetect.io.spill"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'changedetect.io' has no attribute {name!r}")


__all__ = [
    "BandInfo",
    "BandSource",
    "Scene",
    "SeriesSource",
    "atomic_path",
    "describe",
    "open_series",
    "open_stack",
    "spill_stack",
    "write_cog",
    "write_vector",
]
