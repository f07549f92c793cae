"""A district's register in VN-2000 as it really arrives: a Shapefile whose .prj lost the datum shift.

QGIS users in Ho Chi Minh City define VN-2000 / TM-3 105-45 as a PROJ string with the decree's
``+towgs84`` (Decision 05/2007/QĐ-BTNMT); GDAL writes a Shapefile's .prj as ESRI WKT, which cannot
hold it (the parameters end up in the datum's *name*), so the file reads back on an unknown datum
with no way to WGS 84.  PROJ then falls back to a "ballpark" transformation: every permit about
230 m off, every building unlicensed, with one log line.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import box

from changedetect.errors import GeoreferenceError
from changedetect.match import match
from changedetect.permits import load_register

#: VN-2000 / TM-3 105-45 with the decree's seven parameters, as QGIS users define it
VN2000_TOWGS84 = ("+proj=tmerc +lat_0=0 +lon_0=105.75 +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84 "
                  "+towgs84=-191.90441429,-39.30318279,-111.45032835,-0.00928836,0.01975479,-0.00427372,"
                  "0.252906278 +units=m +no_defs")
X0, Y0 = 680_000.0, 1_200_000.0  # UTM 48N, Ho Chi Minh City


def _footprints(tmp_path: Path) -> Path:
    path = tmp_path / "footprints.gpkg"
    gpd.GeoDataFrame({"footprint_id": ["F-1"], "first_seen": ["2024-07-12"], "change_type": ["new"]},
                     geometry=[box(X0, Y0, X0 + 10, Y0 + 8)], crs="EPSG:32648").to_file(path)
    return path


def _register_in(crs: str) -> gpd.GeoDataFrame:
    """The footprint's permit, drawn in ``crs`` (the datum shift applied)."""
    to = Transformer.from_crs("EPSG:32648", crs, always_xy=True)
    geom = shapely.transform(box(X0, Y0, X0 + 10, Y0 + 8),
                             lambda xy: np.column_stack(to.transform(xy[:, 0], xy[:, 1])))
    return gpd.GeoDataFrame({
        "permit_id": ["GPXD-2024-0001"], "permit_type": ["new_construction"], "issued_on": ["2024-01-02"],
        "valid_until": ["2025-01-02"], "permitted_area_m2": [80.0], "status": ["active"],
        "address": ["Số 12 Đường Tô Ký, Phường Trung Mỹ Tây, Quận 12"],
    }, geometry=[geom], crs=crs)


def _shapefile_losing_towgs84(tmp_path: Path) -> Path:
    path = tmp_path / "giay_phep.shp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _register_in(VN2000_TOWGS84).to_file(path, encoding="utf-8")
    assert "towgs84" in path.with_suffix(".prj").read_text().lower()  # in the datum's name only
    return path


def _exit(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from test_cli_errors import _exit as exit_of

    return exit_of(argv, capsys)


def test_the_same_permit_with_its_towgs84_kept_is_permitted(tmp_path: Path) -> None:
    """A GeoPackage keeps the +towgs84 (and EPSG:9210 needs none): the permit lies on its building."""
    path = tmp_path / "giay_phep.gpkg"
    _register_in(VN2000_TOWGS84).to_file(path)
    fp = gpd.read_file(_footprints(tmp_path))
    assert match(fp, load_register(path))["status"].tolist() == ["permitted"]
    assert match(fp, load_register_frame(_register_in("EPSG:9210")))["status"].tolist() == ["permitted"]


def load_register_frame(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    from changedetect.permits import map_columns, validate_register

    return validate_register(map_columns(gdf)).permits


def test_a_prj_that_lost_its_datum_shift_stops_the_match_naming_the_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: 'no datum transformation known' in the log, the violations written, the house unlicensed."""
    register = _shapefile_losing_towgs84(tmp_path)
    out = tmp_path / "violations.gpkg"
    code, err = _exit(["-q", "match", str(_footprints(tmp_path)), "--permits", str(register), "--out", str(out)],
                      capsys)
    lines = [ln for ln in err.splitlines() if ln.startswith(("Error", "Internal"))]
    assert code == 2 and len(lines) == 1, err
    assert "giay_phep.shp" in lines[0] and "EPSG:9210" in lines[0] and "--permits-crs" in lines[0], lines[0]
    assert "towgs84" in lines[0], lines[0]  # says why: the .prj lost it
    assert not out.exists()


def test_permits_crs_replaces_a_declared_crs_without_a_datum_shift(tmp_path: Path) -> None:
    """The way out the message gives: --permits-crs EPSG:9210 (crs=) names the datum the .prj lost."""
    register = _shapefile_losing_towgs84(tmp_path)
    fp = gpd.read_file(_footprints(tmp_path))
    with pytest.warns(UserWarning, match=r"giay_phep\.shp.*EPSG:9210"):
        permits = load_register(register, crs="EPSG:9210")
    assert CRS.from_user_input(permits.crs) == CRS.from_epsg(9210)
    # EPSG's VN-2000 -> WGS 84 and the decree's parameters differ by about a metre here, not 230 m
    assert match(fp, permits)["overlap_ratio"].iat[0] > 0.8
    with pytest.warns(UserWarning, match=r"giay_phep\.shp.*towgs84"):
        exact = load_register(register, crs=VN2000_TOWGS84)  # the string it was drawn with: exactly on it
    assert match(fp, exact)["status"].tolist() == ["permitted"]
    # a register whose own CRS has its datum keeps it, as before (crs= is for registers without one)
    path = tmp_path / "vn2000.gpkg"
    _register_in("EPSG:9210").to_file(path)
    assert CRS.from_user_input(load_register(path, crs="EPSG:32648").crs) == CRS.from_epsg(9210)


def test_match_refuses_a_register_on_a_datum_proj_cannot_place(tmp_path: Path) -> None:
    """In Python too: match() raises rather than placing the permits as if VN-2000 were WGS 84."""
    register = load_register(_shapefile_losing_towgs84(tmp_path))
    fp = gpd.read_file(_footprints(tmp_path))
    with pytest.raises(GeoreferenceError, match=r"giay_phep\.shp.*no transformation"):
        match(fp, register)
