"""The cadastral parcel layer (changedetect.parcels): loading it with the usual Vietnamese column names,
one clear error for a bad layer, and the parcel each footprint stands on (largest share, a building
across parcels, none, another CRS).  Before, an `unlicensed` building had no address, only lat/lon."""

from __future__ import annotations

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import Point, Polygon, box

from changedetect.errors import (
    GeoreferenceError,
    PermitRowWarning,
    PermitSchemaError,
    RegisterReadError,
)
from changedetect.parcels import load_parcels, with_parcels

X0, Y0 = 680_000.0, 1_200_000.0  # UTM 48N, Ho Chi Minh City
UTM = "EPSG:32648"
#: VN-2000 / TM-3 105-45 with the decree's seven parameters, as QGIS users define it (a Shapefile's .prj loses them)
VN2000_TOWGS84 = ("+proj=tmerc +lat_0=0 +lon_0=105.75 +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84 "
                  "+towgs84=-191.90441429,-39.30318279,-111.45032835,-0.00928836,0.01975479,-0.00427372,"
                  "0.252906278 +units=m +no_defs")


def _lots(crs: str = UTM) -> gpd.GeoDataFrame:
    """Two 10 x 20 m lots side by side, and a third far away; drawn in ``crs`` (datum shift applied)."""
    geoms = [box(X0, Y0, X0 + 10, Y0 + 20), box(X0 + 10, Y0, X0 + 20, Y0 + 20), box(X0 + 500, Y0, X0 + 510, Y0 + 20)]
    to = Transformer.from_crs(UTM, crs, always_xy=True)
    geoms = [shapely.transform(g, lambda xy: np.column_stack(to.transform(xy[:, 0], xy[:, 1]))) for g in geoms]
    return gpd.GeoDataFrame({"Số tờ": [12, 12, 13], "Số thửa": [345, 346, 7],
                             "Địa chỉ": ["Số 12 Đường Tô Ký, Phường Trung Mỹ Tây", "Số 14 Đường Tô Ký", None],
                             "Loại đất": ["ODT", "ODT", "CLN"]}, geometry=geoms, crs=crs)


def _footprints() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"footprint_id": ["F-on", "F-across", "F-none", "F-sliver"]}, geometry=[
        box(X0 + 1, Y0 + 1, X0 + 9, Y0 + 11),            # on lot 12/345 only
        box(X0 + 3, Y0 + 2, X0 + 13, Y0 + 12),           # 70 m² on 12/345, 30 m² on 12/346
        box(X0 + 200, Y0, X0 + 210, Y0 + 10),            # on no parcel
        box(X0 + 10.5, Y0 + 1, X0 + 19.6, Y0 + 11),      # 91 m² on 12/346; 0.4 m of it (4 m², 4 %) on 12/345
    ], crs=UTM)


