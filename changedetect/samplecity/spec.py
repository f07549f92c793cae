"""What the sample city is made of: its configuration and the plain records of its parts.

Coordinates
-----------
Everything in the layout is in *local metres*: ``x`` east and ``y`` south of the
upper-left corner of the reference grid (so ``x / res`` is a column and
``y / res`` a row).  :class:`CityConfig` turns local metres into EPSG:32648.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import shapely
from affine import Affine
from pyproj import Transformer

#: Band order of every generated image.
BANDS: tuple[str, ...] = ("red", "green", "blue", "nir")
#: CRS of the imagery (WGS 84 / UTM zone 48N).
IMAGE_EPSG = 32648
#: CRS of the permit register (VN-2000 / TM-3 105-45, HCMC cadastral maps).
REGISTER_EPSG = 9210


@dataclass(frozen=True)
class Acquisition:
    """One date of the series: sun position and atmosphere.

    ``greenness`` in [0, 1] is the season's vegetation state (dry January ~0.3,
    wet-season July ~0.9); ``haze`` scales the additive path radiance;
    ``gain`` scales the sensor gain per band (red, green, blue, nir).
    """

    date: dt.date
    sun_azimuth_deg: float
    sun_elevation_deg: float
    greenness: float
    haze: float
    gain: tuple[float, float, float, float]

    @property
    def tag(self) -> str:
        """``YYYYMMDD``."""
        return self.date.strftime("%Y%m%d")


#: The default series: two dry-season dates around a wet-season one.  The sun is
#: SE in January and ENE in July (10.9 N, ~10:30 local time).
DEFAULT_ACQUISITIONS: tuple[Acquisition, ...] = (
    Acquisition(dt.date(2024, 1, 15), 141.0, 51.0, 0.30, 0.9, (1.00, 1.00, 1.00, 1.00)),
    Acquisition(dt.date(2024, 7, 12), 68.0, 63.0, 0.95, 1.5, (0.93, 0.95, 0.97, 1.06)),
    Acquisition(dt.date(2025, 1, 20), 144.0, 49.5, 0.38, 0.6, (1.06, 1.04, 1.02, 0.96)),
)


@dataclass(frozen=True)
class CityConfig:
    """Parameters of a generated city.

    Parameters
    ----------
    seed
        Seed of every random choice; the same seed gives byte-identical files.
    size
        Width and height of the images in pixels (square).
    resolution
        Pixel size in metres.
    origin_lonlat
        Longitude and latitude (WGS 84) near the upper-left corner; the corner is
        snapped to whole metres in EPSG:32648.
    margin
        Pixels rendered around the grid so that shifted dates have no empty edge.
    oversample
        Rendering is done at ``resolution / oversample`` and integrated down.
    acquisitions
        The dates, the first being the reference of the registration truth.
    shaded_demolitions
        Chance that a house demolition is drawn from the houses a taller neighbour's
        shadow covers (half the roof or more) on the first date, rather than from
        every house: the hard case of a house pulled down inside a neighbour's winter
        shadow.  0 (the default, and the committed sample city's) draws from every house;
        training cities 251-299 and 1001-1200 use 1 (``changedetect.training.datasets.SHADED_SEEDS``).
    """

    seed: int = 12
    size: int = 1024
    resolution: float = 0.5
    origin_lonlat: tuple[float, float] = (106.6452, 10.8718)
    margin: int = 24
    oversample: int = 2
    acquisitions: tuple[Acquisition, ...] = DEFAULT_ACQUISITIONS
    register_date: dt.date = dt.date(2025, 3, 31)
    shaded_demolitions: float = 0.0

    @property
    def extent_m(self) -> float:
        """Side of the reference grid in metres."""
        return self.size * self.resolution

    @property
    def origin_utm(self) -> tuple[float, float]:
        """Upper-left corner of the reference grid in EPSG:32648 (whole metres)."""
        tr = Transformer.from_crs(4326, IMAGE_EPSG, always_xy=True)
        x, y = tr.transform(*self.origin_lonlat)
        return (float(math.floor(x)), float(math.ceil(y)))

    @property
    def transform(self) -> Affine:
        """Geotransform of the reference grid (EPSG:32648, north up)."""
        x0, y0 = self.origin_utm
        return Affine(self.resolution, 0.0, x0, 0.0, -self.resolution, y0)

    def to_utm(self, geom: shapely.Geometry) -> shapely.Geometry:
        """Local metres (x east, y south) to EPSG:32648."""
        x0, y0 = self.origin_utm
        return shapely.transform(geom, lambda c: c * [1.0, -1.0] + [x0, y0])

    def to_local(self, geom: shapely.Geometry) -> shapely.Geometry:
        """EPSG:32648 to local metres."""
        x0, y0 = self.origin_utm
        return shapely.transform(geom, lambda c: (c - [x0, y0]) * [1.0, -1.0])


@dataclass(frozen=True)
class Roof:
    """A rectangular roof part: centre, frontage width, depth, angle, height, material.

    ``angle`` (radians) turns the part's depth axis from local +y (south) towards +x.
    ``material`` is one of ``tile``, ``metal``, ``concrete``; ``color`` is its
    reflectance (red, green, blue, nir); ``gable`` tells a pitched roof from a flat one.
    """

    cx: float
    cy: float
    w: float
    d: float
    angle: float
    height: float
    material: str
    color: tuple[float, float, float, float]
    gable: bool = True

    @property
    def polygon(self) -> shapely.Polygon:
        """The footprint in local metres."""
        return rect(self.cx, self.cy, self.w, self.d, self.angle)


@dataclass(frozen=True)
class Building:
    """A structure: one or more roof parts (a house with a stair box, a school wing...)."""

    bid: int
    kind: str
    roofs: tuple[Roof, ...]
    tanks: tuple[tuple[float, float], ...] = ()

    @property
    def polygon(self) -> shapely.Geometry:
        """The footprint (union of the parts) in local metres; adjacent parts make one polygon."""
        geom = shapely.union_all([r.polygon for r in self.roofs])
        if geom.geom_type != "Polygon":
            geom = geom.buffer(0.01, join_style="mitre").buffer(-0.01, join_style="mitre")
        return geom.normalize()

    @property
    def height(self) -> float:
        """Height of the main (first) part in metres."""
        return self.roofs[0].height


@dataclass(frozen=True)
class Tree:
    """A tree crown: centre, radius and height in metres; ``tint`` varies its colour."""

    x: float
    y: float
    r: float
    h: float
    tint: float = 1.0


@dataclass
class Lot:
    """A plot along an alley or street, with its house (or none when vacant).

    ``front`` is the centre of the lot's front edge, ``angle`` its depth axis;
    ``free_back`` is the depth left behind the house (a back yard).
    """

    lid: int
    front: tuple[float, float]
    angle: float
    width: float
    depth: float
    house: Building | None
    free_back: float = 0.0

    @property
    def polygon(self) -> shapely.Polygon:
        """The whole lot in local metres."""
        cx, cy = along(self.front, self.angle, self.depth / 2)
        return rect(cx, cy, self.width, self.depth, self.angle)


def rect(cx: float, cy: float, w: float, d: float, angle: float) -> shapely.Polygon:
    """A ``w`` (across) by ``d`` (along the depth axis) rectangle turned by ``angle``."""
    c, s = math.cos(angle), math.sin(angle)
    pts = []
    for u, v in ((-w / 2, -d / 2), (w / 2, -d / 2), (w / 2, d / 2), (-w / 2, d / 2)):
        pts.append((cx + u * c + v * s, cy - u * s + v * c))
    return shapely.Polygon(pts)


def along(point: tuple[float, float], angle: float, dist: float, across: float = 0.0) -> tuple[float, float]:
    """Move from ``point`` by ``dist`` along a depth axis turned by ``angle`` (and ``across`` it)."""
    c, s = math.cos(angle), math.sin(angle)
    return (point[0] + dist * s + across * c, point[1] + dist * c - across * s)
