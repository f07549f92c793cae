"""A permit that ran out between the last image without a structure and the first with it may
have covered the work: ``permit_expired`` only when the change came after the expiry
(``before_date``, which ``run`` writes, on or after ``valid_until``)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from shapely.geometry import box

from changedetect._pipeline_steps import fill_first_seen
from changedetect.match import match

CRS = "EPSG:32648"


def _footprints(before_date: str | None) -> gpd.GeoDataFrame:
    data = {"footprint_id": ["F1"], "first_seen": [pd.Timestamp("2024-07-12")], "change_type": ["new"],
            "prob_mean": [0.9]}
    if before_date is not None:
        data["before_date"] = [pd.Timestamp(before_date)]
    return gpd.GeoDataFrame(data, geometry=[box(0, 0, 10, 10)], crs=CRS)


def _permit(valid_until: str) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"permit_id": ["P1"], "permit_type": ["new_construction"], "issued_on": ["2023-01-10"],
                             "valid_until": [valid_until], "permitted_area_m2": [100.0], "status": ["active"]},
                            geometry=[box(0, 0, 10, 10)], crs=CRS)


@pytest.mark.parametrize(("before_date", "valid_until", "status"), [
    ("2024-01-15", "2024-03-01", "permitted"),       # ran out between the two images: may have been in time
    ("2024-01-15", "2024-01-15", "permit_expired"),  # ran out on the last day without it: built after
    ("2024-01-15", "2023-12-01", "permit_expired"),  # ran out before the last image without it
    (None, "2024-03-01", "permit_expired"),          # no before_date (vectorize's own footprints): as before
    ("2024-01-15", "2024-09-01", "permitted"),       # valid at first_seen
    ("2024-07-12", "2024-09-01", "permitted"),       # a before_date not before first_seen is ignored
    ("2024-08-01", "2024-07-20", "permitted"),       # ... the rule falls back to first_seen (valid then)
])
def test_expired_only_when_the_change_came_after_the_expiry(before_date: str | None, valid_until: str,
                                                            status: str) -> None:
    got = match(_footprints(before_date), _permit(valid_until))
    assert list(got["status"]) == [status]
    in_time = "expired between 2024-01-15 (not built) and 2024-07-12 (built)" in got["reason"].iloc[0]
    assert in_time == (before_date is not None and valid_until == "2024-03-01")


def test_before_date_is_the_last_date_before_first_seen() -> None:
    times = pd.to_datetime(["2024-01-15", "2024-07-12", "2025-01-20"])
    aligned = xr.DataArray(np.zeros((3, 1, 2, 2), np.float32), dims=("time", "band", "y", "x"),
                           coords={"time": times.values})
    fp = gpd.GeoDataFrame({"footprint_id": ["a", "b", "c"],
                           "first_seen": pd.to_datetime(["2024-07-12", "2025-01-20", None])},
                          geometry=[box(0, 0, 1, 1)] * 3, crs=CRS)
    out = fill_first_seen(fp, aligned)
    assert list(out.columns[:3]) == ["footprint_id", "first_seen", "before_date"]
    assert [d.date().isoformat() for d in out["before_date"]] == ["2024-01-15", "2024-07-12", "2024-07-12"]
    assert out["first_seen"].iloc[2] == pd.Timestamp("2025-01-20")  # a pair's footprint: the after date
    early = fill_first_seen(fp.assign(first_seen=pd.to_datetime(["2024-01-15"] * 3)), aligned)
    assert early["before_date"].isna().all()  # first seen on the first date: nothing earlier


def test_before_date_with_explicit_pairs_is_a_compared_date() -> None:
    """Pairs that skip a date (the nightly job's, or ``run``'s explicit ones): the last image
    without the change is the BEFORE date of a pair that ends on its first_seen, never a date
    between that no pair compared."""
    times = pd.to_datetime(["2024-01-15", "2024-07-12", "2025-01-20"])
    aligned = xr.DataArray(np.zeros((3, 1, 2, 2), np.float32), dims=("time", "band", "y", "x"),
                           coords={"time": times.values})
    fp = gpd.GeoDataFrame({"footprint_id": ["a", "b"], "first_seen": pd.to_datetime(["2025-01-20", "2024-07-12"])},
                          geometry=[box(0, 0, 1, 1)] * 2, crs=CRS)
    skip = fill_first_seen(fp, aligned, pairs=[(0, 2)])  # 2024-07-12 never compared
    assert skip["before_date"].iloc[0] == pd.Timestamp("2024-01-15")
    both = fill_first_seen(fp, aligned, pairs=[(0, 1), (0, 2)])
    assert [d.date().isoformat() for d in both["before_date"]] == ["2024-01-15", "2024-01-15"]
    chain = fill_first_seen(fp, aligned, pairs=[(0, 1), (1, 2), (0, 2)])  # the latest pair before it
    assert [d.date().isoformat() for d in chain["before_date"]] == ["2024-07-12", "2024-01-15"]
    # a first_seen no pair ends on (an edited value): the last COMPARED date before it
    odd = fill_first_seen(fp.assign(first_seen=pd.to_datetime(["2024-09-01", "2024-07-12"])), aligned, pairs=[(0, 2)])
    assert odd["before_date"].iloc[0] == pd.Timestamp("2024-01-15")
