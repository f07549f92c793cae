"""Review: the nightly job reads the cadastral parcel layer as ``changedetect run --parcels`` does.

``changedetect nightly ... --parcels LAYER`` (``run_nightly(parcels=...)``) gives each pair's run the
layer, so that the night's list, the open register and the night's report card carry each violation's
parcel (an unlicensed building has no permit, so no address: the parcel gives it one).  The layer's
content is part of each pair's work-folder key, as the register's is: a changed layer computes a resumed
night again, the same layer reuses its pairs.  A bad layer is one error before anything is written.

The nights are those of :mod:`test_review_nightly_rerun_withdraw` (a deterministic detector; its July
date has a new house), the SCL delivered with its date, so night 2 reports the house alone."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from shapely.geometry import box
from test_review_nightly_rerun_withdraw import HOUSE, NIGHTS, RES, SIZE, X0, Y0, _px, _world

from changedetect.errors import ChangeDetectError

ADDRESS = "Số 12 Tô Ký, Tân Chánh Hiệp"


def _lots(path: Path, address: str = ADDRESS) -> Path:
    """Two lots of sheet 7: 101 holds the house (and the scene's south), 102 the north."""
    mid = Y0 - HOUSE[0].start * RES + 5 * RES  # well north of the house
    south = box(X0 - 50, Y0 - SIZE * RES - 50, X0 + SIZE * RES + 50, mid)
    north = box(X0 - 50, mid, X0 + SIZE * RES + 50, Y0 + 50)
    gpd.GeoDataFrame({"so_to": ["7", "7"], "so_thua": ["101", "102"], "dia_chi": [address, "Số 14 Tô Ký"],
                      "loai_dat": ["ODT", "ODT"]}, geometry=[south, north], crs="EPSG:32632").to_file(path)
    return path


def _night(world: dict[str, Any], night: str, **kwargs: Any) -> Any:
    from changedetect.config import PipelineConfig
    from changedetect.nightly import run_nightly

    root = world["root"]
    return run_nightly(world["tiles"], permits=world["permits"], state=root / "state", out=root / "out",
                       night=night, workers=1, config=PipelineConfig.from_toml(world["config"]), **kwargs)


def _bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    world = _world(tmp_path_factory.mktemp("nightly_parcels"))
    shutil.copy(world["held"], world["tiles"] / "s2" / world["held"].name)  # the SCL with its date
    lots = _lots(world["root"] / "thua_dat.gpkg")
    summaries = [_night(world, n, parcels=lots) for n in NIGHTS[:2]]
    return {**world, "lots": lots, "summaries": summaries}


def test_the_night_and_the_open_register_carry_the_parcel(nights: dict[str, Any]) -> None:
    out, night = nights["root"] / "out", NIGHTS[1]
    assert nights["summaries"][1].new_violations == 1
    for frame in (gpd.read_file(out / "open_violations.gpkg", layer="open_violations"),
                  gpd.read_file(out / f"violations-{night}.gpkg", layer=f"violations-{night}")):
        house = frame.to_crs(32632)
        assert len(house) == 1 and house.geometry[0].intersection(_px(*HOUSE)).area > 0.5 * house.geometry[0].area
        row = house.iloc[0]
        assert (row["parcel_sheet"], row["parcel_no"], row["parcel_address"], row["parcel_land_use"]) == \
            ("7", "101", ADDRESS, "ODT")
        assert row["parcel_id"] == "7/101" and row["parcel_share"] == 1.0 and row["parcels_crossed"] == 1
    assert ADDRESS in (out / f"violations-{night}.csv").read_text(encoding="utf-8")
    report = (out / f"report-{night}-s2.html").read_text(encoding="utf-8")
    assert f"{ADDRESS} (the parcel&#x27;s)" in report and "sheet 7, parcel 101" in report


def test_the_night_again_changes_no_byte(nights: dict[str, Any]) -> None:
    """Through the command: ``--parcels`` given again, the night processed is left as it was."""
    from click.testing import CliRunner

    from changedetect.cli import cli

    root = nights["root"]
    before = _bytes(root / "out")
    result = CliRunner().invoke(cli, ["-q", "nightly", "--catalog", str(nights["tiles"]), "--permits",
                                      str(nights["permits"]), "--parcels", str(nights["lots"]), "--state",
                                      str(root / "state"), "--out", str(root / "out"), "--night", NIGHTS[1],
                                      "--config", str(nights["config"])])
    assert result.exit_code == 0, result.output
    assert _bytes(root / "out") == before


def _keys(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> list[tuple[str, Any]]:
    """The work folders night 2 would run its pairs in (and the layer each area's task passes), from a
    state that has seen night 1: the night is stopped before it computes."""
    from changedetect import nightly

    seen: list[tuple[str, Any]] = []

    def stop(tasks: list[dict[str, Any]], **_: Any) -> list[dict[str, Any]]:
        seen.extend((p["run_dir"], t.get("parcels")) for t in tasks for p in t["pairs"])
        raise KeyboardInterrupt

    monkeypatch.setattr(nightly, "_compute", stop)
    with pytest.raises(KeyboardInterrupt):
        _night(world, NIGHTS[1], **kwargs)
    monkeypatch.undo()
    return seen


def test_the_layer_names_the_pairs_work_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = _world(tmp_path)
    _night(world, NIGHTS[0])
    lots = _lots(tmp_path / "lots.gpkg")
    without = _keys(world, monkeypatch)
    first = _keys(world, monkeypatch, parcels=lots)
    again = _keys(world, monkeypatch, parcels=lots)
    assert len(first) == 1 and first[0][1] == str(lots.absolute())
    assert without[0][1] is None and without[0][0] != first[0][0]
    assert again == first  # the same layer: the same folder, reused
    _lots(lots, address="Số 16 Tô Ký")  # the cadastre corrects an address
    changed = _keys(world, monkeypatch, parcels=lots)
    assert changed[0][0] != first[0][0]


def test_a_bad_layer_is_one_error_before_anything_is_written(tmp_path: Path) -> None:
    world = _world(tmp_path)
    bad = tmp_path / "bad.gpkg"
    gpd.GeoDataFrame({"ghi_chu": ["x"]}, geometry=[box(X0, Y0 - 100, X0 + 100, Y0)], crs="EPSG:32632").to_file(bad)
    with pytest.raises(ChangeDetectError, match="parcel"):
        _night(world, NIGHTS[0], parcels=bad)
    assert not (world["root"] / "state").exists() and not (world["root"] / "out").exists()
