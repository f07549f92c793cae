"""Review of the nightly job with a Sentinel-2 scene classification (SCL) that arrives after its date
was compared, or is replaced: the date's pairs run again with its cloud mask, once, the night's
summary says which date and why, and the register gets no second row for a building already open.
A state written before the SCL had a checksum in it is upgraded by the SCL's modification time."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import test_review_s2_clouds as s2  # its L2A-like folder and clouds
from test_review_nightly_run_warnings import not_about_the_result

from changedetect.testing import make_nightly_catalog

LATE = s2.DATES[1]  # 20200704, the cloudy date


def _others(warnings: list[str]) -> list[str]:
    """The night's warnings but the co-registration ones: this file's cloudy synthetic dates cannot be
    co-registered, which the night says (tests/test_unregistered_date.py), nor those of what the pairs'
    runs warned of about their result (a tiny model on 10 m tiles, a register far from the footprints:
    tests/test_review_nightly_run_warnings.py)."""
    return [w for w in not_about_the_result(warnings) if "could not be co-registered" not in w]


def _world(root: Path) -> tuple[dict, Path]:
    """Area ``bands``: B02..B08 and an SCL per date; the cloudy date's SCL held back in ``root/held``."""
    world = make_nightly_catalog(root, {})
    area = world["tiles"] / "bands"
    shutil.copytree(s2.s2_folder(root / "src"), area)
    (root / "held").mkdir()
    scl = next(area.glob(f"*{LATE}*SCL*"))
    return world, Path(shutil.move(scl, root / "held" / scl.name))


def _night(world: dict, night: str):  # noqa: ANN202
    from changedetect.config import PipelineConfig
    from changedetect.nightly import run_nightly

    root = world["root"]
    return run_nightly(world["tiles"], permits=world["permits"], state=root / "state", out=root / "out",
                       night=night, workers=1, config=PipelineConfig.from_toml(world["config"]))


def _no_building_twice(out: Path) -> None:
    import geopandas as gpd

    reg = gpd.read_file(out / "open_violations.gpkg", layer="open_violations")
    geoms = list(reg.geometry)
    for i, a in enumerate(geoms):
        for b in geoms[i + 1:]:
            assert a.intersection(b).area / a.union(b).area < 0.5, "one building twice in the register"


def _cover(summary) -> float:  # noqa: ANN001
    (pair,) = summary.coverage["bands"]
    return float(pair["coverage_both_dates"])


@pytest.fixture(scope="module")
def late(tmp_path_factory: pytest.TempPathFactory) -> dict:
    world, held = _world(tmp_path_factory.mktemp("late_scl"))
    first, second = _night(world, "2020-01-06"), _night(world, "2020-07-05")
    shutil.copy(held, world["tiles"] / "bands" / held.name)  # the SCL lands a night late
    third, fourth = _night(world, "2020-07-06"), _night(world, "2020-07-07")
    return {"world": world, "nights": [first, second, third, fourth]}


def test_a_late_scl_compares_its_date_again_with_its_clouds(late: dict) -> None:
    """Before, the SCL was not in the date's checksum: night 3 ran no pair and the cloud stayed."""
    first, second, third, _ = late["nights"]
    assert (second.pairs, _cover(second)) == (1, pytest.approx(1.0))  # no SCL yet: nothing masked
    assert third.pairs == 1 and third.new_acquisitions == 0, third
    assert _cover(third) == pytest.approx(1 - s2._masked_10m(True).mean(), abs=0.01)
    (rerun,) = third.reruns
    assert (rerun["area"], rerun["date"]) == ("bands", "2020-07-04"), rerun
    assert "scene classification (SCL)" in rerun["reason"] and "arrived after" in rerun["reason"], rerun
    assert "SCL_20m.tif" in rerun["reason"]
    assert not third.failed and _others(third.warnings) == [], third.warnings  # the fixture's cloudy synthetic dates cannot be co-registered, which the night says (not checked here)
    _no_building_twice(late["world"]["root"] / "out")


