"""What happens between the dates: construction (the truth) and nuisance changes.

Construction changes (:class:`Change`) are the ones a detector must find:

``new``
    a house on a vacant lot, a developer's row of houses, a warehouse or a
    boarding house on green land, or a house rebuilt on a demolished lot;
``extension``
    a house grows over its back yard by a few metres (its own roof part);
``demolition``
    a house or a warehouse is pulled down: rubble on the first date showing it,
    cleared soil afterwards.

Changed structures keep at least 1.5 m from each other so that each is one blob.
Nuisance changes (:class:`DateState`) are not in the truth: trees grow, are cut or
planted, vegetation greens with the season, cars and motorbikes move, and the
sun (hence every shadow) moves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import shapely

from changedetect.samplecity.buildings import extension_roof, house, house_row, large_building
from changedetect.samplecity.layout import City
from changedetect.samplecity.spec import Building, Lot, Tree, along, rect


@dataclass(frozen=True)
class Change:
    """One changed structure.

    ``part`` is what changed (the new building, the added part, the demolished
    building); ``whole`` the whole structure (after the change, or the demolished
    building).  ``date_index`` is the index of the first date showing the change.
    """

    sid: str
    change_type: str
    date_index: int
    before: Building | None
    after: Building | None
    part: shapely.Geometry
    whole: shapely.Geometry
    height: float
    lot: Lot | None = None
    note: str = ""


@dataclass
class DateState:
    """Everything drawn on one date."""

    index: int
    buildings: list[Building]
    trees: list[Tree]
    cars: list[tuple[shapely.Polygon, tuple[float, float, float, float], float]]
    debris: list[tuple[shapely.Geometry, str]] = field(default_factory=list)


def plan_changes(city: City, rng: np.random.Generator, n_dates: int) -> list[Change]:
    """Choose the construction changes of every consecutive date pair."""
    area_factor = (city.config.size / 1024) ** 2
    per_pair = max(6, round(22 * area_factor))
    lots = list(city.lots)
    order = rng.permutation(len(lots))
    vacant = [lots[i] for i in order if lots[i].house is None and lots[i].width * lots[i].depth >= 45]
    backs = [lots[i] for i in order if lots[i].house is not None and lots[i].free_back * lots[i].width >= 24]
    houses = [lots[i] for i in order if lots[i].house is not None and lots[i].width * lots[i].depth >= 50]
    sites = [city.sites[i] for i in rng.permutation(len(city.sites))]
    big = [b for b in city.buildings if b.kind in ("warehouse", "factory")]
    ext = city.config.extent_m
    inside = shapely.box(6.0, 6.0, ext - 6.0, ext - 6.0)
    taken: list[shapely.Geometry] = []
    changes: list[Change] = []

    def free(geom: shapely.Geometry) -> bool:
        return inside.contains(geom) and all(geom.distance(g) > 1.5 for g in taken)

    rebuild: Lot | None = None
    for k in range(1, n_dates):
        kinds = ["new"] * round(per_pair * 0.45) + ["extension"] * round(per_pair * 0.3)
        kinds += ["demolition"] * (per_pair - len(kinds))
        if rebuild is not None:
            again = _new_on_lot(city, rng, rebuild, "", k, note="rebuilt on the lot demolished before")
            changes.append(again)
            taken.append(again.whole)
            rebuild = None
        for j, kind in enumerate(kinds):
            ch: Change | None = None
            if kind == "new":
                if j % 4 == 3 and sites:
                    ch = _new_on_site(city, rng, sites.pop(), "", k)
                while ch is None and vacant:
                    lot = vacant.pop()
                    if free(lot.polygon):
                        ch = _new_on_lot(city, rng, lot, "", k)
            elif kind == "extension":
                while ch is None and backs:
                    lot = backs.pop()
                    if free(lot.polygon) and lot.house is not None:
                        ch = _extend(city, rng, lot, "", k)
            else:
                if j == len(kinds) - 1 and k == 1 and big and free(big[0].polygon):
                    b = big.pop(0)
                    ch = Change("", "demolition", k, b, None, b.polygon, b.polygon, b.height, note=f"{b.kind} demolished")
                while ch is None and houses:
                    lot = houses.pop()
                    if lot.house is not None and free(lot.polygon) and all(c.lot is not lot for c in changes):
                        b = lot.house
                        ch = Change("", "demolition", k, b, None, b.polygon, b.polygon, b.height, lot=lot, note="house demolished")
                        if rebuild is None and k == 1:
                            rebuild = lot
            if ch is not None and free(ch.whole):
                changes.append(ch)
                taken.append(ch.whole)
    return [replace(c, sid=f"S{i:03d}") for i, c in enumerate(changes, 1)]


def _new_on_lot(city: City, rng: np.random.Generator, lot: Lot, sid: str, k: int, *, note: str = "new house on a vacant lot") -> Change:
    depth = lot.depth - rng.uniform(0.0, 2.5)
    b = house(city.bid(), rng, along(lot.front, lot.angle, 0.2), lot.angle, lot.width - 0.3, depth - 0.2)
    return Change(sid, "new", k, None, b, b.polygon, b.polygon, b.height, lot=lot, note=note)


def _new_on_site(city: City, rng: np.random.Generator, site: tuple[tuple[float, float], float, float, float], sid: str, k: int) -> Change:
    front, angle, w, d = site
    choice = rng.random()
    if choice < 0.4:
        n = int(min(5, max(3, w // 5.0)))
        width = min(5.0, (w - 2) / n)
        start = along(front, angle, 1.0, across=-n * width / 2)
        parts = house_row(city.bid(), rng, start, angle, n, width, min(d - 2, 16.0))
        b = Building(parts[0].bid, "house_row", tuple(r for p in parts for r in p.roofs), tuple(t for p in parts for t in p.tanks))
        note = f"developer's row of {n} houses"
    elif choice < 0.7:
        c = along(front, angle, d / 2)
        b = large_building(city.bid(), rng, c, angle + math.pi / 2, d - 4, min(w - 4, 30.0), kind="warehouse")
        note = "new warehouse on green land"
    else:
        c = along(front, angle, d / 2)
        b = large_building(city.bid(), rng, c, angle, min(w - 6, 14.0), min(d - 4, 24.0), kind="block")
        note = "new boarding house (nhà trọ) on green land"
    return Change(sid, "new", k, None, b, b.polygon, b.polygon, b.height, note=note)


def _extend(city: City, rng: np.random.Generator, lot: Lot, sid: str, k: int) -> Change:
    base = lot.house
    assert base is not None
    main = base.roofs[0]
    depth_now = main.d
    setback = lot.depth - lot.free_back - depth_now
    length = lot.free_back - rng.uniform(0.0, 0.6)
    front = along(lot.front, lot.angle, setback)
    roof = extension_roof(rng, base, depth_now, length, front=front, angle=lot.angle, width=main.w)
    after = Building(base.bid, base.kind, (*base.roofs, roof), base.tanks)
    part = rect(roof.cx, roof.cy, roof.w, roof.d, roof.angle).normalize()
    return Change(sid, "extension", k, base, after, part, after.polygon, roof.height, lot=lot, note=f"house extended by {length:.1f} m over its back yard")


def date_states(city: City, changes: list[Change], rng: np.random.Generator, n_dates: int) -> list[DateState]:
    """The buildings, trees, cars and debris of every date."""
    growth = rng.uniform(0.0, 0.09, len(city.trees))
    cut_at = np.where(rng.random(len(city.trees)) < 0.05, rng.integers(1, max(2, n_dates), len(city.trees)), n_dates + 1)
    states = []
    for k in range(n_dates):
        replaced = {c.before.bid for c in changes if c.before is not None and c.date_index <= k}
        blds = [b for b in city.buildings if b.bid not in replaced]
        blds += [c.after for c in changes if c.after is not None and c.date_index <= k]
        debris = [(c.part, "rubble" if c.date_index == k else "cleared") for c in changes if c.change_type == "demolition" and c.date_index <= k]
        debris = [(g, kind) for g, kind in debris if not any(c.change_type == "new" and c.date_index <= k and c.whole.intersects(g) for c in changes)]
        trees = [Tree(t.x, t.y, t.r * (1 + growth[i] * k), t.h * (1 + growth[i] * k / 2), t.tint) for i, t in enumerate(city.trees) if cut_at[i] > k]
        trees += _saplings(city, np.random.default_rng([int(rng.integers(1 << 30)), k]), k)
        if blds:
            tree_idx = shapely.STRtree([b.polygon.buffer(0.5) for b in blds])
            hit = set(tree_idx.query(shapely.points([(t.x, t.y) for t in trees]), predicate="intersects")[0].tolist())
            trees = [t for i, t in enumerate(trees) if i not in hit]
        states.append(DateState(k, blds, trees, _traffic(city, np.random.default_rng([int(rng.integers(1 << 30)), k])), debris))
    return states


def _saplings(city: City, rng: np.random.Generator, k: int) -> list[Tree]:
    """Young trees planted by date ``k`` on vacant lots (none on the first date)."""
    lots = [lot for lot in city.lots if lot.house is None]
    out = []
    for lot in lots[: 2 * k]:
        x, y = along(lot.front, lot.angle, lot.depth * 0.5)
        out.append(Tree(x, y, 1.2 + 0.3 * k, 3.0 + k, 1.1))
    return out


_CAR_COLOURS = (
    (0.62, 0.62, 0.63, 0.58),
    (0.40, 0.41, 0.43, 0.40),
    (0.05, 0.05, 0.06, 0.06),
    (0.45, 0.06, 0.05, 0.25),
    (0.07, 0.12, 0.30, 0.15),
    (0.55, 0.55, 0.50, 0.50),
)


def _traffic(city: City, rng: np.random.Generator) -> list[tuple[shapely.Polygon, tuple[float, float, float, float], float]]:
    """Cars, trucks and motorbikes on the roads of one date."""
    out = []
    for road in city.roads:
        if road.kind == "arterial":
            lanes = [(-5.5, 0.03, "car"), (-2.0, 0.03, "car"), (2.0, 0.03, "car"), (5.5, 0.03, "car"), (-7.6, 0.25, "bike"), (7.6, 0.25, "bike")]
        elif road.kind == "street":
            lanes = [(-1.6, 0.015, "car"), (1.6, 0.015, "car"), (-2.8, 0.08, "bike"), (2.8, 0.08, "bike")]
        else:
            lanes = [(0.0, 0.05, "bike")]
        for off, dens, kind in lanes:
            n = rng.poisson(dens * road.length)
            for u in rng.uniform(-road.length / 2, road.length / 2, n):
                cx, cy = along((road.cx, road.cy), road.angle, float(u), across=off + rng.normal(0, 0.25))
                if kind == "car":
                    truck = rng.random() < 0.12
                    w, d = (2.4, rng.uniform(7, 10)) if truck else (1.8, rng.uniform(4.0, 4.9))
                    col = _CAR_COLOURS[int(rng.integers(len(_CAR_COLOURS)))]
                    h = 3.0 if truck else 1.5
                else:
                    w, d, h = 0.8, 1.9, 1.2
                    col = _CAR_COLOURS[int(rng.integers(len(_CAR_COLOURS)))]
                out.append((rect(cx, cy, w, d, road.angle + rng.normal(0, 0.03)), col, h))
    return out
