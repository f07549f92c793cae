"""Review of how the nightly job finds and plans its work, and of its state: what an operator
running it from cron for a year meets (a feed that delivers a STAC item before its COG, a broken
link, a malformed item or state file, a file replaced in place, a lock left by a killed run, a
full disk while committing, two acquisitions of one day).  No pipeline run: catalog, plan and
state only."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from changedetect.errors import ConfigError
from changedetect.testing import make_stack, write_stack


def _stac(folder: Path, name: str, href: str, **props: object) -> Path:
    item = {"type": "Feature", "stac_version": "1.0.0", "id": name,
            "properties": {"datetime": "2024-02-01T03:00:00Z", **props},
            "assets": {"data": {"href": href, "roles": ["data"]}}}
    path = folder / f"{name}.json"
    path.write_text(json.dumps(item), encoding="utf-8")
    return path


def test_a_stac_item_delivered_before_its_cog_is_left_out_and_the_other_areas_go_on(tmp_path: Path) -> None:
    """A feed that writes the item first (or a broken link) used to stop the whole catalog with
    one TileReadError, night after night, for every area; now that entry waits, named in the
    night's warnings, and is picked up once its file is there."""
    from changedetect._nightly_plan import plan_night
    from changedetect._nightly_reference import NightState
    from changedetect.config import PipelineConfig
    from changedetect.nightly import NightlySummary

    cat = tmp_path / "cat"
    write_stack(make_stack(n_dates=2, size=32, seed=3), cat / "good", prefix="good")
    (cat / "late").mkdir()
    item = _stac(cat / "late", "late-0", "../../cogs/scene_20240201.tif")  # the COG is not there yet
    (cat / "good" / "good_20240301.tif").symlink_to(tmp_path / "nowhere.tif")  # a broken link
    summary = NightlySummary("2024-12-31")
    tasks, new = plan_night(cat, NightState(), tmp_path / "state", "register.gpkg", PipelineConfig(),
                            "2024-12-31", summary, None)
    assert sorted(new) == ["good"] and len(new["good"]) == 2
    assert [t["area"] for t in tasks] == ["good"] and len(tasks[0]["pairs"]) == 1
    assert len(summary.warnings) == 2
    assert any(str(item) in w and "scene_20240201.tif" in w for w in summary.warnings)
    assert any("good_20240301.tif" in w for w in summary.warnings)
    # the COG arrives: the item is an acquisition of its area
    cog = write_stack(make_stack(n_dates=1, size=32, seed=4), tmp_path / "x", prefix="scene")[0]
    (tmp_path / "cogs").mkdir()
    cog.rename(tmp_path / "cogs" / "scene_20240201.tif")
    from changedetect.nightly import discover

    problems: list[str] = []
    found = discover(cat, problems=problems)
    assert [q.date for q in found["late"]] == ["2024-02-01"]
    assert len(problems) == 1 and "good_20240301.tif" in problems[0]


@pytest.mark.parametrize("item", [
    {"type": "Feature", "properties": "2024-02-01", "assets": {"data": {"href": "x.tif"}}},
    {"type": "Feature", "properties": {"datetime": "2024-02-01"}, "assets": [{"href": "x.tif"}]},
    {"type": "Feature", "properties": {"datetime": "2024-02-01"}, "assets": {"data": "x.tif"}},
    {"type": "Feature", "properties": {"datetime": 20240201}, "assets": {"data": {"href": "x.tif"}}},
])
def test_a_malformed_stac_item_is_skipped_with_a_warning_not_a_traceback(
        tmp_path: Path, item: dict, caplog: pytest.LogCaptureFixture) -> None:
    from changedetect.nightly import discover

    cat = tmp_path / "cat"
    write_stack(make_stack(n_dates=1, size=32, seed=3), cat / "good", prefix="good")
    (cat / "bad").mkdir()
    (cat / "bad" / "item.json").write_text(json.dumps(item), encoding="utf-8")
    found = discover(cat)  # AttributeError / TypeError before the fix
    assert sorted(found) == ["good"]
    assert "item.json" in caplog.text


@pytest.mark.parametrize("text", ["[]", '{"version": 1}', '{"version": 1, "acquisitions": {}, "generation": "x"}',
                                  '{"version": 1, "acquisitions": 3, "generation": 0}'])
