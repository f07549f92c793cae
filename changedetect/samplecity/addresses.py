"""Vietnamese street addresses for the sample city (UTF-8, Quận 12 conventions).

A house on a street is ``Số 125 Đường Tô Ký``; a house in an alley (*hẻm*)
off that street is ``Số 125/17 Đường Tô Ký`` (alley 125, house 17); a factory
or school lot is ``Lô B4``.  The ward (*phường*) follows the side of the arterial.
"""

from __future__ import annotations

import math

import numpy as np
import shapely

from changedetect.samplecity.layout import City

STREETS = (
    "Tô Ký", "Nguyễn Ảnh Thủ", "Tân Chánh Hiệp 10", "Tân Chánh Hiệp 18", "Trung Mỹ Tây 13",
    "Lê Văn Khương", "Hà Huy Giáp", "Nguyễn Văn Quá", "Lê Thị Riêng", "Đông Hưng Thuận 2",
    "Tân Thới Nhất 8", "Thạnh Lộc 15",
)
WARDS = ("Tân Chánh Hiệp", "Trung Mỹ Tây", "Đông Hưng Thuận")
SUFFIX = "Quận 12, TP. Hồ Chí Minh"


def _street_names(city: City) -> dict[int, str]:
    """A name for each arterial and street (alleys take their parent's name)."""
    names: dict[int, str] = {}
    k = 0
    for i, road in enumerate(city.roads):
        if road.kind != "alley":
            names[i] = STREETS[k % len(STREETS)] if k < len(STREETS) else f"{STREETS[k % len(STREETS)]} {k // len(STREETS) + 1}"
            k += 1
    return names


def address_for(city: City, geom: shapely.Geometry, kind: str, rng: np.random.Generator) -> str:
    """An address for a building at ``geom`` (local metres)."""
    names = _street_names(city)
    c = geom.centroid
    dists = [(shapely.distance(r.polygon, c), i) for i, r in enumerate(city.roads)]
    streets = sorted((d, i) for d, i in dists if i in names)
    near_road = min(dists)
    ward = _ward(city, c)
    if not streets:
        return f"Số {int(rng.integers(1, 400))}, Phường {ward}, {SUFFIX}"
    d_street, si = streets[0]
    street = names[si]
    if kind in ("factory", "warehouse", "school", "block", "house_row"):
        lot = f"Lô {'ABCDE'[int(rng.integers(5))]}{int(rng.integers(1, 12))}"
        return f"{lot}, Đường {street}, Phường {ward}, {SUFFIX}"
    number = _number(city, si, c)
    if city.roads[near_road[1]].kind == "alley" and near_road[0] + 1.0 < d_street:
        return f"Số {number}/{int(rng.integers(1, 60))} Đường {street}, Phường {ward}, {SUFFIX}"
    return f"Số {number} Đường {street}, Phường {ward}, {SUFFIX}"


def _number(city: City, road_index: int, point: shapely.Point) -> int:
    """A house number growing along the road, odd on one side and even on the other."""
    r = city.roads[road_index]
    dx, dy = point.x - r.cx, point.y - r.cy
    u = dx * math.sin(r.angle) + dy * math.cos(r.angle) + r.length / 2
    side = dx * math.cos(r.angle) - dy * math.sin(r.angle)
    n = int(u / 2.5) + 1
    return 2 * n + (1 if side > 0 else 0) + 100


def _ward(city: City, point: shapely.Point) -> str:
    arterials = [r for r in city.roads if r.kind == "arterial"]
    if not arterials:
        return WARDS[0]
    r = arterials[0]
    side = (point.x - r.cx) * math.cos(r.angle) - (point.y - r.cy) * math.sin(r.angle)
    return WARDS[0] if side > 0 else WARDS[1]
