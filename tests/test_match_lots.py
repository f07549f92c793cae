"""match(): a permit whose drawn outline is its lot (thửa đất), not the permitted building, is judged on its
permitted area (``MatchConfig.lot_ratio``; audit D finding 7: a 235 m² house under a permit for 113 m² on
a 226 m² lot came out ``permitted``)."""

from __future__ import annotations

import math

import pytest
from shapely.geometry import Polygon

from changedetect.match import MatchConfig, match
from tests.test_match import SEEN, X0, Y0, b, fp, permit, register

LOT_NOTE = ("; permit {p}'s outline ({o} m²) is {x} times its permitted area ({pa} m²): a lot rather than a "
            "building, so the building's area is compared with the permitted area")


def _rows(f, p, **cfg):
    return match(f, p, config=MatchConfig(**cfg)).set_index("footprint_id")


def test_an_over_built_house_on_a_lot_outline_exceeds_its_permit() -> None:
    # audit D's P-19: a 15 x 15.04 m lot (225.6 m²) permitting 112.8 m², a 235 m² house on it
    f = fp(("house", b(0, 0, 15, 15.67), SEEN, "new"))
    p = register(permit("P-19", b(0, 0, 15, 15.04), area=112.8))
    row = _rows(f, p).loc["house"]
    assert row["status"] == "exceeds_permit"
    assert row["excess_area_m2"] == pytest.approx(15 * 15.67 - 112.8, abs=0.01)
    assert row["reason"] == ("built 235 m² against a permit for 113 m² (P-19): 122 m² (108%) over the permitted "
                             "area" + LOT_NOTE.format(p="P-19", o=226, x="2.0", pa=113))
    # the edge tolerance is for outlines: it forgives nothing of an area over the permitted one
    assert _rows(f, p, edge_tolerance_m=0.5).loc["house", "status"] == "exceeds_permit"


def test_a_house_within_the_permitted_area_of_its_lot_is_permitted_and_says_why() -> None:
    f = fp(("ok", b(0, 0, 10, 11.5), SEEN, "new"), ("over", b(100, 0, 10, 13), SEEN, "new"))
    p = register(permit("P-ok", b(0, 0, 20, 20), area=110), permit("P-over", b(100, 0, 20, 20), area=110))
    out = _rows(f, p)
    assert out.loc["ok", "status"] == "permitted"  # 5 m² over: within the tolerances
    assert out.loc["ok", "reason"] == (
        "new building of 115 m² within permit P-ok (new_construction, valid 2024-01-01 to 2025-12-31); 5 m² over "
        "the permitted area, within tolerance (10 m² or 10%)" + LOT_NOTE.format(p="P-ok", o=400, x="3.6", pa=110))
    assert out.loc["over", "status"] == "exceeds_permit"  # 130 m² on a lot permitting 110 m²: 20 m² over
    assert out.loc["over", "excess_area_m2"] == pytest.approx(20.0)
    assert out.loc["over", "overlap_ratio"] == pytest.approx(1.0)  # it stands wholly on the lot


def test_a_house_over_its_lot_line_is_still_judged_on_the_outline() -> None:
    # within the permitted area (90 of 110 m²) but 30 m² beyond the lot: the outline rule, as before
    f = fp(("spill", b(0, -3, 9, 10), SEEN, "new"), ("over", b(100, 0, 10, 13), SEEN, "new"))
    p = register(permit("P-lot", b(0, 0, 20, 20), area=110), permit("P-over", b(100, 0, 20, 20), area=110))
    out = _rows(f, p)
    assert out.loc["spill", "status"] == "exceeds_permit"
    assert out.loc["spill", "excess_area_m2"] == pytest.approx(27.0)
    assert out.loc["spill", "reason"] == ("built 90 m² against a permit for 110 m² (P-lot): 27 m² (25%) outside the "
                                          "permitted footprint" + LOT_NOTE.format(p="P-lot", o=400, x="3.6", pa=110))
    # within both the lot and its permitted area, on a lot's outline: the clause says the area was compared
    inside = _rows(fp(("small", b(0, 0, 8, 10), SEEN, "new")), p).loc["small", "reason"]
    assert inside.endswith("0 m² over the permitted area, within tolerance (10 m² or 10%)" + LOT_NOTE.format(p="P-lot", o=400,
                                                                                            x="3.6", pa=110))
    assert out.loc["over", "status"] == "exceeds_permit"  # and the lot rule applies in the same register


