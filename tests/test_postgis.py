"""The PostGIS register loader against a real, throwaway PostgreSQL + PostGIS server.

The fixture starts its own cluster (:func:`changedetect.testing_postgis.throwaway_postgis`:
initdb in a temporary folder, a free localhost port, trust authentication, fsync off),
creates the postgis extension, loads a register, and stops and deletes the cluster at the end.
``scripts/setup_postgis.sh`` (run by ``make test``) installs the Debian
packages.  initdb refuses to run as root: as root the server runs as the
``postgres`` system user (or a ``cdtest`` user created for the purpose).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import box

from changedetect.errors import ConfigError, PermitSchemaError, RegisterConnectionError
from changedetect.match import match
from changedetect.permits import load_register
from changedetect.testing_postgis import (
    INSTALL_HINT,
    PostgisUnavailable,
    free_port,
    postgis_bin_dir,
    run_as,
    server_user,
    throwaway_postgis,
)

pytestmark = pytest.mark.postgis
psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install '.[postgis]')")

X0, Y0 = 603_800.0, 1_192_100.0  # EPSG:9210
COLUMNS_SQL = (
    "permit_id text, permit_type text, issued_on date, valid_until date, permitted_area_m2 double precision, "
    "address text, status text, district integer, geom geometry(Geometry, {srid})"
)


def _bin_dir() -> Path:
    bindir = postgis_bin_dir()
    if bindir is None:
        pytest.skip(f"PostgreSQL with PostGIS is not installed ({INSTALL_HINT})")
    return bindir


# the throwaway-server helpers under the names other test modules import them by
_server_user, _run, _free_port = server_user, run_as, free_port


def register_frame(n: int = 6) -> gpd.GeoDataFrame:
    rows = []
    for i in range(n):
        geom = box(X0 + 30 * i, Y0, X0 + 30 * i + 12, Y0 + 15)
        rows.append({
            "permit_id": f"GP-2024-{i + 1:04d}", "permit_type": "new_construction",
            "issued_on": dt.date(2024, 1 + i, 1), "valid_until": dt.date(2025, 12, 31),
            "permitted_area_m2": 180.0, "address": f"Số {i + 1} Đường Lê Lợi, Quận 1",
            "status": "active", "district": 12 if i % 2 else 3, "geometry": geom,
        })
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:9210")


def _insert(conn, table: str, frame: gpd.GeoDataFrame) -> None:
    from psycopg import sql

    srid = frame.crs.to_epsg()
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE TABLE {} (" + COLUMNS_SQL.format(srid=int(srid)) + ")").format(
            sql.Identifier(table)))
        for rec in frame.to_dict("records"):
            cur.execute(
                sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s, %s, %s, %s, %s, ST_GeomFromWKB(%s, %s))").format(
                    sql.Identifier(table)),
                (rec["permit_id"], rec["permit_type"], rec["issued_on"], rec["valid_until"],
                 rec["permitted_area_m2"], rec["address"], rec["status"], rec.get("district"),
                 shapely.to_wkb(rec["geometry"]), int(srid)),
            )
    conn.commit()


@pytest.fixture(scope="module")
def postgis_url() -> Iterator[str]:
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(throwaway_postgis("registers"))
        except PostgisUnavailable as exc:
            pytest.skip(str(exc))
        with psycopg.connect(url) as conn:
            _insert(conn, "permits", register_frame())
            _insert(conn, "x", register_frame(1))
            bad = register_frame(3)
            bad.loc[1, "valid_until"] = dt.date(2023, 1, 1)
            bad.loc[2, "permit_type"] = "xay_moi"
            _insert(conn, "bad_permits", bad)
        yield url


def test_table_loads_like_the_file(postgis_url: str, tmp_path: Path) -> None:
    db = load_register(postgis_url, table="permits")
    path = tmp_path / "reg.gpkg"
    register_frame().to_file(path)
    file = load_register(path)
    assert db.crs.to_epsg() == 9210
    assert list(db["permit_id"]) == list(file["permit_id"])
    assert db["issued_on"].tolist() == file["issued_on"].tolist()
    assert db["address"].iloc[0] == "Số 1 Đường Lê Lợi, Quận 1"
    assert all(a.equals(b) for a, b in zip(db.geometry, file.geometry, strict=True))
    assert len(load_register(postgis_url, table="public.permits")) == 6


def test_query_with_parameters(postgis_url: str) -> None:
    got = load_register(postgis_url, query="SELECT * FROM permits WHERE district = %(d)s AND issued_on >= %(since)s",
                        params={"d": 12, "since": dt.date(2024, 3, 1)})
    assert list(got["permit_id"]) == ["GP-2024-0004", "GP-2024-0006"]


def test_identifiers_are_checked_and_nothing_is_injected(postgis_url: str) -> None:
    for table in ("permits; DROP TABLE x", "permits--", 'permits"', "a.b.c", "1permits", "per mits"):
        with pytest.raises(ConfigError, match="plain"):
            load_register(postgis_url, table=table)
    with pytest.raises(ConfigError, match="one SELECT"):
        load_register(postgis_url, query="SELECT * FROM permits; DROP TABLE x")
    with pytest.raises(ConfigError, match="one SELECT"):
        load_register(postgis_url, query="DELETE FROM x")
    # a value that looks like SQL is only ever a value
    got = load_register(postgis_url, query="SELECT * FROM permits WHERE permit_id = %(p)s",
                        params={"p": "x'; DROP TABLE x; --"}, strict=False)
    assert len(got) == 0
    with psycopg.connect(postgis_url) as conn:
        assert conn.execute("SELECT count(*) FROM x").fetchone()[0] == 1


def test_session_is_read_only(postgis_url: str) -> None:
    with pytest.raises(PermitSchemaError, match="read-only"):
        load_register(postgis_url, query="WITH d AS (DELETE FROM x RETURNING *) SELECT * FROM d")


def test_bad_rows_in_the_database_are_reported(postgis_url: str) -> None:
    with pytest.raises(PermitSchemaError) as err:
        load_register(postgis_url, table="bad_permits")
    assert "row 2" in str(err.value) and "row 3" in str(err.value)


def test_unknown_table_and_closed_port(postgis_url: str) -> None:
    with pytest.raises(PermitSchemaError, match="refused"):
        load_register(postgis_url, table="no_such_table")
    closed = f"postgresql://cdtest@127.0.0.1:{_free_port()}/registers"
    with pytest.raises(RegisterConnectionError, match="cannot connect"):
        load_register(closed, table="permits")


def test_same_violations_as_the_file(postgis_url: str, tmp_path: Path) -> None:
    reg = register_frame()
    path = tmp_path / "reg.gpkg"
    reg.to_file(path)
    fps = reg.to_crs("EPSG:32648")[["geometry"]].copy()
    fps["footprint_id"] = [f"F{i}" for i in range(len(fps))]
    fps["first_seen"] = dt.date(2024, 4, 15)
    fps.loc[0, "geometry"] = fps.geometry.iloc[0].buffer(3, join_style="mitre")  # exceeds
    a = match(fps, load_register(postgis_url, table="permits"))
    b = match(fps, load_register(path))
    assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))
    assert set(a["status"]) == {"exceeds_permit", "permitted", "before_permit"}


def test_sample_register_round_trips_through_postgis(postgis_url: str, repo_root: Path) -> None:
    sample = repo_root / "permits" / "sample_register.gpkg"
    if not sample.exists():
        pytest.skip("permits/sample_register.gpkg not generated yet")
    permits = load_register(sample)
    with psycopg.connect(postgis_url) as conn:
        conn.execute("DROP TABLE IF EXISTS sample_register")
        conn.commit()
        _insert(conn, "sample_register", permits.assign(district=None))
    db = load_register(postgis_url, table="sample_register")
    assert list(db["permit_id"]) == list(permits["permit_id"])
    assert all(a.equals_exact(b, 1e-9) for a, b in zip(db.geometry, permits.geometry, strict=True))
    truth = repo_root / "sample_tiles" / "truth" / "footprints.gpkg"
    if truth.exists():
        fps = gpd.read_file(truth, layer="footprints").rename(columns={"structure_id": "footprint_id"})
        a, b = match(fps, db), match(fps, permits)
        assert a.drop(columns="geometry").equals(b.drop(columns="geometry"))


def test_run_and_its_cli_read_the_register_from_postgis(postgis_url: str, tmp_path: Path) -> None:
    """`changedetect run --permits postgresql://... --table T` (or [permits] table = T): the same
    violations as the GeoPackage; without a table, one clear error."""
    import dataclasses

    from changedetect.cli import main as cli_main
    from changedetect.config import PermitsConfig, PipelineConfig
    from changedetect.pipeline import run
    from changedetect.testing import (
        make_footprints,
        make_model,
        make_permits,
        make_stack,
        write_stack,
    )

    stack = make_stack(n_dates=2, size=64, seed=3)
    write_stack(stack, tmp_path / "tiles", prefix="district12")
    make_permits(make_footprints(stack).iloc[:2]).to_file(tmp_path / "reg.gpkg")
    permits = load_register(tmp_path / "reg.gpkg")
    with psycopg.connect(postgis_url) as conn:
        conn.execute("DROP TABLE IF EXISTS run_register")
        conn.commit()
        _insert(conn, "run_register", permits.assign(district=None))
    config = PipelineConfig().with_model(str(make_model(tmp_path / "tiny-model")))
    config = dataclasses.replace(  # a random model: make any change a footprint
        config, detect=dataclasses.replace(config.detect, window=64, overlap=8),
        vectorize=dataclasses.replace(config.vectorize, threshold=0.02, low_threshold=0.02))
    file_run = run(tmp_path / "tiles", permits=tmp_path / "reg.gpkg", out=tmp_path / "file", config=config)
    db_run = run(tmp_path / "tiles", permits=postgis_url, out=tmp_path / "db",
                 config=dataclasses.replace(config, permits=PermitsConfig(table="run_register")))
    a = gpd.read_file(tmp_path / "file" / "violations.gpkg", layer="violations").drop(columns="geometry")
    b = gpd.read_file(tmp_path / "db" / "violations.gpkg", layer="violations").drop(columns="geometry")
    assert len(a) == file_run.n_footprints >= 1 and a.equals(b) and db_run.counts == file_run.counts
    toml = tmp_path / "run.toml"
    toml.write_text(config.to_toml(), encoding="utf-8")
    base = ["-q", "run", str(tmp_path / "tiles"), "--permits", postgis_url, "--config", str(toml)]
    with pytest.raises(SystemExit) as no_table:
        cli_main([*base, "--out", str(tmp_path / "cli0")])
    assert no_table.value.code == 2  # "a postgresql:// register needs exactly one of table= or query="
    with pytest.raises(SystemExit) as done:
        cli_main([*base, "--table", "run_register", "--out", str(tmp_path / "cli")])
    assert done.value.code == 0
    assert gpd.read_file(tmp_path / "cli" / "violations.gpkg", layer="violations").drop(columns="geometry").equals(b)
