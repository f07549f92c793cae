"""`changedetect run --parcels` (pipeline.run(parcels=...), the [parcels] table of --config): every
violation gets the parcel it stands on, in each list and on the report's card, run.json records the
layer like the register, and a layer PROJ cannot place is refused before any work."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import geopandas as gpd
import pytest
import rasterio
from shapely.geometry import box

from changedetect.errors import GeoreferenceError
from changedetect.testing import make_run_inputs

VN2000_TOWGS84 = ("+proj=tmerc +lat_0=0 +lon_0=105.75 +k=0.9999 +x_0=500000 +y_0=0 +ellps=WGS84 "
                  "+towgs84=-191.90441429,-39.30318279,-111.45032835,-0.00928836,0.01975479,-0.00427372,"
                  "0.252906278 +units=m +no_defs")


def _lots(tiles: Path, crs: str) -> gpd.GeoDataFrame:
    """Four lots tiling the scene (two sheets, two parcels each), drawn in ``crs`` (datum shift applied)."""
    with rasterio.open(sorted(tiles.glob("*.tif"))[0]) as src:
        left, bottom, right, top = src.bounds
        own = src.crs
    mx, my = (left + right) / 2, (bottom + top) / 2
    geoms = [box(left - 50, my, mx, top + 50), box(mx, my, right + 50, top + 50),
             box(left - 50, bottom - 50, mx, my), box(mx, bottom - 50, right + 50, my)]
    return gpd.GeoDataFrame({"Số tờ": ["5", "5", "6", "6"], "Số thửa": ["101", "102", "201", "202"],
                             "Địa chỉ": ["Số 1 Tô Ký", "Số 3 Tô Ký", "Số 2 Lê Văn Khương", "Số 4 Lê Văn Khương"]},
                            geometry=geoms, crs=own).to_crs(crs)


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One run through the CLI: the layer a CSV without a CRS, its CRS and a column from --config."""
    from click.testing import CliRunner

    from changedetect.cli import cli

    root = tmp_path_factory.mktemp("parcels_run")
    config = make_run_inputs(root / "inputs")
    config = dataclasses.replace(config, output=dataclasses.replace(config.output.with_formats(
        ["gpkg", "csv", "geojson", "parquet"]), report=True))
    lots = _lots(root / "inputs" / "tiles", "EPSG:9210").rename(columns={"Số thửa": "TD_SO"})
    layer = root / "thua_dat.csv"
    lots.assign(wkt=lots.geometry.to_wkt()).drop(columns="geometry").to_csv(layer, index=False)
    toml = root / "run.toml"
    text = config.to_toml()
    assert "[parcels]" in text and "# crs = (unset" in text.split("[parcels]")[1]
    text = text.replace("[parcels]", '[parcels]\ncrs = "EPSG:9210"\ncolumn_map = { TD_SO = "parcel_no" }')
    toml.write_text(text, encoding="utf-8")
    out = root / "out"
    result = CliRunner().invoke(cli, ["-q", "run", str(root / "inputs" / "tiles"), "--permits",
                                      str(root / "inputs" / "permits.gpkg"), "--parcels", str(layer),
                                      "--config", str(toml), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return {"out": out, "layer": layer, "output": result.output}


def test_every_violation_gets_its_parcel_in_every_list(ran: dict) -> None:
    out = ran["out"]
    gpkg = gpd.read_file(out / "violations.gpkg", layer="violations")
    assert len(gpkg) >= 1
    assert set(gpkg["parcel_id"]) <= {"5/101", "5/102", "6/201", "6/202"} and (gpkg["parcel_id"] != "").all()
    assert gpkg["parcel_address"].str.startswith("Số ").all() and gpkg["parcel_sheet"].isin(["5", "6"]).all()
    assert gpkg["parcel_share"].between(0.0, 1.0).all() and (gpkg["parcels_crossed"] >= 1).all()
    for other in (gpd.read_file(out / "violations.csv"), gpd.read_file(out / "violations.geojson"),
                  gpd.read_parquet(out / "violations.parquet")):
        assert sorted(zip(other["violation_id"], other["parcel_id"], strict=True)) == sorted(
            zip(gpkg["violation_id"], gpkg["parcel_id"], strict=True))


def test_run_json_records_the_layer_like_the_register(ran: dict) -> None:
    import hashlib

    provenance = json.loads((ran["out"] / "run.json").read_text(encoding="utf-8"))
    record = provenance["inputs"]["parcels"]
    assert record == {"path": str(ran["layer"]), "sha256": hashlib.sha256(ran["layer"].read_bytes()).hexdigest()}
    assert provenance["config"]["parcels"]["crs"] == "EPSG:9210"
    assert provenance["config"]["parcels"]["column_map"] == {"TD_SO": "parcel_no"}


def test_run_json_and_the_summary_count_the_violations_on_a_parcel(ran: dict) -> None:
    """What an inspector's supervisor reads first: how many violations the layer placed, how many
    stand across lots, and how many have an address only from their parcel (unlicensed ones)."""
    gpkg = gpd.read_file(ran["out"] / "violations.gpkg", layer="violations")
    provenance = json.loads((ran["out"] / "run.json").read_text(encoding="utf-8"))
    listed = gpkg[gpkg["status"] != "permitted"]
    no_address = listed["address"].fillna("").eq("") if "address" in listed else True
    assert provenance["parcels"] == {
        "violations": len(listed), "on_a_parcel": int((listed["parcel_id"] != "").sum()),
        "across_parcels": int((listed["parcels_crossed"] >= 2).sum()),
        "address_from_parcel": int((no_address & (listed["parcel_address"] != "")).sum())}
    assert f"  parcels:            {provenance['parcels']['on_a_parcel']} of {len(listed)} violations on a parcel" \
        in ran["output"], ran["output"]


def test_the_report_card_shows_the_parcel(ran: dict) -> None:
    html = (ran["out"] / "report.html").read_text(encoding="utf-8")
    assert "<th>Parcel</th><td>sheet " in html and "(tờ " in html


def test_a_run_without_parcels_records_none_and_adds_no_column(tmp_path: Path) -> None:
    from changedetect.pipeline import run

    config = make_run_inputs(tmp_path / "inputs", size=128)
    run(tmp_path / "inputs" / "tiles", permits=tmp_path / "inputs" / "permits.gpkg", out=tmp_path / "out",
        config=config)
    provenance = json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))
    assert provenance["inputs"]["parcels"] is None and provenance["parcels"] is None
    assert "parcel_id" not in gpd.read_file(tmp_path / "out" / "violations.gpkg", layer="violations")


def test_run_refuses_a_layer_proj_cannot_place_before_co_registering(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import changedetect.pipeline as pipeline

    def chain(*args: object, **kwargs: object) -> None:
        raise AssertionError("the chain started: co-registration, detection and vectorising ran first")

    monkeypatch.setattr(pipeline, "chain", chain)
    config = make_run_inputs(tmp_path / "inputs", size=128)
    layer = tmp_path / "thua_dat.shp"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _lots(tmp_path / "inputs" / "tiles", VN2000_TOWGS84).rename(
            columns={"Số tờ": "so_to", "Số thửa": "so_thua", "Địa chỉ": "dia_chi"}).to_file(layer, encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(GeoreferenceError, match=r"parcel layer '.*thua_dat\.shp'.*no transformation.*\[parcels\]"):
        pipeline.run(tmp_path / "inputs" / "tiles", permits=tmp_path / "inputs" / "permits.gpkg", out=out,
                     config=config, parcels=layer)
    assert not out.exists()
