"""A new night dated before the last night committed is refused; a committed night may be run again.

An operator's typo in ``--night`` (or a script replaying dates) committed such a night out of order: its
register held violations first seen months after it, and it became 'the last night committed'.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from changedetect.config import PipelineConfig
from changedetect.errors import ConfigError
from changedetect.nightly import run_nightly
from changedetect.testing import make_nightly_catalog


def test_a_night_before_the_last_committed_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    world = make_nightly_catalog(tmp_path / "world", {"district1": 1})
    config = PipelineConfig.from_toml(world["config"])

    def night(day: str) -> object:
        return run_nightly(world["tiles"], permits=world["permits"], state=tmp_path / "state", out=tmp_path / "out",
                           night=day, workers=1, config=config)

    night("2024-05-20")
    state = (tmp_path / "state" / "state.json").read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match=r"night 2024-04-01 is before the last night committed, 2024-05-20"):
        night("2024-04-01")
    assert (tmp_path / "state" / "state.json").read_text(encoding="utf-8") == state
    assert not list((tmp_path / "out").glob("*2024-04-01*"))
    again = night("2024-05-20")  # a night already committed: run again (its outputs restored only)
    assert again.night == "2024-05-20"
    assert sorted(json.loads((tmp_path / "state" / "state.json").read_text(encoding="utf-8"))["nights"]) == ["2024-05-20"]
    later = night("2024-06-01")
    assert later.night == "2024-06-01"


def test_a_full_disk_inside_an_area_stops_the_night_as_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """On the Dask worker the OSError (chained to an exception that does not pickle, as GDAL's) came back
    as a bare ``Exception('OSError(28, ...)')``: 'Internal error ... This is a bug', exit 1, after the
    worker's 'Compute Failed' traceback, even with -q."""
    import errno
    import threading

    from changedetect import pipeline
    from changedetect.cli import main

    class Unpicklable(Exception):
        def __init__(self) -> None:
            super().__init__("GDAL's")
            self.lock = threading.Lock()

    def full(*args: object, **kwargs: object) -> None:
        try:
            raise Unpicklable()
        except Unpicklable as cause:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "state" / "x.gpkg")) from cause

    world = make_nightly_catalog(tmp_path / "world", {"district1": 1})
    monkeypatch.setattr(pipeline, "run", full)
    with pytest.raises(SystemExit) as exited:  # the console script's entry point: its error handling
        main(["-q", "nightly", "--catalog", str(world["tiles"]), "--permits", str(world["permits"]),
              "--state", str(tmp_path / "state"), "--out", str(tmp_path / "out"), "--night", "2024-05-20",
              "--config", str(world["config"]), "--workers", "1"])
    said = capsys.readouterr()
    assert exited.value.code == 2, said
    assert said.err.strip().splitlines() == [
        f"Error: no space left on the disk writing '{tmp_path / 'state' / 'x.gpkg'}' (No space left on device): free "
        "some space and run the command again (outputs are written to temporary files and renamed, so nothing "
        "half-written is left, and a nightly state stays as it was)"], said
    assert not (tmp_path / "state" / "state.json").exists()


def test_a_lenient_register_whose_rows_are_all_rejected_is_refused(tmp_path: Path) -> None:
    """Every row rejected (a decimal comma in an Excel export): the run matched against nothing and every
    building came out unlicensed, exit 0; the nightly turned 8 open violations unlicensed, with no warning."""
    from dataclasses import replace

    import geopandas as gpd
    import pandas as pd

    from changedetect.errors import PermitSchemaError
    from changedetect.permits import load_register

    world = make_nightly_catalog(tmp_path / "world", {"district1": 1})
    register = gpd.read_file(world["permits"])
    bad = register.assign(permitted_area_m2=register["permitted_area_m2"].map(lambda v: f"{v:.1f}".replace(".", ",")))
    bad.to_file(tmp_path / "comma.gpkg")
    with pytest.raises(PermitSchemaError, match=r"every one of its 1 row\(s\) was rejected"):
        load_register(tmp_path / "comma.gpkg", strict=False)
    config = PipelineConfig.from_toml(world["config"])
    lenient = replace(config, permits=replace(config.permits, strict=False))
    with pytest.raises(PermitSchemaError, match="every one of its"):
        run_nightly(world["tiles"], permits=tmp_path / "comma.gpkg", state=tmp_path / "state", out=tmp_path / "out",
                    night="2024-05-20", workers=1, config=lenient)
    # one bad row of two: the night goes on with the good one, and its summary says what was set aside
    two = gpd.GeoDataFrame(
        pd.concat([register, bad.assign(permit_id="GP-BAD-1")], ignore_index=True),
        geometry="geometry", crs=register.crs)
    two.to_file(tmp_path / "two.gpkg")
    with pytest.warns(Warning, match="rejected 1 of 2"):
        summary = run_nightly(world["tiles"], permits=tmp_path / "two.gpkg", state=tmp_path / "state",
                              out=tmp_path / "out", night="2024-05-20", workers=1, config=lenient)
    (line,) = [w for w in summary.warnings if "rejected 1 of 2 row(s)" in w]
    assert "the night went on without them" in line and "GP-BAD-1" in line and "decimal comma" in line, line
    assert "rejects_path" not in line and "--rejects" not in line  # advice for run and match, not the nightly


