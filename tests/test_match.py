"""match(): each status on hand-built cases, tolerances, CRS harmonisation (EPSG:9210)."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import Point, box

from changedetect.match import COLUMNS, MatchConfig, match

X0, Y0 = 686_000.0, 1_192_000.0  # Ho Chi Minh City in EPSG:32648


def fp(*items: tuple, crs: str = "EPSG:32648") -> gpd.GeoDataFrame:
    """Footprints from (id, geometry, first_seen, change_type)."""
    return gpd.GeoDataFrame(
        {
            "footprint_id": [i[0] for i in items],
            "first_seen": [i[2] for i in items],
            "change_type": [i[3] for i in items],
            "prob_mean": [0.9] * len(items),
        },
        geometry=[i[1] for i in items], crs=crs,
    )


def permit(pid: str, geom, ptype: str = "new_construction", issued: str = "2024-01-01",
           until: str = "2025-12-31", status: str = "active", area: float | None = None) -> dict:
    return {
        "permit_id": pid, "permit_type": ptype, "issued_on": dt.date.fromisoformat(issued),
        "valid_until": dt.date.fromisoformat(until), "status": status, "address": "Quận 1",
        "permitted_area_m2": float(area if area is not None else geom.area), "geometry": geom,
    }


def register(*rows: dict, crs: str = "EPSG:32648") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(list(rows), geometry="geometry", crs=crs)


def b(x: float, y: float, w: float, h: float):
    return box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + h)


SEEN = dt.date(2024, 6, 1)


def status_of(footprints, permits, **cfg) -> dict[str, str]:
    out = match(footprints, permits, config=MatchConfig(**cfg))
    return dict(zip(out["footprint_id"], out["status"], strict=True))


def test_every_status_on_hand_built_cases() -> None:
    f = fp(
        ("ok", b(0, 0, 10, 15), SEEN, "new"),
        ("none", b(100, 0, 10, 10), SEEN, "new"),
        ("big", b(200, 0, 20, 10), SEEN, "new"),
        ("late", b(300, 0, 10, 10), SEEN, "new"),
        ("early", b(400, 0, 10, 10), SEEN, "new"),
        ("reno", b(500, 0, 10, 10), SEEN, "new"),
        ("gone", b(600, 0, 10, 10), SEEN, "demolished"),
        ("gone_ok", b(700, 0, 10, 10), SEEN, "demolished"),
        ("altered", b(800, 0, 10, 10), SEEN, "altered"),
    )
    p = register(
        permit("P-ok", b(0, 0, 10, 15)),
        permit("P-big", b(200, 0, 15, 10)),
        permit("P-late", b(300, 0, 10, 10), issued="2023-01-01", until="2024-01-31"),
        permit("P-early", b(400, 0, 10, 10), issued="2024-09-01", until="2026-01-01"),
        permit("P-reno", b(500, 0, 10, 10), ptype="renovation"),
        permit("P-gone", b(600, 0, 10, 10), ptype="new_construction"),
        permit("P-gone-ok", b(700, 0, 10, 10), ptype="demolition"),
        permit("P-alt", b(800, 0, 10, 10), ptype="renovation"),
    )
    out = match(f, p)
    got = dict(zip(out["footprint_id"], out["status"], strict=True))
    assert got == {
        "ok": "permitted", "none": "unlicensed", "big": "exceeds_permit", "late": "permit_expired",
        "early": "before_permit", "reno": "type_mismatch", "gone": "type_mismatch",
        "gone_ok": "permitted", "altered": "permitted",
    }
    assert list(out.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert out.crs == f.crs and len(out) == len(f)
    row = out.set_index("footprint_id").loc["big"]
    assert row["excess_area_m2"] == pytest.approx(50.0)
    assert row["overlap_ratio"] == pytest.approx(0.75)
    assert row["permit_ids"] == "P-big"
    assert row["reason"] == (
        "built 200 m² against a permit for 150 m² (P-big): 50 m² (33%) outside the permitted footprint"
    )
    reasons = out.set_index("footprint_id")["reason"]
    assert "expired on 2024-01-31" in reasons["late"]
    assert "before permit P-early was issued on 2024-09-01" in reasons["early"]
    assert "renovation permit (P-reno)" in reasons["reno"]
    assert reasons["none"] == "new building of 100 m²: no permit covers it"
    assert out.set_index("footprint_id").loc["none", "permit_ids"] == ""


def test_tolerances_need_both_m2_and_pct() -> None:
    f = fp(("a", b(0, 0, 10, 15.5), SEEN, "new"), ("big", b(100, 0, 40, 25.3), SEEN, "new"))
    p = register(permit("P-a", b(0, 0, 10, 15)), permit("P-big", b(100, 0, 40, 25)))
    # a: 5 m² (3%) outside; big: 12 m² (1.2%) outside -> both within the default tolerances
    assert status_of(f, p) == {"a": "permitted", "big": "permitted"}
    exact: dict = {}  # outlines taken as exact (the default): only the area tolerances
    assert status_of(f, p, tolerance_m2=1, tolerance_pct=1, **exact) == {"a": "exceeds_permit", "big": "exceeds_permit"}
    assert status_of(f, p, tolerance_m2=1, tolerance_pct=2, **exact) == {"a": "exceeds_permit", "big": "permitted"}
    assert status_of(f, p, tolerance_m2=6, tolerance_pct=1, **exact) == {"a": "permitted", "big": "exceeds_permit"}


def test_edge_tolerance_forgives_an_outline_traced_a_pixel_too_wide() -> None:
    # "wide": the permit's 10 x 8 m house traced 0.5 m too wide on every side (19 m² outside, 24 %);
    # "wing": a 4 m wing built beyond the permit (40 m² outside): beyond any edge tolerance
    f = fp(("wide", b(-0.5, -0.5, 11, 9), SEEN, "new"), ("wing", b(100, 0, 14, 10), SEEN, "new"))
    p = register(permit("P-wide", b(0, 0, 10, 8)), permit("P-wing", b(100, 0, 10, 10)))
    assert status_of(f, p) == {"wide": "exceeds_permit", "wing": "exceeds_permit"}  # default: exact outlines
    assert status_of(f, p, edge_tolerance_m=0.5) == {"wide": "permitted", "wing": "exceeds_permit"}
    out = match(f, p, config=MatchConfig(edge_tolerance_m=0.5)).set_index("footprint_id")
    assert out.loc["wide", "excess_area_m2"] == pytest.approx(19.0)  # evidence: the outline as drawn
    assert status_of(f, p, edge_tolerance_m=1.0)["wing"] == "exceeds_permit"  # 30 m² beyond 1 m
    with pytest.raises(ValueError, match="tolerances"):
        MatchConfig(edge_tolerance_m=-1)


def test_neighbour_slivers_and_revoked_permits_do_not_count() -> None:
    f = fp(("a", b(0, 0, 10, 10), SEEN, "new"), ("r", b(100, 0, 10, 10), SEEN, "new"))
    p = register(
        permit("P-next-door", b(9.5, 0, 10, 10)),  # 5 m² of a's 100 m²
        permit("P-revoked", b(100, 0, 10, 10), status="revoked"),
    )
    out = match(f, p).set_index("footprint_id")
    assert out.loc["a", "status"] == "unlicensed" and out.loc["a", "permit_ids"] == ""
    assert out.loc["r", "status"] == "unlicensed"
    assert "revoked permit (P-revoked)" in out.loc["r", "reason"]
    assert status_of(f, p, min_overlap_ratio=0.01)["a"] == "exceeds_permit"


def test_several_permits_cover_one_building() -> None:
    f = fp(("a", b(0, 0, 20, 10), SEEN, "new"))
    p = register(permit("P-west", b(0, 0, 10, 10)), permit("P-east", b(10, 0, 10, 10)))
    out = match(f, p)
    assert out["status"].iat[0] == "permitted"
    assert set(out["permit_ids"].iat[0].split(",")) == {"P-west", "P-east"}
    assert out["overlap_ratio"].iat[0] == pytest.approx(1.0)


def test_overlapping_permits_count_their_union_once() -> None:
    f = fp(("a", b(0, 0, 20, 10), SEEN, "new"), ("b", b(100, 0, 20, 10), SEEN, "new"))
    p = register(permit("P-1", b(0, 0, 12, 10)), permit("P-2", b(8, 0, 10, 10)),  # 4 m shared, 2 m uncovered
                 permit("P-3", b(100, 0, 10, 10)), permit("P-4", b(110, 0, 10, 10)))  # touching only
    out = match(f, p).set_index("footprint_id")
    assert out.loc["a", "excess_area_m2"] == pytest.approx(20.0)
    assert out.loc["a", "overlap_ratio"] == pytest.approx(0.9)
    assert out.loc["b", "excess_area_m2"] == pytest.approx(0.0)
    assert out.loc["b", "overlap_ratio"] == pytest.approx(1.0)


def test_a_valid_permit_wins_over_an_expired_one() -> None:
    f = fp(("a", b(0, 0, 10, 10), SEEN, "new"))
    p = register(
        permit("P-old", b(0, 0, 10, 10), issued="2020-01-01", until="2021-01-01"),
        permit("P-new", b(0, 0, 10, 10), issued="2024-01-01", until="2025-01-01"),
    )
    assert status_of(f, p) == {"a": "permitted"}


def test_without_first_seen_dates_are_not_checked() -> None:
    f = fp(("a", b(0, 0, 10, 10), None, None))
    p = register(permit("P", b(0, 0, 10, 10), issued="2030-01-01", until="2031-01-01"))
    assert status_of(f, p) == {"a": "permitted"}


def test_point_permits_compare_areas() -> None:
    f = fp(("a", b(0, 0, 20, 10), SEEN, "new"), ("c", b(100, 0, 10, 10), SEEN, "new"))
    p = register(
        permit("P-a", Point(X0 + 5, Y0 + 5), area=150.0),
        permit("P-c", Point(X0 + 105, Y0 + 5), area=100.0),
    )
    out = match(f, p).set_index("footprint_id")
    assert out.loc["a", "status"] == "exceeds_permit"
    assert out.loc["a", "excess_area_m2"] == pytest.approx(50.0)
    assert out.loc["c", "status"] == "permitted"
    # a point has no footprint to lie outside: the excess is over the permitted area
    assert "50 m² (33%) over the permitted area" in out.loc["a", "reason"], out.loc["a", "reason"]
    assert "0 m² over the permitted area" in out.loc["c", "reason"], out.loc["c", "reason"]


def test_violation_id_is_stable_and_depends_on_status() -> None:
    f = fp(("a", b(0, 0, 10, 10), SEEN, "new"))
    p = register(permit("P", b(0, 0, 10, 10)))
    first = match(f, p)["violation_id"].iat[0]
    again = match(f.copy(), p.copy())["violation_id"].iat[0]
    other = match(f, p.iloc[0:0])["violation_id"].iat[0]
    assert first == again and first != other and first.startswith("V-")


def test_empty_inputs() -> None:
    f = fp(("a", b(0, 0, 10, 10), SEEN, "new"))
    p = register(permit("P", b(0, 0, 10, 10)))
    assert len(match(f.iloc[0:0], p)) == 0
    assert match(f, p.iloc[0:0])["status"].tolist() == ["unlicensed"]


# --- CRS harmonisation --------------------------------------------------------------------


def _case() -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    f = fp(("a", b(0, 0, 12, 15), SEEN, "new"), ("b", b(40, 0, 8, 10), SEEN, "new"))
    p = register(permit("P-a", b(0, 0, 12, 15)), permit("P-b", b(40, 0, 8, 10)))
    return f, p


@pytest.mark.parametrize("crs", ["EPSG:9210", "EPSG:4326"])
def test_register_in_another_crs(crs: str) -> None:
    f, p = _case()
    assert status_of(f, p.to_crs(crs)) == {"a": "permitted", "b": "permitted"}


def test_a_register_far_from_the_footprints_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    f, p = _case()
    with caplog.at_level("WARNING", logger="changedetect"):
        assert status_of(f, p) == {"a": "permitted", "b": "permitted"}
        near = register(permit("P-x", b(600, 0, 10, 10)))  # 550 m away: no candidate, but near
        assert status_of(f, near) == {"a": "unlicensed", "b": "unlicensed"}
    assert "no permit of the register" not in caplog.text
    far = p.copy()
    far["geometry"] = far.geometry.translate(50_000, 0)  # as a wrongly declared CRS would put it
    with caplog.at_level("WARNING", logger="changedetect"):
        assert status_of(f, far.to_crs("EPSG:9210")) == {"a": "unlicensed", "b": "unlicensed"}
    assert "no permit of the register lies within 1000 m of the footprints" in caplog.text


def test_footprints_in_geographic_crs_are_measured_in_metres() -> None:
    f, p = _case()
    out = match(f.to_crs(4326), p.to_crs(9210))
    assert out.crs.to_epsg() == 4326
    assert out["status"].tolist() == ["permitted", "permitted"]
    assert out["area_m2"].iat[0] == pytest.approx(180.0, rel=1e-3)


def test_footprints_in_a_feet_state_plane_are_measured_in_metres() -> None:
    """NY Long Island state plane (EPSG:2263, US survey feet): areas and tolerances stay m²."""
    ft = 1 / 0.3048006096
    x0, y0 = 985_000.0, 200_000.0

    def bf(w: float, h: float):  # a w x h metre box, drawn in feet
        return box(x0, y0, x0 + w * ft, y0 + h * ft)

    f = fp(("house", bf(10, 16.8), SEEN, "new"), crs="EPSG:2263")
    p = register(permit("P1", bf(10, 16), area=160.0), crs="EPSG:2263")
    out = match(f, p, config=MatchConfig(tolerance_pct=0))
    assert out["area_m2"].iat[0] == pytest.approx(168.0, rel=2e-3)
    assert out["excess_area_m2"].iat[0] == pytest.approx(8.0, rel=2e-2)
    assert out["status"].iat[0] == "permitted"  # 8 m² outside: under the 10 m² tolerance (86 ft² is not)
    with pytest.raises(ValueError, match="does not measure in metres"):
        MatchConfig(working_crs="EPSG:2263")
    with pytest.raises(ValueError, match="not a CRS"):
        MatchConfig(working_crs="EPSG:not-a-code")


def test_footprints_in_web_mercator_are_measured_in_ground_metres() -> None:
    """Web Mercator is in metres but draws ground 1/cos²(lat) too large (1.74 x at 40.75 N): the UTM
    zone is used instead, and a working_crs of the kind is refused where it distorts."""
    from pyproj import Transformer

    lat = 40.75
    x0, y0 = Transformer.from_crs(4326, 3857, always_xy=True).transform(-73.98, lat)
    k = 1 / np.cos(np.radians(lat))

    def bm(w: float, h: float):  # a w x h ground-metre box, drawn in Web Mercator
        return box(x0, y0, x0 + w * k, y0 + h * k)

    f = fp(("house", bm(10, 16.8), SEEN, "new"), crs="EPSG:3857")
    p = register(permit("P1", bm(10, 16), area=160.0), crs="EPSG:3857")
    out = match(f, p, config=MatchConfig(tolerance_pct=0))
    assert out.crs.to_epsg() == 3857
    assert out["area_m2"].iat[0] == pytest.approx(168.0, rel=2e-3)  # was 292 'm²'
    assert out["status"].iat[0] == "permitted"  # 8 m² outside (it was 14 'm²': exceeds_permit)
    with pytest.raises(ValueError, match="1.7.. times its area"):
        match(f, p, config=MatchConfig(working_crs="EPSG:3857"))
    # at 5 N Web Mercator draws areas 0.8 % too large: accepted when asked for
    near_equator = box(11_900_000, 557_000, 11_900_010, 557_016)
    out = match(fp(("house", near_equator, SEEN, "new"), crs="EPSG:3857"),
                register(permit("P1", near_equator), crs="EPSG:3857"), config=MatchConfig(working_crs="EPSG:3857"))
    assert out["status"].tolist() == ["permitted"] and out["area_m2"].iat[0] == pytest.approx(160.0)


def test_vn2000_datum_shift_is_applied() -> None:
    """The same building drawn in VN-2000 / TM-3 105-45 (EPSG:9210) and in UTM 48N matches;
    reading the VN-2000 coordinates as if they were on the WGS 84 datum puts the permit
    about 230 m away, and nothing matches."""
    f, p = _case()
    to_vn = Transformer.from_crs("EPSG:32648", "EPSG:9210", always_xy=True)
    vn_geoms = shapely.transform(
        np.asarray(p.geometry.values), lambda xy: np.column_stack(to_vn.transform(xy[:, 0], xy[:, 1]))
    )
    vn = gpd.GeoDataFrame(p.drop(columns="geometry"), geometry=list(vn_geoms), crs="EPSG:9210")
    assert vn.geometry.iat[0].bounds[0] < 610_000  # TM-3 105-45 eastings, not UTM 48N
    assert status_of(f, vn) == {"a": "permitted", "b": "permitted"}
    # the same numbers read without the datum shift (TM-3 105-45 on WGS 84)
    naive_crs = CRS.from_proj4("+proj=tmerc +lat_0=0 +lon_0=105.75 +k=0.9999 +x_0=500000 +y_0=0 "
                               "+datum=WGS84 +units=m +no_defs")
    naive = vn.set_crs(naive_crs, allow_override=True)
    shift = naive.to_crs(f.crs).geometry.iat[0].centroid.distance(f.geometry.iat[0].centroid)
    assert 150 < shift < 400
    assert status_of(f, naive) == {"a": "unlicensed", "b": "unlicensed"}


def test_missing_crs_is_an_error() -> None:
    f, p = _case()
    with pytest.raises(ValueError, match="no CRS"):
        match(f, p.set_crs(None, allow_override=True))
    with pytest.raises(ValueError, match="no CRS"):
        match(f.set_crs(None, allow_override=True), p)


def test_config_is_checked() -> None:
    with pytest.raises(ValueError):
        MatchConfig(min_overlap_ratio=0)
    with pytest.raises(ValueError):
        MatchConfig(tolerance_m2=-1)


# --- the generated sample city ---------------------------------------------------------------


def test_sample_city_truth_gives_the_expected_violations(repo_root) -> None:
    """The planted violations of ``python -m changedetect.samplecity``: with the truth footprints,
    every status, main permit and excess area of permits/expected_violations.csv is reproduced."""
    import pandas as pd

    from changedetect.permits import load_register

    footprints = repo_root / "sample_tiles" / "truth" / "footprints.gpkg"
    register = repo_root / "permits" / "sample_register.gpkg"
    expected = repo_root / "permits" / "expected_violations.csv"
    if not (footprints.exists() and register.exists() and expected.exists()):
        pytest.skip("the sample city is not generated (python -m changedetect.samplecity)")
    truth = gpd.read_file(footprints, layer="footprints").rename(columns={"structure_id": "footprint_id"})
    permits = load_register(register)
    assert permits.crs.to_epsg() == 9210 and truth.crs.to_epsg() == 32648
    got = match(truth, permits).set_index("footprint_id")
    want = pd.read_csv(expected, dtype={"permit_id": str}).set_index("structure_id")
    assert sorted(got.index) == sorted(want.index)
    mismatches = {
        sid: (row.expected_status, got.loc[sid, "status"])
        for sid, row in want.iterrows() if got.loc[sid, "status"] != row.expected_status
    }
    assert mismatches == {}
    for sid, row in want.iterrows():
        main = got.loc[sid, "permit_ids"].split(",")[0]
        assert main == (row.permit_id if isinstance(row.permit_id, str) else ""), sid
        assert got.loc[sid, "excess_area_m2"] == pytest.approx(row.excess_area_m2, abs=0.05), sid
    assert set(want["expected_status"]) == set(got["status"])  # every status is planted


def test_fast_overlap_areas_agree_with_geos() -> None:
    """The vectorised clipper gives GEOS's areas: rotated boxes, L-shapes (concave subjects),
    rounded (many-vertex) shapes, single-part multipolygons; holes fall back to GEOS."""
    from changedetect._match_overlay import intersection_areas

    rng = np.random.default_rng(1)

    def shapes(n: int) -> np.ndarray:
        out = []
        for _ in range(n):
            x, y = rng.uniform(0, 30, 2)
            w, h = rng.uniform(3, 20, 2)
            g = shapely.affinity.rotate(box(x, y, x + w, y + h), rng.uniform(0, 180))
            r = rng.random()
            if r < 0.2:
                g = g.union(box(x, y, x + 3, y + h + 5))
            elif r < 0.3:
                g = g.buffer(2, quad_segs=2)
            elif r < 0.35:
                g = shapely.MultiPolygon([g])
            elif r < 0.4:
                g = g.difference(g.centroid.buffer(1))
            out.append(g)
        return np.array(out, dtype=object)

    a, b = shapes(3000), shapes(3000)
    idx = np.arange(3000)
    fast = intersection_areas(a, b, idx, idx)
    np.testing.assert_allclose(fast, shapely.area(shapely.intersection(a, b)), rtol=1e-9, atol=1e-9)
    assert (fast > 0).sum() > 500


@pytest.mark.parametrize("n_fp, n_pm", [(60, 200), (200, 60)])  # the STRtree goes on either side
def test_overlap_and_permits_agree_with_geos_on_a_random_city(n_fp: int, n_pm: int) -> None:
    """overlap_ratio and permit_ids against a plain GEOS computation: turned lots, L-shaped and
    holed footprints, overlapping and revoked permits."""
    rng = np.random.default_rng(n_fp)

    def turned(cx: float, cy: float, w: float, h: float) -> shapely.Polygon:
        return shapely.affinity.rotate(box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), rng.uniform(0, 30))

    lots = [turned(X0 + rng.uniform(0, 200), Y0 + rng.uniform(0, 200), rng.uniform(8, 20), rng.uniform(8, 20))
            for _ in range(n_pm)]
    status = rng.choice(["active", "revoked"], n_pm, p=[0.85, 0.15])
    p = register(*[permit(f"P{i}", g, status=str(s)) for i, (g, s) in enumerate(zip(lots, status, strict=True))])
    shapes = []
    for _ in range(n_fp):
        g = turned(X0 + rng.uniform(0, 200), Y0 + rng.uniform(0, 200), rng.uniform(6, 18), rng.uniform(6, 18))
        r = rng.random()
        if r < 0.2:  # an L
            g = g.difference(shapely.affinity.translate(g, *(rng.uniform(2, 4, 2))))
        elif r < 0.25:  # a courtyard
            g = g.difference(g.centroid.buffer(1.0))
        shapes.append(g)
    f = fp(*[(f"F{i}", g, SEEN, "new") for i, g in enumerate(shapes)])
    out = match(f, p)
    pg = np.asarray(p.geometry.values)
    for i, g in enumerate(shapes):
        inter = shapely.area(shapely.intersection(g, pg))
        counted = (inter > 0) & (inter >= 0.1 * np.minimum(g.area, shapely.area(pg))) & (status == "active")
        covered = shapely.union_all(pg[counted]) if counted.any() else shapely.Polygon()
        want = 1.0 - shapely.area(shapely.difference(g, covered)) / g.area if counted.any() else 0.0
        assert out["overlap_ratio"].iat[i] == pytest.approx(want, abs=1e-4), i
        got = set(filter(None, out["permit_ids"].iat[i].split(",")))
        assert got == {f"P{k}" for k in np.flatnonzero(counted)}, i
    assert (out["overlap_ratio"] > 0).sum() > n_fp // 4


def test_edge_tolerance_agrees_with_geos_buffers_on_a_random_city() -> None:
    """exceeds_permit with an edge tolerance against shapely.buffer + difference: turned lots
    (the numpy path), L-shaped footprints and neighbouring permits (the GEOS path)."""
    rng = np.random.default_rng(7)

    def turned(cx: float, cy: float, w: float, h: float, deg: float, part: int = 0) -> shapely.Polygon:
        x0, x1 = (cx - w / 2, cx + w / 2) if not part else ((cx - w / 2, cx) if part == 1 else (cx, cx + w / 2))
        return shapely.affinity.rotate(box(x0, cy - h / 2, x1, cy + h / 2), deg, origin=(cx, cy))

    lots, shapes = [], []
    for k in range(300):
        cx, cy, w, h, deg = X0 + (k % 20) * 16.0, Y0 + (k // 20) * 18.0, 12.0, 14.0, rng.uniform(0, 20)
        if k % 3:
            lots.append(turned(cx, cy, w, h, deg))
        else:  # a lot under two permits (two halves): inclusion-exclusion of their grown outlines
            lots += [turned(cx, cy, w, h, deg, 1), turned(cx, cy, w, h, deg, 2)]
        g = turned(cx + rng.uniform(-1, 1), cy + rng.uniform(-1, 1), w * rng.uniform(0.9, 1.3),
                   h * rng.uniform(0.9, 1.2), deg + rng.uniform(-3, 3))
        if rng.random() < 0.2:  # an L
            g = g.difference(shapely.affinity.translate(g, *(rng.uniform(3, 5, 2))))
        shapes.append(g)
    p = register(*[permit(f"P{i}", g) for i, g in enumerate(lots)])
    f = fp(*[(f"F{i}", g, SEEN, "new") for i, g in enumerate(shapes)])
    for d in (0.5, 1.5):
        out = match(f, p, config=MatchConfig(edge_tolerance_m=d))
        plain = match(f, p)
        pg = np.asarray(p.geometry.values)
        grown = shapely.buffer(pg, d, join_style="mitre")
        for i, g in enumerate(shapes):
            if plain["status"].iat[i] != "exceeds_permit":
                assert out["status"].iat[i] == plain["status"].iat[i], i
                continue
            ids = [int(t[1:]) for t in plain["permit_ids"].iat[i].split(",")]
            beyond = shapely.area(shapely.difference(g, shapely.union_all(grown[ids])))
            permitted = sum(lots[k].area for k in ids)
            want = "exceeds_permit" if beyond > max(10.0, 0.1 * permitted) else "permitted"
            assert out["status"].iat[i] == want, (d, i, beyond)
        assert (out["status"] == "exceeds_permit").sum() < (plain["status"] == "exceeds_permit").sum()
        assert (out["status"] == "exceeds_permit").sum() > (10 if d < 1 else 2)


def test_agreement_scores_per_status() -> None:
    import pandas as pd

    from changedetect.match import agreement

    truth = gpd.GeoDataFrame({"structure_id": ["S1", "S2", "S3"]},
                             geometry=[b(0, 0, 10, 10), b(100, 0, 10, 10), b(200, 0, 10, 10)], crs="EPSG:32648")
    expected = pd.DataFrame({"structure_id": ["S1", "S2", "S3"],
                             "expected_status": ["unlicensed", "permitted", "unlicensed"]})
    found = fp(("a", b(0.5, 0, 10, 10), SEEN, "new"), ("b", b(100, 0, 10, 10), SEEN, "new"),
               ("c", b(400, 0, 10, 10), SEEN, "new"))
    v = match(found, register(permit("P", b(100, 0, 10, 10))))
    table = agreement(v, truth, expected)
    assert table.loc["unlicensed", ["truth", "detected", "tp"]].tolist() == [2, 2, 1]
    assert table.loc["unlicensed", "recall"] == 0.5 and table.loc["permitted", "precision"] == 1.0
    assert table.attrs == {"permitted_flagged": 0, "missed": 1}


def test_cli_match(tmp_path) -> None:
    from click.testing import CliRunner

    from changedetect.cli import cli
    from changedetect.io.vectors import write_vector

    f = fp(("ok", b(0, 0, 10, 15), SEEN, "new"), ("none", b(100, 0, 10, 10), SEEN, "new"))
    p = register(permit("P-ok", b(0, 0, 10, 15)), permit("P-bad", b(300, 0, 10, 10), status="pending"))
    write_vector(f, tmp_path / "fp.gpkg")
    reg = p.to_crs(9210)
    reg["status"] = reg["status"].astype(object)
    write_vector(reg, tmp_path / "reg.gpkg")
    out = tmp_path / "v.csv"
    base = ["match", str(tmp_path / "fp.gpkg"), "--permits", str(tmp_path / "reg.gpkg"), "--out", str(out)]
    strict = CliRunner().invoke(cli, base)
    assert strict.exit_code != 0 and "unknown status 'pending'" in str(strict.exception)
    res = CliRunner().invoke(cli, [*base, "--lenient"])
    assert res.exit_code == 0, res.output
    assert "permitted       1" in res.output and "unlicensed      1" in res.output
    assert (tmp_path / "v_rejects.gpkg").exists() and out.exists()
    import pandas as pd

    rows = pd.read_csv(out).set_index("status")
    assert rows.loc["permitted", "address"] == "Quận 1"  # the matched permit's, as `run` writes it
    assert pd.isna(rows.loc["unlicensed", "address"]) or rows.loc["unlicensed", "address"] == ""


def test_match_to_file_names_the_footprints_as_footprints(tmp_path) -> None:
    from changedetect.errors import ConfigError, RegisterReadError
    from changedetect.io.vectors import write_vector
    from changedetect.match import match_to_file

    p = register(permit("P-ok", b(0, 0, 10, 15)))
    write_vector(p, tmp_path / "reg.gpkg")
    (tmp_path / "prob.tif").write_bytes(b"II*\x00")
    with pytest.raises(RegisterReadError, match=r"^footprints file '.*prob.tif': unknown format"):
        match_to_file(tmp_path / "prob.tif", tmp_path / "reg.gpkg", tmp_path / "v.gpkg")
    with pytest.raises(ConfigError, match="looks like a permit register"):  # the register given twice
        match_to_file(tmp_path / "reg.gpkg", tmp_path / "reg.gpkg", tmp_path / "v.gpkg")
    assert not (tmp_path / "v.gpkg").exists()


def test_cli_attach_extensions_flag_with_a_vn2000_register(tmp_path) -> None:
    from click.testing import CliRunner

    from changedetect.cli import cli
    from changedetect.io.vectors import write_vector

    # a 0.3 m gap behind the permit's back wall: the candidate search must grow by the edge tolerance
    write_vector(fp(("ext", b(0, 12.3, 10, 4), SEEN, "new")), tmp_path / "fp.gpkg")
    write_vector(register(permit("P-ext", b(0, 0, 10, 12), ptype="extension")).to_crs(9210), tmp_path / "reg.gpkg")
    base = ["match", str(tmp_path / "fp.gpkg"), "--permits", str(tmp_path / "reg.gpkg"), "--edge-tolerance", "0.5"]
    on = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "on.csv")])
    off = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "off.csv"), "--no-attach-extensions"])
    assert on.exit_code == 0 and off.exit_code == 0, (on.output, off.output)
    assert "exceeds_permit  1" in on.output and "unlicensed      0" in on.output
    assert "unlicensed      1" in off.output and "exceeds_permit  0" in off.output


def test_reason_numbers_format_as_python_does() -> None:
    """The reasons' numbers are formatted once per distinct value; they equal f"{v:.0f}"."""
    from changedetect._match_rules import _fmt0

    rng = np.random.default_rng(3)
    values = np.r_[np.arange(0, 20) / 2, rng.uniform(0, 1e4, 2000), [-0.4, -0.5, -2.5, np.nan, np.inf, -np.inf,
                                                                   1e15, 1e20, 0.49999999999999994, 2.5000001]]
    assert _fmt0(values) == [f"{v:.0f}" for v in values.tolist()]
    assert _fmt0(np.zeros(0)) == []


