"""Review of the PostGIS permit register: what a city's GIS team's database holds.

Reuses the throwaway server of ``tests/test_postgis.py`` (trust authentication) for the
shapes of tables, and starts a second one with password authentication (the same helpers)
for the connection cases: a password never appears in a message.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_postgis import (  # the throwaway-server helpers and fixture of tests/test_postgis.py
    X0,
    Y0,
    _bin_dir,
    _free_port,
    _insert,
    _run,
    _server_user,
    postgis_url,  # noqa: F401  (a fixture)
    register_frame,
)

from changedetect.errors import ConfigError, PermitSchemaError, RegisterConnectionError
from changedetect.io.registers import _safe_url
from changedetect.permits import load_register

pytestmark = pytest.mark.postgis
psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install '.[postgis]')")

PASSWORD = "p@ss:w/rd"
ENCODED = "p%40ss%3Aw%2Frd"
ROW = ("'new_construction', '2024-01-01', '2025-12-31', 180, 'Số 1', 'active'")
BOX = f"POLYGON(({X0} {Y0}, {X0 + 12} {Y0}, {X0 + 12} {Y0 + 15}, {X0} {Y0 + 15}, {X0} {Y0}))"
ATTRS = ("permit_id text, permit_type text, issued_on date, valid_until date, permitted_area_m2 float8, "
         "address text, status text")


def _sql(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for s in statements:
            conn.execute(s)


@pytest.fixture(scope="module")
def tables(postgis_url: str) -> str:  # noqa: F811
    _sql(postgis_url,
         f"CREATE TABLE rv_null ({ATTRS}, geom geometry(Polygon, 9210))",
         f"INSERT INTO rv_null VALUES ('GP-1', {ROW}, ST_GeomFromText('{BOX}', 9210))",
         f"INSERT INTO rv_null VALUES ('GP-2', {ROW}, NULL)",
         f"CREATE TABLE rv_curve ({ATTRS}, geom geometry(Geometry, 9210))",
         f"INSERT INTO rv_curve VALUES ('GP-1', {ROW}, ST_GeomFromText('{BOX}', 9210))",
         f"INSERT INTO rv_curve VALUES ('GP-2', {ROW}, ST_GeomFromText('CURVEPOLYGON(CIRCULARSTRING("
         f"{X0} {Y0 + 100}, {X0 + 10} {Y0 + 110}, {X0} {Y0 + 100}))', 9210))",
         f"CREATE TABLE rv_srid0 ({ATTRS}, geom geometry)",
         f"INSERT INTO rv_srid0 VALUES ('GP-1', {ROW}, ST_GeomFromText('{BOX}'))",
         f"CREATE TABLE rv_two_geoms ({ATTRS}, centre geometry(Point, 9210), outline geometry(Polygon, 9210))",
         f"INSERT INTO rv_two_geoms VALUES ('GP-1', {ROW}, ST_Centroid(ST_GeomFromText('{BOX}', 9210)), "
         f"ST_GeomFromText('{BOX}', 9210))",
         'CREATE TABLE "Giấy_phép" AS SELECT * FROM rv_null WHERE geom IS NOT NULL',
         'CREATE TABLE "Giấy phép xây dựng" AS SELECT * FROM rv_null WHERE geom IS NOT NULL',
         "CREATE TABLE rv_types AS SELECT permit_id, permit_type, issued_on::text AS ngay_cap, "
         "valid_until::timestamptz AS valid_until, permitted_area_m2::numeric(10, 2) AS dien_tich, address, "
         "status, ST_Multi(geom) AS the_geom FROM rv_null WHERE geom IS NOT NULL")
    return postgis_url


# --- the rows a real table holds -----------------------------------------------------------------

def test_null_geometry_is_a_row_problem_not_a_crash(tables: str) -> None:
    with pytest.raises(PermitSchemaError, match=r"row 2 \(permit_id 'GP-2'\), column 'geometry': missing geometry"):
        load_register(tables, table="rv_null")
    with pytest.warns(UserWarning, match="rejected 1 of 2"):
        got = load_register(tables, table="rv_null", strict=False)
    assert list(got["permit_id"]) == ["GP-1"] and got.crs.to_epsg() == 9210


def test_curve_polygon_is_a_row_problem_naming_the_fix(tables: str) -> None:
    with pytest.raises(PermitSchemaError, match=r"row 2 .*CurvePolygon.*ST_CurveToLine") as err:
        load_register(tables, table="rv_curve")
    assert "row 1" not in str(err.value)
    with pytest.warns(UserWarning, match="rejected 1 of 2"):
        got = load_register(tables, table="rv_curve", strict=False)
    assert list(got["permit_id"]) == ["GP-1"]
    # the fix the message gives works
    fixed = load_register(tables, query="SELECT *, ST_CurveToLine(geom) AS geometry FROM rv_curve")
    assert len(fixed) == 2 and fixed.crs.to_epsg() == 9210


def test_srid_0_takes_the_crs_given(tables: str) -> None:
    """The 'no CRS' message says crs= / --permits-crs: it must work for a database too."""
    with pytest.raises(PermitSchemaError, match="no CRS"):
        load_register(tables, table="rv_srid0")
    got = load_register(tables, table="rv_srid0", crs="EPSG:9210")
    assert got.crs.to_epsg() == 9210 and len(got) == 1
    # a declared SRID wins over crs=, as a file's own CRS does
    assert load_register(tables, table="rv_null", strict=False, crs="EPSG:4326").crs.to_epsg() == 9210


def test_several_geometry_columns_none_called_geom_are_not_guessed(tables: str) -> None:
    with pytest.raises(PermitSchemaError, match=r"several geometry columns \(centre, outline\).*AS geom"):
        load_register(tables, table="rv_two_geoms")
    got = load_register(tables, query="SELECT *, outline AS geom FROM rv_two_geoms")
    assert got.geometry.iloc[0].geom_type == "Polygon"


def test_text_dates_timestamptz_numeric_and_multipolygons(tables: str) -> None:
    got = load_register(tables, table="rv_types")
    assert got["issued_on"].tolist() == [dt.date(2024, 1, 1)]
    assert got["valid_until"].tolist() == [dt.date(2025, 12, 31)]
    assert got["permitted_area_m2"].tolist() == [180.0]
    assert got.geometry.iloc[0].geom_type == "MultiPolygon" and got.crs.to_epsg() == 9210


def test_vietnamese_table_names(tables: str) -> None:
    assert len(load_register(tables, table="Giấy_phép")) == 1
    assert len(load_register(tables, table="public.Giấy_phép")) == 1
    # a name with spaces is refused, and the message says how to read it
    with pytest.raises(ConfigError, match=r"""query='SELECT \* FROM "Giấy phép xây dựng"'"""):
        load_register(tables, table="Giấy phép xây dựng")
    assert len(load_register(tables, query='SELECT * FROM "Giấy phép xây dựng"')) == 1


def test_a_missing_table_is_one_line_naming_the_tables_there(tables: str) -> None:
    for name in ("no_such_table", "nos.rv_null"):
        with pytest.raises(PermitSchemaError) as err:
            load_register(tables, table=name)
        message = str(err.value)
        assert "\n" not in message and "does not exist" in message
        assert "public.rv_null" in message  # a table with a geometry column that is there


def test_psycopg_missing_is_a_clear_error(tables: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ConfigError, match=r"pip install 'changedetect\[postgis\]'"):
        load_register(tables, table="rv_null")


# --- connecting with a password ------------------------------------------------------------------

@pytest.fixture(scope="module")
def password_server() -> Iterator[tuple[str, int]]:
    """(host, port) of a throwaway server where user cdtest has the password PASSWORD."""
    bindir = _bin_dir()
    user = _server_user()
    root = Path(tempfile.mkdtemp(prefix="cd-pgpw-"))
    (root / "pw").write_text(PASSWORD + "\n")
    if user is not None:
        shutil.chown(root, user=user)
        shutil.chown(root / "pw", user=user)
    port = _free_port()
    try:
        _run([str(bindir / "initdb"), "-D", str(root / "data"), "-A", "scram-sha-256", "--pwfile", str(root / "pw"),
              "-U", "cdtest", "-E", "UTF8", "--locale=C", "--no-sync"], user)
        _run([str(bindir / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "server.log"), "-w", "-t", "60",
              "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"], user)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"could not start a throwaway PostgreSQL server: {exc}; {getattr(exc, 'stderr', '')}")
    try:
        _sql(f"postgresql://cdtest:{ENCODED}@127.0.0.1:{port}/postgres", "CREATE DATABASE registers")
        url = f"postgresql://cdtest:{ENCODED}@127.0.0.1:{port}/registers"
        with psycopg.connect(url) as conn:
            conn.execute("CREATE EXTENSION postgis")
            conn.commit()
            _insert(conn, "permits", register_frame(2))
        _sql(url, "CREATE SCHEMA permits", "CREATE TABLE permits.building_permits AS SELECT * FROM permits")
        yield "127.0.0.1", port
    finally:
        subprocess.run(["runuser", "-u", user, "--"] * (user is not None) + [
            str(bindir / "pg_ctl"), "-D", str(root / "data"), "-m", "fast", "-w", "stop"], capture_output=True,
            timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def _no_secret(message: str) -> None:
    for secret in (PASSWORD, ENCODED, "p@ss", "w/rd", "WRONGSECRET", "pa#ss", "pa?ss", "50%off"):
        assert secret not in message, message
    assert "\n" not in message, message


def test_percent_encoded_password_and_schema_table(password_server: tuple[str, int]) -> None:
    host, port = password_server
    got = load_register(f"postgresql://cdtest:{ENCODED}@{host}:{port}/registers", table="permits.building_permits")
    assert len(got) == 2 and got.crs.to_epsg() == 9210


def test_pgpassword_and_pgpass_with_a_url_without_password(
        password_server: tuple[str, int], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    host, port = password_server
    url = f"postgresql://cdtest@{host}:{port}/registers"
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    assert len(load_register(url, table="permits")) == 2
    monkeypatch.delenv("PGPASSWORD")
    with pytest.raises(RegisterConnectionError, match="no password supplied") as err:
        load_register(url, table="permits")
    _no_secret(str(err.value))
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"{host}:{port}:registers:cdtest:{PASSWORD.replace(':', chr(92) + ':')}\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    assert len(load_register(url, table="permits")) == 2


def test_wrong_password_down_server_unknown_database(password_server: tuple[str, int]) -> None:
    host, port = password_server
    cases = {
        f"postgresql://cdtest:WRONGSECRET@{host}:{port}/registers": "password authentication failed",
        f"postgresql://{host}:{port}/registers?user=cdtest&password=WRONGSECRET": "password authentication failed",
        f"postgresql://cdtest:{ENCODED}@{host}:{port}/nodb": 'database "nodb" does not exist',
        f"postgresql://cdtest:{ENCODED}@{host}:{_free_port()}/registers": "Connection refused",
    }
    for url, why in cases.items():
        with pytest.raises(RegisterConnectionError, match=why) as err:
            load_register(url, table="permits")
        _no_secret(str(err.value))


def test_a_password_with_raw_special_characters_is_refused_without_showing_it(
        password_server: tuple[str, int]) -> None:
    host, port = password_server
    for raw in (PASSWORD, "p@ss", "pw/rd", "50%off"):
        url = f"postgresql://cdtest:{raw}@{host}:{port}/registers"
        with pytest.raises(ConfigError, match="percent-encode") as err:
            load_register(url, table="permits")
        _no_secret(str(err.value))
        assert raw not in str(err.value) and "50%" not in str(err.value)
        assert "%40" in str(err.value) and "PGPASSWORD" in str(err.value)


def test_the_cli_says_one_line_and_exits_2(password_server: tuple[str, int], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from changedetect.cli import main as cli_main

    host, port = password_server
    fps = register_frame(1)[["geometry"]].assign(footprint_id="F0", first_seen=dt.date(2024, 4, 1))
    fps.to_file(tmp_path / "fp.gpkg")
    for url in (f"postgresql://cdtest:WRONGSECRET@{host}:{port}/registers",
                f"postgresql://cdtest:{PASSWORD}@{host}:{port}/registers"):
        with pytest.raises(SystemExit) as done:
            cli_main(["match", str(tmp_path / "fp.gpkg"), "--permits", url, "--table", "permits",
                      "--out", str(tmp_path / "v.gpkg")])
        err = capsys.readouterr().err.strip()
        assert done.value.code == 2 and err.startswith("Error: ")
        _no_secret(err)
    assert not (tmp_path / "v.gpkg").exists()


# --- the URL as messages and run.json show it (no server needed) ---------------------------------

@pytest.mark.parametrize("url", [
    "postgresql://cdtest:WRONGSECRET@db:5432/city",
    f"postgresql://cdtest:{ENCODED}@db:5432/city",
    "postgresql://db:5432/city?user=cdtest&password=WRONGSECRET",
    "postgresql://db/city?sslmode=require&PASSWORD=WRONGSECRET",
    "postgresql://cdtest:pa#ss@db:5432/city",
    "postgresql://cdtest:pa?ss@db:5432/city",
    f"postgresql://cdtest:{PASSWORD}@db:5432/city",
    "postgresql://cdtest:p@ss@db:5432/city",
    "postgresql://cdtest:50%off@db:5432/city",
    "postgresql://cdtest:WRONGSECRET@[::1]:5432/city",
])
def test_safe_url_never_shows_a_password(url: str) -> None:
    shown = _safe_url(url)
    _no_secret(shown)
    assert shown.startswith("postgresql://") and ("city" in shown or "***" in shown)


def test_safe_url_keeps_what_is_not_secret() -> None:
    assert _safe_url("postgresql://inspector@db:5432/city") == "postgresql://inspector@db:5432/city"
    assert _safe_url("postgresql://u:x@[::1]:5432/city?sslmode=require") == \
        "postgresql://u:***@[::1]:5432/city?sslmode=require"
    assert _safe_url("postgresql://?service=permits") == "postgresql://?service=permits"


# --- the nightly job -----------------------------------------------------------------------------

def test_the_nightly_job_reads_a_postgis_register_once_a_night(
        tables: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    import changedetect.io.registers as registers
    from changedetect.config import PermitsConfig, PipelineConfig
    from changedetect.nightly import run_nightly
    from changedetect.testing import (
        make_footprints,
        make_model,
        make_permits,
        make_stack,
        write_stack,
    )

    stack = make_stack(n_dates=3, size=64, seed=3)
    write_stack(stack, tmp_path / "catalog" / "district12", prefix="district12")
    permits = make_permits(make_footprints(stack).iloc[:1])
    with psycopg.connect(tables) as conn:
        conn.execute("DROP TABLE IF EXISTS rv_nightly")
        conn.commit()
        _insert(conn, "rv_nightly", permits.assign(district=None))
    config = PipelineConfig().with_model(str(make_model(tmp_path / "tiny-model", threshold=0.02)))
    config = dataclasses.replace(config, detect=dataclasses.replace(config.detect, window=64, overlap=8),
                                 permits=PermitsConfig(table="rv_nightly"))
    reads: list[str] = []
    real = registers.read_register

    def counting(source, **kw):  # noqa: ANN001, ANN003, ANN202
        reads.append(str(source))
        return real(source, **kw)

    monkeypatch.setattr(registers, "read_register", counting)
    dates = sorted(str(t)[:10] for t in stack["time"].values)
    summary = run_nightly(tmp_path / "catalog", permits=tables, state=tmp_path / "state", out=tmp_path / "out",
                          night=dates[-1], workers=1, config=config)
    assert summary.pairs >= 2 and not summary.failed
    # read from the database once (in _check_shared_inputs); every pair reads tonight's copy of it
    assert [r for r in reads if r.startswith("postgresql")] == [tables], reads
    copies = list((tmp_path / "state" / "register").glob("register-*.parquet"))
    assert len(copies) == 1 and all(r == str(copies[0]) for r in reads[1:]), reads


def test_placeholders_and_params_that_do_not_agree_are_a_config_error(tables: str) -> None:
    """psycopg refuses these before anything reaches the server: not 'the database refused the read'."""
    cases = [
        ("SELECT * FROM rv_null WHERE permit_id LIKE 'GP-%' AND status = %(s)s", {"s": "active"}, "%%"),
        ("SELECT * FROM rv_null WHERE status = %(s)s", {"st": "active"}, "--param"),
    ]
    for query, params, hint in cases:
        with pytest.raises(ConfigError, match="placeholder") as err:
            load_register(tables, query=query, params=params, strict=False)
        assert hint in str(err.value) and "database refused" not in str(err.value)
    # the literal written %% works
    got = load_register(tables, query="SELECT * FROM rv_null WHERE permit_id LIKE 'GP-%%' AND status = %(s)s",
                        params={"s": "active"}, strict=False)
    assert list(got["permit_id"]) == ["GP-1"]


def test_a_city_srid_of_its_own_is_read_from_spatial_ref_sys(tables: str) -> None:
    """Cities add their own VN-2000 definitions to spatial_ref_sys (SRIDs that are no EPSG code)."""
    from pyproj import CRS

    vn2000 = CRS.from_epsg(9210)  # (not in every PostGIS's spatial_ref_sys: EPSG added it in 2022)
    with psycopg.connect(tables, autocommit=True) as conn:
        conn.execute("INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, srtext, proj4text) VALUES "
                     "(910210, 'HCMC', 910210, %s, %s)", (vn2000.to_wkt("WKT1_GDAL"), vn2000.to_proj4()))
    _sql(tables,
         "INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, srtext, proj4text) VALUES "
         "(910211, 'HCMC', 910211, 'not a CRS', '')",
         "CREATE TABLE rv_city_srid AS SELECT permit_id, permit_type, issued_on, valid_until, permitted_area_m2, "
         "address, status, ST_SetSRID(geom, 910210) AS geom FROM rv_null WHERE geom IS NOT NULL",
         "CREATE TABLE rv_bad_srid AS SELECT permit_id, permit_type, issued_on, valid_until, permitted_area_m2, "
         "address, status, ST_SetSRID(geom, 910211) AS geom FROM rv_null WHERE geom IS NOT NULL")
    got = load_register(tables, table="rv_city_srid")
    assert got.crs.equals(CRS.from_epsg(9210), ignore_axis_order=True)
    with pytest.raises(PermitSchemaError, match=r"SRID 910211 .*ST_Transform") as err:
        load_register(tables, table="rv_bad_srid")
    assert "\n" not in str(err.value)
