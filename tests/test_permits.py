"""Permit register: schema, every validation problem with row/column/reason, loaders, modes."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import warnings
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Polygon, box

from changedetect.errors import PermitRowWarning, PermitSchemaError
from changedetect.io.registers import RegisterReadError, read_register
from changedetect.io.vectors import write_vector
from changedetect.permits import SCHEMA, load_register, map_columns, validate_register

REPO = Path(__file__).resolve().parents[1]
X0, Y0 = 603_800.0, 1_192_100.0  # Ho Chi Minh City in EPSG:9210 (VN-2000 / TM-3 105-45)


def good_register(n: int = 4, crs: str = "EPSG:9210") -> gpd.GeoDataFrame:
    rows = []
    for i in range(n):
        geom = box(X0 + 30 * i, Y0, X0 + 30 * i + 12, Y0 + 15)
        rows.append({
            "permit_id": f"GP-2024-{i + 1:04d}",
            "permit_type": ["new_construction", "extension", "renovation", "demolition"][i % 4],
            "issued_on": dt.date(2024, 1, 1 + i), "valid_until": dt.date(2025, 6, 30),
            "permitted_area_m2": float(geom.area),
            "address": f"Số {12 + i} Đường Nguyễn Thị Minh Khai, Phường Đa Kao, Quận 1",
            "status": "active", "geometry": geom,
        })
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)


def bad_register() -> gpd.GeoDataFrame:
    """Row 1 good, then one row per kind of problem (rows 2..10)."""
    g = good_register(10)
    for col in ("address", "permit_id", "permit_type", "status"):
        g[col] = g[col].astype(object)
    g["issued_on"] = [d.isoformat() for d in g["issued_on"]]  # as a CSV or a text column gives them
    g.loc[1, "geometry"] = Polygon([(X0, Y0), (X0 + 10, Y0 + 10), (X0 + 10, Y0), (X0, Y0 + 10)])  # bow-tie
    g.loc[2, "geometry"] = Polygon()
    g.loc[3, "issued_on"] = "2024-02-30"
    g.loc[4, "valid_until"] = dt.date(2023, 12, 31)
    g.loc[5, "permit_id"] = "GP-2024-0001"
    g.loc[6, "address"] = b"Qu\xe9n 1"
    g.loc[7, "permit_type"] = "xay_moi"
    g.loc[8, "status"] = "pending"
    g.loc[9, "permitted_area_m2"] = -5.0
    return g


def test_schema_json_matches_the_module() -> None:
    on_disk = json.loads((REPO / "permits" / "schema.json").read_text(encoding="utf-8"))
    assert on_disk == SCHEMA
    assert set(SCHEMA["required"]) <= set(SCHEMA["columns"])


def test_every_problem_is_reported_with_row_column_reason() -> None:
    res = validate_register(bad_register(), name="bad.gpkg")
    found = {(p.row, p.column) for p in res.problems}
    assert found == {
        (3, "geometry"), (4, "issued_on"), (5, "valid_until"), (6, "permit_id"), (7, "address"),
        (8, "permit_type"), (9, "status"), (10, "permitted_area_m2"),
    }
    text = res.report()
    assert "'2024-02-30' is not a date (expected YYYY-MM-DD" in text
    assert "valid_until 2023-12-31 is before issued_on 2024-01-05" in text
    assert "duplicated permit_id 'GP-2024-0001' (first on row 1)" in text
    assert "a renewal or an amendment keeps one row per permit_id" in text  # what to do about it
    assert "not valid UTF-8 (byte 0xe9" in text
    assert "unknown permit_type 'xay_moi' (allowed: new_construction" in text
    assert "unknown status 'pending'" in text
    assert "empty geometry" in text
    assert [p.row for p in res.repairs] == [2] and "Self-intersection" in res.repairs[0].reason
    assert list(res.permits["permit_id"]) == ["GP-2024-0001", "GP-2024-0002"]
    assert res.permits.geometry.is_valid.all()
    assert sorted(res.rejects["row"]) == list(range(3, 11))
    assert res.rejects["reject_reason"].str.len().gt(0).all()


def test_missing_crs_and_missing_columns_are_fatal(tmp_path: Path) -> None:
    res = validate_register(good_register().set_crs(None, allow_override=True), name="x")
    assert res.fatal and "no CRS" in res.report() and "EPSG:9210" in res.report()
    res = validate_register(good_register().drop(columns=["valid_until"]), name="x")
    assert res.fatal and "valid_until" in res.report()
    assert "--column-map on the command line" in res.report()
    path = tmp_path / "nocrs.csv"
    frame = pd.DataFrame(good_register().drop(columns="geometry"))
    frame["wkt"] = good_register().geometry.to_wkt()
    frame.to_csv(path, index=False)
    with pytest.raises(PermitSchemaError, match="no CRS"):
        load_register(path, strict=False)
    assert len(load_register(path, crs="EPSG:9210")) == 4


def test_strict_raises_with_every_problem(tmp_path: Path) -> None:
    path = write_vector(bad_register(), tmp_path / "bad.parquet")
    with pytest.raises(PermitSchemaError) as err, warnings.catch_warnings():
        warnings.simplefilter("ignore", PermitRowWarning)
        load_register(path)
    msg = str(err.value)
    assert "8 problem(s) in 8 row(s)" in msg and "row 10" in msg
    # the hint names what Python, the command line and the configuration file have
    assert "strict=False in Python, or give --lenient on the command line" in msg and "(--lenient)" not in msg


def test_strict_lists_the_first_20_and_counts_the_rest() -> None:
    g = good_register(30)
    g["status"] = "unknown"
    text = validate_register(g, name="x").report()
    assert text.count("unknown status") == 20 and "... and 10 more" in text


def test_lenient_keeps_good_rows_and_writes_rejects(tmp_path: Path) -> None:
    src = write_vector(bad_register(), tmp_path / "bad.parquet")
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    rejects = tmp_path / "rejects.gpkg"
    with pytest.warns(PermitRowWarning, match="rejected 8 of 10"), pytest.warns(
        PermitRowWarning, match=r"repaired 1 row\(s\): row 2 .*Self-intersection"
    ):
        permits = load_register(src, strict=False, rejects_path=rejects)
    assert list(permits["permit_id"]) == ["GP-2024-0001", "GP-2024-0002"]
    back = gpd.read_file(rejects)
    assert len(back) == 8 and "reject_reason" in back.columns
    assert back.set_index("row").loc[4, "reject_reason"].startswith("issued_on: '2024-02-30'")
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest  # the register is never modified


def test_register_file_is_not_modified(tmp_path: Path) -> None:
    src = write_vector(good_register(), tmp_path / "reg.gpkg")
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    load_register(src)
    load_register(src, strict=False, rejects_path=tmp_path / "rej.gpkg")
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reg.gpkg"]  # no rejects: nothing written


@pytest.mark.filterwarnings("ignore:.*(truncated|laundered).*")
@pytest.mark.parametrize("ext", [".gpkg", ".geojson", ".shp", ".parquet", ".csv"])
def test_each_file_format_loads(tmp_path: Path, ext: str) -> None:
    reg = good_register()
    path = tmp_path / f"reg{ext}"
    if ext == ".shp":
        reg.to_file(path, engine="pyogrio")  # names cut to 10 characters: mapped back by default
    elif ext == ".csv":
        table = pd.DataFrame(reg.drop(columns="geometry"))
        table["wkt"] = "SRID=9210;" + reg.geometry.to_wkt()
        table.to_csv(path, index=False)
    else:
        write_vector(reg, path)
    permits = load_register(path)
    assert list(permits["permit_id"]) == list(reg["permit_id"])
    assert permits["issued_on"].iloc[1] == dt.date(2024, 1, 2)
    assert permits["address"].iloc[0] == "Số 12 Đường Nguyễn Thị Minh Khai, Phường Đa Kao, Quận 1"
    back = permits.to_crs(9210)
    assert back.geometry.iloc[0].symmetric_difference(reg.geometry.iloc[0]).area < 0.5


def test_csv_with_lon_lat_gives_point_permits(tmp_path: Path) -> None:
    reg = good_register()
    centres = reg.geometry.centroid.to_crs(4326)
    table = pd.DataFrame(reg.drop(columns="geometry"))
    table["lon"] = centres.x
    table["lat"] = centres.y.astype(object)
    table.loc[2, "lat"] = "north"
    path = tmp_path / "reg.csv"
    table.to_csv(path, index=False)
    with pytest.warns(PermitRowWarning, match="rejected 1 of 4"):
        permits = load_register(path, strict=False)
    assert permits.crs.to_epsg() == 4326 and (permits.geom_type == "Point").all()
    assert len(permits) == 3


def test_csv_non_utf8_and_bad_wkt_are_reported(tmp_path: Path) -> None:
    reg = good_register(3)
    table = pd.DataFrame(reg.drop(columns="geometry"))
    table["wkt"] = reg.geometry.to_wkt()
    table.loc[2, "wkt"] = "POLYGON ((1 2, 3"
    text = table.to_csv(index=False).encode("utf-8").replace(b"S\xe1\xbb\x91 13", b"S\xf3 13")
    path = tmp_path / "reg.csv"
    path.write_bytes(text)
    res = validate_register(read_register(path, crs="EPSG:9210")[0], name=str(path))
    assert {(p.row, p.column) for p in res.problems} == {(2, "address"), (3, "geometry")}
    assert "unparseable WKT" in res.report() and "not valid UTF-8" in res.report()


@pytest.mark.parametrize("sep", [",", "\t"])
def test_a_utf16_csv_as_excel_saves_it_reads_as_its_utf8_twin(tmp_path: Path, sep: str) -> None:
    """Excel's 'CSV UTF-16' / 'Unicode Text' (tab-separated): 'Internal error: UnicodeEncodeError' before."""
    reg = good_register(3)
    table = pd.DataFrame(reg.drop(columns="geometry"))
    table["wkt"] = reg.geometry.to_wkt()
    table.to_csv(tmp_path / "reg16.csv", index=False, encoding="utf-16", sep=sep)
    table.to_csv(tmp_path / "reg8.csv", index=False, encoding="utf-8")
    got, want = load_register(tmp_path / "reg16.csv", crs="EPSG:9210"), load_register(tmp_path / "reg8.csv", crs="EPSG:9210")
    pd.testing.assert_frame_equal(pd.DataFrame(got.drop(columns="geometry")), pd.DataFrame(want.drop(columns="geometry")))
    assert got.geometry.geom_equals_exact(want.geometry, 1e-9).all() and "Số" in " ".join(got["address"])
    (tmp_path / "bad16.csv").write_bytes(b"\xff\xfe" + "permit_id".encode("utf-16-le") + b"\x00\xd8")  # a lone surrogate
    with pytest.raises(PermitSchemaError, match="bad16.csv' starts as UTF-16 text but does not decode"):
        load_register(tmp_path / "bad16.csv", crs="EPSG:9210")