def test_a_file_the_night_will_never_take_is_in_its_warnings(tmp_path: Path) -> None:
    """A tile whose name holds no date the job reads (month 13, no date) was skipped every night with a log
    line only, which the cron recipe's -q hides."""
    import shutil

    world = make_nightly_catalog(tmp_path / "world", {"district1": 1})
    first = sorted((world["tiles"] / "district1").glob("*.tif"))[0]
    shutil.copy(first, world["tiles"] / "district1" / "district1_20251301.tif")
    # a static STAC catalog's own files are no acquisitions: not to be renamed with a date
    (world["tiles"] / "catalog.json").write_text('{"type": "Catalog", "id": "c", "links": []}', encoding="utf-8")
    (world["tiles"] / "district1" / "collection.json").write_text('{"type": "Collection", "id": "d1"}',
                                                                  encoding="utf-8")
    (world["tiles"] / "district1" / "items.json").write_text('{"type": "FeatureCollection", "features": []}',
                                                             encoding="utf-8")
    summary = run_nightly(world["tiles"], permits=world["permits"], state=tmp_path / "state", out=tmp_path / "out",
                          night="2024-05-20", workers=1, config=PipelineConfig.from_toml(world["config"]))
    assert not [w for w in summary.warnings if "catalog.json" in w or "collection.json" in w], summary.warnings
    (items,) = [w for w in summary.warnings if "items.json" in w]
    assert "an item collection; the nightly catalog reads one STAC item per file" in items
    (line,) = [w for w in summary.warnings if "district1_20251301.tif" in w]
    assert "is skipped every night: no date in its name" in line and "district1_20240131.tif" in line


def test_a_file_size_limit_inside_an_area_is_one_line_without_the_worker_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    """GDAL's write error under `ulimit -f` (which libtiff's 'File too large.' line explains): the right line
    came after Dask's 'Compute Failed' traceback, even with -q."""
    import rasterio.errors

    from changedetect import _libtiff, pipeline
    from changedetect.cli import main

    def limited(*args: object, **kwargs: object) -> None:
        raise rasterio.errors.RasterioIOError("Write failed. See previous exception for details.")

    world = make_nightly_catalog(tmp_path / "world", {"district1": 1})
    monkeypatch.setattr(pipeline, "run", limited)
    monkeypatch.setattr(_libtiff, "said", lambda text: text == "File too large")
    with pytest.raises(SystemExit) as exited:
        main(["-q", "nightly", "--catalog", str(world["tiles"]), "--permits", str(world["permits"]),
              "--state", str(tmp_path / "state"), "--out", str(tmp_path / "out"), "--night", "2024-05-20",
              "--config", str(world["config"]), "--workers", "1"])
    said = capsys.readouterr()
    assert exited.value.code == 2, said
    (line,) = said.err.strip().splitlines()
    assert line.startswith("Error: an output file "), said
    assert not [r for r in caplog.records if "Compute Failed" in r.getMessage()]  # the worker's traceback
    assert not (tmp_path / "state" / "state.json").exists()


def test_a_file_delivered_again_with_new_content_withdraws_what_it_no_longer_shows(tmp_path: Path) -> None:
    """A corrected re-delivery under the same name counts as new and its pairs run again; the violations the
    replaced file gave stayed open beside the new ones (51 artefacts of a tile 15 m off, with nothing said).
    Now what the pair, compared again, no longer finds is withdrawn, and the night says the file changed."""
    import geopandas as gpd

    world = make_nightly_catalog(tmp_path / "world", {"district1": 1})
    config = PipelineConfig.from_toml(world["config"])

    def night(day: str, config: PipelineConfig = config) -> object:
        return run_nightly(world["tiles"], permits=world["permits"], state=tmp_path / "state", out=tmp_path / "out",
                           night=day, workers=1, config=config)

    first = night("2024-05-20")
    assert not [w for w in first.warnings if "new content" in w]
    reported = set(gpd.read_file(tmp_path / "out" / "open_violations.gpkg")["violation_id"])
    assert reported  # the tiny model's noise makes footprints: something to withdraw
    earlier, later = sorted((world["tiles"] / "district1").glob("*.tif"))
    later.write_bytes(earlier.read_bytes() + b"\0")  # the same name and date, other content
    # the random tiny model sees noise in any pair: a threshold it never reaches stands for a file that shows
    # nothing there (the corrected delivery)
    from dataclasses import replace

    nothing = replace(config, vectorize=replace(config.vectorize, threshold=1.0, low_threshold=1.0))
    second = night("2024-05-21", nothing)
    (line,) = [w for w in second.warnings if "new content" in w]
    assert line.startswith(f"area district1: '{later}'") and "since night 2024-05-20" in line
    withdrawn = gpd.read_file(tmp_path / "out" / "withdrawn-2024-05-21.gpkg")
    assert set(withdrawn["violation_id"]) == reported
    assert withdrawn["withdrawn_reason"].str.startswith(
        "not in the file delivered again: the file of 2024-03-15 was delivered again with new content").all()
    assert second.withdrawn_reasons == {"not in the file delivered again": len(reported)}
    assert not set(gpd.read_file(tmp_path / "out" / "open_violations.gpkg")["violation_id"]) & reported


