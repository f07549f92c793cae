"""Review of matching and register loading against a messy city register (docs/permits.md, permits/README.md)."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from test_match import SEEN, X0, Y0, b, fp, permit, register, status_of

from changedetect.errors import PermitSchemaError
from changedetect.match import match
from changedetect.permits import load_register


def test_first_seen_on_the_issue_day_or_the_last_valid_day_is_permitted() -> None:
    # permit valid 2024-01-01 .. 2025-12-31, both days included
    p = register(permit("P", b(0, 0, 10, 10), issued="2024-01-01", until="2025-12-31"))
    days = {"eve": dt.date(2023, 12, 31), "issue": dt.date(2024, 1, 1), "last": dt.date(2025, 12, 31),
            "next": dt.date(2026, 1, 1)}
    got = {k: status_of(fp((k, b(0, 0, 10, 10), d, "new")), p)[k] for k, d in days.items()}
    assert got == {"eve": "before_permit", "issue": "permitted", "last": "permitted", "next": "permit_expired"}


def test_an_expired_permit_renewed_for_the_same_parcel() -> None:
    old = permit("P-2022", b(0, 0, 10, 10), issued="2022-01-01", until="2022-12-31")
    new = permit("P-2025", b(0, 0, 10, 10), issued="2025-01-01", until="2026-01-01")
    f = fp(("gap", b(0, 0, 10, 10), dt.date(2024, 3, 1), "new"), ("renewed", b(50, 0, 10, 10), dt.date(2025, 6, 1), "new"))
    p = register(old, new, {**old, "permit_id": "Q-2022", "geometry": b(50, 0, 10, 10)},
                 {**new, "permit_id": "Q-2025", "geometry": b(50, 0, 10, 10)})
    out = match(f, p).set_index("footprint_id")
    # built in the gap between the two: before the renewal was issued (precedence over permit_expired)
    assert out.loc["gap", "status"] == "before_permit" and "P-2025" in out.loc["gap", "reason"]
    # first seen under the renewal: permitted, the renewal quoted first
    assert out.loc["renewed", "status"] == "permitted" and out.loc["renewed", "permit_ids"].startswith("Q-2025")


def _csv(path: Path, wkt: str) -> Path:
    path.write_text(
        "permit_id,permit_type,issued_on,valid_until,status,permitted_area_m2,address,wkt\n"
        f'P1,new_construction,2024-01-01,2025-12-31,active,100,"Số 12 Lê Lợi, Quận 1","{wkt}"\n',
        encoding="utf-8")
    return path


def test_a_csv_whose_ewkt_declares_its_crs_keeps_it_when_another_is_given(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # permits/README.md: "a file's own CRS wins, and a different one given for it is named in a warning"
    geom = gpd.GeoSeries([b(0, 0, 10, 10)], crs="EPSG:32648").to_crs(4326).iloc[0]
    path = _csv(tmp_path / "reg.csv", f"SRID=4326;{geom.wkt}")
    with caplog.at_level(logging.WARNING):
        permits = load_register(path, crs="EPSG:32648")
    assert permits.crs.to_epsg() == 4326
    assert "is not used" in caplog.text
    assert status_of(fp(("a", b(0, 0, 10, 10), SEEN, "new")), permits) == {"a": "permitted"}


def test_a_csv_with_a_prj_beside_it_keeps_that_crs_when_another_is_given(tmp_path: Path) -> None:
    from pyproj import CRS

    path = _csv(tmp_path / "reg.csv", b(0, 0, 10, 10).wkt)
    (tmp_path / "reg.prj").write_text(CRS.from_epsg(32648).to_wkt())
    assert load_register(path, crs="EPSG:9210").crs.to_epsg() == 32648


def test_a_csv_whose_ewkt_declares_several_srids_is_refused(tmp_path: Path) -> None:
    geom = gpd.GeoSeries([b(0, 0, 10, 10)], crs="EPSG:32648").to_crs(4326).iloc[0]
    path = _csv(tmp_path / "reg.csv", f"SRID=4326;{geom.wkt}")
    with path.open("a", encoding="utf-8") as fh:
        fh.write(f'P2,new_construction,2024-01-01,2025-12-31,active,100,x,"SRID=32648;{b(20, 0, 10, 10).wkt}"\n')
    with pytest.raises(PermitSchemaError, match=r"several SRIDs \(4326, 32648\)"):
        load_register(path, crs="EPSG:4326")


def test_an_empty_register_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    # every footprint unlicensed because a query or an export returned no permit at all
    empty = register(permit("P", b(0, 0, 10, 10))).iloc[0:0]
    with caplog.at_level(logging.WARNING):
        got = status_of(fp(("a", b(0, 0, 10, 10), SEEN, "new")), empty)
    assert got == {"a": "unlicensed"}
    assert "register is empty" in caplog.text


def test_a_self_intersecting_footprint_is_measured_as_repaired() -> None:
    # a bow-tie (a footprints file edited by hand) has a signed area of 0: it was `unlicensed`
    # "of 0 m²" although the permit covers it entirely
    bow = shapely.Polygon([(X0, Y0), (X0 + 10, Y0 + 10), (X0 + 10, Y0), (X0, Y0 + 10)])
    out = match(fp(("bow", bow, SEEN, "new")), register(permit("P", b(0, 0, 10, 10))))
    assert out["status"].tolist() == ["permitted"]
    assert out["area_m2"].tolist() == [50.0]
    assert out.geometry.iloc[0].equals(bow)  # the output keeps the footprint as given


@pytest.mark.parametrize("reverse", [False, True])
def test_date_reasons_quote_the_decisive_permit_whatever_the_register_order(reverse: bool) -> None:
    # a lot's permit and its renewal, drawn alike: the reason quoted whichever came first in the
    # register ("after permit P-2021 expired on 2021-12-31" although the renewal ran to 2023-12-31)
    rows = [permit("P-2021", b(0, 0, 10, 10), issued="2021-01-01", until="2021-12-31"),
            permit("P-2023", b(0, 0, 10, 10), issued="2023-01-01", until="2023-12-31")]
    f = fp(("late", b(0, 0, 10, 10), dt.date(2024, 6, 1), "new"), ("early", b(0, 0, 10, 10), dt.date(2020, 6, 1), "new"))
    out = match(f, register(*(rows[::-1] if reverse else rows))).set_index("footprint_id")
    assert out.loc["late", "status"] == "permit_expired"
    assert out.loc["late", "reason"].endswith("after permit P-2023 expired on 2023-12-31")
    assert out.loc["early", "status"] == "before_permit"
    assert out.loc["early", "reason"].endswith("before permit P-2021 was issued on 2021-01-01")


def test_first_seen_given_as_numbers_is_refused_not_read_as_nanoseconds() -> None:
    """A hand-made footprints file with first_seen as days since 1970 (19900.0) was read as
    nanoseconds (1970-01-01), and its footprint came out before_permit."""
    import geopandas as gpd
    from shapely.geometry import box

    from changedetect.errors import ConfigError
    from changedetect.match import match

    fp = gpd.GeoDataFrame({"footprint_id": ["F-1"], "first_seen": [19900.0]},
                          geometry=[box(0, 0, 10, 10)], crs="EPSG:32648")
    permits = gpd.GeoDataFrame({"permit_id": ["P-1"], "issued_on": ["2020-01-01"], "valid_until": ["2030-01-01"],
                                "permitted_area_m2": [100.0], "building_type": ["house"]},
                               geometry=[box(0, 0, 10, 10)], crs="EPSG:32648")
    with pytest.raises(ConfigError, match=r"first_seen holds numbers \(19900\.0\), not dates"):
        match(fp, permits)
