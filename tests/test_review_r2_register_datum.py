"""The register's datum check refuses only what PROJ would place far off (review round 2).

EPSG leaves several geocentric datums without a transformation to WGS 84 (PROJ offers a "ballpark"
one only, or one whose grid is not installed): China's CGCS2000, NAD83(CSRS) version 4, the ITRF and
SIRGAS realisations.  They lie within metres of WGS 84, as the ballpark places them; a city register
in one of them is not "on a datum PROJ cannot take" to the footprints'.  VN-2000 whose .prj lost its
+towgs84 (an unregistered datum on the WGS 84 ellipsoid) is still refused
(tests/test_review_register_crs.py).
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import box

from changedetect.io._datum import datum_shift_unknown
from changedetect.match import match
from changedetect.permits import map_columns, validate_register


def _pair(utm: str, x0: float, y0: float, crs: str) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """A footprint in ``utm`` and its permit drawn in the register's ``crs``."""
    fp = gpd.GeoDataFrame({"footprint_id": ["F-1"], "first_seen": ["2024-07-12"], "change_type": ["new"]},
                          geometry=[box(x0, y0, x0 + 10, y0 + 8)], crs=utm)
    to = Transformer.from_crs(utm, crs, always_xy=True)
    geom = shapely.transform(box(x0, y0, x0 + 10, y0 + 8),
                             lambda xy: np.column_stack(to.transform(xy[:, 0], xy[:, 1])))
    register = gpd.GeoDataFrame({
        "permit_id": ["P-1"], "permit_type": ["new_construction"], "issued_on": ["2024-01-02"],
        "valid_until": ["2025-01-02"], "permitted_area_m2": [80.0], "status": ["active"]},
        geometry=[geom], crs=crs)
    return fp, validate_register(map_columns(register)).permits


@pytest.mark.parametrize(("utm", "x0", "y0", "crs"), [
    ("EPSG:32650", 380_000.0, 2_500_000.0, "EPSG:4547"),  # CGCS2000 / 3-degree Gauss-Kruger CM 114E (Shenzhen)
    ("EPSG:32617", 630_000.0, 4_830_000.0, "EPSG:8246"),  # NAD83(CSRS)v4 (Toronto), its transformations grids
])
def test_a_register_on_a_geocentric_datum_without_an_epsg_transformation_is_matched(
        utm: str, x0: float, y0: float, crs: str) -> None:
    """Before: GeoreferenceError ('no transformation PROJ knows'), a Chinese or Canadian city refused."""
    fp, permits = _pair(utm, x0, y0, crs)
    assert match(fp, permits)["status"].tolist() == ["permitted"]


def test_an_unregistered_datum_on_the_wgs84_ellipsoid_is_still_refused() -> None:
    assert datum_shift_unknown("+proj=utm +zone=48 +ellps=WGS84 +units=m +no_defs", "EPSG:32648")


def test_the_check_does_not_print_projs_missing_grid_warning() -> None:
    """OSGB36 has a Helmert transformation; PROJ's 'Best transformation is not available due to missing
    Grid' was printed on every match of a British register (before)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not datum_shift_unknown("EPSG:27700", "EPSG:32630")