# --- loading ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".parquet"])
def test_vietnamese_column_names_are_read_and_the_id_made_from_sheet_and_number(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"thua_dat{suffix}"
    (_lots().to_parquet(path) if suffix == ".parquet" else _lots().to_file(path))
    parcels = load_parcels(path)
    assert parcels["parcel_id"].tolist() == ["12/345", "12/346", "13/7"]
    assert parcels["sheet"].tolist() == ["12", "12", "13"] and parcels["parcel_no"].tolist() == ["345", "346", "7"]
    assert parcels["address"].tolist()[:2] == ["Số 12 Đường Tô Ký, Phường Trung Mỹ Tây", "Số 14 Đường Tô Ký"]
    assert parcels["address"].tolist()[2] is None and parcels["land_use"].tolist() == ["ODT", "ODT", "CLN"]
    assert parcels.crs.to_epsg() == 32648 and parcels.attrs["parcels"] == str(path)


def test_a_csv_with_wkt_aliases_and_a_column_map(tmp_path: Path) -> None:
    path = tmp_path / "thua.csv"
    path.write_text("ma_thua;so_to;so_thua;dia_chi;MDSD_2024;wkt\n"
                    f"T-1;12;345;Số 12 Tô Ký;ODT;{box(X0, Y0, X0 + 10, Y0 + 20).wkt}\n", encoding="utf-8")
    parcels = load_parcels(path, crs="EPSG:32648", column_map={"MDSD_2024": "land_use"})
    assert parcels.iloc[0][["parcel_id", "sheet", "parcel_no", "address", "land_use"]].tolist() == [
        "T-1", "12", "345", "Số 12 Tô Ký", "ODT"]
    with pytest.raises(PermitSchemaError, match=r"thua\.csv': the column map names 'MaThua'.*\[parcels\] table"):
        load_parcels(path, crs="EPSG:32648", column_map={"MaThua": "parcel_id"})


def test_a_column_map_onto_no_parcel_column_is_refused(tmp_path: Path) -> None:
    """column_map={"MDSD_2024": "landuse"} (not land_use) read the layer without its land use, without a word."""
    path = tmp_path / "thua.csv"
    path.write_text("ma_thua;MDSD_2024;wkt\n" f"T-1;ODT;{box(X0, Y0, X0 + 10, Y0 + 20).wkt}\n", encoding="utf-8")
    with pytest.raises(PermitSchemaError, match=r"thua\.csv': the column map maps 'MDSD_2024' onto 'landuse'; "
                                                r"a parcel layer's columns are parcel_id, address, sheet"):
        load_parcels(path, crs="EPSG:32648", column_map={"MDSD_2024": "landuse"})


def test_a_layer_without_an_id_names_the_file_and_the_column_map(tmp_path: Path) -> None:
    path = tmp_path / "thua.gpkg"
    _lots().drop(columns=["Số thửa"]).to_file(path)
    with pytest.raises(PermitSchemaError, match=r"parcel layer '.*thua\.gpkg': no parcel_id column.*column_map"):
        load_parcels(path)


def test_a_layer_without_a_crs_says_how_to_give_one(tmp_path: Path) -> None:
    path = tmp_path / "thua.csv"
    path.write_text(f"parcel_id,wkt\nA,{box(0, 0, 1, 1).wkt}\n", encoding="utf-8")
    with pytest.raises(PermitSchemaError, match=r"thua\.csv' has no CRS.*crs in the \[parcels\] table"):
        load_parcels(path)
    (tmp_path / "nogeom.csv").write_text("parcel_id,note\nA,x\n", encoding="utf-8")
    with pytest.raises(PermitSchemaError, match=r"parcel layer '.*nogeom\.csv': no geometry column"):
        load_parcels(tmp_path / "nogeom.csv")
    with pytest.raises(RegisterReadError, match=r"parcel layer '.*missing\.gpkg' does not exist.*--parcels"):
        load_parcels(tmp_path / "missing.gpkg")


def test_bad_rows_come_in_one_error_naming_each_row_and_column(tmp_path: Path) -> None:
    bowtie = Polygon([(X0, Y0), (X0 + 10, Y0 + 10), (X0 + 10, Y0), (X0, Y0 + 10)])
    frame = gpd.GeoDataFrame({"ma_thua": ["A", "B", "A", None, "E", "F"]}, geometry=[
        box(X0, Y0, X0 + 5, Y0 + 5), bowtie, box(X0 + 5, Y0, X0 + 9, Y0 + 5), box(X0, Y0, X0 + 1, Y0 + 1),
        Point(X0, Y0), Polygon()], crs=UTM)
    path = tmp_path / "thua.gpkg"
    frame.to_file(path)
    with pytest.raises(PermitSchemaError) as info:
        load_parcels(path)
    message = str(info.value)
    assert "thua.gpkg': 4 problem(s)" in message, message
    assert "row 3, parcel_id: duplicated parcel_id 'A' (first on row 1)" in message
    assert "row 4, parcel_id: missing parcel_id" in message
    assert "row 5, geometry: geometry is a Point" in message and "row 6, geometry: " in message
    assert "row 2" not in message  # the bow-tie is repaired, not refused
    frame.iloc[:2].to_file(path)
    with pytest.warns(PermitRowWarning, match=r"repaired 1 row\(s\): row 2: invalid geometry"):
        parcels = load_parcels(path)
    assert parcels.geometry.is_valid.all() and parcels.geometry.iloc[1].area == pytest.approx(50)


# --- the parcel of each footprint ------------------------------------------------------------------------------


def _parcels(crs: str = UTM) -> gpd.GeoDataFrame:
    from changedetect.parcels import ALIASES, _validated
    from changedetect.permits import map_columns

    return _validated(map_columns(_lots(crs), aliases=ALIASES), "lots")[0]


def test_each_footprint_gets_the_parcel_holding_its_largest_share() -> None:
    out = with_parcels(_footprints(), _parcels())
    assert out["parcel_id"].tolist() == ["12/345", "12/345", "", "12/346"]
    assert out["parcel_sheet"].tolist() == ["12", "12", "", "12"] and out["parcel_no"].tolist() == ["345", "345", "", "346"]
    assert out["parcel_address"].tolist() == ["Số 12 Đường Tô Ký, Phường Trung Mỹ Tây"] * 2 + ["", "Số 14 Đường Tô Ký"]
    assert out["parcel_share"].tolist() == pytest.approx([1.0, 0.7, 0.0, 1.0])
    assert out["parcels_crossed"].tolist() == [1, 2, 0, 1]  # the sliver (0 m², 0 %) is not a crossing
    assert list(out.columns)[-1] == "geometry" and out["footprint_id"].tolist() == _footprints()["footprint_id"].tolist()


def test_a_crossing_needs_ten_percent_and_four_square_metres_beyond_the_edge_tolerance() -> None:
    lots = _parcels()
    fp = gpd.GeoDataFrame(geometry=[
        box(X0 + 9.1, Y0 + 1, X0 + 19.1, Y0 + 11),   # 9 m² (9 %) on 12/345: under 10 %
        box(X0 + 8.5, Y0 + 1, X0 + 12.5, Y0 + 4),    # 12 m²: 4.5 on 12/345, 7.5 on 12/346
        box(X0 + 8.5, Y0 + 1, X0 + 18.5, Y0 + 11),   # 15 m² (15 %) on 12/345
        box(X0 + 5, Y0 + 1, X0 + 15, Y0 + 11),       # half and half: a house across the lots
    ], crs=UTM)
    out = with_parcels(fp, lots)
    assert out["parcels_crossed"].tolist() == [1, 2, 2, 2]
    # shrunk by one 0.5 m pixel of positional tolerance (what `run` passes): 2 m² of the second on 12/345
    # (under 4 m²), 9 m² of the third (under 10 % of its 100 m²): tracing spills, not crossings
    tol = with_parcels(fp, lots, edge_tolerance_m=0.5)
    assert tol["parcels_crossed"].tolist() == [1, 1, 1, 2]
    assert tol["parcel_id"].tolist() == out["parcel_id"].tolist()  # the parcel and its share: as drawn
    assert tol["parcel_share"].tolist() == pytest.approx(out["parcel_share"].tolist())


def test_the_sample_citys_buildings_cross_no_lot() -> None:
    """A guard on the thresholds: no building of the sample city stands across lots
    (test_samplecity_parcels), and with one pixel of tolerance, as `run` measures, none of its truth
    footprints is flagged across parcels, and each has its parcel."""
    from changedetect.parcels import load_parcels as load

    repo = Path(__file__).resolve().parents[1]
    truth = gpd.read_file(repo / "sample_tiles" / "truth" / "footprints.gpkg", layer="footprints")
    out = with_parcels(truth, load(repo / "permits" / "sample_parcels.gpkg"), edge_tolerance_m=0.5)
    assert (out["parcels_crossed"] <= 1).all() and (out["parcel_id"] != "").all()


def test_parcels_in_another_crs_are_reprojected_with_the_datum_shift() -> None:
    expected = with_parcels(_footprints(), _parcels())
    for crs in ("EPSG:9210", "EPSG:4326", VN2000_TOWGS84):  # VN-2000: about 230 m off without its datum shift
        out = with_parcels(_footprints(), _parcels(crs))
        assert out["parcel_id"].tolist() == expected["parcel_id"].tolist(), crs
        assert out["parcel_share"].tolist() == pytest.approx(expected["parcel_share"].tolist(), abs=2e-3), crs
        assert out["parcels_crossed"].tolist() == expected["parcels_crossed"].tolist(), crs
    in_degrees = with_parcels(_footprints().to_crs("EPSG:4326"), _parcels())  # measured in their UTM zone
    assert in_degrees["parcel_share"].tolist() == pytest.approx(expected["parcel_share"].tolist(), abs=2e-3)
    assert in_degrees.crs.to_epsg() == 4326


def test_no_parcel_at_all_and_no_sheet_column() -> None:
    lots = _parcels()[["parcel_id", "address", "geometry"]]
    out = with_parcels(_footprints(), lots.iloc[2:])
    assert out["parcel_id"].tolist() == [""] * 4 and out["parcels_crossed"].tolist() == [0] * 4
    assert "parcel_sheet" not in out and "parcel_no" not in out
    assert with_parcels(_footprints().iloc[:0], lots)["parcel_id"].tolist() == []


def test_a_layer_whose_datum_proj_cannot_place_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "thua_dat.shp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _lots(VN2000_TOWGS84).rename(columns={"Số tờ": "so_to", "Số thửa": "so_thua"}).to_file(path, encoding="utf-8")
    parcels = load_parcels(path)
    with pytest.raises(GeoreferenceError, match=r"parcel layer '.*thua_dat\.shp'.*no transformation.*\[parcels\]"):
        with_parcels(_footprints(), parcels)
    with pytest.warns(UserWarning, match="crs in the \\[parcels\\] table"):
        fixed = load_parcels(path, crs="EPSG:9210")  # the way out the message gives
    assert with_parcels(_footprints(), fixed)["parcel_id"].tolist()[:2] == ["12/345", "12/345"]


# --- the report card --------------------------------------------------------------------------------------------


def _card(**columns: object) -> str:
    from changedetect._report_card import card

    row = gpd.GeoDataFrame({"violation_id": ["V-1"], "status": ["unlicensed"], "reason": ["no permit"],
                            **{k: [v] for k, v in columns.items()}}, geometry=[box(X0, Y0, X0 + 5, Y0 + 5)], crs=UTM)
    return card(1, row.iloc[0], row.crs, {}, {})


def test_the_card_shows_the_parcel_and_its_address_when_no_permit_gives_one() -> None:
    html = _card(address="", parcel_id="12/346", parcel_address="Số 14 Đường Tô Ký", parcel_sheet="12",
                 parcel_no="346", parcel_share=0.7, parcels_crossed=2)
    assert "<th>Address</th><td>Số 14 Đường Tô Ký (the parcel&#x27;s)</td>" in html
    assert "<th>Parcel</th><td>sheet 12, parcel 346 (tờ 12, thửa 346): 70 % of the building</td>" in html
    assert "<th>Across parcels</th><td>built across 2 parcels" in html
    permit = _card(address="Số 12 Đường Tô Ký", parcel_id="X-9", parcel_address="Số 14", parcel_share=1.0,
                   parcels_crossed=1)
    assert "<th>Address</th><td>Số 12 Đường Tô Ký</td>" in permit
    assert "<th>Parcel</th><td>X-9: 100 % of the building; Số 14</td>" in permit and "Across parcels" not in permit
    assert "Parcel" not in _card(address="", parcel_id="", parcel_share=0.0, parcels_crossed=0)


def test_a_shapefile_name_cut_inside_a_vietnamese_letter_is_read(tmp_path: Path) -> None:
    """A DBF keeps 10 bytes of a name: 'Số thửa' (11 bytes in UTF-8) reads 'Số thử', 'Địa chỉ' 'Địa ch' (part of
    its 'ỉ' dropped).  Before, reading it stopped with a UnicodeEncodeError traceback; then the cut names were
    not known (only a 10-*character* cut was): 'no parcel_id column ... found sheet, Số thử, Địa ch, Loại đ'."""
    path = tmp_path / "thua_dat.shp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _lots().to_file(path, encoding="utf-8")
    parcels = load_parcels(path)
    assert parcels["parcel_id"].tolist() == ["12/345", "12/346", "13/7"] and parcels["address"][1] == "Số 14 Đường Tô Ký"
    assert parcels["land_use"].tolist() == ["ODT", "ODT", "CLN"]


@pytest.mark.parametrize("encoding", ["utf-8", "cp1258"])
def test_longer_vietnamese_names_cut_by_a_shapefile_are_read(tmp_path: Path, encoding: str) -> None:
    """'Thửa đất số', 'Tờ bản đồ số', 'Mục đích sử dụng', in UTF-8 or Windows Vietnamese (a toned letter 2 bytes)."""
    lots = _lots().rename(columns={"Số tờ": "Tờ bản đồ số", "Số thửa": "Thửa đất số", "Loại đất": "Mục đích sử dụng"})
    path = tmp_path / "thua_dat.shp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lots.to_file(path, encoding=encoding)
    parcels = load_parcels(path)
    assert parcels["parcel_id"].tolist() == ["12/345", "12/346", "13/7"]
    assert parcels["land_use"].tolist() == ["ODT", "ODT", "CLN"] and parcels["address"][1] == "Số 14 Đường Tô Ký"


def test_the_national_standards_run_together_names_are_read(tmp_path: Path) -> None:
    """Thông tư 75/2015's soHieuToBanDo / soThuTuThua / diaChi, and SoThua / LoaiDat: before, no parcel_id."""
    path = tmp_path / "thua.gpkg"
    _lots().rename(columns={"Số tờ": "soHieuToBanDo", "Số thửa": "soThuTuThua", "Địa chỉ": "diaChi",
                            "Loại đất": "LoaiDat"}).to_file(path)
    parcels = load_parcels(path)
    assert parcels["parcel_id"].tolist() == ["12/345", "12/346", "13/7"] and parcels["land_use"][2] == "CLN"
    assert parcels["address"][1] == "Số 14 Đường Tô Ký"


def test_a_geometry_collection_kept_as_its_polygons_says_so(tmp_path: Path) -> None:
    """Before, the warning read 'repaired 1 row(s): row 1: None'."""
    path = tmp_path / "thua.geojson"
    gpd.GeoDataFrame({"parcel_id": ["A"]}, geometry=[shapely.GeometryCollection(
        [box(X0, Y0, X0 + 10, Y0 + 20), shapely.LineString([(X0, Y0), (X0 + 30, Y0)])])], crs=UTM).to_file(path)
    with pytest.warns(PermitRowWarning, match=r"row 1: a GeometryCollection: only its polygons kept") as record:
        parcels = load_parcels(path)
    assert "None" not in str(record[0].message) and parcels.geometry[0].area == pytest.approx(200)


def test_an_empty_layer_is_warned_of(tmp_path: Path) -> None:
    """A wrong layer or query gave every violation no parcel, without a word."""
    path = tmp_path / "thua.gpkg"
    gpd.GeoDataFrame({"parcel_id": []}, geometry=[], crs=UTM).to_file(path)
    with pytest.warns(UserWarning, match=r"thua\.gpkg' has no parcels: no violation gets one"):
        parcels = load_parcels(path)
    assert with_parcels(_footprints(), parcels)["parcels_crossed"].tolist() == [0, 0, 0, 0]


def test_a_tie_goes_to_the_earlier_row_in_any_crs() -> None:
    """A footprint half on each lot: in the lots' CRS it went to 12/345 (the earlier row), in EPSG:4326 to 12/346
    (its halves measured 0.4999999 and 0.5 after the reprojection)."""
    half = gpd.GeoDataFrame(geometry=[box(X0 + 5, Y0 + 5, X0 + 15, Y0 + 15)], crs=UTM)
    for footprints in (half, half.to_crs(4326), half.to_crs("EPSG:3857")):
        out = with_parcels(footprints, _parcels())
        assert out["parcel_id"].tolist() == ["12/345"] and out["parcels_crossed"].tolist() == [2], footprints.crs


def test_a_footprint_narrower_than_twice_the_tolerance_still_stands_on_its_parcel() -> None:
    """At 10 m pixels the tolerance is 10 m: an 8 x 10 m footprint shrunk by it is gone, and it had
    parcels_crossed 0 (which reads 'on no parcel') while parcel_id named its lot."""
    out = with_parcels(_footprints(), _parcels(), edge_tolerance_m=10.0)
    assert out["parcel_id"].tolist() == ["12/345", "12/345", "", "12/346"]
    assert out["parcels_crossed"].tolist() == [1, 1, 0, 1]


def test_a_layer_far_from_the_footprints_is_warned_of(caplog: pytest.LogCaptureFixture) -> None:
    """A layer in the wrong place (here its CRS declared as UTM 49N, ~650 km off) gave no violation a parcel,
    without a word; a footprint on a road beside the lots still says nothing."""
    wrong = _parcels().set_crs("EPSG:32649", allow_override=True)
    wrong.attrs["parcels"] = "thua.gpkg"
    with caplog.at_level("WARNING", logger="changedetect.parcels"):
        out = with_parcels(_footprints(), wrong)
    assert set(out["parcel_id"]) == {""}
    assert "no parcel of parcel layer 'thua.gpkg' lies within 1000 m of the footprints" in caplog.text
    assert "EPSG:32649" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="changedetect.parcels"):
        with_parcels(_footprints().iloc[[2]], _parcels())
    assert caplog.text == ""


