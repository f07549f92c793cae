"""The inspectors' HTML report: self-contained, escaped, one card per violation."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import pytest
from PIL import Image

from changedetect.config import ReportConfig
from changedetect.errors import OutputExistsError
from changedetect.report import render_report, sort_by_urgency, write_report
from changedetect.testing import make_stack, make_violations, write_stack


@pytest.fixture(scope="module")
def stack():
    return make_stack(n_dates=3, size=96, seed=1)


def _cards(text: str) -> list[str]:
    return re.findall(r'<section class="card status-([a-z_]+)"', text)


def test_one_card_per_violation_most_urgent_first(stack, tmp_path: Path) -> None:
    v = make_violations(stack, n=6)  # includes one 'permitted' row
    v["address"] = "Số 5 Đường Lê Lợi, Phường Bến Nghé"
    out = write_report(v, out_path=tmp_path / "r.html", stack=stack, run_info={"model": "m"})
    text = out.read_text(encoding="utf-8")
    cards = _cards(text)
    assert len(cards) == (v["status"] != "permitted").sum() == 5
    assert cards[0] == "unlicensed" and "permitted" not in cards
    assert '<meta charset="utf-8">' in text
    assert "Đường Lê Lợi" in text
    assert "<test &" not in text and "&lt;test &amp; &quot;escape&quot;&gt;" in text
    with_permitted = render_report(v, config=ReportConfig(include_permitted=True))
    assert len(_cards(with_permitted)) == 6


def test_self_contained_images_decode(stack, tmp_path: Path) -> None:
    text = write_report(make_violations(stack, n=2), out_path=tmp_path / "r.html", stack=stack).read_text()
    assert not re.search(r"(src|href)=\"(?!data:)", text), "every resource must be inline"
    assert "http://" not in text and "https://" not in text and "@import" not in text
    uris = re.findall(r'src="data:image/(?:jpeg|png);base64,([^"]+)"', text)
    assert len(uris) == 1 + 2 * 2  # overview + before/after per card
    for uri in uris:
        img = Image.open(io.BytesIO(base64.b64decode(uri)))
        img.load()
        assert img.size[0] > 0
    assert "@media print" in text and "break-inside: avoid" in text


def test_from_raster_files_and_chip_outline(stack, tmp_path: Path) -> None:
    paths = write_stack(stack, tmp_path / "tiles")
    v = make_violations(stack, n=1)
    out = write_report(v, out_path=tmp_path / "r.html", before=paths[0], after=paths[-1],
                       config=ReportConfig(chip_px=64))
    text = out.read_text()
    uris = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', text)
    chip = Image.open(io.BytesIO(base64.b64decode(uris[-1]))).convert("RGB")
    assert chip.size == (64, 64)
    assert any(abs(r - 230) < 30 and g < 60 and abs(b - 45) < 30 for r, g, b in chip.getdata()), \
        "outline drawn"  # (230, 25, 45), as JPEG keeps it
    assert "N, 106." in text and "EPSG:32648" in text  # lat/lon and working CRS


def test_violations_in_another_crs_are_reprojected(stack, tmp_path: Path) -> None:
    v = make_violations(stack, n=2).to_crs("EPSG:4326")
    text = write_report(v, out_path=tmp_path / "r.html", stack=stack).read_text()
    assert len(_cards(text)) == 2 and "EPSG:32648" in text


def test_refuses_to_overwrite(stack, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    out.write_text("keep")
    with pytest.raises(OutputExistsError):
        write_report(make_violations(stack, n=1), out_path=out, stack=stack)
    assert out.read_text() == "keep"
    write_report(make_violations(stack, n=1), out_path=out, stack=stack, overwrite=True)
    assert out.read_text() != "keep"


def test_a_file_that_is_not_a_violation_list_is_refused(stack, tmp_path: Path) -> None:
    from changedetect.errors import ConfigError

    footprints = make_violations(stack, n=2).drop(columns=["status"])
    path = tmp_path / "footprints.gpkg"
    footprints.to_file(path)
    with pytest.raises(ConfigError, match=r"'.*footprints.gpkg' has no status column: it is not a violation list"):
        write_report(path, out_path=tmp_path / "r.html", stack=stack)
    assert not (tmp_path / "r.html").exists()


def test_no_violations_says_so() -> None:
    v = make_violations(n=1).iloc[:0]
    assert "No violations found" in render_report(v)


def test_sort_by_urgency() -> None:
    v = make_violations(n=6)
    v.loc[:, "status"] = ["permitted", "before_permit", "unlicensed", "unlicensed", "exceeds_permit", "x"]
    v.loc[:, "area_m2"] = [1.0, 2.0, 3.0, 9.0, 1.0, 1.0]
    ordered = sort_by_urgency(v)
    assert list(ordered["status"]) == ["unlicensed", "unlicensed", "exceeds_permit", "before_permit",
                                       "x", "permitted"]
    assert list(ordered["area_m2"][:2]) == [9.0, 3.0]


def test_cli_report_from_files(stack, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from changedetect.cli import cli

    paths = write_stack(stack, tmp_path / "tiles")
    vpath = tmp_path / "violations.gpkg"
    make_violations(stack, n=2).to_file(vpath)
    out = tmp_path / "report.html"
    args = ["report", "--violations", str(vpath), "--before", str(paths[0]), "--after", str(paths[-1]),
            "--out", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Report:" in result.output and len(_cards(out.read_text())) == 2
    again = CliRunner().invoke(cli, args)
    assert again.exit_code != 0 and isinstance(again.exception, OutputExistsError)


def test_a_card_says_when_the_structure_was_not_there_yet() -> None:
    """run's before_date (the last image without the change) is on the card beside first_seen."""
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import box

    from changedetect._report_card import card

    row = gpd.GeoDataFrame({"status": ["unlicensed"], "first_seen": [pd.Timestamp("2025-01-20")],
                            "before_date": [pd.Timestamp("2024-07-12")]},
                           geometry=[box(680000, 1202000, 680010, 1202010)], crs="EPSG:32648").iloc[0]
    html = card(1, row, "EPSG:32648", {}, {})
    assert "<th>Not yet there on</th><td>2024-07-12</td>" in html and "<td>2025-01-20</td>" in html
    assert "Not yet there on" not in card(1, row.drop("before_date"), "EPSG:32648", {}, {})
    assert "Not yet there on" not in card(1, pd.concat([row.drop("before_date"), pd.Series({"before_date": pd.NaT})]),
                                          "EPSG:32648", {}, {})