def test_gpkg_with_non_utf8_text(tmp_path: Path) -> None:
    path = write_vector(good_register(2), tmp_path / "reg.gpkg")
    con = sqlite3.connect(path)
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        con.execute(f'DROP TRIGGER "{name}"')
    con.execute("UPDATE reg SET address = CAST(x'5175e96e2031' AS TEXT) WHERE fid = 2")
    con.commit()
    con.close()
    res = validate_register(read_register(path)[0], name="reg.gpkg")
    assert [(p.row, p.column) for p in res.problems] == [(2, "address")]
    assert res.permits["address"].iloc[0].startswith("Số 12")


def test_column_mapping() -> None:
    reg = good_register().rename(columns={
        "permit_id": "so_giay_phep", "issued_on": "Ngay_Cap", "valid_until": "expiry_date",
        "permitted_area_m2": "dien_tich", "status": "trang_thai", "permit_type": "kind_of_work",
    })
    assert validate_register(map_columns(reg), name="x").fatal  # kind_of_work is not a known alias
    mapped = map_columns(reg, {"kind_of_work": "permit_type"})
    res = validate_register(mapped, name="x")
    assert res.ok and list(res.permits.columns[:7]) == list(SCHEMA["columns"])[0:1] + [
        "permit_type", "issued_on", "valid_until", "permitted_area_m2", "address", "status"]