def test_a_frame_without_parcel_id_is_refused_not_given_empty_ids() -> None:
    """A layer read with geopandas, its ids under their own name ('MaTD'): every footprint got parcel_id ''."""
    raw = _lots().rename(columns={"Số tờ": "MaTD"})
    with pytest.raises(PermitSchemaError, match=r"no parcel_id column \(its columns: MaTD, .*load_parcels\(\)"):
        with_parcels(_footprints(), raw)


def test_the_written_names_the_cuts_came_from_are_read_whole(tmp_path: Path) -> None:
    """'Số hiệu tờ bản đồ' and 'Số thứ tự thửa' (Thông tư 75/2015's soHieuToBanDo, soThuTuThua written out) in a
    GeoPackage: before, only their Shapefile cuts were aliases, and the layer was refused 'no parcel_id column'."""
    path = tmp_path / "thua.gpkg"
    _lots().rename(columns={"Số tờ": "Số hiệu tờ bản đồ", "Số thửa": "Số thứ tự thửa"}).to_file(path)
    assert load_parcels(path)["parcel_id"].tolist() == ["12/345", "12/346", "13/7"]


#: the layer's usual Vietnamese names as people write them, and the column each is
WRITTEN = {
    "Mã thửa": "parcel_id", "Mã thửa đất": "parcel_id", "Số tờ": "sheet", "Tờ bản đồ": "sheet",
    "Số tờ bản đồ": "sheet", "Tờ bản đồ số": "sheet", "Số hiệu tờ": "sheet", "Số hiệu tờ bản đồ": "sheet",
    "Tờ số": "sheet", "Số thửa": "parcel_no", "Thửa số": "parcel_no", "Số thửa đất": "parcel_no",
    "Thửa đất số": "parcel_no", "Số thứ tự thửa": "parcel_no", "Địa chỉ": "address", "Địa chỉ thửa": "address",
    "Loại đất": "land_use", "Mã loại đất": "land_use", "Mục đích sử dụng": "land_use",
}


