"""A band-per-file date (one GeoTIFF per band) delivered again with a band file's content changed is a corrected
re-delivery, as a one-file date is (``tests/test_nightly_order.py``): the night names the file, both pairs the date
took part in run again, and what they no longer find is withdrawn.  Before, such a date was never judged so (its
checksum covers every band file): the replaced band's artefacts stayed open.  A band added, or one the run does
not read changed, is no re-delivery; a state written before the files' checksums were kept is judged by its
checksum cache, and completed the first night its dates are as they were compared."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
from test_review_nightly_bands import BANDS, _split  # one single-band GeoTIFF per band per date

from changedetect.config import PipelineConfig
from changedetect.nightly import run_nightly
from changedetect.testing import make_nightly_catalog, make_stack

KIND = "not in the file delivered again"


class World:
    """Area ``pisa``: three dates of B02, B03 and B04 files (the tiny model reads red, green and blue), its first
    night committed with the violations the model's noise makes."""

    def __init__(self, root: Path) -> None:
        (root / "world").mkdir()
        self.world = make_nightly_catalog(root / "world", {})  # its model, register and configuration
        self.root, self.catalog = root, root / "catalog"
        self.files = _split(make_stack(n_dates=3, size=64, seed=1, bands=BANDS), self.catalog / "pisa", "pisa")
        self.config = PipelineConfig.from_toml(self.world["config"])
        # the random tiny model sees noise in any pair: a threshold it never reaches stands for files that show
        # nothing there (the corrected delivery)
        self.nothing = replace(self.config, vectorize=replace(self.config.vectorize, threshold=1.0,
                                                              low_threshold=1.0))
        first = self.night("2024-05-20", self.config)
        assert first.pairs == 2 and not first.failed, first
        self.reported = self.open_ids()
        assert self.reported  # something to withdraw

    def night(self, day: str, config: PipelineConfig | None = None) -> Any:
        return run_nightly(self.catalog, permits=self.world["permits"], state=self.root / "state",
                           out=self.root / "out", night=day, workers=1, config=config or self.nothing)

    def open_ids(self) -> set[str]:
        return set(gpd.read_file(self.root / "out" / "open_violations.gpkg", layer="open_violations")["violation_id"])

    def band(self, day: str, band: str) -> Path:
        return next(f for f in self.files[day] if f.stem.endswith(band))

    def state(self) -> dict[str, Any]:
        return json.loads((self.root / "state" / "state.json").read_text(encoding="utf-8"))

    def records(self, date: str) -> list[dict[str, Any]]:
        return [r for r in self.state()["acquisitions"]["pisa"].values() if r["date"] == date]


def _shift(path: Path, shift: int = 3) -> None:
    """``path``'s pixels moved ``shift`` px east, under the same name (a band delivered off, then corrected)."""
    with rasterio.open(path, "r+") as ds:
        ds.write(np.roll(ds.read(1), shift, axis=1), 1)


def _extra_band(w: World, day: str, band: str) -> Path:
    """A band the date did not have, named as its others (its B02's pixels)."""
    path = w.band(day, "B02").with_name(f"pisa_{day}_{band}.tif")
    path.write_bytes(w.band(day, "B02").read_bytes())
    return path


def test_a_band_file_delivered_again_is_named_and_what_its_pairs_no_longer_find_withdrawn(tmp_path: Path) -> None:
    w = World(tmp_path)
    b03 = w.band("20240315", "B03")
    _shift(b03)
    second = w.night("2024-05-21")
    (line,) = [x for x in second.warnings if "new content" in x]
    assert line.startswith(f"area pisa: 2024-03-15's band file '{b03}' has new content since night 2024-05-20"), line
    assert second.pairs == 2, second  # both pairs the date took part in
    withdrawn = gpd.read_file(tmp_path / "out" / "withdrawn-2024-05-21.gpkg", layer="withdrawn-2024-05-21")
    assert set(withdrawn["violation_id"]) == w.reported
    assert withdrawn["withdrawn_reason"].str.startswith(
        f"{KIND}: 2024-03-15's band file 'pisa_20240315_B03.tif' was delivered again with new content").all()
    assert second.withdrawn_reasons == {KIND: len(w.reported)}
    assert not w.open_ids() & w.reported
    # the state keeps each band file's checksum with the date, the replaced one's new
    (old, new) = sorted(w.records("2024-03-15"), key=lambda r: r["night"])
    assert sorted(new["files"]) == sorted(map(str, w.files["20240315"]))
    assert new["files"][str(b03)] != old["files"][str(b03)]
    assert new["files"][str(w.band("20240315", "B02"))] == old["files"][str(w.band("20240315", "B02"))]


