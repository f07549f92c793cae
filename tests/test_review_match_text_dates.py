"""Footprint dates read back as text (a GeoJSON or CSV another tool wrote, an older run's file):
an ISO timestamp with a UTC offset is its local day, as a timezone-aware column is, without
numpy's timezone warning; a before_date of numbers is refused as first_seen's is."""

from __future__ import annotations

import warnings

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box

from changedetect.errors import ConfigError
from changedetect.match import match

CRS = "EPSG:32648"


def _footprints(**dates: list) -> gpd.GeoDataFrame:
    data = {"footprint_id": ["F1"], "change_type": ["new"], "prob_mean": [0.9], **dates}
    return gpd.GeoDataFrame(data, geometry=[box(0, 0, 10, 10)], crs=CRS)


def _permit(issued_on: str, valid_until: str) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"permit_id": ["P1"], "permit_type": ["new_construction"], "issued_on": [issued_on],
                             "valid_until": [valid_until], "permitted_area_m2": [100.0], "status": ["active"]},
                            geometry=[box(0, 0, 10, 10)], crs=CRS)


@pytest.mark.parametrize(("dates", "permit", "status"), [
    # not built on its local day 2024-03-01, the permit's last day: built after it ran out
    ({"first_seen": ["2024-07-12"], "before_date": ["2024-03-01T00:30:00+02:00"]}, ("2023-01-10", "2024-03-01"),
     "permit_expired"),
    # first seen on its local day 2024-03-01, the day the permit was issued: not before it
    ({"first_seen": ["2024-03-01T00:30:00+02:00"]}, ("2024-03-01", "2025-01-01"), "permitted"),
    # two offsets in one column
    ({"first_seen": ["2024-07-12T23:30:00-05:00"], "before_date": ["2024-03-01T00:30:00+02:00"]},
     ("2023-01-10", "2024-03-01"), "permit_expired"),
])
def test_a_text_timestamp_with_an_offset_is_its_local_day(dates: dict, permit: tuple[str, str], status: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # numpy's 'no explicit representation of timezones'
        got = match(_footprints(**dates), _permit(*permit))
    assert list(got["status"]) == [status], got["reason"].tolist()


def test_a_numeric_before_date_is_refused() -> None:
    with pytest.raises(ConfigError, match="before_date holds numbers"):
        match(_footprints(first_seen=[pd.Timestamp("2024-07-12")], before_date=[20240301]),
              _permit("2023-01-10", "2024-03-01"))
