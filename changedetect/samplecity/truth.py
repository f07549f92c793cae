"""Ground truth of the sample city: building masks, change masks and changed footprints.

All on the reference (true) grid, EPSG:32648, 0.5 m.  A change mask for the
pair ``(a, b)`` is the union of the changed parts (new buildings, added parts of
extensions, demolished buildings) of every change first seen after ``a`` and no
later than ``b``; nuisance changes (trees, cars, shadows, seasons) are not in it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely

from changedetect.samplecity.changes import Change, DateState
from changedetect.samplecity.raster import burn
from changedetect.samplecity.spec import IMAGE_EPSG, CityConfig

if TYPE_CHECKING:  # geopandas only for footprints(): rendering needs no geopandas
    import geopandas as gpd

#: Bits of a nuisance mask (changes that are not construction).
NUISANCE_BITS = {"vegetation": 1, "vehicle": 2, "shadow": 4, "debris": 8}

FOOTPRINT_COLUMNS = ["structure_id", "change_type", "first_seen", "before_date", "area_m2", "height_m", "whole_area_m2", "note", "geometry"]


def _burn(config: CityConfig, geoms: list[shapely.Geometry]) -> np.ndarray:
    if not geoms:
        return np.zeros((config.size, config.size), np.uint8)
    shapes = [(shapely.set_precision(config.to_utm(g), 0.001), 1) for g in geoms]
    return burn(shapes, (config.size, config.size), config.transform, fill=0, dtype="uint8")


def building_mask(config: CityConfig, state: DateState) -> np.ndarray:
    """1 where a building stands on this date, else 0 (uint8, reference grid)."""
    return _burn(config, [b.polygon for b in state.buildings])


def change_mask(config: CityConfig, changes: list[Change], a: int, b: int) -> np.ndarray:
    """1 on the changed parts of every change first seen in dates ``a+1 .. b`` (uint8)."""
    return _burn(config, [c.part for c in changes if a < c.date_index <= b])


def to_reference(fine: np.ndarray, config: CityConfig) -> np.ndarray:
    """A fine-grid mask reduced to the reference grid: True where any fine pixel is."""
    os_, m, n = config.oversample, config.margin * config.oversample, config.size
    return np.asarray(fine[m : m + n * os_, m : m + n * os_].reshape(n, os_, n, os_).any(axis=(1, 3)))


def debris_code(config: CityConfig, state: DateState) -> np.ndarray:
    """1 where rubble lies, 2 where a demolished site is cleared, 0 elsewhere (reference grid)."""
    out = np.zeros((config.size, config.size), np.uint8)
    for code, kind in ((1, "rubble"), (2, "cleared")):
        out[_burn(config, [g for g, k in state.debris if k == kind]) > 0] = code
    return out


def nuisance_mask(
    config: CityConfig, a: dict[str, np.ndarray], b: dict[str, np.ndarray], change: np.ndarray
) -> np.ndarray:
    """Bit flags (:data:`NUISANCE_BITS`) of what differs between two dates without construction.

    ``a`` and ``b`` hold the reference-grid masks ``canopy``, ``vehicle``, ``shadow`` and
    ``debris`` of each date; pixels of the construction ``change`` mask are 0.
    """
    out = np.zeros((config.size, config.size), np.uint8)
    out |= np.where(a["canopy"] != b["canopy"], NUISANCE_BITS["vegetation"], 0).astype(np.uint8)
    out |= np.where(a["vehicle"] | b["vehicle"], NUISANCE_BITS["vehicle"], 0).astype(np.uint8)
    out |= np.where(a["shadow"] != b["shadow"], NUISANCE_BITS["shadow"], 0).astype(np.uint8)
    moved = (a["debris"] > 0) & (b["debris"] > 0) & (a["debris"] != b["debris"])
    out |= np.where(moved, NUISANCE_BITS["debris"], 0).astype(np.uint8)
    out[change > 0] = 0
    return out


def footprints(config: CityConfig, changes: list[Change], *, whole: bool = False) -> gpd.GeoDataFrame:
    """One row per changed structure; geometry = the changed part, or the whole structure."""
    dates = [a.date for a in config.acquisitions]
    rows = []
    for c in changes:
        geom = config.to_utm(c.whole if whole else c.part)
        rows.append(
            {
                "structure_id": c.sid,
                "change_type": c.change_type,
                "first_seen": dates[c.date_index].isoformat(),
                "before_date": dates[c.date_index - 1].isoformat(),
                "area_m2": round(float(c.part.area), 2),
                "height_m": round(float(c.height), 2),
                "whole_area_m2": round(float(c.whole.area), 2),
                "note": c.note,
                "geometry": shapely.set_precision(geom, 0.001),
            }
        )
    import geopandas as gpd

    frame = pd.DataFrame(rows, columns=FOOTPRINT_COLUMNS)
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=f"EPSG:{IMAGE_EPSG}")


def summary(changes: list[Change], config: CityConfig) -> dict[str, dict[str, int]]:
    """Counts of change types per date pair (for the manifest and the log)."""
    dates = [a.tag for a in config.acquisitions]
    out: dict[str, dict[str, int]] = {}
    for k in range(1, len(dates)):
        key = f"{dates[k - 1]}_{dates[k]}"
        out[key] = {t: sum(1 for c in changes if c.date_index == k and c.change_type == t) for t in ("new", "extension", "demolition")}
    return out