def test_a_band_added_or_one_the_run_does_not_read_changed_is_no_redelivery(tmp_path: Path) -> None:
    """A NIR file arriving after the RGB ones changes the date's checksum, no band the pairs read: the date is
    new (its pair with the date before runs), nothing is said changed and nothing is withdrawn.  Nor is a SWIR
    band changed, which no stage of the run reads (the model reads RGB; the change-type heuristic, NIR too)."""
    w = World(tmp_path)
    _extra_band(w, "20240315", "B08")
    swir = _extra_band(w, "20240315", "B11")
    second = w.night("2024-05-21")
    assert not [x for x in second.warnings if "new content" in x], second.warnings
    assert (second.new_acquisitions, second.pairs) == (1, 1), second
    assert second.withdrawn_reasons == {} and w.open_ids() == w.reported
    _shift(swir)  # a band the run does not read, delivered again: the date is new, not re-delivered
    third = w.night("2024-05-22")
    assert not [x for x in third.warnings if "new content" in x], third.warnings
    assert (third.new_acquisitions, third.pairs) == (1, 1), third
    assert third.withdrawn_reasons == {} and w.open_ids() == w.reported


def test_a_state_without_the_files_checksums_is_judged_by_its_checksum_cache_and_completed(tmp_path: Path) -> None:
    """A state written before the band files' checksums were kept: a band file changed on its first night was
    not judged (the date new, as before: the replaced band's artefacts left open).  Its files' checksums are
    now those its checksum cache had, which give the record's checksum: judged.  The dates still as they were
    compared get their files' checksums that night, so a later re-delivery of one is judged too."""
    w = World(tmp_path)
    state = w.state()
    for record in state["acquisitions"]["pisa"].values():
        record.pop("files", None)
    (tmp_path / "state" / "state.json").write_text(json.dumps(state), encoding="utf-8")
    b03 = w.band("20240315", "B03")
    _shift(b03)
    second = w.night("2024-05-21")
    assert not second.failed, second
    (line,) = [x for x in second.warnings if "new content" in x]
    assert line.startswith(f"area pisa: 2024-03-15's band file '{b03}' has new content since night 2024-05-20"), line
    assert second.pairs == 2 and second.withdrawn_reasons == {KIND: len(w.reported)}, second
    assert not w.open_ids() & w.reported
    # completed: the dates as they were compared, and the new version; not the replaced one (its files are gone)
    records = w.state()["acquisitions"]["pisa"].values()
    assert sorted(r["date"] for r in records if "files" in r) == ["2024-01-15", "2024-03-15", "2024-05-14"]
    first_b04 = w.band("20240115", "B04")
    _shift(first_b04)
    third = w.night("2024-05-22")
    (line,) = [x for x in third.warnings if "new content" in x]
    assert line.startswith(f"area pisa: 2024-01-15's band file '{first_b04}' has new content since night "
                           "2024-05-20"), line
    # the first date: its pair with the date after it, and the next pair, which read it as a fill date
    assert third.pairs == 2, third


def test_a_state_without_the_files_checksums_nor_their_cache_is_as_before(tmp_path: Path) -> None:
    """Without the checksum cache (or with files changed since it was written) the files' checksums are not
    known: the band file changed is not judged (the date is new, as before), without an error."""
    w = World(tmp_path)
    state = w.state()
    for record in state["acquisitions"]["pisa"].values():
        record.pop("files", None)
    state["checksums"] = {}
    (tmp_path / "state" / "state.json").write_text(json.dumps(state), encoding="utf-8")
    _shift(w.band("20240315", "B03"))
    second = w.night("2024-05-21")
    assert not second.failed and not [x for x in second.warnings if "new content" in x], second.warnings
    assert second.pairs == 1 and second.withdrawn_reasons == {} and w.open_ids() == w.reported


def test_a_date_compared_as_one_band_file_that_gains_the_others_while_it_changes_is_judged(tmp_path: Path) -> None:
    """A date's record of one band file has no ``"files"`` (its checksum is that file's): a date first compared
    as its B02 alone whose B03 and B04 came later while its B02 was delivered again was not judged (planned
    only: no pair runs)."""
    from changedetect._nightly_catalog import discover
    from changedetect._nightly_plan import plan_night
    from changedetect._nightly_reference import NightState
    from changedetect.nightly import NightlySummary

    cat = tmp_path / "cat"
    files = _split(make_stack(n_dates=3, size=32, seed=1, bands=BANDS), cat / "pisa", "pisa")
    b02 = next(f for f in files["20240315"] if f.stem.endswith("B02"))
    known: dict[str, list[Any]] = {}
    acqs = discover(cat, known=known)["pisa"]
    processed = {q.sha256: {"path": q.path, "date": q.date, "night": "2024-05-20", "scl": "",
                            "files": q.file_sha256} for q in acqs if q.date != "2024-03-15"}
    processed[known[str(b02)][2]] = {"path": str(b02), "date": "2024-03-15", "night": "2024-05-20", "scl": ""}
    _shift(b02)  # (its B03 and B04 came after that night)
    summary = NightlySummary("2024-05-21")
    tasks, _ = plan_night(cat, NightState(acquisitions={"pisa": processed}, checksums=known), tmp_path / "state",
                          "register.gpkg", PipelineConfig(), "2024-05-21", summary, None)
    (line,) = [x for x in summary.warnings if "new content" in x]
    assert line.startswith(f"area pisa: 2024-03-15's band file '{b02}' has new content since night 2024-05-20"), line
    assert [p["replaced"] for p in tasks[0]["pairs"]] == [["2024-03-15"], ["2024-03-15"]], tasks[0]["pairs"]