def test_outlines_of_buildings_keep_the_outline_rule() -> None:
    # an outline at most lot_ratio (1.5) times its permitted area, or larger by no more than tolerance_m2,
    # is the building's: judged on the outline (a house filling a 1.4x outline is permitted, as before)
    f = fp(("drawn", b(0, 0, 10, 14), SEEN, "new"), ("small", b(100, 0, 4, 4.5), SEEN, "new"),
           ("lot", b(200, 0, 10, 14), SEEN, "new"))
    p = register(permit("P-drawn", b(0, 0, 10, 14), area=100), permit("P-small", b(100, 0, 4, 4.5), area=9),
                 permit("P-lot", b(200, 0, 10, 16), area=100))
    out = _rows(f, p)
    assert out["status"].to_dict() == {"drawn": "permitted", "small": "permitted", "lot": "exceeds_permit"}
    assert "outside, within tolerance" in out.loc["drawn", "reason"] and "a lot" not in out.loc["drawn", "reason"]
    # lot_ratio=None (TOML: false) turns the rule off; a lower ratio takes the 1.4x outline for a lot
    assert match(f, p, config={"lot_ratio": False})["status"].tolist() == ["permitted"] * 3
    assert _rows(f, p, lot_ratio=1.3).loc["drawn", "status"] == "exceeds_permit"
    with pytest.raises(ValueError, match="lot_ratio must be at least 1"):
        MatchConfig(lot_ratio=0.5)
    with pytest.raises(ValueError, match="lot_ratio"):
        MatchConfig(lot_ratio=math.nan)


def test_a_permit_without_a_permitted_area_keeps_the_outline_rule() -> None:
    f = fp(("unknown", b(0, 0, 15, 15.67), SEEN, "new"), ("known", b(100, 0, 15, 15.67), SEEN, "new"))
    p = register(permit("P-nan", b(0, 0, 15, 15.04), area=112.8), permit("P-19", b(100, 0, 15, 15.04), area=112.8))
    p.loc[p["permit_id"] == "P-nan", "permitted_area_m2"] = math.nan  # a register built in memory
    out = _rows(f, p)
    assert out.loc["unknown", "status"] == "permitted"  # 9 m² outside its outline
    assert "a lot" not in out.loc["unknown", "reason"]
    assert out.loc["known", "status"] == "exceeds_permit"


@pytest.mark.parametrize("house", [
    b(0, 0, 10, 10),
    Polygon([(X0, Y0), (X0 + 10, Y0), (X0 + 10, Y0 + 4), (X0 + 6, Y0 + 4), (X0 + 6, Y0 + 10), (X0, Y0 + 10)]),
], ids=["convex", "L-shaped"])
def test_an_outline_permit_beside_a_lot_permit(house: Polygon) -> None:
    # a house permitted by its own outline, then an extension permit drawn as the lot (permitted 30 m²):
    # what lies outside the house's outline is compared with the extension's permitted area
    lot = b(-5, -5, 30, 30)
    p = register(permit("P-house", house), permit("P-ext", lot, ptype="extension", area=30))
    grown = house.union(b(10, 0, 5, 10))  # 50 m² beyond the house: 20 m² over the extension's 30
    fitting = house.union(b(10, 0, 3, 10))  # 30 m² beyond it
    out = _rows(fp(("grown", grown, SEEN, "new"), ("fits", fitting, SEEN, "new")), p)
    assert out.loc["grown", "status"] == "exceeds_permit"
    assert out.loc["grown", "excess_area_m2"] == pytest.approx(20.0)
    assert out.loc["grown", "reason"].startswith(f"built {grown.area:.0f} m² against a permit for "
                                                 f"{house.area + 30:.0f} m² (P-ext): 20 m² (")  # the largest overlap
    assert "over the permitted area; permit P-ext's outline (900 m²) is 30.0 times" in out.loc["grown", "reason"]
    assert out.loc["fits", "status"] == "permitted"
    # traced half a metre too wide around the house, with an extension of 5 m² permitted: the edge
    # tolerance forgives the band along the house's outline, as without the lot
    p5 = register(permit("P-house", house), permit("P-ext", lot, ptype="extension", area=5))
    wide = fp(("wide", house.buffer(0.5, join_style="mitre"), SEEN, "new"))
    assert _rows(wide, p5).loc["wide", "status"] == "exceeds_permit"
    assert _rows(wide, p5, edge_tolerance_m=0.5).loc["wide", "status"] == "permitted"


