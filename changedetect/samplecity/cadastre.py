"""The sample city's cadastral parcel layer (``permits/sample_parcels.gpkg``).

One parcel (*thửa đất*) per piece of land the plan gives an owner, on one map sheet
(*tờ bản đồ*) per block between the streets:

- every lot of a residential block (a house's, or a vacant one): ``ODT`` (urban residential land);
- an industrial block cut between its buildings (each factory, warehouse or office block on the
  land nearer to it than to any other): ``SKC`` (production and business land);
- the school's block: ``DGD`` (education);
- on green land, each small house's yard (``ODT``), each site kept for a new building (``SKC``
  when a warehouse is built there, ``ODT`` when houses or a boarding house are, else ``BHK``), and the rest of the block, in its separate pieces (``BHK``: annual crops).

Roads, alleys and the canal's banks are no parcel.  A parcel with a permit of the register on it
(half of the permit's footprint or more) carries that permit's address (the latest issued, when
several do); any other gets one by :func:`~changedetect.samplecity.addresses.address_for` from a
generator of its own (``[seed, 8]``), so the city's shared random stream, and every other file,
stays as it was.  Sheets are numbered in plan order (north-west first in the street frame),
parcels within a sheet from north to south, then west to east.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from changedetect.samplecity.addresses import address_for
from changedetect.samplecity.changes import Change
from changedetect.samplecity.layout import City
from changedetect.samplecity.spec import IMAGE_EPSG, REGISTER_EPSG, CityConfig, along, rect

PARCEL_COLUMNS = ["parcel_id", "sheet", "parcel_no", "address", "land_use", "geometry"]
#: The land-use codes used (Vietnamese cadastral codes) and what they mean.
LAND_USES = {
    "ODT": "đất ở tại đô thị (urban residential land)",
    "SKC": "đất cơ sở sản xuất phi nông nghiệp (production and business land)",
    "DGD": "đất xây dựng cơ sở giáo dục và đào tạo (education)",
    "BHK": "đất bằng trồng cây hằng năm khác (annual crops)",
}
_MIN_PIECE_M2 = 20.0
_NUMBER = re.compile(r"(?<=^Số )[0-9/]+|(?<=^Lô )[A-E][0-9]+")
_LOT_KINDS = {"ODT": "house", "SKC": "factory", "DGD": "school", "BHK": "house"}


@dataclass
class _Parcel:
    geom: shapely.Geometry  # local metres
    land_use: str
    block: int
    address: str = ""


def build_parcels(city: City, changes: list[Change], register: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The parcel layer of ``city`` (EPSG:9210): one row per parcel of the plan, which reaches
    a little beyond the image (as the register does).

    ``register`` is the stored permit register (any CRS); its addresses are the parcels' where
    a permit lies on a parcel.
    """
    cfg = city.config
    parcels = [p for p in _parcels(city, changes) if p.geom.area >= _MIN_PIECE_M2]
    sheets = _number(city, parcels)
    _address(city, parcels, _permit_addresses(cfg, parcels, register), np.random.default_rng([cfg.seed, 8]))
    rows = [
        {
            "parcel_id": f"Q12-{sheet:02d}-{no:03d}",
            "sheet": sheet,
            "parcel_no": no,
            "address": p.address,
            "land_use": p.land_use,
            "geometry": cfg.to_utm(p.geom),
        }
        for p, (sheet, no) in zip(parcels, sheets, strict=True)
    ]
    frame = gpd.GeoDataFrame(pd.DataFrame(rows, columns=PARCEL_COLUMNS), geometry="geometry", crs=f"EPSG:{IMAGE_EPSG}").to_crs(REGISTER_EPSG)
    frame["geometry"] = shapely.set_precision(frame.geometry.values, 0.01)
    frame[["sheet", "parcel_no"]] = frame[["sheet", "parcel_no"]].astype("int32")
    return frame.sort_values(["sheet", "parcel_no"]).reset_index(drop=True)


def _parcels(city: City, changes: list[Change]) -> list[_Parcel]:
    """Every parcel of the plan (unnumbered), block by block."""
    public = shapely.union_all([g for g, kind in city.cover if kind == "bank"] + [shapely.Polygon()])
    boxes = [b for b, _ in city.blocks]
    out: list[_Parcel] = []
    for lot in city.lots:
        out.append(_Parcel(lot.polygon, "ODT", _block_of(boxes, lot.polygon)))
    large = [b.polygon for b in city.buildings if b.kind in ("factory", "warehouse", "block")]
    for k, (box, use) in enumerate(city.blocks):
        land = box.difference(public)
        if use == "industrial":
            out += [_Parcel(g, "SKC", k) for g in _split(land, [g for g in large if box.contains(g.centroid)])]
        elif use == "school":
            out += [_Parcel(g, "DGD", k) for g in _pieces(land)]
        elif use == "green":
            out += _green(city, changes, k, box, land)
    return out


def _green(city: City, changes: list[Change], k: int, box: shapely.Polygon, land: shapely.Geometry) -> list[_Parcel]:
    """Green land's parcels: house yards, building sites, and the rest in its pieces."""
    standing = {b.bid for b in city.buildings}
    out = [_Parcel(g, "ODT", k) for yard, bid in city.yards if bid in standing and box.contains(yard.centroid) for g in _pieces(yard.intersection(land))[:1]]
    for front, angle, w, d in city.sites:
        site = rect(*along(front, angle, d / 2), w, d, angle)
        if box.contains(site.centroid):
            out += [_Parcel(g, _site_use(site, changes), k) for g in _pieces(site.intersection(land))[:1]]
    rest = land.difference(shapely.union_all([p.geom for p in out] + [shapely.Polygon()]))
    return out + [_Parcel(g, "BHK", k) for g in _pieces(rest)]