def test_a_first_date_delivered_again_runs_its_pair_again_and_withdraws(tmp_path: Path) -> None:
    """The first date of an area (its registration reference) delivered again: a new date runs its pair with the
    date before, and the first has none, so nothing ran and nothing was withdrawn while the night said it was."""
    from dataclasses import replace

    import geopandas as gpd

    world = make_nightly_catalog(tmp_path / "world", {"district1": 1})
    config = PipelineConfig.from_toml(world["config"])
    first = run_nightly(world["tiles"], permits=world["permits"], state=tmp_path / "state", out=tmp_path / "out",
                        night="2024-05-20", workers=1, config=config)
    reported = set(gpd.read_file(tmp_path / "out" / "open_violations.gpkg")["violation_id"])
    assert first.pairs == 1 and reported
    earlier, later = sorted((world["tiles"] / "district1").glob("*.tif"))
    earlier.write_bytes(later.read_bytes() + b"\0")  # the first date's name, other content
    nothing = replace(config, vectorize=replace(config.vectorize, threshold=1.0, low_threshold=1.0))
    second = run_nightly(world["tiles"], permits=world["permits"], state=tmp_path / "state", out=tmp_path / "out",
                         night="2024-05-21", workers=1, config=nothing)
    assert second.pairs == 1, second
    assert set(gpd.read_file(tmp_path / "out" / "withdrawn-2024-05-21.gpkg")["violation_id"]) == reported


def test_an_earlier_committed_night_with_new_work_is_refused_and_today_after_tomorrow_runs_tomorrow(
        tmp_path: Path) -> None:
    """Run again, an earlier committed night that a late delivery gives new work was committed out of order
    (a new generation under the old night); and today's run (no --night) after a run dated tomorrow, which
    is allowed, was refused with advice to leave --night out, which it had."""
    import datetime as dt
    import shutil

    world = make_nightly_catalog(tmp_path / "world", {"district1": 1})
    config = PipelineConfig.from_toml(world["config"])

    def night(day: str | None) -> object:
        return run_nightly(world["tiles"], permits=world["permits"], state=tmp_path / "state", out=tmp_path / "out",
                           night=day, workers=1, config=config)

    night("2024-01-20")
    night("2024-05-20")
    first = sorted((world["tiles"] / "district1").glob("*.tif"))[0]
    late = world["tiles"] / "district1" / "district1_20240110.tif"
    shutil.copy(first, late)
    late.write_bytes(late.read_bytes() + b"\0")  # other content, so a new acquisition
    state = (tmp_path / "state" / "state.json").read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match=r"night 2024-01-20 is before the last night committed, 2024-05-20.*"
                                          r"has new work.*run without --night"):
        night("2024-01-20")
    assert (tmp_path / "state" / "state.json").read_text(encoding="utf-8") == state
    late.unlink()
    assert night("2024-01-20").night == "2024-01-20"  # nothing new: run again, its outputs restored
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    assert night(tomorrow).night == tomorrow
    again = night(None)
    assert again.night == tomorrow  # today's, after tomorrow's: tomorrow's again, not refused, and said
    assert any(f"the last night committed, {tomorrow}, is later than today" in w for w in again.warnings)


def test_a_spill_that_fills_the_disk_stops_the_night(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """spill_stack's own full-disk error (a ChangeDetectError) failed only its area, and the night went on to
    commit the others onto the same full disk; every other full disk stops the night."""
    from changedetect import pipeline
    from changedetect.cli import main
    from changedetect.errors import DiskFullError

    said = "writing the co-registered stack's scratch files (3.0 GiB) to /x: the disk is full: free some space"

    def full(*args: object, **kwargs: object) -> None:
        raise DiskFullError(said)

    world = make_nightly_catalog(tmp_path / "world", {"district1": 1, "district3": 2})
    monkeypatch.setattr(pipeline, "run", full)
    with pytest.raises(SystemExit) as exited:
        main(["-q", "nightly", "--catalog", str(world["tiles"]), "--permits", str(world["permits"]),
              "--state", str(tmp_path / "state"), "--out", str(tmp_path / "out"), "--night", "2024-05-20",
              "--config", str(world["config"]), "--workers", "1"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.strip().splitlines() == [f"Error: {said}"], err
    assert not (tmp_path / "state" / "state.json").exists()
