"""Review of the Vietnamese report (helper-99): every reason the match stage can write is said in
Vietnamese (the templates enumerated through :func:`changedetect.match.match`), the numbers keep
their values, and ``changedetect report RUN_DIR`` keeps the run's language."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box

from changedetect._report_reasons import _LOT, _PATTERNS, reason
from changedetect._report_text import TEXT
from changedetect.match import MatchConfig, match

X0, Y0 = 686_000.0, 1_192_000.0  # Ho Chi Minh City in EPSG:32648
SEEN = dt.date(2024, 6, 1)


def _b(x: float, w: float = 10, h: float = 10):  # noqa: ANN202
    return box(X0 + x, Y0, X0 + x + w, Y0 + h)


def _permit(pid: str, geom, ptype: str = "new_construction", issued: str = "2024-01-01",  # noqa: ANN001
            until: str = "2025-12-31", status: str = "active", area: float | None = None) -> dict:
    return {"permit_id": pid, "permit_type": ptype, "issued_on": dt.date.fromisoformat(issued),
            "valid_until": dt.date.fromisoformat(until), "status": status, "address": "Quận 12",
            "permitted_area_m2": float(area if area is not None else geom.area), "geometry": geom}


#: (footprint id, geometry, change type, before_date) and the permits that give each reason template
FOOTPRINTS = [
    ("unlicensed", _b(0), "new", None),
    ("unlicensed_demolished", _b(100), "demolished", None),
    ("unlicensed_altered", _b(200), "altered", None),
    ("revoked", _b(300), "new", None),
    ("type_mismatch_new", _b(400), "new", None),
    ("type_mismatch_demolished", _b(500), "demolished", None),
    ("before_permit", _b(600), "new", None),
    ("permit_expired", _b(700), "new", None),
    ("exceeds_permit", _b(800, 30, 30), "new", None),
    ("permitted_tolerance", _b(900, 10.3), "new", None),
    ("permitted_edge", _b(1000, 10.8, 10.8), "altered", None),
    ("permitted_in_time", _b(1100), "new", dt.date(2023, 6, 1)),
    ("exceeds_lot", _b(1200, 15, 15), "new", None),  # a permit drawn as its lot (MatchConfig.lot_ratio)
    ("permitted_lot", _b(1300), "new", None),
]
PERMITS = [
    _permit("GP-300/2024", _b(300), status="revoked"),
    _permit("GP-400/2024", _b(400), ptype="renovation"),
    _permit("GP-500/2024", _b(500), ptype="renovation"),
    _permit("GP-600/2024", _b(600), issued="2024-09-01"),
    _permit("GP-700/2023", _b(700), issued="2023-01-01", until="2024-01-01"),
    _permit("GP-800/2024", _b(800)),
    _permit("GP-900/2024", _b(900)),
    _permit("GP-1000/2024", _b(1000), ptype="extension"),
    _permit("GP-1100/2023", _b(1100), issued="2023-01-01", until="2024-01-01"),
    _permit("GP-1200/2024", _b(1200, 20, 20), area=150),
    _permit("GP-1300/2024", _b(1300, 20, 20), area=100),
]


@pytest.fixture(scope="module")
def violations() -> gpd.GeoDataFrame:
    fp = gpd.GeoDataFrame(
        {"footprint_id": [f[0] for f in FOOTPRINTS], "first_seen": [SEEN] * len(FOOTPRINTS),
         "change_type": [f[2] for f in FOOTPRINTS], "before_date": [f[3] for f in FOOTPRINTS],
         "prob_mean": [0.9] * len(FOOTPRINTS)},
        geometry=[f[1] for f in FOOTPRINTS], crs="EPSG:32648")
    pm = gpd.GeoDataFrame(PERMITS, geometry="geometry", crs="EPSG:32648")
    return match(fp, pm, config=MatchConfig(edge_tolerance_m=2.0, tolerance_pct=2.5))


def test_every_reason_template_is_produced_and_said_in_vietnamese(violations: gpd.GeoDataFrame) -> None:
    """Each pattern of _report_reasons (each template of _match_reasons) is met by a reason match
    wrote, the in-time note too, and none of them is left in English in Vietnamese."""
    said = dict(zip(violations["footprint_id"], violations["reason"], strict=True))
    met = {key for key, p in _PATTERNS for s in said.values()
           if p.fullmatch(_LOT.sub("", s.split("; it expired")[0]))}
    assert met == {key for key, _ in _PATTERNS}, sorted({key for key, _ in _PATTERNS} - met)
    assert "may have been built in time" in said["permitted_in_time"]
    assert "edge tolerance" in said["permitted_edge"] and "2.5%" in said["permitted_tolerance"]
    assert all(_LOT.search(said[k]) for k in ("exceeds_lot", "permitted_lot"))
    english = re.compile(r"\b(building|permit|covers|within|outside|before|after|first seen|expired|needs|"
                         r"under|valid|built|tolerance|renovation|extension|new_construction|demolition)\b")
    for fid, sentence in said.items():
        vi = reason(sentence, "vi")
        assert reason(sentence, "en") == sentence, fid
        assert not english.search(vi), (fid, vi)


def test_reasons_keep_ids_dates_and_numbers(violations: gpd.GeoDataFrame) -> None:
    """The decimal comma goes on quantities only: permit ids, dates and the areas' digits survive."""
    for sentence in violations["reason"]:
        vi = reason(sentence, "vi")
        for pid in re.findall(r"GP-\d+/\d{4}", sentence):
            assert pid in vi
        for date in re.findall(r"\d{4}-\d{2}-\d{2}", sentence):
            assert date in vi
        assert sorted(re.findall(r"\d+", sentence.replace("2.5", "2,5"))) == sorted(re.findall(r"\d+", vi))
    tol = reason(violations.set_index("footprint_id").at["permitted_tolerance", "reason"], "vi")
    assert "2,5 %" in tol


