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
import shapely.affinity

from changedetect.samplecity.buildings import extension_roof, house, house_row, large_building
from changedetect.samplecity.layout import City
from changedetect.samplecity.spec import Acquisition, Building, Lot, Tree, along, rect


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


class _Planner:
    """Candidate pools (shuffled once) and the space already taken by changes."""

    def __init__(self, city: City, rng: np.random.Generator) -> None:
        self.city, self.rng = city, rng
        lots = [city.lots[i] for i in rng.permutation(len(city.lots))]
        self.vacant = [lot for lot in lots if lot.house is None and lot.width * lot.depth >= 45]
        self.backs = [lot for lot in lots if lot.house is not None and lot.free_back * lot.width >= 24]
        self.houses = [lot for lot in lots if lot.house is not None and lot.width * lot.depth >= 50]
        self.p_shaded = city.config.shaded_demolitions
        self.shaded = [lot for lot in self.houses if self.p_shaded > 0 and lot.house is not None
                       and shaded_share(lot.house, city.buildings, city.config.acquisitions[0]) >= 0.5]
        self.sites = [city.sites[i] for i in rng.permutation(len(city.sites))]
        self.big = [b for b in city.buildings if b.kind in ("warehouse", "factory")]
        ext = city.config.extent_m
        self.inside = shapely.box(6.0, 6.0, ext - 6.0, ext - 6.0)
        self.taken: list[shapely.Geometry] = []
        self.changes: list[Change] = []

    def free(self, geom: shapely.Geometry) -> bool:
        """Inside the image (6 m from its edges) and 1.5 m from every change so far."""
        return bool(self.inside.contains(geom)) and all(geom.distance(g) > 1.5 for g in self.taken)

    def add(self, ch: Change | None, *, force: bool = False) -> None:
        if ch is not None and (force or self.free(ch.whole)):
            self.changes.append(ch)
            self.taken.append(ch.whole)

    def new(self, k: int, on_site: bool) -> Change | None:
        if on_site and self.sites:
            return _new_on_site(self.city, self.rng, self.sites.pop(), "", k)
        while self.vacant:
            lot = self.vacant.pop()
            if self.free(lot.polygon):
                return _new_on_lot(self.city, self.rng, lot, "", k)
        return None

    def extension(self, k: int) -> Change | None:
        while self.backs:
            lot = self.backs.pop()
            if self.free(lot.polygon) and lot.house is not None:
                return _extend(self.city, self.rng, lot, "", k)
        return None

    def demolition(self, k: int, *, big: bool) -> Change | None:
        for b in self.big if big else []:
            if self.free(b.polygon):
                self.big.remove(b)
                return Change("", "demolition", k, b, None, b.polygon, b.polygon, b.height, note=f"{b.kind} demolished")
        pool = self.shaded if self.shaded and self.rng.random() < self.p_shaded else self.houses
        while pool:
            lot = pool.pop()
            if lot.house is not None and self.free(lot.polygon) and all(c.lot is not lot for c in self.changes):
                b = lot.house
                return Change("", "demolition", k, b, None, b.polygon, b.polygon, b.height, lot=lot, note="house demolished")
        return None


def shaded_share(house: Building, buildings: list[Building], acq: Acquisition) -> float:
    """Share of ``house``'s footprint in the cast shadow of a taller building under ``acq``'s sun.

    Each building at least 1 m taller than the house casts its footprint's sweep away from the
    sun, as far as its height above the house's roof reaches at the sun's elevation (local
    metres: x east, y south).
    """
    az, el = math.radians(acq.sun_azimuth_deg), math.radians(acq.sun_elevation_deg)
    away = np.array([-math.sin(az), math.cos(az)])
    roof = house.polygon
    shade = []
    for b in buildings:
        rise = b.height - house.height
        if b.bid == house.bid or rise < 1.0:
            continue
        reach = rise / math.tan(el)
        if b.polygon.distance(roof) > reach:
            continue
        far = shapely.affinity.translate(b.polygon, *(away * reach))
        shade.append(shapely.union_all([b.polygon, far]).convex_hull)
    if not shade or roof.area <= 0:
        return 0.0
    return float(shapely.union_all(shade).intersection(roof).area / roof.area)


def plan_changes(city: City, rng: np.random.Generator, n_dates: int) -> list[Change]:
    """Choose the construction changes of every consecutive date pair (ids ``S001``... in order)."""
    per_pair = max(6, round(22 * (city.config.size / 1024) ** 2))
    plan = _Planner(city, rng)
    rebuild: Lot | None = None
    for k in range(1, n_dates):
        if rebuild is not None:  # the lot demolished on the previous date gets a new house
            plan.add(_new_on_lot(city, rng, rebuild, "", k, note="rebuilt on the lot demolished before"), force=True)
            rebuild = None
        n_new, n_ext = round(per_pair * 0.45), round(per_pair * 0.3)
        for j in range(n_new):
            plan.add(plan.new(k, on_site=j % 4 == 3))
        for _ in range(n_ext):
            plan.add(plan.extension(k))
        for j in range(per_pair - n_new - n_ext):
            ch = plan.demolition(k, big=k == 1 and j == 0)
            plan.add(ch)
            if k == 1 and rebuild is None and ch is not None and ch.lot is not None and any(c is ch for c in plan.changes):
                rebuild = ch.lot
    return [replace(c, sid=f"S{i:03d}") for i, c in enumerate(plan.changes, 1)]


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
