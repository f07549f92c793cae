"""Small geodesy helpers on :class:`~changedetect.types.Grid`: honest metres, lon/lat bounds.

Sentinel-2 bands of the OSCD set are stored in EPSG:4326, where a pixel is a
fraction of a degree; its size in metres depends on the latitude and differs
in x and y.  :func:`pixel_size_m` measures it on the ellipsoid at the scene
centre instead of pretending degrees are metres.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from affine import Affine
from pyproj import CRS, Geod, Transformer
from pyproj.exceptions import ProjError

from changedetect.types import Grid

if TYPE_CHECKING:
    import geopandas as gpd

_WGS84 = CRS.from_epsg(4326)


def pixel_size_m(grid: Grid) -> tuple[float, float]:
    """Ground size ``(x, y)`` in metres of a pixel at the centre of ``grid``.

    For a projected CRS whose unit is the metre (UTM, VN-2000 / TM-3) this is
    the pixel size in CRS units, unless the projection distorts scale by more
    than 1 % at the centre (Web Mercator away from the equator), where the
    geodesic size is given.  For a geographic CRS it is always the geodesic size.
    ``(nan, nan)`` when the grid has no CRS; the size in CRS units (times their metres) in a local
    site grid that has no transformation to WGS 84.
    """
    if grid.crs is None:
        return (math.nan, math.nan)
    crs = CRS.from_user_input(grid.crs)
    try:
        geodesic = _geodesic_pixel_size(grid, crs)
    except ProjError:  # a local (engineering) site grid: no way to the ellipsoid; its units are its metres
        factor = metres_per_unit(crs)
        return (grid.resolution[0] * factor, grid.resolution[1] * factor)
    if crs.is_projected:
        factor = metres_per_unit(crs)
        nominal = (grid.resolution[0] * factor, grid.resolution[1] * factor)
        if all(abs(n - g) <= 0.01 * g for n, g in zip(nominal, geodesic, strict=True)):
            return nominal
    return geodesic


def ground_pixel(grid: Grid) -> tuple[float, float]:
    """A pixel's ground area (m²) at the centre of ``grid``, and ground metres per CRS unit there.

    Metres whatever the CRS: US-survey-foot state planes, Web Mercator and geographic grids
    are measured on the ellipsoid (:func:`pixel_size_m`).  Without a CRS (or where it cannot be
    measured) the grid's units are taken as metres.
    """
    units2 = abs(grid.transform.a * grid.transform.e)
    if grid.crs is None or units2 == 0:
        return units2, 1.0
    sx, sy = pixel_size_m(grid)
    if not (math.isfinite(sx) and math.isfinite(sy)) or sx * sy <= 0:
        return units2, 1.0
    return sx * sy, math.sqrt(sx * sy / units2)


def in_metres(frame: gpd.GeoDataFrame | gpd.GeoSeries, unit_m: float | None = None) -> gpd.GeoSeries:
    """``frame``'s geometries where lengths and areas are ground metres: as they are in a
    metre-based projected CRS (or none) whose scale is true here (``unit_m``, ground metres per
    CRS unit from :func:`ground_pixel`, is 1; by default measured at the centre of ``frame``'s
    bounds), else in the local UTM zone (a feet-based state plane's areas would be ft², a
    geographic one's deg², and Web Mercator's are 1/cos²(latitude) too large: 1.7 × at 40°)."""
    geoms = frame.geometry if hasattr(frame, "geometry") else frame
    crs = geoms.crs
    if unit_m is None:
        unit_m = 1.0
        if crs is not None and crs.is_projected and len(geoms) and not geoms.is_empty.all():
            left, bottom, right, top = geoms.total_bounds
            centre = Affine(1, 0, (left + right) / 2, 0, -1, (bottom + top) / 2)
            unit_m = ground_pixel(Grid(crs, centre, 1, 1))[1]
    if crs is None or (crs.is_projected and abs(metres_per_unit(crs) - 1.0) < 1e-9 and abs(unit_m - 1.0) < 1e-6):
        return geoms
    return geoms.to_crs(geoms.estimate_utm_crs())


def metres_per_unit(crs: CRS) -> float:
    """Metres per unit of a projected CRS's first axis (0.3048006 for US survey feet; 1 when
    unknown, and for a geographic CRS, whose degrees have no fixed length)."""
    try:
        factor = float(crs.axis_info[0].unit_conversion_factor)
    except (AttributeError, IndexError, TypeError, ValueError):
        return 1.0
    return factor if factor > 0 and not crs.is_geographic else 1.0


def resolution_m(grid: Grid) -> float:
    """One number for a pixel's ground size: the side of a square of the same area, in metres."""
    xs, ys = pixel_size_m(grid)
    return math.sqrt(xs * ys)


def _geodesic_pixel_size(grid: Grid, crs: CRS) -> tuple[float, float]:
    t = grid.transform
    col, row = grid.width / 2, grid.height / 2
    corners = [t @ (col, row), t @ (col + 1, row), t @ (col, row + 1)]
    to_ll = Transformer.from_crs(crs, _WGS84, always_xy=True)
    lons, lats = to_ll.transform([p[0] for p in corners], [p[1] for p in corners])
    geod = crs.get_geod() or Geod(ellps="WGS84")
    _, _, dx = geod.inv(lons[0], lats[0], lons[1], lats[1])
    _, _, dy = geod.inv(lons[0], lats[0], lons[2], lats[2])
    return (abs(dx), abs(dy))


