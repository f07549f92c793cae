"""Review: a state written when the nightly job read a STAC item's first asset alone pinned an area's
registration reference to that one file (``references[area] = {path: <first asset>, ...}``).  After the
upgrade every pair reads the items' band assets; the pinned reference, still in the catalog with its
checksum, was kept as that one file, so a pair not containing the reference's date got one date of one
unnamed band beside dates of four (the area failed every night).  The upgrade re-pins the reference to
the item's band assets, says so once, and the next night is quiet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import test_review_nightly_late_scl as late_scl  # its _night
import test_review_nightly_stac_assets as stac
import test_review_s2_clouds as s2

from changedetect._state import sha256_file
from changedetect.testing import make_nightly_catalog

THIRD = "20201003"  # a third date: the cloudy date's files again, under another date


def _third(folder: Path) -> Path:
    """A third date's band files and SCL (another draw of the bands, no cloud)."""
    folder.mkdir()
    data = s2._bands(cloudy=False, seed=2)
    for b, name in enumerate(s2.BANDS):
        s2._write(folder / f"T32TPP_{THIRD}T101021_{name}_10m.tif", data[b:b + 1], s2.ORIGIN)
    s2._write(folder / f"T32TPP_{THIRD}T101021_SCL_20m.tif", s2._scl(False)[None], s2.ORIGIN @ s2.Affine.scale(2))
    return folder


def _old_style(state_file: Path, area: str, items: dict[str, Path], first_asset: str) -> None:
    """Rewrite ``area``'s records and reference as the previous version wrote them: each date known by
    its item's first asset (what it read), the reference pinned to the first date's."""
    state = json.loads(state_file.read_text())
    records = {}
    for day, where in items.items():
        first = (where / first_asset).resolve()
        records[sha256_file(first)] = {"path": str(first), "date": f"{day[:4]}-{day[4:6]}-{day[6:]}",
                                       "night": "2020-07-05"}
    state["acquisitions"][area] = records
    ref = (items[s2.DATES[0]] / first_asset).resolve()
    state["references"][area] = {"path": str(ref), "date": "2020-01-05", "sha256": sha256_file(ref)}
    state_file.write_text(json.dumps(state))


@pytest.mark.parametrize("first_asset", ["asset_1.tif", "aerosol.tif"])  # a band; aot (Earth Search lists it first)
def test_an_upgraded_state_re_pins_a_reference_pinned_to_an_items_first_asset(tmp_path: Path, first_asset: str) -> None:
    world = make_nightly_catalog(tmp_path, {})
    src = s2.s2_folder(tmp_path / "src")
    area = world["tiles"] / "items"
    for day in s2.DATES:
        stac._item(area, src, day)
    late_scl._night(world, "2020-01-06")
    late_scl._night(world, "2020-07-05")
    state_file = tmp_path / "state" / "state.json"
    _old_style(state_file, "items", {day: area / f"S2_{day}" for day in s2.DATES}, first_asset)
    stac._item(area, _third(tmp_path / "src3"), THIRD)

    night = late_scl._night(world, "2020-10-04")
    assert not night.failed, night.failed  # before: 1 band(s) ... 4, every night
    assert night.pairs == 2, night
    assert [r["date"] for r in night.reruns] == ["2020-01-05", "2020-07-04"], night.reruns  # read anew
    assert all(first_asset in r["reason"] for r in night.reruns), night.reruns
    ref = night.references["items"]
    assert ref["date"] == "2020-01-05" and len(ref["files"]) == 4 and ref["bands"] == ["B02", "B03", "B04", "B08"]
    (line,) = [w for w in night.warnings if "registration reference" in w]
    assert first_asset in line and "STAC item" in line and "4 band asset(s) (B02, B03, B04, B08)" in line, line
    pinned = json.loads(state_file.read_text())["references"]["items"]
    assert pinned["sha256"] == ref["sha256"] and pinned["files"] == ref["files"], pinned
    after = late_scl._night(world, "2020-10-05")
    assert (after.pairs, after.failed, after.warnings) == (0, {}, []), after