def test_a_change_against_an_extension_permits_outline_exceeds_that_permit() -> None:
    # a house and its permitted extension (P-ext, 10 x 12 m); imagery shows only the 4 m built
    # beyond the permit's back wall, overlapping it by 0.2 m (5 % of the footprint: not covering)
    f = fp(("ext", b(0, 11.8, 10, 4.2), SEEN, "new"), ("next-door", b(50, 11.8, 10, 4.2), SEEN, "new"),
           ("late", b(100, 11.8, 10, 4.2), dt.date(2026, 3, 1), "new"),
           ("gone", b(150, 11.8, 10, 4.2), SEEN, "demolished"),
           ("altered", b(200, 11.8, 10, 4.2), SEEN, "altered"))
    p = register(permit("P-ext", b(0, 0, 10, 12), ptype="extension"),
                 permit("P-new", b(50, 0, 10, 12)),  # a neighbour's new-construction permit: not attached
                 permit("P-old", b(100, 0, 10, 12), ptype="extension", until="2025-12-31"),
                 permit("P-dem", b(150, 0, 10, 12), ptype="extension"),
                 permit("P-alt", b(200, 0, 10, 12), ptype="extension"))
    out = match(f, p).set_index("footprint_id")
    assert out.loc["ext", "status"] == "exceeds_permit"
    assert out.loc["ext", "permit_ids"] == "P-ext"
    assert out.loc["ext", "excess_area_m2"] == pytest.approx(40.0)
    assert out.loc["ext", "overlap_ratio"] == pytest.approx(2.0 / 42.0, abs=1e-4)
    assert out.loc["ext", "reason"] == ("new building of 42 m² built against the outline of extension permit(s) "
                                        "P-ext (120 m² permitted), which cover little of it: 40 m² (33%) outside")
    assert out.loc["next-door", "status"] == "unlicensed"
    assert out.loc["late", "status"] == "unlicensed"  # first seen after the permit expired
    assert out.loc["gone", "status"] == "unlicensed"  # a demolition never attaches
    assert out.loc["altered", "status"] == "exceeds_permit"
    assert status_of(f, p, attach_to_extensions=False)["ext"] == "unlicensed"