@pytest.mark.parametrize("encoding", ["utf-8", "cp1258"])
def test_every_usual_name_cut_by_a_shapefile_is_its_column(encoding: str) -> None:
    """A DBF keeps 10 bytes of a name (a letter cut in two dropped; in cp1258 a tone mark is a byte of its own):
    each such cut is the one alias it begins (the register's general rule), no spelled-out cut needed."""
    import unicodedata

    from changedetect._permit_columns import _cp1258_bytes, map_columns
    from changedetect.parcels import ALIASES

    encoded = {"utf-8": lambda h: h.encode("utf-8"), "cp1258": _cp1258_bytes}[encoding]
    for name, column in WRITTEN.items():
        cut = unicodedata.normalize("NFC", encoded(name)[:10].decode(encoding, errors="ignore")).strip()
        frame = gpd.GeoDataFrame({cut: ["x"]}, geometry=[box(0, 0, 1, 1)], crs=UTM)
        assert column in map_columns(frame, aliases=ALIASES).columns, (name, cut)


def test_crossings_are_measured_in_ground_metres_whatever_the_footprints_crs() -> None:
    """Footprints in Web Mercator (EPSG:3857 is in 'metres' drawn 1/cos²(lat) times their ground area: 4 at 60°N)
    are measured in their UTM zone, as match measures them: a 2 m² spill (12 % of a 17 m² footprint) over the
    neighbouring lot is below CROSS_M2 (4 m²).  Before, it was measured as 8 m² and counted a crossing."""
    utm = "EPSG:32632"  # 60°N, 9°E
    x0, y0 = Transformer.from_crs("EPSG:4326", utm, always_xy=True).transform(9.0, 60.0)
    lots = gpd.GeoDataFrame({"parcel_id": ["A", "B"]}, geometry=[box(x0, y0, x0 + 10, y0 + 20),
                                                                  box(x0 + 10, y0, x0 + 20, y0 + 20)], crs=utm)
    fp = gpd.GeoDataFrame(geometry=[box(x0 + 5, y0 + 1, x0 + 10 + 2 / 3, y0 + 4)], crs=utm)  # 17/3 x 3 m
    in_utm = with_parcels(fp, lots)
    assert in_utm["parcels_crossed"].tolist() == [1] and in_utm["parcel_id"].tolist() == ["A"]
    in_mercator = with_parcels(fp.to_crs("EPSG:3857"), lots)
    assert in_mercator["parcels_crossed"].tolist() == [1] and in_mercator["parcel_id"].tolist() == ["A"]