def test_the_card_rows_read_as_a_vietnamese_inspector_reads_them() -> None:
    """The parcel as the land registry writes it (thửa đất số ..., tờ bản đồ số ...), the date an
    image first shows the change (not the date a violation was discovered, ngày phát hiện, which
    an inspector's record gives), and an unlicensed demolition not said to lack a building permit."""
    vi = TEXT["vi"]
    assert vi["parcel.sheet_no"].format(sheet="12", no="346") == "thửa đất số 346, tờ bản đồ số 12"
    assert "phát hiện" not in vi["card.first_seen"] and "ảnh" in vi["card.first_seen"]
    said = reason("demolition of 100 m²: no permit covers it", "vi")
    assert "xây dựng" not in said, said
    footer = vi["footer"].format(generated=vi["night.generated"].format(night="2026-11-30"))
    assert "lúc đêm" not in footer, footer


def _run_dir(tmp_path: Path, lang: str | None) -> Path:
    from changedetect.config import PipelineConfig, ReportConfig
    from changedetect.testing import make_violations

    run = tmp_path / "run"
    run.mkdir()
    make_violations(n=2).to_file(run / "violations.gpkg", driver="GPKG")
    doc: dict = {"report_info": {"before": "2024-01-15", "after": "2025-01-20"}}
    if lang is not None:
        doc["config"] = PipelineConfig(report=ReportConfig(lang=lang)).to_dict()
    (run / "run.json").write_text(json.dumps(doc, default=str), encoding="utf-8")
    return run


@pytest.mark.parametrize("given, run_lang, expected", [
    (None, "vi", "vi"),  # re-rendering a Vietnamese run keeps it Vietnamese
    ("en", "vi", "en"),  # --lang wins
    ("vi", "en", "vi"),
    (None, None, "en"),  # a run.json without a config (an older run): English
])
def test_report_run_dir_keeps_the_runs_language(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               given: str | None, run_lang: str | None, expected: str) -> None:
    from changedetect import cli as cdcli

    run = _run_dir(tmp_path, run_lang)
    argv = ["report", str(run), "--overwrite"] + (["--lang", given] if given else [])
    with pytest.raises(SystemExit) as info:
        cdcli.main(argv)
    assert info.value.code in (0, None), capsys.readouterr().err
    assert f'<html lang="{expected}">' in (run / "report.html").read_text(encoding="utf-8")
