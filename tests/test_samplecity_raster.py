"""The generator's own polygon burner gives rasterio's pixels (rasterio.features.rasterize)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from affine import Affine
from rasterio.features import rasterize
from shapely import affinity

from changedetect.samplecity.raster import burn

GRID = Affine(0.25, 0.0, -6.0, 0.0, 0.25, -6.0)  # the generator's fine grid: north-down, 0.25 m
SHAPE = (96, 112)


def _rasterio(shapes: list[tuple[shapely.Geometry, int]], transform: Affine = GRID) -> np.ndarray:
    return rasterize(shapes, out_shape=SHAPE, transform=transform, fill=0, dtype="int32")


def _random_shapes(seed: int) -> list[tuple[shapely.Geometry, int]]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(12):
        cx, cy = rng.uniform(-8, 24, 2)
        box = shapely.box(cx - rng.uniform(0.2, 6), cy - rng.uniform(0.2, 5), cx + rng.uniform(0.2, 6),
                          cy + rng.uniform(0.2, 5))
        geom = affinity.rotate(box, float(rng.uniform(0, 180)), origin="centroid")
        if k % 4 == 0:  # a courtyard
            geom = geom.difference(geom.centroid.buffer(float(rng.uniform(0.3, 1.5))))
        if k % 5 == 0:  # two parts
            geom = shapely.union(geom, affinity.translate(geom, 9.0, -3.0))
        out.append((geom, k + 1))
    return out


@pytest.mark.parametrize("seed", range(8))
def test_burn_equals_rasterio_on_rotated_roofs_with_holes_and_parts(seed: int) -> None:
    shapes = _random_shapes(seed)
    got = burn(shapes, SHAPE, GRID, fill=0, dtype="int32")
    assert np.array_equal(got, _rasterio(shapes))
    assert len(np.unique(got)) > 3  # the shapes really cover the grid, later ones over earlier ones


def test_burn_equals_rasterio_on_the_real_grid_orientation_and_off_grid_shapes() -> None:
    utm = Affine(0.5, 0.0, 686000.0, 0.0, -0.5, 1198000.0)  # north-up UTM, as the written tiles
    shapes = [(shapely.box(685990.0, 1197960.0, 686030.0, 1197990.0), 1),  # crosses the west edge
              (shapely.Polygon([(686010.2, 1197985.3), (686040.7, 1197979.9), (686020.1, 1197950.4)]), 2),
              (shapely.box(686100.0, 1198100.0, 686110.0, 1198110.0), 3),  # wholly outside
              (shapely.box(686004.25, 1197970.1, 686010.25, 1197980.1), 4)]  # west, east edges on centres
    got = burn(shapes, SHAPE, utm, dtype="int32")
    assert np.array_equal(got, _rasterio(shapes, utm))
    assert set(np.unique(got)) == {0, 1, 2, 4}


def test_burn_keeps_fill_and_dtype_and_skips_empty_shapes() -> None:
    got = burn([(shapely.Polygon(), 5)], (4, 5), GRID, fill=7, dtype="uint8")
    assert got.dtype == np.uint8 and got.shape == (4, 5) and (got == 7).all()
