"""A Shapefile cuts a column name at 10 BYTES of its encoding, not 10 characters: the register's
Vietnamese headers come back shorter than 10 characters ('Địa chỉ' is 'Địa ch' in UTF-8, 9 bytes),
and were not taken for the alias they begin (found reviewing the parcel layer, which lists its cuts)."""

from __future__ import annotations

import unicodedata

import geopandas as gpd
import pytest
from shapely.geometry import box

from changedetect._permit_columns import _cp1258_bytes
from changedetect.permits import map_columns

HEADERS = {"Số giấy phép": "permit_id", "Ngày cấp": "issued_on", "Ngày hết hạn": "valid_until",
           "Diện tích": "permitted_area_m2", "Địa chỉ": "address"}
#: the headers as a DBF in UTF-8 keeps them (10 bytes, a letter cut in two dropped), and in cp1258
#: (10 bytes; 'Ngày cấp', 'Diện tích', 'Địa chỉ' fit whole)
CUT = {"utf-8": ["Số giấ", "Ngày cấ", "Ngày hế", "Diện tí", "Địa ch"],
       "cp1258": ["Số giấy", "Ngày cấp", "Ngày hết", "Diện tích", "Địa chỉ"]}


@pytest.mark.parametrize("encoding", ["utf-8", "cp1258"])
def test_vietnamese_headers_cut_at_ten_bytes_are_their_columns(encoding: str) -> None:
    encoded = {"utf-8": lambda h: h.encode("utf-8"), "cp1258": _cp1258_bytes}[encoding]
    cut = [unicodedata.normalize("NFC", encoded(h)[:10].decode(encoding, errors="ignore")).strip()
           for h in HEADERS]
    assert cut == CUT[encoding]  # how a DBF keeps them
    frame = gpd.GeoDataFrame({c: ["x"] for c in cut}, geometry=[box(0, 0, 1, 1)], crs="EPSG:32648")
    assert set(HEADERS.values()) <= set(map_columns(frame).columns)


def test_cp1258_bytes_writes_a_letter_and_its_tone_as_two_bytes() -> None:
    assert _cp1258_bytes("Số") == b"S\xf4\xec"  # ô, then the acute tone (0xEC)
    assert _cp1258_bytes("Diện").decode("cp1258") == unicodedata.normalize("NFD", "Diện").replace(
        "e\u0323\u0302", "\u00ea\u0323")  # ê, then the dot below