def test_a_column_map_naming_no_column_and_params_without_a_query_are_refused(tmp_path: Path) -> None:
    from changedetect.errors import ConfigError

    reg = good_register().rename(columns={"permit_type": "kind_of_work"})
    with pytest.raises(PermitSchemaError, match=r"reg.gpkg: the column map names 'kind_of_wrok', which the "
                                                r"register does not have \(its columns: permit_id, kind_of_work"):
        map_columns(reg, {"kind_of_wrok": "permit_type"}, name="reg.gpkg")
    write_vector(reg, tmp_path / "reg.gpkg")
    with pytest.raises(PermitSchemaError, match="'nope'"):
        load_register(tmp_path / "reg.gpkg", column_map={"kind_of_work": "permit_type", "nope": "address"})
    assert len(load_register(tmp_path / "reg.gpkg", column_map={"kind_of_work": "permit_type"})) == 4
    with pytest.raises(ConfigError, match=r"params= \(--param\) .*reg.gpkg' is read without a query"):
        load_register(tmp_path / "reg.gpkg", params={"ward": "Đa Kao"})


def test_a_crs_given_for_a_register_that_declares_another_is_named_in_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_vector(good_register(), tmp_path / "reg.gpkg")  # EPSG:9210
    with caplog.at_level("WARNING", logger="changedetect.io.registers"):
        frame, _ = read_register(tmp_path / "reg.gpkg", crs="EPSG:32648")
    assert frame.crs.to_epsg() == 9210
    assert "declares its CRS (EPSG:9210)" in caplog.text and "EPSG:32648" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="changedetect.io.registers"):
        read_register(tmp_path / "reg.gpkg", crs="EPSG:9210")  # the same: nothing to say
    assert caplog.text == ""