def test_a_stac_items_band_asset_delivered_again_is_judged_and_its_upgrade_or_scl_is_not(tmp_path: Path) -> None:
    """A STAC item of several band assets is one date of several files as well (planned only: no pair runs)."""
    import shutil

    import test_review_s2_clouds as s2
    from test_review_nightly_stac_assets import _item

    from changedetect._nightly_catalog import discover
    from changedetect._nightly_plan import plan_night
    from changedetect._nightly_reference import NightState
    from changedetect._state import sha256_file
    from changedetect.nightly import NightlySummary

    src = s2.s2_folder(tmp_path / "src")
    cat = tmp_path / "cat"
    for day in s2.DATES:
        _item(cat / "a", src, day)
    acqs = discover(cat)["a"]
    done = {q.sha256: {"path": q.path, "date": q.date, "night": "2020-07-05", "scl": q.scl_sha256 or "",
                       "files": {f: sha256_file(f) for f in q.files}} for q in acqs}  # as the night that
    # compared them committed them

    def plan(processed: dict[str, Any]) -> tuple[list[dict[str, Any]], NightlySummary]:
        summary = NightlySummary("2020-07-06")
        tasks, _ = plan_night(cat, NightState(acquisitions={"a": processed}), tmp_path / "state", "register.gpkg",
                              PipelineConfig(), "2020-07-06", summary, None)
        return tasks, summary

    where = cat / "a" / f"S2_{s2.DATES[0]}"
    shutil.copy(where / "scene_class.tif", tmp_path / "scl.tif")
    with rasterio.open(where / "scene_class.tif", "r+") as ds:  # its SCL changed (a cloud found): compared
        ds.write(np.full((1, 4, 4), 9, dtype=ds.dtypes[0]), window=((0, 4), (0, 4)))  # again, no re-delivery
    tasks, summary = plan(done)
    assert not [x for x in summary.warnings if "new content" in x] and [r["date"] for r in summary.reruns] == [
        "2020-01-05"], (summary.warnings, summary.reruns)
    assert [p["replaced"] for p in tasks[0]["pairs"]] == [[]]
    shutil.copy(tmp_path / "scl.tif", where / "scene_class.tif")
    _shift(where / "asset_2.tif")  # its blue band (B02) delivered again
    tasks, summary = plan(done)
    (line,) = [x for x in summary.warnings if "new content" in x]
    assert line.startswith(f"area a: 2020-01-05's band file '{where / 'asset_2.tif'}' has new content since night "
                           "2020-07-05"), line
    (pair,) = tasks[0]["pairs"]
    assert pair["replaced"] == ["2020-01-05"] and pair["replaced_files"] == {
        "2020-01-05": [str(where / "asset_2.tif")]}, pair
    # a state that knew the item by its first asset alone: an upgrade (said in reruns), not a re-delivery
    legacy = {sha: {"path": str(where / "asset_1.tif") if r["date"] == "2020-01-05" else r["path"],
                    **{k: v for k, v in r.items() if k not in ("path", "files")}} for sha, r in done.items()}
    tasks, summary = plan(legacy)
    assert not [x for x in summary.warnings if "new content" in x], summary.warnings
    assert [r["date"] for r in summary.reruns] == ["2020-01-05"] and "4 band assets" in summary.reruns[0]["reason"]


def test_the_withdrawal_reason_names_the_band_files_of_each_date() -> None:
    from changedetect._withdraw_masked import _what_replaced

    assert _what_replaced(["2024-03-15"], {}) == "the file of 2024-03-15 was"  # one file: as before
    assert _what_replaced(["2024-01-15", "2024-03-15"], {"2024-03-15": ["/c/a/x_B03.tif", "/c/a/x_B04.tif"]}) == (
        "the file of 2024-01-15 and 2024-03-15's band files 'x_B03.tif', 'x_B04.tif' were")
