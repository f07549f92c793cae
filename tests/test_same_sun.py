"""Footprints first seen across seasons are kept only when a same-season pair sees them too."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from affine import Affine
from shapely.geometry import box

from changedetect._pipeline_steps import drop_unconfirmed
from changedetect._same_sun import unconfirmed
from changedetect.detect import DetectConfig

X0, Y0, RES = 686_000.0, 1_192_000.0, 0.5
TIMES = np.array(["2024-01-15", "2024-07-12", "2025-01-20"], dtype="datetime64[ns]")
SHADOW, HOUSE = (slice(5, 15), slice(5, 15)), (slice(25, 35), slice(25, 35))


def raster(values: np.ndarray) -> xr.DataArray:
    h, w = values.shape
    da = xr.DataArray(values.astype(np.float32), dims=("y", "x"),
                      coords={"y": Y0 - RES * (np.arange(h) + 0.5), "x": X0 + RES * (np.arange(w) + 0.5)})
    return da.rio.write_crs("EPSG:32648").rio.write_transform(Affine(RES, 0, X0, 0, -RES, Y0))


def px_box(rows: slice, cols: slice):  # noqa: ANN201
    return box(X0 + cols.start * RES, Y0 - rows.stop * RES, X0 + cols.stop * RES, Y0 - rows.start * RES)


def _events(janjan_house: float = 0.9) -> list[tuple[int, int, xr.DataArray]]:
    """January -> July flags a moved shadow and a new house; January -> January the house only."""
    p01, p12, p02 = (np.zeros((40, 40), np.float32) for _ in range(3))
    p01[SHADOW] = p01[HOUSE] = 0.9
    p02[HOUSE] = janjan_house
    return [(0, 1, raster(p01)), (1, 2, raster(p12)), (0, 2, raster(p02))]


def _footprints(seen: str = "2024-07-12") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"footprint_id": ["shadow", "house"], "first_seen": pd.to_datetime([seen, seen]),
                             "area_m2": [25.0, 25.0]},
                            geometry=[px_box(*SHADOW), px_box(*HOUSE)], crs="EPSG:32648")


def test_a_moved_shadow_is_not_seen_under_the_same_sun() -> None:
    drop = unconfirmed(_footprints(), _events(), TIMES, 0.5, 0.05, 45)
    assert drop.tolist() == [True, False]
    # a house the January pair cannot see either (in a winter shadow on both) goes too: the cost
    assert unconfirmed(_footprints(), _events(janjan_house=0.0), TIMES, 0.5, 0.05, 45).tolist() == [True, True]
    # ... but only below the share: 0.9 over a tenth of the house is enough at 0.05
    ev = _events(janjan_house=0.0)
    ev[2][2].values[25, 25:35] = 0.9
    assert unconfirmed(_footprints(), ev, TIMES, 0.5, 0.05, 45).tolist() == [True, False]


def test_what_the_rule_leaves_alone() -> None:
    # first seen on the same-season pair's date by that pair alone, or on no pair at all
    assert not unconfirmed(_footprints("2025-01-20"), _events(), TIMES, 0.5, 0.05, 45)[1]
    assert not unconfirmed(_footprints().assign(first_seen=pd.NaT), _events(), TIMES, 0.5, 0.05, 45).any()
    # no same-season pair spans January -> July: nothing to check against
    assert not unconfirmed(_footprints(), _events()[:2], TIMES, 0.5, 0.05, 45).any()
    assert not unconfirmed(_footprints().iloc[:0], _events(), TIMES, 0.5, 0.05, 45).any()


def test_drop_unconfirmed_counts_what_it_drops() -> None:
    stack = xr.DataArray(np.zeros((3, 1, 40, 40), np.float32), dims=("time", "band", "y", "x"),
                         coords={"time": TIMES})
    kept = drop_unconfirmed(_footprints(), _events(), stack, DetectConfig(), 0.5)
    assert kept["footprint_id"].tolist() == ["house"] and kept.attrs["unconfirmed_across_seasons"] == 1
    with pytest.raises(ValueError, match="same_sun_share"):
        DetectConfig(same_sun_share=0.0)
