"""The plan of the sample city: roads, blocks, lots, houses, large buildings, trees, a canal.

The plan is drawn in a *street frame* ``(s, t)`` centred on the scene and turned
by a small angle (District 12's streets are not north-up), then mapped to local
metres.  Blocks between streets are residential (alleys lined with tube houses,
shophouses on the streets), industrial (factories in a concrete yard), a school,
or green land (grass, crops, trees, sites where new buildings will go); the residential blocks are
drawn here, the other blocks, the canal and the trees in :mod:`changedetect.samplecity.land`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import shapely

from changedetect.samplecity import land
from changedetect.samplecity.buildings import house
from changedetect.samplecity.spec import Building, CityConfig, Lot, Tree, along, rect


@dataclass(frozen=True)
class Road:
    """A straight road: centre, direction (angle of its length axis), length, width, kind."""

    cx: float
    cy: float
    angle: float
    length: float
    width: float
    kind: str  # arterial | street | alley

    @property
    def polygon(self) -> shapely.Polygon:
        """The carriageway in local metres."""
        return rect(self.cx, self.cy, self.width, self.length, self.angle)


@dataclass
class City:
    """Everything static about the city (what does not change between dates)."""

    config: CityConfig
    theta: float
    roads: list[Road] = field(default_factory=list)
    cover: list[tuple[shapely.Geometry, str]] = field(default_factory=list)
    lots: list[Lot] = field(default_factory=list)
    buildings: list[Building] = field(default_factory=list)
    trees: list[Tree] = field(default_factory=list)
    sites: list[tuple[tuple[float, float], float, float, float]] = field(default_factory=list)
    next_bid: int = 1
    #: every block between the streets (street-frame box in local metres) and its use, in plan order
    blocks: list[tuple[shapely.Polygon, str]] = field(default_factory=list)
    #: the yards of green land's small houses and the house's building id (the cadastre's parcels)
    yards: list[tuple[shapely.Polygon, int]] = field(default_factory=list)

    def bid(self) -> int:
        """A fresh building id."""
        self.next_bid += 1
        return self.next_bid - 1


class _Frame:
    """Street frame (s across, t along the depth axis) to local metres."""

    def __init__(self, centre: tuple[float, float], theta: float) -> None:
        self.centre, self.theta = centre, theta

    def pt(self, s: float, t: float) -> tuple[float, float]:
        return along(self.centre, self.theta, t, across=s)

    def visible(self, lo: float, hi: float) -> tuple[float, float, float, float]:
        """Street-frame bounds ``(s0, s1, t0, t1)`` of the local square ``[lo, hi]``."""
        cx, cy = self.centre
        c, s = math.cos(self.theta), math.sin(self.theta)
        pts = [((x - cx) * c - (y - cy) * s, (x - cx) * s + (y - cy) * c) for x in (lo, hi) for y in (lo, hi)]
        return (min(p[0] for p in pts), max(p[0] for p in pts), min(p[1] for p in pts), max(p[1] for p in pts))

    def angle(self, quarter: int) -> float:
        """Depth axis along +t (0), +s (1), -t (2), -s (3)."""
        return self.theta + quarter * math.pi / 2

    def box(self, s0: float, s1: float, t0: float, t1: float) -> shapely.Polygon:
        """The street-frame rectangle ``[s0, s1] x [t0, t1]`` in local metres."""
        c = self.pt((s0 + s1) / 2, (t0 + t1) / 2)
        return rect(c[0], c[1], s1 - s0, t1 - t0, self.theta)


def plan_city(config: CityConfig, rng: np.random.Generator) -> City:
    """Draw the whole static city for ``config``."""
    ext = config.extent_m
    half = ext / 2 + config.margin * config.resolution
    theta = math.radians(rng.uniform(-14.0, 14.0))
    city = City(config, theta)
    fr = _Frame((ext / 2, ext / 2), theta)
    span = half * 1.3
    t_lines = _lines(rng, span, main=-0.22 * half, spacing=(115.0, 160.0))
    s_lines = _lines(rng, span, main=0.28 * half, spacing=(130.0, 180.0))
    for i, (t, w) in enumerate(t_lines):
        kind = "arterial" if i == 0 else "street"
        city.roads.append(Road(*fr.pt(0.0, t), fr.angle(1), 2 * span, w, kind))
    for i, (s, w) in enumerate(s_lines):
        kind = "arterial" if i == 0 else "street"
        city.roads.append(Road(*fr.pt(s, 0.0), fr.angle(0), 2 * span, w, kind))
    ts = sorted(t_lines)
    ss = sorted(s_lines)
    t_edges = [(-span, 0.0), *ts, (span, 0.0)]
    s_edges = [(-span, 0.0), *ss, (span, 0.0)]
    view = fr.visible(-half + ext / 2 - 12.0, half + ext / 2 + 12.0)
    blocks = []
    for (ta, wa), (tb, wb) in zip(t_edges[:-1], t_edges[1:], strict=True):
        for (sa, va), (sb, vb) in zip(s_edges[:-1], s_edges[1:], strict=True):
            blk = (max(sa + va / 2 + 2.5, view[0]), min(sb - vb / 2 - 2.5, view[1]), max(ta + wa / 2 + 2.5, view[2]), min(tb - wb / 2 - 2.5, view[3]))
            if blk[1] - blk[0] > 8 and blk[3] - blk[2] > 8:
                blocks.append(blk)
    uses = _block_uses(rng, blocks, half)
    for blk, use in zip(blocks, uses, strict=True):
        city.blocks.append((fr.box(*blk), use))
        if use == "residential":
            # each block turned a little about its centre; alleys along t, or along s for some
            sc, tc = (blk[0] + blk[1]) / 2, (blk[2] + blk[3]) / 2
            hs, ht = (blk[1] - blk[0]) / 2 - 1.0, (blk[3] - blk[2]) / 2 - 1.0
            local = _Frame(fr.pt(sc, tc), fr.theta + math.radians(rng.uniform(-1.5, 1.5)))
            if rng.random() < 0.35:
                _residential(city, _Frame(local.centre, local.theta + math.pi / 2), rng, (-ht, ht, -hs, hs))
            else:
                _residential(city, local, rng, (-hs, hs, -ht, ht))
        elif use == "industrial":
            land.industrial(city, fr, rng, blk)
        elif use == "school":
            land.school(city, fr, rng, blk)
        else:
            land.green(city, fr, rng, blk)
    land.sidewalk_trees(city, fr, rng, t_lines, s_lines, span)
    if config.size >= 512:
        land.canal(city, fr, rng, half)
    land.drop_trees_on_roofs(city)
    return city


def _lines(rng: np.random.Generator, span: float, *, main: float, spacing: tuple[float, float]) -> list[tuple[float, float]]:
    """Positions and widths of parallel roads: the arterial at ``main`` first, then streets."""
    out = [(main + rng.uniform(-8, 8), 22.0)]
    for sign in (-1, 1):
        pos = out[0][0] + sign * rng.uniform(*spacing)
        while abs(pos) < span:
            out.append((pos, float(rng.uniform(6.0, 8.0))))
            pos += sign * rng.uniform(*spacing)
    return out


def _block_uses(rng: np.random.Generator, blocks: list[tuple[float, float, float, float]], half: float) -> list[str]:
    """Residential mostly; one school near the centre; some industry and green land."""
    uses = [str(rng.choice(["residential", "industrial", "green"], p=[0.64, 0.14, 0.22])) for _ in blocks]
    dist = [abs((b[0] + b[1]) / 2) + abs((b[2] + b[3]) / 2) for b in blocks]
    order = np.argsort(dist)
    big = [i for i in order if blocks[i][1] - blocks[i][0] > 70 and blocks[i][3] - blocks[i][2] > 70]
    if len(big) >= 3:
        uses[big[1]] = "school"
        uses[big[0]] = "residential"
        uses[big[2]] = "green"
    return uses


def _residential(city: City, fr: _Frame, rng: np.random.Generator, blk: tuple[float, float, float, float]) -> None:
    """Alleys along t lined with tube houses; shophouse rows on the t-facing streets."""
    s0, s1, t0, t1 = blk
    if s1 - s0 < 12 or t1 - t0 < 12:
        return
    city.cover.append((fr.box(s0, s1, t0, t1), "backyard"))
    front_d = rng.uniform(15.0, 20.0)
    fronts = (t1 - t0) > 2 * front_d + 24
    ti0, ti1 = (t0 + front_d, t1 - front_d) if fronts else (t0, t1)
    alleys: list[tuple[float, float]] = []
    cursor = s0
    depth = rng.uniform(11.0, 17.0)
    _lot_row(city, fr, rng, (s0, 0.0), 1, ti0, ti1, depth, shop=False)
    cursor = s0 + depth + rng.uniform(0.0, 1.5)
    while cursor + 3 * depth + 4 < s1:
        aw = float(rng.uniform(2.5, 4.0))
        sa = cursor + depth + aw / 2
        alleys.append((sa, aw))
        reach = (t1 - t0) * (1.0 if rng.random() < 0.7 else rng.uniform(0.55, 0.9))  # some are dead ends
        start = t0 if rng.random() < 0.5 else t1 - reach
        city.roads.append(Road(*fr.pt(sa, start + reach / 2), fr.angle(0), reach, aw, "alley"))
        _lot_row(city, fr, rng, (sa - aw / 2, 0.0), 3, ti0, ti1, depth, shop=False)
        _lot_row(city, fr, rng, (sa + aw / 2, 0.0), 1, ti0, ti1, depth, shop=False)
        cursor = sa + aw / 2 + depth + rng.uniform(0.0, 0.8)
        depth = rng.uniform(11.0, 17.0)
    if s1 - cursor > 10:
        _lot_row(city, fr, rng, (s1, 0.0), 3, ti0, ti1, min(depth, s1 - cursor), shop=False)
    if fronts:
        gaps = [(sa - aw / 2 - 0.3, sa + aw / 2 + 0.3) for sa, aw in alleys]
        _front_row(city, fr, rng, t0, 0, s0, s1, front_d, gaps)
        _front_row(city, fr, rng, t1, 2, s0, s1, front_d, gaps)


def _lot_row(
    city: City, fr: _Frame, rng: np.random.Generator, base: tuple[float, float], quarter: int, t0: float, t1: float, depth: float, *, shop: bool
) -> None:
    """Lots whose fronts lie on the line ``s = base[0]`` from ``t0`` to ``t1``, deep along ``quarter``."""
    t = t0 + rng.uniform(0.0, 2.0)
    while True:
        w = float(rng.uniform(3.8, 6.5) if rng.random() > 0.12 else rng.uniform(6.5, 9.0))
        if t + w > t1:
            break
        _add_lot(city, fr, rng, fr.pt(base[0], t + w / 2), fr.angle(quarter), w, depth, shop=shop)
        t += w


def _front_row(
    city: City, fr: _Frame, rng: np.random.Generator, t_front: float, quarter: int, s0: float, s1: float, depth: float, gaps: list[tuple[float, float]]
) -> None:
    """Shophouses whose fronts lie on ``t = t_front``, skipping alley openings."""
    s = s0 + rng.uniform(0.0, 1.0)
    while True:
        w = float(rng.uniform(4.0, 7.0))
        if s + w > s1:
            break
        hit = [g for g in gaps if g[0] < s + w and g[1] > s]
        if hit:
            s = max(g[1] for g in hit)
            continue
        _add_lot(city, fr, rng, fr.pt(s + w / 2, t_front), fr.angle(quarter), w, depth, shop=True)
        s += w


def _add_lot(city: City, fr: _Frame, rng: np.random.Generator, front: tuple[float, float], angle: float, w: float, depth: float, *, shop: bool) -> None:
    lid = len(city.lots)
    if rng.random() < (0.04 if shop else 0.08):
        city.lots.append(Lot(lid, front, angle, w, depth, None, free_back=depth))
        if rng.random() < 0.5:
            x, y = along(front, angle, rng.uniform(0.4, 0.8) * depth)
            city.trees.append(Tree(x, y, rng.uniform(1.5, 3.0), rng.uniform(4.0, 8.0), rng.uniform(0.8, 1.2)))
        return
    back = 0.0 if rng.random() < 0.7 else float(rng.uniform(3.0, max(3.0, min(8.0, depth - 8.0))))
    if back == 0.0 and rng.random() < 0.35:  # jagged backs: a narrow light well or yard
        back = float(rng.uniform(0.5, 2.0))
    floors = int(rng.choice([2, 3, 4, 5, 6], p=[0.2, 0.3, 0.25, 0.15, 0.1])) if shop else None
    setback = float(rng.uniform(0.0, 0.6))
    hfront = along(front, angle, setback)
    b = house(city.bid(), rng, hfront, angle, w - 0.05, depth - back - setback, floors=floors)
    city.buildings.append(b)
    city.lots.append(Lot(lid, front, angle, w, depth, b, free_back=back))
    if back > 3.0 and rng.random() < 0.4:
        x, y = along(front, angle, depth - back / 2)
        city.trees.append(Tree(x, y, rng.uniform(1.3, 2.6), rng.uniform(3.5, 7.0), rng.uniform(0.8, 1.2)))
