"""Review: the nightly job with a PostGIS parcel layer (``--parcels postgresql://...``, ``[parcels] table``):
read once a night, kept as tonight's copy ``STATE/register/parcels-<sha>.parquet`` that every pair reads
(with the ``[parcels]`` options cleared: the copy's columns are already mapped), and the night's lists
carry the parcel.  Uses the throwaway server of ``tests/test_postgis.py``."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from test_postgis import postgis_url  # noqa: F401  (a fixture)
from test_review_nightly_parcels import ADDRESS, _bytes, _lots, _night
from test_review_nightly_rerun_withdraw import NIGHTS, _world

pytestmark = pytest.mark.postgis
psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install '.[postgis]')")


def test_a_postgis_layer_is_read_once_a_night_and_its_copy_read_by_the_pairs(
        postgis_url: str, tmp_path: Path) -> None:  # noqa: F811
    import shutil

    lots = gpd.read_file(_lots(tmp_path / "lots.gpkg"))
    with psycopg.connect(postgis_url) as conn:
        conn.execute("DROP TABLE IF EXISTS thua_dat_nightly")
        conn.execute("CREATE TABLE thua_dat_nightly (ma_thua text, so_to text, so_thua text, dia_chi text, "
                     "loai_dat text, geom geometry(Polygon, 32632))")
        for i, rec in enumerate(lots.to_dict("records")):
            conn.execute("INSERT INTO thua_dat_nightly VALUES (%s, %s, %s, %s, %s, ST_GeomFromWKB(%s, 32632))",
                         (f"T{i}", rec["so_to"], rec["so_thua"], rec["dia_chi"], rec["loai_dat"],
                          shapely.to_wkb(rec["geometry"])))
        conn.commit()
    (tmp_path / "w").mkdir()
    world = _world(tmp_path / "w")
    shutil.copy(world["held"], world["tiles"] / "s2" / world["held"].name)
    with world["config"].open("a", encoding="utf-8") as f:
        f.write('\n[parcels]\ntable = "thua_dat_nightly"\ncolumn_map = { ma_thua = "parcel_id" }\n')
    for night in NIGHTS[:2]:
        summary = _night(world, night, parcels=postgis_url)
        assert not summary.failed, summary.failed
    state, out = world["root"] / "state", world["root"] / "out"
    assert len(list((state / "register").glob("parcels-*.parquet"))) == 1
    house = gpd.read_file(out / "open_violations.gpkg", layer="open_violations")
    assert list(house["parcel_id"]) == ["T0"] and list(house["parcel_address"]) == [ADDRESS]
    before = _bytes(out)
    _night(world, NIGHTS[1], parcels=postgis_url)
    assert _bytes(out) == before
