"""Two one-file rasters of one date in one area folder (two tiles, or two deliveries of the date under two names).

The night took both as acquisitions of the date: each was paired with the date before (the same dates), and a
later date with the last of them by name alone.  When one of them was delivered again, its pair's rerun withdrew,
as no longer found, the rows of the other file's pair too (they share the pair's dates): the nightly silently lost
violations the other file still shows.  A date of band files with two files for one band was already left out
with a warning (``tests/test_review_nightly_bands.py``), as ``changedetect run`` refuses a date that appears twice;
a date of one-file rasters is now left out the same way, nothing of it compared and nothing withdrawn, until the
area's folder holds one scene per date.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import geopandas as gpd

from changedetect.config import PipelineConfig
from changedetect.nightly import run_nightly
from changedetect.testing import make_nightly_catalog, make_stack, write_stack


def _open_ids(out: Path) -> set[str]:
    path = out / "open_violations.gpkg"
    return set(gpd.read_file(path)["violation_id"]) if path.is_file() else set()


def test_a_date_of_two_files_is_left_out_and_a_redelivery_of_one_loses_no_row_of_the_other(tmp_path: Path) -> None:
    world = make_nightly_catalog(tmp_path / "world", {"district1": 1})
    config = PipelineConfig.from_toml(world["config"])
    area = world["tiles"] / "district1"
    first, second = sorted(area.glob("*.tif"))
    # another file of 2024-03-15 in the same folder: the date's other tile (here over the same ground)
    (other,) = write_stack(make_stack(n_dates=2, size=64, seed=2).isel(time=[1]), area, prefix="district1b")
    nothing = replace(config, vectorize=replace(config.vectorize, threshold=1.0, low_threshold=1.0))

    def night(day: str, cfg: PipelineConfig) -> object:
        return run_nightly(world["tiles"], permits=world["permits"], state=tmp_path / "state", out=tmp_path / "out",
                           night=day, workers=1, config=cfg)

    one = night("2024-05-20", config)
    (line,) = [w for w in one.warnings if "2024-03-15 has 2 files" in w]
    assert str(second) in line and str(other) in line and "area folder of its own" in line, line
    assert one.pairs == 0 and not one.failed, one  # nothing of the date compared: no pair mixes the two
    before = _open_ids(tmp_path / "out")
    second.write_bytes(first.read_bytes() + b"\0")  # one of the two delivered again, showing nothing
    two = night("2024-05-21", nothing)
    assert [w for w in two.warnings if "2024-03-15 has 2 files" in w], two.warnings
    assert not two.withdrawn and two.withdrawn_reasons == {}, two  # nothing lost
    assert _open_ids(tmp_path / "out") == before
    # the folder mended (the other tile in an area folder of its own): the date is taken up
    (world["tiles"] / "district1b").mkdir()
    other.rename(world["tiles"] / "district1b" / other.name)
    three = night("2024-05-22", config)
    assert not [w for w in three.warnings if "files" in w and "2024-03-15" in w], three.warnings
    assert three.pairs == 1 and not three.failed, three  # district1's pair; district1b has one date


def test_discover_leaves_a_date_of_two_one_file_rasters_out_with_one_line(tmp_path: Path) -> None:
    from changedetect._nightly_catalog import discover

    cat = tmp_path / "cat"
    write_stack(make_stack(n_dates=2, size=32, seed=3), cat / "a", prefix="left")
    write_stack(make_stack(n_dates=1, size=32, seed=4), cat / "a", prefix="right")  # 2024-01-15 again
    problems: list[str] = []
    found = discover(cat, problems=problems)
    assert [q.date for q in found["a"]] == ["2024-03-15"]
    (line,) = problems
    assert line.startswith("area a: 2024-01-15 has 2 files (") and "left_20240115.tif" in line
    assert "right_20240115.tif" in line and "area folder of its own" in line