def crs_code(crs: object) -> str | None:
    """``"EPSG:32648"`` (or another authority's code) when ``crs`` is that registered CRS, else ``None``.

    pyproj's :meth:`~pyproj.CRS.to_authority` takes the best match at 70 % confidence: a UTM zone
    48N of an unnamed datum on the WGS 84 ellipsoid (``+proj=utm +zone=48 +ellps=WGS84``, or VN-2000 that
    lost its ``+towgs84``) comes back as EPSG:23868, DGN95 / UTM zone 48N, a datum of Indonesia.  The
    match is kept only when that code's CRS is the same CRS (its names aside).
    """
    c = CRS.from_user_input(crs)
    authority = c.to_authority()
    if authority is None:
        return None
    try:
        same = CRS.from_authority(*authority).equals(c, ignore_axis_order=True)
    except ProjError:
        return None
    return f"{authority[0]}:{authority[1]}" if same else None


def bounds_lonlat(grid: Grid) -> tuple[float, float, float, float] | None:
    """``(west, south, east, north)`` in degrees (EPSG:4326), or ``None`` without a CRS."""
    if grid.crs is None:
        return None
    to_ll = Transformer.from_crs(CRS.from_user_input(grid.crs), _WGS84, always_xy=True)
    return tuple(float(v) for v in to_ll.transform_bounds(*grid.bounds, densify_pts=21))  # type: ignore[return-value]


def bounds_in(grid: Grid, crs: CRS | None) -> tuple[float, float, float, float]:
    """``grid``'s bounds expressed in ``crs`` (its own bounds when the CRSs agree or are absent)."""
    if grid.crs is None or crs is None or CRS.from_user_input(grid.crs) == CRS.from_user_input(crs):
        return grid.bounds
    tr = Transformer.from_crs(
        CRS.from_user_input(grid.crs), CRS.from_user_input(crs), always_xy=True
    )
    return tuple(float(v) for v in tr.transform_bounds(*grid.bounds, densify_pts=21))  # type: ignore[return-value]


def intersection(
    a: tuple[float, float, float, float], b: tuple[float, float, float, float]
) -> tuple[float, float, float, float] | None:
    """The intersection of two ``(left, bottom, right, top)`` boxes, or ``None`` if they do not overlap."""
    left, bottom = max(a[0], b[0]), max(a[1], b[1])
    right, top = min(a[2], b[2]), min(a[3], b[3])
    if left >= right or bottom >= top:
        return None
    return (left, bottom, right, top)


def north_up(grid: Grid) -> Grid:
    """``grid`` itself when it is north-up (rows go south, columns east), else the north-up grid over
    its footprint with its pixel size, as ``gdalwarp`` makes one: the grid a rotated, sheared or
    south-up file is read onto.  A grid without a CRS (pixel coordinates) is returned as it is.
    """
    t = grid.transform
    if grid.crs is None or (t.b == 0 and t.d == 0 and t.a > 0 and t.e < 0):
        return grid
    xres, yres = math.hypot(t.a, t.d), math.hypot(t.b, t.e)  # one column's and one row's step on the ground
    corners = [t @ (c, r) for c in (0, grid.width) for r in (0, grid.height)]
    left, right = min(x for x, _ in corners), max(x for x, _ in corners)
    bottom, top = min(y for _, y in corners), max(y for _, y in corners)
    width = max(1, math.ceil((right - left) / xres - 1e-6))
    height = max(1, math.ceil((top - bottom) / yres - 1e-6))
    return Grid(crs=grid.crs, transform=Affine(xres, 0.0, left, 0.0, -yres, top), width=width, height=height)


def regrid(grid: Grid, resolution_m: float) -> Grid:
    """A grid over the same bounds and CRS as ``grid`` with square pixels of ``resolution_m`` metres.

    In a geographic CRS the pixel size in degrees is chosen so that a pixel
    measures ``resolution_m`` on the ground at the scene centre (in x and y
    separately).
    """
    if not resolution_m > 0:  # NaN too (a grid without a CRS has no metres: resolution_m() is NaN)
        raise ValueError(f"resolution must be a positive number of metres, got {resolution_m}")
    xs, ys = pixel_size_m(grid)
    if grid.crs is None or math.isnan(xs):
        xres = yres = resolution_m  # pixel coordinates: "metres" are pixels
    else:
        xres = grid.resolution[0] * resolution_m / xs
        yres = grid.resolution[1] * resolution_m / ys
    left, bottom, right, top = grid.bounds
    width = max(1, round((right - left) / xres))
    height = max(1, round((top - bottom) / yres))
    if grid.transform.e > 0:  # pixel coordinates of a plain image: rows go down, y increases
        transform = Affine(xres, 0.0, left, 0.0, yres, bottom)
    else:
        transform = Affine(xres, 0.0, left, 0.0, -yres, top)
    return Grid(crs=grid.crs, transform=transform, width=width, height=height)


__all__ = ["bounds_in", "bounds_lonlat", "crs_code", "intersection", "north_up", "pixel_size_m", "regrid", "resolution_m"]
