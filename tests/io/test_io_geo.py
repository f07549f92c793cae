"""changedetect.io.geo: a pixel's ground area and metres per CRS unit (ground_pixel), and
geometries measured in ground metres whatever their CRS (in_metres)."""

from __future__ import annotations

import math

import geopandas as gpd
import pytest
from affine import Affine
from pyproj import CRS, Transformer
from shapely.geometry import box

from changedetect.io.geo import ground_pixel, in_metres
from changedetect.types import Grid

LAT40 = math.cos(math.radians(40.0))


def _mercator(lon: float, lat: float) -> tuple[float, float]:
    return Transformer.from_crs(4326, 3857, always_xy=True).transform(lon, lat)


def test_ground_pixel_in_utm_is_the_nominal_pixel() -> None:
    grid = Grid(CRS.from_epsg(32648), Affine(0.5, 0, 683_000, 0, -0.5, 1_203_000), 100, 100)
    area, unit = ground_pixel(grid)
    assert area == pytest.approx(0.25, rel=1e-9) and unit == pytest.approx(1.0, rel=1e-9)


def test_ground_pixel_measures_web_mercator_feet_and_degrees_on_the_ellipsoid() -> None:
    x, y = _mercator(-105.0, 40.0)
    area, unit = ground_pixel(Grid(CRS.from_epsg(3857), Affine(1, 0, x, 0, -1, y), 10, 10))
    assert area == pytest.approx(LAT40**2, rel=0.01) and unit == pytest.approx(LAT40, rel=0.01)
    feet = Grid(CRS.from_epsg(2263), Affine(1, 0, 990_000, 0, -1, 200_000), 10, 10)  # NY Long Island, US ft
    area, unit = ground_pixel(feet)
    assert area == pytest.approx(0.3048**2, rel=0.01) and unit == pytest.approx(0.3048, rel=0.01)
    deg = 1e-5
    area, unit = ground_pixel(Grid(CRS.from_epsg(4326), Affine(deg, 0, 106.7, 0, -deg, 10.9), 10, 10))
    # about 1.09 m (x) by 1.11 m (y) at 10.9 N
    assert area == pytest.approx(111_320 * math.cos(math.radians(10.9)) * deg * 110_600 * deg, rel=0.01)
    assert unit == pytest.approx(math.sqrt(area) / deg, rel=1e-9)


def test_ground_pixel_without_a_crs_takes_the_units_as_metres() -> None:
    assert ground_pixel(Grid(None, Affine(2, 0, 0, 0, -3, 0), 5, 5)) == (6.0, 1.0)


def test_in_metres_keeps_a_true_metre_crs_and_reprojects_the_others() -> None:
    utm = gpd.GeoDataFrame(geometry=[box(683_000, 1_203_000, 683_010, 1_203_020)], crs=32648)
    kept = in_metres(utm)
    assert kept.crs == utm.crs and kept.area.iloc[0] == pytest.approx(200.0)
    assert in_metres(utm.geometry).equals(utm.geometry)  # a GeoSeries too
    bare = gpd.GeoSeries([box(0, 0, 2, 3)])
    assert in_metres(bare).area.iloc[0] == 6.0
    x, y = _mercator(-105.0, 40.0)
    merc = gpd.GeoDataFrame(geometry=[box(x, y, x + 100, y + 100)], crs=3857)  # 100 x 100 Mercator units
    # with ground_pixel's unit, and by default (measured at the frame's centre): 76.6 m x 76.6 m, not 100 x 100
    for unit in ({"unit_m": ground_pixel(Grid(merc.crs, Affine(1, 0, x, 0, -1, y), 1, 1))[1]}, {}):
        metric = in_metres(merc, **unit)
        assert metric.crs.utm_zone is not None and metric.area.iloc[0] == pytest.approx(1e4 * LAT40**2, rel=0.01)
    feet = gpd.GeoDataFrame(geometry=[box(990_000, 200_000, 990_100, 200_100)], crs=2263)
    assert in_metres(feet).area.iloc[0] == pytest.approx(1e4 * 0.3048**2, rel=0.01)
    geographic = gpd.GeoDataFrame(geometry=[box(106.7, 10.9, 106.7001, 10.9001)], crs=4326)
    assert in_metres(geographic).area.iloc[0] == pytest.approx(
        111_320 * math.cos(math.radians(10.9)) * 1e-4 * 110_600 * 1e-4, rel=0.01)
