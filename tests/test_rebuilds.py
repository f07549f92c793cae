"""A building put up on a lot demolished earlier in the series gets a footprint of its own."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from affine import Affine
from shapely.geometry import box

from changedetect._pipeline_steps import with_rebuilds
from changedetect._rebuilds import RebuildCheck, rebuilds
from changedetect.vectorize import VectorizeConfig, vectorize

X0, Y0, RES = 686_000.0, 1_192_000.0, 0.5
TIMES = np.array(["2024-01-15", "2024-07-12", "2025-01-20"], dtype="datetime64[ns]")
LOT = (slice(10, 30), slice(10, 30))  # 20 x 20 px, 100 m²


def raster(values: np.ndarray) -> xr.DataArray:
    h, w = values.shape
    da = xr.DataArray(values.astype(np.float32), dims=("y", "x"),
                      coords={"y": Y0 - RES * (np.arange(h) + 0.5), "x": X0 + RES * (np.arange(w) + 0.5)})
    return da.rio.write_crs("EPSG:32648").rio.write_transform(Affine(RES, 0, X0, 0, -RES, Y0))


class Dates:
    """A stand-in for DatePresence: the segmenter's building probability of each date."""

    def __init__(self, *levels: float) -> None:
        self.levels = levels

    def raster(self, t: int) -> xr.DataArray:
        a = np.full((48, 48), 0.05, np.float32)
        a[LOT] = self.levels[t]
        return raster(a)


def events(p01: float, p12: float, p02: float) -> list[tuple[int, int, xr.DataArray]]:
    out = []
    for (i, j), level in (((0, 1), p01), ((1, 2), p12), ((0, 2), p02)):
        a = np.zeros((48, 48), np.float32)
        a[LOT] = level
        out.append((i, j, raster(a)))
    return out


def test_a_demolition_then_a_new_house_on_its_lot_is_a_second_event() -> None:
    found = rebuilds(events(0.9, 0.8, 0.9), TIMES, 0.5, Dates(0.9, 0.1, 0.9), pixel_m2=0.25)
    assert found is not None
    prob, seen = found
    assert float(prob.values[20, 20]) == pytest.approx(0.8)  # the second pair's probability
    assert (seen.values[LOT] == TIMES[2]).all() and np.isnat(seen.values[:10]).all()
    assert float(prob.values[:10].max()) == 0.0 and prob.attrs["event"] == "rebuilt"
    # traced, it is one new 100 m² footprint dated 2025-01-20
    fp = vectorize(prob, first_seen=seen, config=VectorizeConfig(regularize=False))
    assert len(fp) == 1 and fp["area_m2"].iloc[0] == pytest.approx(100.0)
    assert str(fp["first_seen"].iloc[0])[:10] == "2025-01-20"


def test_what_is_not_a_rebuild() -> None:
    # a winter shadow read as a roof, gone in July and back in January: the same shadow on both
    # Januaries, so the spanning pair sees nothing
    assert rebuilds(events(0.9, 0.8, 0.0), TIMES, 0.5, Dates(0.9, 0.1, 0.9), pixel_m2=0.25) is None
    # a structure put up and then taken down (came, went): not a rebuild
    assert rebuilds(events(0.9, 0.8, 0.9), TIMES, 0.5, Dates(0.1, 0.9, 0.1), pixel_m2=0.25) is None
    # one event only
    assert rebuilds(events(0.9, 0.1, 0.9), TIMES, 0.5, Dates(0.9, 0.1, 0.9), pixel_m2=0.25) is None
    # the segmenter unsure of the new house (0.45 < 0.5)
    assert rebuilds(events(0.9, 0.8, 0.9), TIMES, 0.5, Dates(0.9, 0.1, 0.45), pixel_m2=0.25) is None
    # too small
    small = RebuildCheck(min_area_m2=150)
    assert rebuilds(events(0.9, 0.8, 0.9), TIMES, 0.5, Dates(0.9, 0.1, 0.9), pixel_m2=0.25, check=small) is None
    # a house of the second event whose fringe the first pair also touched: most of the change
    # around it was first seen on the second event, so no lot was demolished earlier
    fringe = events(0.9, 0.8, 0.9)
    fringe[0][2].values[15:30, 10:30] = 0.0  # the first pair touched rows 10-14 of the lot only
    assert rebuilds(fringe, TIMES, 0.5, Dates(0.9, 0.1, 0.9), pixel_m2=0.25) is None
    fringe[0][2].values[10:26, 10:30] = 0.9  # ... 16 of its 20 rows: a lot demolished earlier
    assert rebuilds(fringe, TIMES, 0.5, Dates(0.9, 0.1, 0.9), pixel_m2=0.25) is not None
    # two dates: no second event
    assert rebuilds(events(0.9, 0.8, 0.9)[:1], TIMES, 0.5, Dates(0.9, 0.1, 0.9), pixel_m2=0.25) is None


def test_with_rebuilds_adds_new_footprints_with_their_own_ids() -> None:
    prob, seen = rebuilds(events(0.9, 0.8, 0.9), TIMES, 0.5, Dates(0.9, 0.1, 0.9), pixel_m2=0.25)
    first = raster(np.where(np.isfinite(prob.values) & (prob.values > 0), 0.9, 0.0))
    lot = vectorize(first, config=VectorizeConfig(regularize=False))
    lot["change_type"] = "altered"  # a building on the first and on the last date: left so
    both = with_rebuilds(lot, (prob, seen), None, VectorizeConfig(regularize=False))
    assert len(both) == 2 and sorted(both["change_type"]) == ["altered", "new"]
    ids = list(both["footprint_id"])
    assert len(set(ids)) == 2 and ids[1] == ids[0] + "-2"  # the same centroid cell: a suffix
    assert both.attrs["rebuilds"] == 1
    assert both.attrs["rebuild_ids"] == list(both.loc[both["change_type"] == "new", "footprint_id"])  # what a block keeps
    # a previous run's footprints: the rebuild carries the id of the previous new house, never
    # the demolition's
    previous = gpd.GeoDataFrame({"footprint_id": ["F-old-demolition", "F-old-house"],
                                 "change_type": ["demolished", "new"]},
                                geometry=[box(X0 + 5, Y0 - 15, X0 + 15, Y0 - 5)] * 2, crs="EPSG:32648")
    again = with_rebuilds(lot, (prob, seen), previous, VectorizeConfig(regularize=False))
    assert again.loc[again["change_type"] == "new", "footprint_id"].tolist() == ["F-old-house"]
    # ... unless this run already gave that id to the lot: never two rows with one id
    taken = with_rebuilds(lot.assign(footprint_id="F-old-house"), (prob, seen), previous,
                          VectorizeConfig(regularize=False))
    assert taken["footprint_id"].nunique() == 2
    # nothing to add
    empty = raster(np.zeros((48, 48)))
    assert with_rebuilds(lot, (empty, seen), None, VectorizeConfig()) is lot
