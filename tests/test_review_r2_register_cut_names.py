"""A DBF column name cut from two of the register's names is no alias (review round 2).

A Shapefile holds 10-character column names: GDAL cuts ``dien_tich_dat`` (diện tích đất, the plot's
land area) and ``dien_tich_xay_dung`` (the building's permitted area) to ``dien_tich_`` and
``dien_tic_1``, in the register's order.  Since 6063087 ``dien_tich_`` stood for the one alias it
begins, ``dien_tich_xay_dung``: with the land area first, the plot's 200 m² became the permitted area
and a house built over its 80 m² was not ``oversized``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box

from changedetect.errors import PermitSchemaError
from changedetect.permits import load_register, map_columns


def _shapefile(tmp_path: Path, columns: dict[str, list[object]]) -> Path:
    path = tmp_path / "giay_phep.shp"
    frame = gpd.GeoDataFrame({
        "so_giay_phep": ["GPXD-2024-0001"], "loai_giay_phep": ["new_construction"],
        "ngay_cap_phep": ["2024-01-02"], "ngay_het_han": ["2025-01-02"], **columns,
        "trang_thai": ["active"]}, geometry=[box(680_000, 1_200_000, 680_010, 1_200_008)], crs="EPSG:32648")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GDAL's 'Normalized/laundered field name'
        frame.to_file(path, encoding="utf-8")
    return path


def test_a_cut_name_of_two_columns_is_not_taken_for_the_permitted_area(tmp_path: Path) -> None:
    path = _shapefile(tmp_path, {"dien_tich_dat": [200.0], "dien_tich_xay_dung": [80.0]})
    read = gpd.read_file(path)
    assert {"dien_tich_", "dien_tic_1"} <= set(read.columns)  # how GDAL cuts them
    assert "permitted_area_m2" not in map_columns(read).columns
    # refused for the column it cannot tell, naming both cuts: the way out is --column-map
    with pytest.raises(PermitSchemaError, match=r"permitted_area_m2 missing.*dien_tich_, dien_tic_1.*--column-map"):
        load_register(path)
    assert load_register(path, column_map={"dien_tic_1": "permitted_area_m2"})["permitted_area_m2"].tolist() == [80.0]


def test_a_cut_name_of_one_column_is_still_its_alias(tmp_path: Path) -> None:
    path = _shapefile(tmp_path, {"dien_tich_xay_dung": [80.0]})
    assert load_register(path)["permitted_area_m2"].tolist() == [80.0]