def test_attached_extensions_edge_cases() -> None:
    p = register(permit("P-ext", b(0, 0, 10, 12), ptype="extension"))
    # a 0.4 m gap: attached only within the edge tolerance
    gap = fp(("gap", b(0, 12.4, 10, 4), SEEN, "new"))
    assert status_of(gap, p) == {"gap": "unlicensed"}
    assert status_of(gap, p, edge_tolerance_m=0.5) == {"gap": "exceeds_permit"}
    # the edge tolerance applies: 14 m² outside as drawn, 9 m² beyond the outline grown by 0.5 m
    near = fp(("near", b(0, 11.9, 10, 1.5), SEEN, "new"))
    assert status_of(near, p) == {"near": "exceeds_permit"}
    assert status_of(near, p, edge_tolerance_m=0.5) == {"near": "unlicensed"}
    # never permitted: a 6 m² lean-to within the tolerances stays unlicensed
    assert status_of(fp(("small", b(0, 12.0, 3, 2), SEEN, "new")), p) == {"small": "unlicensed"}
    # a whole house (150 m²) against a 120 m² extension permit is not that extension
    assert status_of(fp(("house", b(0, 12.0, 10, 15), SEEN, "new")), p) == {"house": "unlicensed"}
    # revoked and point extension permits never attach, nor does a footprint a revoked permit covers
    f = fp(("r", b(0, 11.8, 10, 4.2), SEEN, "new"))
    revoked = register(permit("P-rev", b(0, 0, 10, 12), ptype="extension", status="revoked"))
    assert status_of(f, revoked) == {"r": "unlicensed"}
    point = register(permit("P-pt", Point(X0 + 5, Y0 + 11.7), ptype="extension", area=120))  # 0.1 m away
    assert status_of(f, point, edge_tolerance_m=0.5) == {"r": "unlicensed"}
    covered = register(permit("P-ext", b(0, 0, 10, 12), ptype="extension"),
                       permit("P-rev", b(0, 11.8, 10, 4.2), status="revoked"))
    out = match(f, covered).set_index("footprint_id")
    assert out.loc["r", "status"] == "unlicensed" and "revoked permit (P-rev)" in out.loc["r", "reason"]
    # unknown first-seen: the dates fit (as for covering permits)
    assert status_of(fp(("nat", b(0, 11.8, 10, 4.2), None, "new")), p) == {"nat": "exceeds_permit"}