def test_lot_outlines_are_said_once_as_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    f = fp(("a", b(0, 0, 10, 13), SEEN, "new"), ("b", b(100, 0, 10, 10), SEEN, "new"),
           ("c", b(200, 0, 10, 10), SEEN, "new"))
    p = register(permit("P-9", b(0, 0, 20, 20), area=110), permit("P-10", b(100, 0, 20, 15), area=100),
                 permit("P-c", b(200, 0, 10, 10)), permit("P-far", b(900, 0, 30, 30), area=100))
    with caplog.at_level("WARNING", logger="changedetect"):
        said = match(f, p).attrs["warnings"]
    assert [w["kind"] for w in said] == ["lot_outlines"]
    assert said[0]["permits"] == "2" and said[0]["example"] == "P-10"  # the first by id; P-far covers nothing
    assert said[0]["message"].startswith("2 permits covering footprints (e.g. P-10: outline 300 m², permitted area "
                                         "100 m²) are drawn more than 1.5 times their permitted area: lots")
    assert said[0]["message"] in caplog.text
    one = match(f.iloc[:1], p).attrs["warnings"]
    assert one[0]["message"].startswith("1 permit covering a footprint (P-9: outline 400 m², permitted area 110 m²) "
                                        "is drawn more than 1.5 times its permitted area: a lot (thửa đất)")
    assert match(f.iloc[2:], p).attrs["warnings"] == []  # a register of building outlines: nothing to say
    assert match(f, p, config={"lot_ratio": False}).attrs["warnings"] == []


def test_changedetect_match_prints_the_lot_warning(tmp_path) -> None:
    from click.testing import CliRunner

    from changedetect.cli import cli
    from changedetect.io.vectors import write_vector

    write_vector(fp(("house", b(0, 0, 15, 15.67), SEEN, "new")), tmp_path / "fp.gpkg")
    write_vector(register(permit("P-19", b(0, 0, 15, 15.04), area=112.8)).to_crs(9210), tmp_path / "reg.gpkg")
    res = CliRunner().invoke(cli, ["-q", "match", str(tmp_path / "fp.gpkg"), "--permits", str(tmp_path / "reg.gpkg"),
                                   "--out", str(tmp_path / "v.csv")])
    assert res.exit_code == 0, res.output
    assert "Warning: 1 permit covering a footprint (P-19: outline 226 m²" in res.output
    assert "exceeds_permit  1" in res.output


def test_the_report_says_the_lot_reasons_in_vietnamese() -> None:
    from changedetect._report_reasons import reason

    f = fp(("house", b(0, 0, 15, 15.67), SEEN, "new"), ("ok", b(100, 0, 10, 11.5), SEEN, "new"))
    p = register(permit("P-19", b(0, 0, 15, 15.04), area=112.8),
                 permit("P-ok", b(100, 0, 20, 20), issued="2023-01-01", until="2024-03-01", area=110))
    f["before_date"] = "2024-01-01"  # P-ok ran out between the two images: the reason ends with that note
    out = _rows(f, p)
    for sentence in out["reason"]:
        assert reason(sentence, "en") == sentence
    assert reason(out.loc["house", "reason"], "vi") == (
        "xây dựng 235 m² so với 113 m² được cấp phép (P-19): vượt 122 m² (108 %) so với diện tích được cấp phép; "
        "đường viền của giấy phép P-19 (226 m²) gấp 2,0 lần diện tích được cấp phép (113 m²): đó là thửa đất chứ "
        "không phải công trình, nên diện tích công trình được so với diện tích được cấp phép")
    vi = reason(out.loc["ok", "reason"], "vi")
    assert vi.startswith("công trình xây mới 115 m² trong phạm vi giấy phép P-ok (xây dựng mới, hiệu lực từ "
                         "2023-01-01 đến 2024-03-01); vượt 5 m² so với diện tích được cấp phép, trong sai số")
    assert "gấp 3,6 lần" in vi and vi.endswith("có thể đã xây trong thời hạn")


@pytest.mark.parametrize("lang, said", [
    ("en", "PERMITS DRAWN AS LOTS: 1 permit(s) covering the buildings found (e.g. P-19: outline 226 m², permitted "
           "area 113 m²) are drawn more than 150 % of their permitted area"),
    ("vi", "GIẤY PHÉP VẼ THEO THỬA ĐẤT: 1 giấy phép của các công trình phát hiện được (ví dụ P-19: đường viền 226 "
           "m², diện tích được cấp phép 113 m²) có đường viền lớn hơn 150 % diện tích được cấp phép"),
])
def test_the_report_says_the_lot_warning(lang: str, said: str) -> None:
    import html

    from changedetect._report_coverage import section

    f = fp(("house", b(0, 0, 15, 15.67), SEEN, "new"))
    warnings = match(f, register(permit("P-19", b(0, 0, 15, 15.04), area=112.8))).attrs["warnings"]
    coverage = {"pairs": [{"before": "2023-03-01", "after": "2024-03-01", "valid_share": 1.0}], "warnings": warnings}
    assert said in html.unescape(section(coverage, lang))