@pytest.mark.parametrize("layer_crs", ["EPSG:9210", "EPSG:4326"])
def test_the_candidate_search_finds_what_reprojecting_the_whole_layer_finds(layer_crs: str) -> None:
    """with_parcels reprojects only the candidate parcels (found with the footprints' boxes taken to the
    layer's CRS): on 300 footprints of 0.3-15 m over 10 x 10 lots, the same parcel and share as
    reprojecting the whole layer to the footprints' CRS and measuring every footprint against it."""
    rng = np.random.default_rng(7)
    gx, gy = np.meshgrid(np.arange(10) * 12.0 + X0, np.arange(10) * 20.0 + Y0)
    lots = gpd.GeoDataFrame({"parcel_id": [f"1/{i}" for i in range(100)]},
                            geometry=shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + 12, gy.ravel() + 20), crs=UTM)
    size = rng.uniform(0.3, 15, (300, 2))
    cx, cy = rng.uniform(X0, X0 + 120, 300), rng.uniform(Y0, Y0 + 200, 300)
    fp = gpd.GeoDataFrame(geometry=shapely.box(cx, cy, cx + size[:, 0], cy + size[:, 1]), crs=UTM)
    layer = lots.to_crs(layer_crs)
    out = with_parcels(fp, layer)
    back = np.asarray(layer.to_crs(UTM).geometry.values)  # the whole layer, reprojected
    shares = shapely.area(shapely.intersection(np.asarray(fp.geometry.values)[:, None], back[None, :]))
    shares = shares / shapely.area(np.asarray(fp.geometry.values))[:, None]
    best = np.where(shares.max(axis=1) > 0, np.asarray(layer["parcel_id"])[shares.argmax(axis=1)], "")
    assert (out["parcel_id"].to_numpy() == best).mean() > 0.99  # a tie within rounding may go either way
    assert out["parcel_share"].to_numpy() == pytest.approx(shares.max(axis=1), abs=1e-3)  # written to 3 decimals
