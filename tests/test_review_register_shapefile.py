"""A district's register as a Shapefile, as they arrive in Ho Chi Minh City: Vietnamese text in a DBF
without a .cpg, or in the legacy Windows Vietnamese code page (.cpg ``1258``), column names cut to
10 characters by the format."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box

from changedetect.errors import PermitSchemaError
from changedetect.permits import load_register

X0, Y0 = 680_000.0, 1_200_000.0  # UTM 48N, Ho Chi Minh City
ADDRESS = "Số 161 Đường Hà Huy Giáp, Phường Tân Chánh Hiệp, Quận 12, TP. Hồ Chí Minh"
OWNER = "Nguyễn Văn Ánh"


def _register(n: int = 2) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({
        "permit_id": [f"GPXD-2024-{i:04d}" for i in range(n)],
        "permit_typ": ["new_construction"] * n,
        "issued_on": ["2024-01-02"] * n,
        "valid_unti": ["2025-01-02"] * n,
        "permitted_": [80.0] * n,
        "address": [ADDRESS] * n,
        "status": ["active"] * n,
        "chu_dau_tu": [OWNER] * n,  # the owner ("chủ đầu tư"), passed through
    }, geometry=[box(X0 + 20 * i, Y0, X0 + 20 * i + 10, Y0 + 8) for i in range(n)], crs="EPSG:32648")


def _shapefile(tmp_path: Path, encoding: str, gdf: gpd.GeoDataFrame | None = None) -> Path:
    path = tmp_path / "giay_phep.shp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (gdf if gdf is not None else _register()).to_file(path, encoding=encoding)
    return path


def test_utf8_text_in_a_shapefile_without_a_cpg(tmp_path: Path) -> None:
    """GDAL reads a DBF without a .cpg (and no code page in its header) as ISO-8859-1: the
    addresses came out 'Sá» 161 ÄÆ°á»ng ...' into the violations, without a word."""
    path = _shapefile(tmp_path, "utf-8")
    path.with_suffix(".cpg").unlink()
    permits = load_register(path)
    assert permits["address"].tolist() == [ADDRESS] * 2
    assert permits["chu_dau_tu"].tolist() == [OWNER] * 2


def test_windows_vietnamese_code_page_1258(tmp_path: Path) -> None:
    """A .cpg of 1258 (Windows Vietnamese: base letters and combining tone marks): GDAL's iconv
    CP1258 decoder holds back each string's last character, waiting for a tone mark, and drops it:
    'permit_i', 'statu', 'new_constructio', '... Hồ Chí Min'."""
    path = _shapefile(tmp_path, "cp1258")
    assert path.with_suffix(".cpg").read_text().strip().upper() in ("CP1258", "1258")
    assert b"Nguy\xea\xden" in path.with_suffix(".dbf").read_bytes()  # ễ = ê + combining tilde
    permits = load_register(path)
    assert permits["permit_id"].tolist() == ["GPXD-2024-0000", "GPXD-2024-0001"]
    assert permits["permit_type"].tolist() == ["new_construction"] * 2
    assert permits["address"].tolist() == [ADDRESS] * 2  # composed (NFC), as typed
    assert permits["chu_dau_tu"].tolist() == [OWNER] * 2


def test_legacy_text_without_a_cpg_names_the_rows_and_the_cpg(tmp_path: Path) -> None:
    """Windows Vietnamese text and no .cpg: not UTF-8, and no way to know the code page; one
    message naming the rows, the byte and the .cpg file to write."""
    path = _shapefile(tmp_path, "cp1258")
    path.with_suffix(".cpg").unlink()
    with pytest.raises(PermitSchemaError) as info:
        load_register(path)
    text = str(info.value)
    assert "row 1" in text and "'address'" in text and "not valid UTF-8" in text, text
    assert "giay_phep.cpg" in text and "1258" in text, text


def test_vietnamese_column_names_cut_to_ten_characters(tmp_path: Path) -> None:
    """The documented Vietnamese names, written to a Shapefile, are cut by the DBF format:
    so_giay_ph, loai_giay_, ngay_cap_p, ngay_het_h, dien_tich_ (the English ones had their cut
    forms listed, these did not: 'required column(s) ... missing')."""
    vn = _register().rename(columns={
        "permit_id": "so_giay_phep", "permit_typ": "loai_giay_phep", "issued_on": "ngay_cap_phep",
        "valid_unti": "ngay_het_han", "permitted_": "dien_tich_xay_dung", "address": "dia_chi",
        "status": "trang_thai"})
    permits = load_register(_shapefile(tmp_path, "utf-8", vn))
    assert permits["permit_id"].tolist() == ["GPXD-2024-0000", "GPXD-2024-0001"]
    assert permits["valid_until"].astype(str).tolist() == ["2025-01-02"] * 2
    assert permits["permitted_area_m2"].tolist() == [80.0] * 2 and permits["address"].tolist() == [ADDRESS] * 2


def test_vietnamese_headers_with_diacritics(tmp_path: Path) -> None:
    """An Excel register's header as an HCMC office types it: 'Số giấy phép', 'Ngày hết hạn', ..."""
    path = tmp_path / "so_dang_ky.csv"
    path.write_text(
        "Số giấy phép;Loại giấy phép;Ngày cấp;Ngày hết hạn;Diện tích;Địa chỉ;Trạng thái;wkt\n"
        f"GPXD-2024-0001;new_construction;2024-01-02;2025-01-02;80;{ADDRESS};active;"
        f'"SRID=32648;POLYGON(({X0} {Y0},{X0 + 10} {Y0},{X0 + 10} {Y0 + 8},{X0} {Y0 + 8},{X0} {Y0}))"\n',
        encoding="utf-8")
    permits = load_register(path)
    assert permits["permit_id"].tolist() == ["GPXD-2024-0001"] and permits["address"].tolist() == [ADDRESS]
    assert permits["permitted_area_m2"].tolist() == [80.0] and permits["status"].tolist() == ["active"]
