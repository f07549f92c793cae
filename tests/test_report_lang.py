"""The inspectors' report in Vietnamese (``ReportConfig(lang="vi")``, ``report --lang vi``,
``run --report-lang vi``, ``[report] lang``): every word of it from the catalog, no English left."""

from __future__ import annotations

import html
import re
import string
from html.parser import HTMLParser
from pathlib import Path

import geopandas as gpd
import pytest

from changedetect._report_reasons import coverage_why, reason
from changedetect._report_text import TEXT
from changedetect.config import PipelineConfig, ReportConfig
from changedetect.errors import ConfigError
from changedetect.report import render_report

REPO = Path(__file__).resolve().parents[1]
#: run.json's report_info, as run writes it
INFO = {"before": "2024-01-15", "after": "2025-01-20", "dates": 3, "model": "vhr-building", "model_version": "0.4.0",
        "footprints": 42}
#: a low pair (clouds, the SCL's no data, the tiles' own no data) and a pair filled from a clear view
COVERAGE = {
    "pairs": [{"before": "2024-01-15", "after": "2024-07-12", "coverage_both_dates": 0.3, "low": True},
              {"before": "2024-07-12", "after": "2025-01-20", "coverage_both_dates": 0.5, "filled_share": 0.3,
               "compared_share": 0.8, "filled_from": {"2024-01-15": 0.3}, "low": False}],
    "dates": [{"date": "2024-07-12", "valid_share": 0.25, "tiles_nodata_share": 0.15},
              {"date": "2025-01-20", "valid_share": 1.0, "tiles_nodata_share": 0.0}],
    "clouds": [{"date": "2024-07-12", "cloud_share": 0.5, "masked_share": 0.6, "masked": True, "scl": "x_SCL.tif",
                "masked_classes": {"cloud, high probability (9)": 0.4, "cloud shadow (3)": 0.1, "no data (0)": 0.1}},
               {"date": "2025-01-20", "cloud_share": 0.02, "masked": False}],
}


@pytest.fixture(scope="module")
def sample_violations() -> gpd.GeoDataFrame:
    """The sample city's planted violations, every status (as tests/test_match.py matches them)."""
    from changedetect.match import match
    from changedetect.permits import load_register

    footprints = REPO / "sample_tiles" / "truth" / "footprints.gpkg"
    truth = gpd.read_file(footprints, layer="footprints").rename(columns={"structure_id": "footprint_id"})
    v = match(truth, load_register(REPO / "permits" / "sample_register.gpkg"))
    v["address"] = "Số 14 Đường Tô Ký"
    v.loc[v.index[:2], ["parcel_id", "parcel_sheet", "parcel_no", "parcel_share", "parcel_land_use",
                        "parcels_crossed"]] = ["12/346", "12", "346", 0.7, "ODT", 2]
    v.loc[v.index[:3], "same_sun"] = ["pending", "confirmed", "not needed"]
    return v


