"""The sample city's cadastral parcel layer: generated, valid, reproducible, and committed as generated."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from changedetect.samplecity import CityConfig, Plan, plan
from changedetect.samplecity.cadastre import LAND_USES, PARCEL_COLUMNS
from changedetect.samplecity.output import write_gpkg
from changedetect.samplecity.permits import PERMIT_COLUMNS

REPO = Path(__file__).resolve().parents[1]
PERMITS = REPO / "permits"
TILES = REPO / "sample_tiles"
DATE = CityConfig().register_date.isoformat()


@pytest.fixture(scope="module")
def parcels() -> gpd.GeoDataFrame:
    return gpd.read_file(PERMITS / "sample_parcels.gpkg", layer="parcels")


def test_committed_parcels_equal_a_regeneration(full_plan: Plan, tmp_path: Path) -> None:
    fresh = write_gpkg(tmp_path / "parcels.gpkg", {"parcels": full_plan.parcels}, date=DATE)
    assert fresh.read_bytes() == (PERMITS / "sample_parcels.gpkg").read_bytes()


def test_the_parcels_leave_the_other_outputs_as_they_were(full_plan: Plan, tmp_path: Path) -> None:
    """The parcels draw from no stream the city shares: the register regenerates byte for byte."""
    stored = full_plan.register[PERMIT_COLUMNS]
    fresh = write_gpkg(tmp_path / "register.gpkg", {"permits": stored}, date=DATE)
    assert fresh.read_bytes() == (PERMITS / "sample_register.gpkg").read_bytes()


def test_parcels_are_reproducible(tmp_path: Path) -> None:
    cfg = CityConfig(size=256, seed=5)
    first = plan(cfg).parcels
    a = write_gpkg(tmp_path / "a.gpkg", {"parcels": first}, date=DATE)
    b = write_gpkg(tmp_path / "b.gpkg", {"parcels": plan(cfg).parcels}, date=DATE)
    assert len(first) > 20
    assert a.read_bytes() == b.read_bytes()


def test_parcels_follow_the_layout(parcels: gpd.GeoDataFrame) -> None:
    assert list(parcels.columns) == PARCEL_COLUMNS
    assert parcels.crs.to_epsg() == 9210
    assert parcels["parcel_id"].is_unique
    assert set(parcels["land_use"]) == set(LAND_USES)  # the committed city has each kind of land
    assert parcels["address"].str.contains("Quận 12, TP. Hồ Chí Minh").all()
    assert parcels.geometry.is_valid.all() and (parcels.geom_type == "Polygon").all()
    for sheet, group in parcels.groupby("sheet"):
        assert sorted(group["parcel_no"]) == list(range(1, len(group) + 1)), sheet
    assert sorted(parcels["sheet"].unique()) == list(range(1, parcels["sheet"].max() + 1))


def test_parcels_do_not_overlap_or_cover_roads(parcels: gpd.GeoDataFrame, full_plan: Plan) -> None:
    cfg = CityConfig()
    geoms = list(parcels.to_crs(32648).geometry)
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    overlaps = [(int(i), int(j)) for i, j in zip(left, right, strict=True) if i < j and geoms[i].intersection(geoms[j]).area > 0.05]
    assert not overlaps, overlaps[:5]
    roads = shapely.union_all([cfg.to_utm(r.polygon) for r in full_plan.city.roads])
    on_roads = [shapely.intersection(g, roads).area / g.area for g in geoms]
    assert max(on_roads) < 0.01


def test_every_planted_structure_lies_on_one_parcel(parcels: gpd.GeoDataFrame) -> None:
    structures = gpd.read_file(TILES / "truth" / "footprints.gpkg", layer="structures").to_crs(9210)
    uses = {"new": {"ODT", "SKC"}, "extension": {"ODT"}, "demolition": {"ODT", "SKC"}}
    for _, s in structures.iterrows():
        share = parcels.intersection(s.geometry).area / s.geometry.area
        assert share.max() > 0.95, (s["structure_id"], s["note"], share.max())
        assert parcels["land_use"][share.idxmax()] in uses[s["change_type"]], s["structure_id"]


def test_a_permits_parcel_carries_its_address(parcels: gpd.GeoDataFrame) -> None:
    register = gpd.read_file(PERMITS / "sample_register.gpkg", layer="permits")
    for _, permit in register.iterrows():
        share = parcels.intersection(permit.geometry).area / permit.geometry.area
        assert share.max() >= 0.5, permit["permit_id"]
        assert parcels["address"][share.idxmax()] == permit["address"], permit["permit_id"]
