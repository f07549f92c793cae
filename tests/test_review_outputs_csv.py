"""The CSV violation list as GDAL (and QGIS's OGR provider through it) reads it: its CRS and its
field types come from the ``.prj`` and ``.csvt`` beside it, as GDAL's own CSV writer makes them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from shapely.geometry import box

from changedetect._pipeline_output import publish
from changedetect.errors import OutputExistsError
from changedetect.io import vectors
from changedetect.io.vectors import write_vector


@pytest.fixture()
def frame() -> gpd.GeoDataFrame:
    x0, y0 = 686_000.0, 1_192_000.0  # Ho Chi Minh City, EPSG:32648
    return gpd.GeoDataFrame(
        {"violation_id": ["v1", "v2"], "status": ["unlicensed", "permitted"], "area_m2": [150.0, 80.5],
         "n_permits": [0, 2], "first_seen": [dt.date(2024, 3, 1), None],
         "seen_at": pd.to_datetime(["2024-03-01 10:30", None]), "address": ["12 Đường Lê Lợi", "Bến Nghé"]},
        geometry=[box(x0, y0, x0 + 10, y0 + 15), box(x0 + 50, y0, x0 + 58, y0 + 10)], crs="EPSG:32648")


def test_gdal_reads_the_csv_in_wgs84_with_typed_fields(frame: gpd.GeoDataFrame, tmp_path: Path) -> None:
    """Without the .prj GDAL gave the layer no CRS: dragged into QGIS beside after_rgb.tif (UTM), the
    lon/lat outlines were taken as metres and drawn next to the UTM origin; every field was text."""
    path = write_vector(frame, tmp_path / "v.csv")
    info = pyogrio.read_info(path)
    assert info["crs"] == "EPSG:4326"
    types = dict(zip(info["fields"], info["ogr_types"], strict=True))
    assert types["first_seen"] == "OFTDate" and types["seen_at"] == "OFTDateTime"
    assert types["area_m2"] == "OFTReal" and types["lon"] == "OFTReal" and types["n_permits"] == "OFTInteger64"
    assert types["address"] == "OFTString" and types["status"] == "OFTString"
    back = pyogrio.read_dataframe(path)
    assert back.crs.to_epsg() == 4326
    assert back.to_crs(32648).geometry.iloc[0].symmetric_difference(frame.geometry.iloc[0]).area < 0.5
    assert back["address"].iloc[0] == "12 Đường Lê Lợi"
    assert pd.read_csv(path).columns.tolist()[:2] == ["violation_id", "status"]  # the CSV itself is unchanged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.csv", "v.csvt", "v.prj"]


def test_the_side_files_follow_the_csv(frame: gpd.GeoDataFrame, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_vector(frame, tmp_path / "v.csv")
    with pytest.raises(OutputExistsError):
        write_vector(frame.iloc[:1], path)
    write_vector(frame.iloc[:1], path, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.csv", "v.csvt", "v.prj"]
    assert len(pd.read_csv(path)) == 1
    (tmp_path / "new").mkdir()

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk gone")

    monkeypatch.setattr(vectors, "_csvt", fail)  # a side file that fails: no CSV either, nothing left
    with pytest.raises(RuntimeError, match="disk gone"):
        write_vector(frame, tmp_path / "new" / "w.csv")
    assert list((tmp_path / "new").iterdir()) == []


def test_a_run_without_csv_removes_the_earlier_runs_side_files(tmp_path: Path) -> None:
    out, stage = tmp_path / "out", tmp_path / "out" / ".run.tmp-1"
    stage.mkdir(parents=True)
    for name in ("violations.csv", "violations.prj", "violations.csvt", "run.json", "notes.prj"):
        (out / name).write_text("old")
    for name in ("violations.gpkg", "run.json"):
        (stage / name).write_text("new")
    publish(stage, out)
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ["notes.prj", "run.json", "violations.gpkg"]