class _Visible(HTMLParser):
    """The page's text as a reader sees it (not the CSS), and its images' alt text."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._style = tag == "style"
        self.parts += [v or "" for k, v in attrs if k == "alt"]

    def handle_endtag(self, tag: str) -> None:
        self._style = False

    def handle_data(self, data: str) -> None:
        if not self._style:
            self.parts.append(data)


def _visible(page: str) -> str:
    parser = _Visible()
    parser.feed(page)
    return " ".join(" ".join(parser.parts).split())


#: names, not English: the same in every language
NAMES = re.compile(r"`changedetect info`|changedetect|Sentinel-2|SCL|WGS 84|EPSG:4326|max_cards")


def _fragments(template: str) -> list[str]:
    """The fixed words of a catalog text (between its ``{fields}``) that hold an English word."""
    pieces = [literal for literal, *_ in string.Formatter().parse(template)]
    return [p.strip(" ;:,.()") for p in pieces if re.search(r"[A-Za-z]{4,}", NAMES.sub("", p))]


def test_every_language_has_the_same_keys_and_fields() -> None:
    assert set(TEXT) == {"en", "vi"}
    en = TEXT["en"]
    for lang, text in TEXT.items():
        assert sorted(text) == sorted(en), lang
        for key, value in text.items():
            fields = {f for _, f, *_ in string.Formatter().parse(value) if f}
            assert fields == {f for _, f, *_ in string.Formatter().parse(en[key]) if f}, (lang, key)


def test_the_vietnamese_report_says_nothing_in_english(sample_violations: gpd.GeoDataFrame) -> None:
    page = render_report(sample_violations, run_info=INFO, coverage=COVERAGE,
                         config=ReportConfig(lang="vi", include_permitted=True, max_cards=40))
    assert '<html lang="vi">' in page
    seen = _visible(page)
    for status in ("unlicensed", "exceeds_permit", "permit_expired", "type_mismatch", "before_permit", "permitted"):
        assert status in set(sample_violations["status"])
        assert TEXT["vi"][f"status.{status}"] in seen, status
    for phrase in ("Công trình xây dựng không phép, sai phép", "xây dựng không phép", "thửa đất số 346, tờ bản đồ số 12",
                   "Thửa đất", "Địa chỉ", "Thấy lần đầu trên ảnh", "Diện tích", "Độ tin cậy", "THẤP: dưới 50 %",
                   "bị che 60 % theo lớp phân loại cảnh Sentinel-2 (SCL): 40 % mây, xác suất cao (9)",
                   "không có giấy phép nào", "trước khi giấy phép", "hiệu lực từ",
                   "Còn 3 vi phạm không hiển thị"):
        assert phrase in seen, phrase
    assert re.search(r"\d,\d m²", seen), "areas with the decimal comma"
    leaks = {key: f for key, value in TEXT["en"].items() for f in _fragments(value) if f in seen}
    assert leaks == {}
    english = {TEXT["en"][k] for k in TEXT["en"] if k.startswith(("status.", "card.", "cov.", "kind."))}
    assert not [w for w in english if len(w) > 3 and re.search(rf"\b{re.escape(w)}\b", seen)]


def test_the_english_report_is_as_it_was(sample_violations: gpd.GeoDataFrame) -> None:
    """English re-says each reason as written (the reasons' patterns read every template), and the
    page keeps its words."""
    for sentence in sample_violations["reason"]:
        assert reason(sentence, "en") == sentence
    page = render_report(sample_violations.iloc[:3], run_info=INFO, coverage=COVERAGE)
    assert '<html lang="en">' in page and "Buildings without a matching permit" in page
    assert "<th>First seen</th>" in page and "sheet 12, parcel 346 (tờ 12, thửa 346)" in page
    assert "LOW: under 50 %" in page and "2024-07-12 is 60 % masked" in page


@pytest.mark.parametrize("sentence, said", [
    ("altered building of 120 m² within permit P-1 (renovation, valid 2024-01-01 to 2025-01-01); 14 m² outside, "
     "within 10 m of its outline (edge tolerance); it expired between 2024-07-12 (not built) and 2025-01-20 "
     "(built): it may have been built in time",
     "công trình cơi nới, cải tạo 120 m² trong phạm vi giấy phép P-1 (sửa chữa, cải tạo, hiệu lực từ 2024-01-01 "
     "đến 2025-01-01); 14 m² nằm ngoài, cách đường viền không quá 10 m (sai số đường viền); giấy phép hết hạn "
     "trong khoảng từ 2024-07-12 (chưa xây) đến 2025-01-20 (đã xây): có thể đã xây trong thời hạn"),
    ("new building of 80 m² under a renovation permit (P-2); it needs a new_construction or extension permit",
     "công trình xây mới 80 m² theo giấy phép sửa chữa, cải tạo (P-2); cần giấy phép xây dựng mới hoặc cơi nới"),
    ("a reason written by hand", "a reason written by hand"),
])
def test_reasons_in_vietnamese(sentence: str, said: str) -> None:
    assert reason(sentence, "vi") == said
    assert reason(sentence, "en") == sentence


def test_the_tiles_and_an_unnamed_scl_in_vietnamese() -> None:
    from changedetect.io.clouds import coverage_why as english

    words = english([{"date": "2020-07-04", "cloud_share": 0.0, "masked_share": 0.8, "masked": True,
                      "masked_classes": {}}], ("2020-01-05", "2020-07-04"), tiles_nodata={"2020-01-05": 0.3})
    said = coverage_why(words, "vi")
    assert "kiểm tra lớp SCL có đúng là SCL" in said and "ảnh ngày 2020-01-05 không có dữ liệu trên 30 %" in said
    assert not re.search(r"check|masked|tiles|scene", said), said


def test_an_unknown_language_is_one_line_naming_the_languages(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from test_cli_errors import _exit

    with pytest.raises(ConfigError, match=r"unknown report language 'xx': choose among en \(English\), vi"):
        ReportConfig(lang="xx")
    (tmp_path / "v.gpkg").write_bytes(b"")
    code, err = _exit(["report", "--violations", str(tmp_path / "v.gpkg"), "--out", str(tmp_path / "r.html"),
                       "--lang", "xx"], capsys)
    assert code == 2
    assert err.splitlines() == ["Error: unknown report language 'xx': choose among en (English), vi (Tiếng Việt)"]
    out = tmp_path / "run"
    code, err = _exit(["run", str(REPO / "sample_tiles"), "--permits", str(REPO / "permits" / "sample_register.gpkg"),
                       "--out", str(out), "--report-lang", "fr"], capsys)
    assert code == 2 and err.splitlines() == [
        "Error: unknown report language 'fr': choose among en (English), vi (Tiếng Việt)"]
    assert not out.exists() and not (tmp_path / "r.html").exists()


def test_report_lang_round_trips_through_the_config_file(tmp_path: Path) -> None:
    config = PipelineConfig(report=ReportConfig(lang="vi"))
    text = config.to_toml()
    assert re.search(r'(?m)^lang = "vi"$', text)
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    assert PipelineConfig.from_toml(path).report.lang == "vi"
    assert PipelineConfig.from_toml(path) == config
    path.write_text('[report]\nlang = "fr"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"run.toml.*unknown report language 'fr': choose among en"):
        PipelineConfig.from_toml(path)


def test_every_kind_of_withdrawal_has_words_in_every_language() -> None:
    """The nightly report's "withdrawn tonight" line names each kind in the report's language: the
    same-sun check's, a late SCL's, a permit entered since, and the inspectors' two decisions."""
    from changedetect._nightly_decisions import KINDS
    from changedetect._nightly_rematch import KIND as PERMIT
    from changedetect._withdraw_masked import KIND as CLOUD

    kinds = ["not seen under the same sun", CLOUD, PERMIT, *KINDS.values()]
    for lang, catalog in TEXT.items():
        missing = [k for k in kinds if f"withdrawn.{k}" not in catalog]
        assert not missing, (lang, missing)


@pytest.mark.parametrize("lang", ["en", "vi"])
def test_a_footprint_cut_by_a_block_says_so_on_its_card(sample_violations: gpd.GeoDataFrame, lang: str) -> None:
    """A violation whose outline a run in blocks could not hold whole (``cut_by_block``, as the GeoPackage gives
    it or the CSV's text) tells the inspector its area may be understated; the others say nothing of it."""
    from changedetect._report_card import card

    rows = sample_violations.iloc[:3].copy()
    rows["cut_by_block"] = [True, "True", False]
    said = [TEXT[lang]["card.cut_text"] in html.unescape(card(i, row, rows.crs, {}, {}, lang))
            for i, (_, row) in enumerate(rows.iterrows(), 1)]
    assert said == [True, True, False]
