"""Houses and large buildings of the sample city, as :class:`~.spec.Building` records.

A Ho Chi Minh City tube house (*nhà ống*) is 4-6 m wide and 12-20 m deep, its
narrow front on an alley (*hẻm*) or a street; its roof is terracotta tile, a flat
concrete terrace (with a stair box and stainless water tanks) or corrugated metal,
often a terrace with a metal shelter over the back.  Factories and warehouses
have large pitched metal roofs.
"""

from __future__ import annotations

import numpy as np

from changedetect.samplecity.spec import Building, Roof, along
from changedetect.samplecity.texture import pick_roof

FLOOR_M = 3.4


def house(
    bid: int,
    rng: np.random.Generator,
    front: tuple[float, float],
    angle: float,
    width: float,
    depth: float,
    *,
    floors: int | None = None,
    style: str | None = None,
) -> Building:
    """A tube house whose front edge is centred on ``front``, its depth along ``angle``."""
    if floors is None:
        floors = int(rng.choice([1, 2, 3, 4], p=[0.22, 0.36, 0.27, 0.15]))
    height = floors * FLOOR_M + rng.uniform(0.3, 1.2)
    if style is None:
        style = str(rng.choice(["tile", "metal", "terrace", "mixed"], p=[0.24, 0.30, 0.28, 0.18]))
    cx, cy = along(front, angle, depth / 2)
    roofs: list[Roof] = []
    tanks: list[tuple[float, float]] = []
    if style in ("tile", "metal"):
        mat, col = pick_roof(rng, kinds=(style,))
        roofs.append(Roof(cx, cy, width, depth, angle, height, mat, col, gable=True))
    else:
        mat, col = pick_roof(rng, kinds=("concrete",))
        roofs.append(Roof(cx, cy, width, depth, angle, height, mat, col, gable=False))
        if style == "terrace" and depth > 8:
            bw, bd = min(3.0, width - 0.6), rng.uniform(3.0, 4.5)
            off = rng.uniform(0.25, 0.6) * depth
            bx, by = along(front, angle, off, across=rng.uniform(-0.3, 0.3) * (width - bw))
            m2, c2 = pick_roof(rng, kinds=("concrete", "metal", "tile"))
            roofs.append(Roof(bx, by, bw, bd, angle, height + 2.8, m2, c2, gable=m2 != "concrete"))
        else:
            frac = rng.uniform(0.35, 0.65)
            sx, sy = along(front, angle, depth * (1 - frac / 2))
            m2, c2 = pick_roof(rng, kinds=("metal",))
            roofs.append(Roof(sx, sy, width, depth * frac, angle, height + 2.6, m2, c2, gable=True))
        for _ in range(int(rng.integers(1, 3))):
            tanks.append(along(front, angle, rng.uniform(1.0, 3.0), across=rng.uniform(-0.3, 0.3) * width))
    return Building(bid, "house", tuple(roofs), tuple(tanks))


def extension_roof(
    rng: np.random.Generator, base: Building, start: float, length: float, *, front: tuple[float, float], angle: float, width: float
) -> Roof:
    """The roof of an extension that adds ``length`` metres behind ``start`` metres of depth."""
    cx, cy = along(front, angle, start + length / 2)
    mat, col = pick_roof(rng, kinds=("metal", "concrete", "tile"))
    height = max(3.2, base.height - FLOOR_M * int(rng.integers(0, 2)))
    return Roof(cx, cy, width, length, angle, height, mat, col, gable=mat != "concrete")


def large_building(
    bid: int,
    rng: np.random.Generator,
    centre: tuple[float, float],
    angle: float,
    length: float,
    depth: float,
    *,
    kind: str = "factory",
) -> Building:
    """A factory, warehouse or office block: one pitched (or flat) roof, the ridge along ``length``."""
    if kind in ("factory", "warehouse"):
        mat, col = pick_roof(rng, kinds=("metal",))
        height = rng.uniform(7.0, 11.0)
        roofs = [Roof(centre[0], centre[1], length, depth, angle, height, mat, col, gable=True)]
        if rng.random() < 0.5:  # a ventilation monitor along the ridge
            roofs.append(Roof(centre[0], centre[1], length * 0.8, 2.2, angle, height + 1.2, mat, tuple(c * 0.92 for c in col), gable=True))  # type: ignore[arg-type]
    elif kind == "school":
        mat, col = pick_roof(rng, kinds=("tile",))
        height = 3 * FLOOR_M + rng.uniform(0.5, 1.5)
        roofs = [Roof(centre[0], centre[1], length, depth, angle, height, mat, col, gable=True)]
    else:
        mat, col = pick_roof(rng, kinds=("concrete", "tile"))
        height = int(rng.integers(3, 7)) * FLOOR_M + 1.0
        roofs = [Roof(centre[0], centre[1], length, depth, angle, height, mat, col, gable=mat == "tile")]
    return Building(bid, kind, tuple(roofs))


def house_row(
    first_bid: int,
    rng: np.random.Generator,
    start: tuple[float, float],
    angle: float,
    count: int,
    width: float,
    depth: float,
) -> list[Building]:
    """A developer's row of identical new houses (same roof, same height), fronts along the across axis."""
    floors = int(rng.integers(2, 5))
    style = str(rng.choice(["tile", "terrace"]))
    proto = house(first_bid, rng, start, angle, width, depth, floors=floors, style=style)
    out = []
    for i in range(count):
        dx, dy = along((0.0, 0.0), angle, 0.0, across=(i + 0.5) * width)
        roofs = tuple(
            Roof(r.cx + dx, r.cy + dy, r.w, r.d, r.angle, r.height, r.material, r.color, r.gable) for r in proto.roofs
        )
        tanks = tuple((t[0] + dx, t[1] + dy) for t in proto.tanks)
        out.append(Building(first_bid + i, "house", roofs, tanks))
    return out
