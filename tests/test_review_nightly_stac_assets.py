"""Review of the nightly job on STAC items whose bands are separate assets (Sentinel-2 COGs as Earth Search
serves them: blue, green, red, nir, scl, aot, visual, ...; a Landsat item's per-band assets): an item is
one date, its band assets that date's bands, named by the item, its SCL asset its cloud mask. Before,
the nightly read an item's first asset alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import test_review_s2_clouds as s2  # its L2A-like folder and clouds
from test_review_nightly_run_warnings import not_about_the_result

from changedetect.testing import make_nightly_catalog

COMMON = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir"}


def _item(folder: Path, src: Path, day: str, *, keys: str = "common") -> Path:
    """An Earth-Search-like item for one of ``src``'s dates, its assets in ``folder/S2_<day>/`` under names
    that say nothing (``asset_1.tif`` ...): the item alone names them.  ``keys="common"``: assets keyed by
    common names with ``eo:bands``; ``"bare"``: keyed by band (``B04``...) without ``eo:bands``."""
    where = folder / f"S2_{day}"
    where.mkdir(parents=True)
    assets = {}
    for k, band in enumerate(("B04", "B02", "B08", "B03"), 1):  # not in band order
        shutil.copy(next(src.glob(f"*{day}*_{band}_10m.tif")), where / f"asset_{k}.tif")
        asset = {"href": f"S2_{day}/asset_{k}.tif", "type": "image/tiff; application=geotiff; profile=cloud-optimized",
                 "roles": ["data", "reflectance"]}
        if keys == "common":
            asset["eo:bands"] = [{"name": band, "common_name": COMMON[band]}]
        assets[COMMON[band] if keys == "common" else band] = asset
    scl = next(src.glob(f"*{day}*SCL*"), None)
    if scl is not None:
        shutil.copy(scl, where / "scene_class.tif")
        assets["scl"] = {"href": f"S2_{day}/scene_class.tif", "type": "image/tiff", "roles": ["data"]}
    shutil.copy(where / "asset_1.tif", where / "aerosol.tif")
    assets["aot"] = {"href": f"S2_{day}/aerosol.tif", "type": "image/tiff", "roles": ["data"]}
    assets["visual"] = {"href": f"S2_{day}/asset_2.tif", "type": "image/tiff", "roles": ["visual"]}
    assets["thumbnail"] = {"href": f"S2_{day}/preview.jpg", "type": "image/jpeg", "roles": ["thumbnail"]}
    item = {"type": "Feature", "stac_version": "1.0.0", "id": f"S2A_32TPP_{day}_0_L2A",
            "properties": {"datetime": f"{day[:4]}-{day[4:6]}-{day[6:]}T10:10:21Z"}, "assets": assets}
    path = folder / f"S2A_32TPP_{day}_0_L2A.json"
    path.write_text(json.dumps(item))
    return path


def test_an_items_band_assets_are_one_date_and_its_scl_its_mask(tmp_path: Path) -> None:
    from changedetect._nightly_catalog import discover

    src = s2.s2_folder(tmp_path / "src")
    for day in s2.DATES:
        _item(tmp_path / "cat" / "items", src, day)
        _item(tmp_path / "cat" / "bare", src, day, keys="bare")
    found = discover(tmp_path / "cat")
    for area in ("items", "bare"):
        acqs = found[area]
        assert [q.date for q in acqs] == ["2020-01-05", "2020-07-04"], acqs
        for q in acqs:
            assert q.bands == ("B02", "B03", "B04", "B08"), q  # in band order, named by the item
            assert [Path(f).name for f in q.files] == ["asset_2.tif", "asset_4.tif", "asset_1.tif", "asset_3.tif"]
            assert q.named and q.scl is not None and q.scl.endswith("scene_class.tif") and q.scl_sha256, q
            assert not any("aerosol" in f for f in q.inputs), q  # a side product, not a band
            assert q.band_names() == ["B02", "B03", "B04", "B08", "SCL"]
    assert found["items"][0].sha256 == found["bare"][0].sha256  # the bands' names and files, not the item


def test_an_item_missing_an_asset_waits_with_one_line(tmp_path: Path) -> None:
    from changedetect._nightly_catalog import discover

    src = s2.s2_folder(tmp_path / "src")
    _item(tmp_path / "cat" / "a", src, s2.DATES[0])
    (tmp_path / "cat" / "a" / f"S2_{s2.DATES[0]}" / "asset_3.tif").unlink()
    problems: list[str] = []
    assert discover(tmp_path / "cat", problems=problems) == {}
    (line,) = problems
    assert "2020-01-05" in line and "asset_3.tif" in line and "picked up" in line, line


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Areas ``items`` (the dates as STAC items) and ``bands`` (the same files as L2A band files)."""
    from changedetect.config import PipelineConfig
    from changedetect.nightly import run_nightly

    root = tmp_path_factory.mktemp("nightly_stac")
    world = make_nightly_catalog(root, {})
    src = s2.s2_folder(root / "src")
    shutil.copytree(src, world["tiles"] / "bands")
    for day in s2.DATES:
        _item(world["tiles"] / "items", src, day)
    config = PipelineConfig.from_toml(world["config"])
    runs = [run_nightly(world["tiles"], permits=world["permits"], state=root / "state", out=root / "out",
                        night=n, workers=1, config=config) for n in ("2020-01-06", "2020-07-05")]
    return {"root": root, "runs": runs}


def test_a_nightly_item_reads_every_band_asset_and_masks_its_clouds(nights: dict) -> None:
    """The items' pair is the band files' pair: its clouds masked, the same violations."""
    import geopandas as gpd

    second = nights["runs"][1]
    assert not second.failed and [w for w in not_about_the_result(second.warnings)
                                  if "could not be co-registered" not in w] == [], \
        (second.failed, second.warnings)  # the fixture's cloudy synthetic dates cannot be co-registered, which the night says (not checked here)
    (items,), (bands,) = second.coverage["items"], second.coverage["bands"]
    assert items["coverage_both_dates"] == pytest.approx(1 - s2._masked_10m(True).mean(), abs=0.01)
    assert items["coverage_both_dates"] == pytest.approx(bands["coverage_both_dates"])
    reg = gpd.read_file(nights["root"] / "out" / "open_violations.gpkg", layer="open_violations")

    def rows(area: str) -> list:
        mine = reg[reg["area"] == area]
        return sorted(zip(mine["status"], (g.wkt for g in mine.geometry), strict=True))

    assert rows("items") == rows("bands")


def test_an_item_an_earlier_version_read_by_its_first_asset_is_said_again(tmp_path: Path) -> None:
    """A state written when the job read an item's first asset alone knows the date by that file: the
    date is new again (all its bands), and the night's ``reruns`` says why."""
    from changedetect._nightly_catalog import discover
    from changedetect._nightly_plan import _stac_upgrades

    src = s2.s2_folder(tmp_path / "src")
    _item(tmp_path / "cat" / "a", src, s2.DATES[0])
    (q,) = discover(tmp_path / "cat")["a"]
    first = str((tmp_path / "cat" / "a" / f"S2_{s2.DATES[0]}" / "asset_1.tif").resolve())
    processed = {"old": {"path": first, "date": q.date, "night": "2020-01-06"}}
    (said,) = _stac_upgrades("a", [q], processed)
    assert said["date"] == "2020-01-05" and "4 band assets" in said["reason"] and first in said["reason"], said
    assert _stac_upgrades("a", [q], {}) == []