def _site_use(site: shapely.Polygon, changes: list[Change]) -> str:
    built = [c.after.kind for c in changes if c.after is not None and c.lot is None and site.contains(c.whole.centroid)]
    if not built:
        return "BHK"
    return "SKC" if built[0] in ("warehouse", "factory") else "ODT"


def _block_of(boxes: list[shapely.Polygon], geom: shapely.Geometry) -> int:
    c = geom.centroid
    return min(range(len(boxes)), key=lambda i: (not boxes[i].contains(c), boxes[i].distance(c)))


def _pieces(geom: shapely.Geometry) -> list[shapely.Polygon]:
    """The polygons of ``geom`` of at least the minimum parcel area, largest first."""
    parts = [g for g in shapely.get_parts(shapely.make_valid(geom)) if g.geom_type == "Polygon" and g.area >= _MIN_PIECE_M2]
    return sorted(parts, key=lambda g: (-round(g.area, 3), g.centroid.x, g.centroid.y))


def _split(land: shapely.Geometry, buildings: list[shapely.Geometry]) -> list[shapely.Polygon]:
    """``land`` cut into one piece per building: the ground nearer to it than to any other.

    The cells are the Voronoi cells of points every metre along the buildings' outlines,
    gathered by building, so that no cut crosses a building; pieces of ``land`` that no
    building's cell reaches (the canal can cut a block in two) are parcels of their own.
    """
    if len(buildings) < 2:
        return _pieces(land)
    seen: dict[tuple[float, float], int] = {}
    for i, b in enumerate(buildings):
        for x, y in shapely.get_coordinates(shapely.segmentize(b.exterior, 1.0)):
            seen.setdefault((round(float(x), 3), round(float(y), 3)), i)
    owner = list(seen.values())
    cells = shapely.voronoi_polygons(shapely.MultiPoint(list(seen)), extend_to=land.envelope.buffer(10.0), ordered=True)
    parts = shapely.get_parts(cells)
    merged = [shapely.union_all([parts[j] for j in range(len(parts)) if owner[j] == i]) for i in range(len(buildings))]
    out = []
    for cell, b in zip(shapely.coverage_simplify(merged, 0.5), buildings, strict=True):  # straight cut lines
        out += [g for g in _pieces(land.intersection(cell)) if g.intersects(b)]
    taken = shapely.union_all(out + [shapely.Polygon()])
    return out + _pieces(land.difference(taken))


def _number(city: City, parcels: list[_Parcel]) -> list[tuple[int, int]]:
    """Sheet and parcel numbers; reorders ``parcels`` in place into that order."""
    blocks = sorted({p.block for p in parcels})
    sheet_of = {b: i + 1 for i, b in enumerate(blocks)}

    def key(p: _Parcel) -> tuple[int, int, float]:
        c = p.geom.centroid
        return (sheet_of[p.block], int(c.y // 8.0), round(c.x, 3))

    parcels.sort(key=key)
    out, count = [], dict.fromkeys(sheet_of.values(), 0)
    for p in parcels:
        sheet = sheet_of[p.block]
        count[sheet] += 1
        out.append((sheet, count[sheet]))
    return out


def _permit_addresses(cfg: CityConfig, parcels: list[_Parcel], register: gpd.GeoDataFrame) -> dict[int, str]:
    """Parcel index -> the address of the latest permit lying (half or more) on it."""
    reg = register.to_crs(IMAGE_EPSG)
    local = [cfg.to_local(g) for g in reg.geometry]
    tree = shapely.STRtree([p.geom for p in parcels])
    best: dict[int, tuple[str, str, str]] = {}
    for g, issued, pid, addr in zip(local, reg["issued_on"], reg["permit_id"], reg["address"], strict=True):
        for j in tree.query(g, predicate="intersects"):
            if parcels[int(j)].geom.intersection(g).area >= 0.5 * g.area:
                old = best.get(int(j))
                if old is None or (str(issued), str(pid)) > old[:2]:
                    best[int(j)] = (str(issued), str(pid), str(addr))
    return {j: v[2] for j, v in best.items()}


def _address(city: City, parcels: list[_Parcel], from_permits: dict[int, str], rng: np.random.Generator) -> None:
    """Give every parcel its address: its permit's, or a fresh one not used before (a few tries)."""
    used = set(from_permits.values())
    for j, p in enumerate(parcels):
        if j in from_permits:
            p.address = from_permits[j]
            continue
        kind = _LOT_KINDS[p.land_use]
        addr = address_for(city, p.geom, kind, rng)
        for _ in range(3):  # an alley's house number or a lot's letter is drawn: draw again
            if addr not in used:
                break
            addr = address_for(city, p.geom, kind, rng)
        # a street number that the position gives twice: 125A, 125B...
        free = [a for a in (_with_letter(addr, x) for x in "ABCDEFGHK") if a not in used]
        p.address = addr if addr not in used or not free else free[0]
        used.add(p.address)


def _with_letter(address: str, letter: str) -> str:
    """``Số 125 Đường ...`` -> ``Số 125A Đường ...`` (a lot: ``Lô B4`` -> ``Lô B4A``)."""
    return _NUMBER.sub(lambda m: m.group(0) + letter, address, count=1)


__all__ = ["LAND_USES", "PARCEL_COLUMNS", "build_parcels"]