def test_a_malformed_state_file_is_one_clear_error(tmp_path: Path, text: str) -> None:
    from changedetect._nightly_reference import load

    (tmp_path / "state.json").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="state file .*state.json"):
        load(tmp_path)


def test_the_cli_says_a_malformed_state_file_in_one_line(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "state.json").write_text('{"version": 1, "generation": 3}', encoding="utf-8")
    cat = tmp_path / "cat"
    write_stack(make_stack(n_dates=1, size=32, seed=3), cat / "a", prefix="a")
    from changedetect.testing import make_footprints, make_permits

    make_permits(make_footprints(make_stack(n_dates=2, size=32))).iloc[:1].to_file(tmp_path / "permits.gpkg")
    from changedetect.testing import make_model

    model = make_model(tmp_path / "tiny-model", threshold=0.02)
    config = tmp_path / "c.toml"
    config.write_text(f'[detect]\nmodel = "{model}"\n', encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "changedetect.cli", "nightly", "--catalog", str(cat),
                           "--permits", str(tmp_path / "permits.gpkg"), "--state", str(state),
                           "--out", str(tmp_path / "out"), "--night", "2024-12-31", "--config", str(config)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Internal error" not in proc.stderr
    assert "is malformed" in proc.stderr and "remove the state directory" in proc.stderr


def test_checksums_are_cached_and_a_file_replaced_in_place_is_new(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from changedetect import _nightly_catalog
    from changedetect._nightly_catalog import discover, plan_pairs

    cat = tmp_path / "cat"
    paths = write_stack(make_stack(n_dates=3, size=32, seed=3), cat / "a", prefix="a")
    known: dict[str, list] = {}
    first = discover(cat, known=known)["a"]
    reads: list[Path] = []
    real = _nightly_catalog.sha256_file
    monkeypatch.setattr(_nightly_catalog, "sha256_file", lambda p: reads.append(Path(p)) or real(p))
    assert discover(cat, known=known)["a"] == first and reads == []  # nothing is read again
    # the feed replaces the second date in place with other content
    other = write_stack(make_stack(n_dates=1, size=40, seed=9), tmp_path / "other", prefix="o")[0]
    os.replace(other, paths[1])
    again = discover(cat, known=known)["a"]
    assert reads == [paths[1]]
    assert again[1].path == first[1].path and again[1].sha256 != first[1].sha256
    processed = {q.sha256: {"date": q.date} for q in first}
    new, pairs = plan_pairs(again, processed)
    assert new == [again[1]] and [(a.date, b.date) for a, b in pairs] == [(first[0].date, first[1].date)]


def test_two_acquisitions_of_one_day_are_each_paired_with_the_day_before(tmp_path: Path) -> None:
    """``plan_pairs`` alone; the catalog leaves such a day out since 2026-12-03, one date of an area being one
    scene (``tests/test_review_nightly_one_date_twice.py``)."""
    from dataclasses import replace

    from changedetect._nightly_catalog import discover, plan_pairs
    from changedetect._state import sha256_file

    cat = tmp_path / "cat"
    write_stack(make_stack(n_dates=2, size=32, seed=3), cat / "a", prefix="a")
    dates = sorted(f.name for f in (cat / "a").iterdir())
    second = write_stack(make_stack(n_dates=1, size=32, seed=8), tmp_path / "x", prefix="a")[0]
    same_day = tmp_path / "x" / dates[1].replace("a_", "a_b_")
    second.rename(same_day)
    acqs = discover(cat)["a"]
    acqs.append(replace(acqs[1], path=str(same_day), sha256=sha256_file(same_day)))
    assert len(acqs) == 3 and acqs[1].date == acqs[2].date
    new, pairs = plan_pairs(acqs, {acqs[0].sha256: {}})
    assert new == acqs[1:]
    assert [(a.path, b.path) for a, b in pairs] == [(acqs[0].path, acqs[1].path), (acqs[0].path, acqs[2].path)]


def test_a_lock_left_by_a_killed_run_does_not_block_the_next(tmp_path: Path) -> None:
    from changedetect._state import state_lock

    proc = subprocess.run([sys.executable, "-c", (
        "import os, signal, sys; from pathlib import Path; from changedetect._state import state_lock\n"
        f"with state_lock(Path({str(tmp_path)!r})):\n    os.kill(os.getpid(), signal.SIGKILL)")],
        check=False, timeout=120)
    assert proc.returncode == -9
    dead = (tmp_path / "lock").read_text().strip()
    assert dead.isdigit() and int(dead) != os.getpid()
    with state_lock(tmp_path):
        assert (tmp_path / "lock").read_text().strip() == str(os.getpid())


def test_a_full_disk_while_committing_leaves_the_previous_state(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from changedetect import _state
    from changedetect._nightly_reference import NightState, load

    before = NightState(generation=4, references={"a": {"path": "/x.tif", "date": "2024-01-01", "sha256": "f"}})
    _state.save_state(tmp_path, before)
    text = (tmp_path / "state.json").read_text()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_state.os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        _state.save_state(tmp_path, NightState(generation=5))
    assert (tmp_path / "state.json").read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]  # no temporary file left
    monkeypatch.undo()
    assert load(tmp_path) == before


def test_a_stac_item_beside_its_cog_is_one_acquisition_not_two(tmp_path: Path) -> None:
    """A catalog that keeps each item JSON next to its COG (the usual STAC layout) listed the COG
    twice (once by its name, once by the item): two identical pairs ran into one work folder and
    the night counted two new acquisitions."""
    from changedetect._nightly_catalog import discover, plan_pairs

    cat = tmp_path / "cat"
    cogs = write_stack(make_stack(n_dates=2, size=32, seed=3), cat / "d7", prefix="scene")
    for i, cog in enumerate(cogs):
        _stac(cat / "d7", f"item{i}", cog.name, datetime=f"{cog.stem[-8:-4]}-{cog.stem[-4:-2]}-{cog.stem[-2:]}")
    acqs = discover(cat)["d7"]
    assert [q.path for q in acqs] == [str(c) for c in cogs]
    new, pairs = plan_pairs(acqs, {acqs[0].sha256: {}})
    assert len(new) == 1 and len(pairs) == 1


def test_a_register_changed_in_its_dbf_or_its_table_names_new_work_folders(tmp_path: Path) -> None:
    """The work folders were keyed by the register file's checksum (a Shapefile's .shp alone, a
    PostGIS URL's text): a permit revoked in the .dbf or in the database between a crashed night and
    its rerun reused the work done against the old register.  Now the loaded register's content
    keys them; a GeoPackage rewritten with the same rows (a QGIS style added) keeps its key."""
    import geopandas as gpd
    from shapely.geometry import box

    from changedetect._nightly_plan import plan_night
    from changedetect._nightly_reference import NightState
    from changedetect._state import sha256_file, sha256_frame
    from changedetect.config import PipelineConfig
    from changedetect.nightly import NightlySummary

    reg = gpd.GeoDataFrame({"permit_id": ["P1", "P2"], "status": ["approved", "approved"],
                            "issued": ["2023-01-01", "2023-02-01"]},
                           geometry=[box(0, 0, 10, 10), box(20, 20, 30, 30)], crs="EPSG:32648")
    shp = tmp_path / "register.shp"
    reg.to_file(shp)
    before_shp, before = sha256_file(shp), sha256_frame(gpd.read_file(shp))
    reg.loc[1, "status"] = "revoked"
    reg.to_file(shp)
    assert sha256_file(shp) == before_shp  # what keyed the work folders did not see the change
    after = sha256_frame(gpd.read_file(shp))
    assert after != before
    gpkg = tmp_path / "r.gpkg"
    reg.to_file(gpkg, layer="permits")
    same = sha256_frame(gpd.read_file(gpkg, layer="permits"))
    gpd.GeoDataFrame({"x": [1]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:4326").to_file(gpkg, layer="other")
    assert sha256_frame(gpd.read_file(gpkg, layer="permits")) == same

    cat = tmp_path / "cat"
    write_stack(make_stack(n_dates=2, size=32, seed=3), cat / "a", prefix="a")

    def folders(key: str) -> list[str]:
        tasks, _ = plan_night(cat, NightState(), tmp_path / "state", str(shp), PipelineConfig(), "2024-12-31",
                              NightlySummary("2024-12-31"), None, register_key=key)
        return [p["run_dir"] for t in tasks for p in t["pairs"]]

    assert folders(before) != folders(after)
    assert folders(after) == folders(after)