def test_a_night_after_the_rerun_does_nothing(late: dict) -> None:
    fourth = late["nights"][3]
    assert (fourth.pairs, fourth.new_acquisitions, fourth.reruns, fourth.new_violations) == (0, 0, [], 0), fourth
    state = json.loads((late["world"]["root"] / "state" / "state.json").read_text())
    scls = {r["date"]: r["scl"] for r in state["acquisitions"]["bands"].values()}
    assert all(len(v) == 64 for v in scls.values()), scls  # each date's SCL checksum is recorded


def test_a_replaced_scl_compares_its_date_again(late: dict) -> None:
    world = late["world"]
    scl = next((world["tiles"] / "bands").glob(f"*{LATE}*SCL*"))
    s2._write(scl, np.full((1, s2.SIZE // 2, s2.SIZE // 2), 4, dtype=np.uint8), s2.ORIGIN @ s2.Affine.scale(2))
    fifth = _night(world, "2020-07-08")
    assert fifth.pairs == 1 and [r["date"] for r in fifth.reruns] == ["2020-07-04"], fifth
    assert "changed" in fifth.reruns[0]["reason"]
    assert _cover(fifth) == pytest.approx(1.0)  # the new SCL is clear
    _no_building_twice(world["root"] / "out")
    assert _night(world, "2020-07-09").pairs == 0


def test_a_state_without_scl_checksums_is_upgraded_by_the_scl_files_times(tmp_path: Path) -> None:
    """A state written before the SCL's checksum was kept: an SCL written after the state's last commit
    while its date's bands were not arrived late (the date is compared again); an older one is taken
    as there when its date was compared (no rerun), and the night says so, naming the date."""
    world, held = _world(tmp_path)
    _night(world, "2020-01-06")
    _night(world, "2020-07-05")
    state_file = tmp_path / "state" / "state.json"
    state = json.loads(state_file.read_text())
    for record in state["acquisitions"]["bands"].values():
        record.pop("scl", None)  # as the previous version wrote it
    state_file.write_text(json.dumps(state))
    committed = state_file.stat().st_mtime
    early = next((world["tiles"] / "bands").glob(f"*{s2.DATES[0]}*SCL*"))
    os.utime(early, (committed - 3600, committed - 3600))
    late_scl = Path(shutil.copy(held, world["tiles"] / "bands" / held.name))
    os.utime(late_scl, (committed + 60, committed + 60))
    third = _night(world, "2020-07-06")
    assert third.pairs == 1 and [(r["date"], "arrived after" in r["reason"]) for r in third.reruns] == [
        ("2020-07-04", True)], third.reruns
    (line,) = [w for w in third.warnings if "SCL" in w]
    assert "2020-01-05" in line and "2020-07-04" not in line and "not compared again" in line, line
    fourth = _night(world, "2020-07-07")
    assert (fourth.pairs, fourth.reruns, _others(fourth.warnings)) == (0, [], []), fourth


def test_a_catalog_copied_anew_is_not_compared_again(tmp_path: Path) -> None:
    """Bands and SCL all written after the last commit (a catalog moved to another disk): no late SCL."""
    world, held = _world(tmp_path)
    shutil.copy(held, world["tiles"] / "bands" / held.name)
    _night(world, "2020-01-06")
    _night(world, "2020-07-05")
    state_file = tmp_path / "state" / "state.json"
    state = json.loads(state_file.read_text())
    for record in state["acquisitions"]["bands"].values():
        record.pop("scl", None)
    state_file.write_text(json.dumps(state))
    later = state_file.stat().st_mtime + 60
    for f in (world["tiles"] / "bands").iterdir():
        os.utime(f, (later, later))
    third = _night(world, "2020-07-06")
    assert (third.pairs, third.reruns) == (0, []), third
    assert [w for w in third.warnings if "SCL" in w], third.warnings