def test_values_are_normalised() -> None:
    reg = good_register()
    reg["permit_type"] = ["New Construction", "EXTENSION ", "renovation", "Demolition"]
    reg["status"] = ["Active", "active", "completed", "expired"]
    res = validate_register(reg, name="x")
    assert res.ok and res.permits["permit_type"].tolist() == [
        "new_construction", "extension", "renovation", "demolition"]


def test_unreadable_sources(tmp_path: Path) -> None:
    with pytest.raises(RegisterReadError, match="does not exist"):
        load_register(tmp_path / "nope.gpkg")
    (tmp_path / "reg.xlsx").write_text("x")
    with pytest.raises(RegisterReadError, match="unknown format"):
        load_register(tmp_path / "reg.xlsx")


@pytest.mark.parametrize("with_truth", [True])
def test_sample_register_loads(repo_root: Path, with_truth: bool) -> None:
    path = repo_root / "permits" / "sample_register.gpkg"
    if not path.exists():
        pytest.skip("permits/sample_register.gpkg not generated yet (python -m changedetect.samplecity)")
    permits = load_register(path)
    assert len(permits) > 0 and permits.crs is not None
    assert permits["permit_id"].is_unique


def test_an_unknown_layer_lists_the_layers_there_are(tmp_path: Path) -> None:
    path = tmp_path / "two.gpkg"
    good_register().to_file(path, layer="permits_2024")
    good_register(2).to_file(path, layer="permits_2025")
    assert len(load_register(path, layer="permits_2025")) == 2
    with pytest.raises(RegisterReadError, match="has no layer 'permits'; its layers: permits_2024, permits_2025"):
        load_register(path, layer="permits")


@pytest.mark.parametrize(("value", "said"), [
    ("86,8", "; a decimal comma? write it 86.8"),
    ("1,234", "; write it 1.234 (a decimal comma) or 1234 (a thousands separator)"),
    ("abc", ""),
])
def test_an_area_with_a_comma_says_how_to_write_it(value: str, said: str) -> None:
    from changedetect._permit_checks import check_area

    assert check_area(value) == (None, f"'{value}' is not a number (expected square metres > 0){said}")
