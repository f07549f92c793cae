"""The metadata records of a series: one band on disk, one date (private; re-exported by :mod:`changedetect.io`)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

from changedetect.types import Grid


@dataclass(frozen=True)
class BandInfo:
    """One band as stored on disk.

    ``resolution`` is the ground size of a pixel in metres (side of the square
    of equal area, measured at the scene centre; NaN without a CRS),
    ``resolution_xy`` the x and y sizes in metres, ``nominal_resolution`` the
    sensor's nominal GSD for Sentinel-2 band names (10, 20 or 60 m) and Landsat band files (30 m,
    the panchromatic band 15 m).
    """

    name: str
    resolution: float
    grid: Grid
    dtype: str
    nodata: float | None
    resolution_xy: tuple[float, float] = (math.nan, math.nan)
    nominal_resolution: float | None = None


@dataclass(frozen=True)
class BandSource:
    """Where one band of one date lives: file and 1-based band index."""

    info: BandInfo
    path: Path
    index: int


@dataclass(frozen=True)
class Scene:
    """One date of a series and its bands, in band order; ``scl``: its Sentinel-2 L2A scene
    classification (a file beside the bands or a band named SCL), the date's cloud mask, never a band."""

    date: dt.date
    bands: tuple[BandSource, ...]
    scl: BandSource | None = None

    @property
    def files(self) -> list[Path]:
        """The distinct files of this date, in band order (its SCL's last)."""
        return list(dict.fromkeys([*(b.path for b in self.bands), *([self.scl.path] if self.scl else [])]))

    @property
    def grid(self) -> Grid:
        """The finest band grid of this date (north-up: a rotated or south-up file's is
        :func:`~changedetect.io.geo.north_up`'s grid over its footprint)."""
        from changedetect.io.geo import north_up

        return min(
            (north_up(b.info.grid) for b in self.bands), key=lambda g: g.resolution[0] * g.resolution[1]
        )


__all__ = ["BandInfo", "BandSource", "Scene"]