def test_attached_to_two_extension_permits_whatever_the_register_order() -> None:
    # the footprint spans the back walls of two touching lots' extension permits
    f = fp(("both", b(0, 11.8, 20, 4.2), SEEN, "new"))
    rows = [permit("P-b", b(0, 0, 10, 12), ptype="extension", area=100),
            permit("P-a", b(10, 0, 10, 12), ptype="extension", area=100)]
    one = match(f, register(*rows)).iloc[0]
    two = match(f, register(*rows[::-1])).iloc[0]
    assert one["status"] == two["status"] == "exceeds_permit"
    assert one["permit_ids"] == two["permit_ids"] == "P-a,P-b"  # equally near: by permit_id
    assert one["violation_id"] == two["violation_id"]
    assert one["excess_area_m2"] == pytest.approx(80.0)  # outside their union
    assert "(200 m² permitted)" in one["reason"]


@pytest.mark.parametrize("reg_crs", ["EPSG:4326", "EPSG:3857", "EPSG:32633"])
def test_attach_search_grows_in_metres_whatever_the_registers_crs(reg_crs: str) -> None:
    # Oslo (59.9 N), footprints in UTM 32N; a 1.3 m gap east of the permit, edge tolerance 1.66 m
    x0, y0 = 597_000.0, 6_643_000.0
    f = fp(("gap", box(x0 + 11.3, y0, x0 + 15.3, y0 + 8), SEEN, "new"), crs="EPSG:32632")
    p = register(permit("P-ext", box(x0, y0 - 2, x0 + 10, y0 + 10), ptype="extension"), crs="EPSG:32632")
    assert status_of(f, p, edge_tolerance_m=1.66) == {"gap": "exceeds_permit"}
    assert status_of(f, p.to_crs(reg_crs), edge_tolerance_m=1.66) == {"gap": "exceeds_permit"}
    assert status_of(f, p.to_crs(reg_crs), edge_tolerance_m=1.0) == {"gap": "unlicensed"}
