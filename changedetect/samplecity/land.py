"""The sample city's land other than its houses' blocks: industrial blocks, the school, green land
(crops, clutter, sites kept for new buildings), the canal, and the trees along streets and blocks
(:func:`changedetect.samplecity.layout.plan_city` draws them in this order, after the roads)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import shapely

from changedetect.samplecity.buildings import house, large_building
from changedetect.samplecity.spec import Tree, along, rect

if TYPE_CHECKING:
    from changedetect.samplecity.layout import City, _Frame


def industrial(city: City, fr: _Frame, rng: np.random.Generator, blk: tuple[float, float, float, float]) -> None:
    """Rows of factories and warehouses in a concrete yard, an office block, perimeter trees."""
    s0, s1, t0, t1 = blk
    city.cover.append((fr.box(s0 + 2, s1 - 2, t0 + 2, t1 - 2), "yard"))
    t = t0 + rng.uniform(7.0, 12.0)
    while True:
        depth = float(rng.uniform(18.0, 40.0))
        if t + depth > t1 - 7:
            break
        s = s0 + rng.uniform(6.0, 12.0)
        while True:
            length = float(rng.uniform(25.0, 75.0))
            if s + length > s1 - 6:
                if s1 - 6 - s > 20:
                    length = s1 - 6 - s
                else:
                    break
            kind = str(rng.choice(["warehouse", "factory", "office"], p=[0.45, 0.45, 0.10]))
            if kind == "office":
                c = fr.pt(s + 8.0, t + 6.0)
                city.buildings.append(large_building(city.bid(), rng, c, fr.angle(0), 16.0, 12.0, kind="block"))
                length = 16.0
            else:
                c = fr.pt(s + length / 2, t + depth / 2)
                city.buildings.append(large_building(city.bid(), rng, c, fr.angle(0), length, depth, kind=kind))
            s += length + rng.uniform(6.0, 15.0)
        t += depth + rng.uniform(8.0, 16.0)
    _perimeter_trees(city, fr, rng, blk, spacing=9.0)


def school(city: City, fr: _Frame, rng: np.random.Generator, blk: tuple[float, float, float, float]) -> None:
    s0, s1, t0, t1 = blk
    city.cover.append((fr.box(s0 + 2, s1 - 2, t0 + 2, t1 - 2), "yard"))
    sm, tm = (s0 + s1) / 2, (t0 + t1) / 2
    length = min(60.0, s1 - s0 - 16)
    wing = 9.5
    leg = min(45.0, t1 - t0 - 16)
    city.buildings.append(large_building(city.bid(), rng, fr.pt(sm, tm - leg / 2 + wing / 2), fr.angle(0), length, wing, kind="school"))
    for side in (-1, 1):
        c = fr.pt(sm + side * (length / 2 - wing / 2), tm + wing / 2)
        city.buildings.append(large_building(city.bid(), rng, c, fr.angle(1), leg - wing, wing, kind="school"))
    city.cover.append((fr.box(sm - length / 4, sm + length / 4, tm + 2, tm + leg / 2 - 4), "court"))
    for _ in range(6):
        x, y = fr.pt(sm + rng.uniform(-0.35, 0.35) * length, tm + rng.uniform(-0.1, 0.4) * leg)
        city.trees.append(Tree(x, y, rng.uniform(3.0, 5.0), rng.uniform(9.0, 14.0), rng.uniform(0.8, 1.2)))
    _perimeter_trees(city, fr, rng, blk, spacing=11.0)


def green(city: City, fr: _Frame, rng: np.random.Generator, blk: tuple[float, float, float, float]) -> None:
    """Grass and soil, crop plots, tree clumps, and sites kept free for new buildings."""
    s0, s1, t0, t1 = blk
    free: list[shapely.Polygon] = []
    for _ in range(int(rng.integers(1, 4))):
        w, d = rng.uniform(20, 45), rng.uniform(15, 30)
        if s1 - s0 < w + 10 or t1 - t0 < d + 10:
            continue
        sc, tc = rng.uniform(s0 + w / 2 + 4, s1 - w / 2 - 4), rng.uniform(t0 + d / 2 + 4, t1 - d / 2 - 4)
        poly = fr.box(sc - w / 2, sc + w / 2, tc - d / 2, tc + d / 2)
        if any(poly.intersects(f) for f in free):
            continue
        free.append(poly)
        city.sites.append((fr.pt(sc, tc - d / 2), fr.angle(0), float(w), float(d)))
    for _ in range(int(rng.integers(0, 3))):
        w, d = rng.uniform(15, 35), rng.uniform(12, 25)
        sc, tc = rng.uniform(s0, s1), rng.uniform(t0, t1)
        poly = fr.box(sc - w / 2, sc + w / 2, tc - d / 2, tc + d / 2)
        if not any(poly.intersects(f) for f in free):
            city.cover.append((poly, "crop"))
            free.append(poly)
    _scatter(city, fr, rng, blk, free)
    n = int((s1 - s0) * (t1 - t0) / 320)
    cs, ct = rng.uniform(s0, s1, 6), rng.uniform(t0, t1, 6)
    for _ in range(n):
        k = int(rng.integers(0, 6))
        s, t = cs[k] + rng.normal(0, 14), ct[k] + rng.normal(0, 14)
        if not (s0 < s < s1 and t0 < t < t1):
            continue
        x, y = fr.pt(s, t)
        if any(f.buffer(2.0).contains(shapely.Point(x, y)) for f in free):
            continue
        city.trees.append(Tree(x, y, rng.uniform(1.8, 4.5), rng.uniform(5.0, 13.0), rng.uniform(0.75, 1.25)))


def _scatter(city: City, fr: _Frame, rng: np.random.Generator, blk: tuple[float, float, float, float], free: list[shapely.Polygon]) -> None:
    """Semi-rural clutter of green land: small houses with yards, dirt paths, bare patches, banana clumps."""
    s0, s1, t0, t1 = blk
    area = (s1 - s0) * (t1 - t0)
    for _ in range(int(rng.poisson(area / 4000)) + 1):
        sc, tc, half = rng.uniform(s0, s1), rng.uniform(t0, t1), rng.uniform(15.0, 45.0)
        w = rng.uniform(0.8, 1.2)
        path = fr.box(sc - half, sc + half, tc - w, tc + w) if rng.random() < 0.5 else fr.box(sc - w, sc + w, tc - half, tc + half)
        city.cover.append((path, "path"))
    for _ in range(int(rng.poisson(area / 3000))):
        w, d = rng.uniform(10, 30), rng.uniform(8, 25)
        sc, tc = rng.uniform(s0, s1), rng.uniform(t0, t1)
        city.cover.append((fr.box(sc - w / 2, sc + w / 2, tc - d / 2, tc + d / 2), "bare"))
    n_houses = int(rng.poisson(area / 1800))
    if s1 - s0 < 12 or t1 - t0 < 22:  # too shallow for a house with a yard (seed 149 at 512 px)
        n_houses = 0
    for _ in range(n_houses):
        w, d = rng.uniform(4.5, 7.0), rng.uniform(8.0, 13.0)
        sc, tc = rng.uniform(s0 + 6, s1 - 6), rng.uniform(t0 + 8, t1 - 14)
        yard = fr.box(sc - w / 2 - 2, sc + w / 2 + 2, tc - 3, tc + d + 2)
        if any(yard.intersects(f) for f in free):
            continue
        free.append(yard)
        city.cover.append((yard, "backyard"))
        b = house(city.bid(), rng, fr.pt(sc, tc), fr.angle(0), w, d, floors=1, style=str(rng.choice(["metal", "tile"])))
        city.buildings.append(b)
        city.yards.append((yard, b.bid))
    for _ in range(int(rng.poisson(area / 4000))):
        sc, tc = rng.uniform(s0, s1), rng.uniform(t0, t1)
        for _ in range(int(rng.integers(4, 10))):
            x, y = fr.pt(sc + rng.normal(0, 3), tc + rng.normal(0, 3))
            city.trees.append(Tree(x, y, rng.uniform(1.0, 1.8), rng.uniform(2.5, 4.0), rng.uniform(1.25, 1.45)))


def sidewalk_trees(city: City, fr: _Frame, rng: np.random.Generator, t_lines: list[tuple[float, float]], s_lines: list[tuple[float, float]], span: float) -> None:
    for lines, along_s in ((t_lines[:1], True), (s_lines[:1], False)):
        for pos, w in lines:
            for side in (-1, 1):
                u = -span + rng.uniform(0, 8)
                while u < span:
                    off = pos + side * (w / 2 - 1.6)
                    x, y = fr.pt(u, off) if along_s else fr.pt(off, u)
                    city.trees.append(Tree(x, y, rng.uniform(2.0, 3.6), rng.uniform(7.0, 12.0), rng.uniform(0.8, 1.2)))
                    u += rng.uniform(8.0, 16.0)


def _perimeter_trees(city: City, fr: _Frame, rng: np.random.Generator, blk: tuple[float, float, float, float], *, spacing: float) -> None:
    s0, s1, t0, t1 = blk
    for s in np.arange(s0 + 3, s1 - 3, spacing):
        for t in (t0 + 3, t1 - 3):
            if rng.random() < 0.7:
                x, y = fr.pt(float(s), t)
                city.trees.append(Tree(x, y, rng.uniform(2.0, 3.5), rng.uniform(6.0, 10.0), rng.uniform(0.8, 1.2)))


def canal(city: City, fr: _Frame, rng: np.random.Generator, half: float) -> None:
    """A winding canal (*kênh*) with grassy, tree-lined banks; what it crosses is cleared."""
    s_c = rng.choice([-1, 1]) * rng.uniform(0.45, 0.7) * half
    amp, lam, phase = rng.uniform(10, 25), rng.uniform(250, 400), rng.uniform(0, 2 * math.pi)
    ts = np.linspace(-1.5 * half, 1.5 * half, 200)
    line = shapely.LineString([fr.pt(float(s_c + amp * math.sin(2 * math.pi * t / lam + phase)), float(t)) for t in ts])
    water = line.buffer(rng.uniform(6.0, 8.0), cap_style="flat")
    banks = line.buffer(13.0, cap_style="flat")
    city.cover.append((banks, "bank"))
    city.cover.append((water, "water"))
    keep = [lot for lot in city.lots if not lot.polygon.intersects(banks)]
    dropped = {lot.house.bid for lot in city.lots if lot.house is not None and lot not in keep}
    city.lots = keep
    city.buildings = [b for b in city.buildings if b.bid not in dropped and not b.polygon.intersects(banks)]
    city.roads = [r for r in city.roads if r.kind != "alley" or not r.polygon.intersects(water)]
    city.sites = [s for s in city.sites if not rect(*along(s[0], s[1], s[3] / 2), s[2], s[3], s[1]).intersects(banks)]
    city.trees = [t for t in city.trees if not water.contains(shapely.Point(t.x, t.y))]
    for i, d in enumerate(np.arange(0, line.length, 9.0)):
        p = line.interpolate(float(d))
        side = 10.0 if i % 2 else -10.0
        q = line.interpolate(float(d) + 1.0)
        nx, ny = -(q.y - p.y), q.x - p.x
        if rng.random() < 0.75:
            city.trees.append(Tree(p.x + nx * side, p.y + ny * side, rng.uniform(2.0, 4.0), rng.uniform(6.0, 12.0), rng.uniform(0.8, 1.2)))


def drop_trees_on_roofs(city: City) -> None:
    if not city.trees or not city.buildings:
        return
    tree = shapely.STRtree([b.polygon for b in city.buildings])
    pts = shapely.points([(t.x, t.y) for t in city.trees])
    hit = set(tree.query(pts, predicate="intersects")[0].tolist())
    city.trees = [t for i, t in enumerate(city.trees) if i not in hit]


__all__ = ["canal", "drop_trees_on_roofs", "green", "industrial", "school", "sidewalk_trees"]
