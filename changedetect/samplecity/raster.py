"""Polygons burnt into a raster, as GDAL does by default, in numpy alone.

The generator draws every roof, road, shadow and change mask by burning polygons into a
grid.  :func:`burn` gives the same pixels as ``rasterio.features.rasterize`` with its
defaults (a pixel is burnt when its centre is inside the polygon; holes are left out; a later shape is drawn over an earlier one) by a scanline fill, so that the city can be rendered
where rasterio is not installed (the lent GPU machine renders training cities on its own
cores; ``changedetect.training.generated``).  ``python -m changedetect.samplecity --check``
compares the committed sample city byte for byte, and the tests compare it with rasterio.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import shapely
from affine import Affine


def _rings(geom: shapely.Geometry) -> Iterator[np.ndarray]:
    """Every ring (exterior and holes) of the polygons in ``geom``, as ``(n, 2)`` coordinates."""
    for part in shapely.get_parts(geom):
        if isinstance(part, shapely.Polygon):
            yield np.asarray(part.exterior.coords)
            for hole in part.interiors:
                yield np.asarray(hole.coords)
        elif isinstance(part, shapely.GeometryCollection | shapely.MultiPolygon):
            yield from _rings(part)


def _spans(geom: shapely.Geometry, inverse: Affine, height: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The runs of ``geom`` per row: ``(row, first col, end col)`` (end exclusive).

    A row is crossed by the edges whose span ``[y_low, y_high)`` holds its centre; along it the
    crossings pair up (even-odd), and a pixel is in when its centre lies in ``(x_in, x_out]``, as
    GDAL decides a centre on a vertical edge.  A centre exactly on a horizontal edge may differ
    from GDAL by that row (GDAL burnt it on a north-up grid and not on a north-down one in the
    cases tried); the generator's shapes never put one there (the sample city is byte-identical).
    """
    edges = []
    for ring in _rings(geom):
        x, y = ring[:, 0].astype(np.float64), ring[:, 1].astype(np.float64)
        cols = inverse.a * x + inverse.b * y + inverse.c  # as Affine @ (x, y) computes them
        rows = inverse.d * x + inverse.e * y + inverse.f
        edges.append(np.stack([cols[:-1], rows[:-1], cols[1:], rows[1:]], axis=1))
    if not edges:
        return None
    e = np.concatenate(edges)
    e = e[e[:, 1] != e[:, 3]]  # horizontal edges cross no row
    lo, hi = np.minimum(e[:, 1], e[:, 3]), np.maximum(e[:, 1], e[:, 3])
    first = np.maximum(np.ceil(lo - 0.5), 0).astype(np.int64)  # rows whose centre is in [lo, hi)
    stop = np.minimum(np.ceil(hi - 0.5), height).astype(np.int64)
    count = np.maximum(stop - first, 0)
    edge = np.repeat(np.arange(len(e)), count)
    row = first[edge] + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    x0, y0, x1, y1 = e[edge].T
    x = x0 + (row + 0.5 - y0) * (x1 - x0) / (y1 - y0)
    order = np.lexsort((x, row))
    row, x = row[order], x[order]
    if not len(row):
        return None
    return row[0::2], np.floor(x[0::2] + 0.5).astype(np.int64), np.floor(x[1::2] + 0.5).astype(np.int64)


def burn(shapes: Iterable[tuple[shapely.Geometry, int | float]], out_shape: tuple[int, int],
         transform: Affine, *, fill: int | float = 0, dtype: str | np.dtype = "uint8") -> np.ndarray:
    """Burn ``(geometry, value)`` pairs into a new ``out_shape`` array on ``transform``'s grid.

    Later shapes are drawn over earlier ones; pixels no shape covers hold ``fill``.  Equal to
    ``rasterio.features.rasterize(shapes, out_shape=..., transform=..., fill=..., dtype=...)``.
    """
    height, width = out_shape
    out = np.full((height, width), fill, dtype=dtype)
    inverse = ~transform
    for geom, value in shapes:
        if geom is None or geom.is_empty:
            continue
        spans = _spans(geom, inverse, height)
        if spans is None:
            continue
        row, start, end = spans
        start, end = np.clip(start, 0, width), np.clip(end, 0, width)
        keep = end > start
        row, start, end = row[keep], start[keep], end[keep]
        if not len(row):
            continue
        r0, c0 = int(row.min()), int(start.min())
        step = np.zeros((int(row.max()) + 1 - r0, int(end.max()) + 1 - c0), np.int32)
        np.add.at(step, (row - r0, start - c0), 1)
        np.add.at(step, (row - r0, end - c0), -1)
        inside = np.cumsum(step, axis=1)[:, :-1] > 0
        out[r0:r0 + inside.shape[0], c0:c0 + inside.shape[1]][inside] = value
    return out


__all__ = ["burn"]
