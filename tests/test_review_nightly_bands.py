"""Review of the nightly job on Sentinel-2 deliveries of one file per band per date
(``T32TPP_20180211_B02.tif``, ``..._B03.tif``, ...), as ``changedetect run`` reads them: one date's
band files of an area are one acquisition, whose checksum covers all of them; a date still missing
bands that the area's other dates have waits for a later night with one warning."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from changedetect.testing import make_nightly_catalog, make_stack, write_stack

BANDS = ("B02", "B03", "B04")
NIGHTS = ("2024-03-16", "2024-05-15")  # make_stack's dates: 2024-01-15, 2024-03-15, 2024-05-14


def _split(stack, folder: Path, prefix: str) -> dict[str, list[Path]]:  # noqa: ANN001
    """One single-band uint8 GeoTIFF per band per date, ``<prefix>_YYYYMMDD_<band>.tif``, named
    by its band token only (no band description), as ESA's band files are; by date."""
    import pandas as pd
    import rasterio

    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[Path]] = {}
    for t in range(stack.sizes["time"]):
        day = pd.Timestamp(stack["time"].values[t]).strftime("%Y%m%d")
        for band in stack["band"].values:
            arr = np.nan_to_num(stack.isel(time=t).sel(band=band).values, nan=0).round().clip(0, 255).astype(np.uint8)
            path = folder / f"{prefix}_{day}_{band}.tif"
            with rasterio.open(path, "w", driver="GTiff", width=arr.shape[1], height=arr.shape[0], count=1,
                               dtype="uint8", crs=stack.rio.crs, transform=stack.rio.transform()) as dst:
                dst.write(arr, 1)
            out.setdefault(day, []).append(path)
    return out


def test_a_dates_band_files_are_one_acquisition_with_one_checksum(tmp_path: Path) -> None:
    """Before, each band file was an acquisition of its own (three per date here), and loose band files
    directly in the catalog were an area per band (``T32TPP__B02``)."""
    from changedetect._nightly_catalog import discover

    stack = make_stack(n_dates=2, size=32, seed=3, bands=BANDS)
    cat = tmp_path / "cat"
    files = _split(stack, cat / "pisa", "T32TPP")
    (cat / "pisa" / "T32TPP_20240115_SCL.tif").write_bytes((cat / "pisa" / "T32TPP_20240115_B02.tif").read_bytes())
    _split(stack, cat, "T31UDQ")  # loose in the catalog: the area is the name without date and band
    found = discover(cat)
    assert sorted(found) == ["T31UDQ", "pisa"]
    for area in found:
        acqs = found[area]
        assert [q.date for q in acqs] == ["2024-01-15", "2024-03-15"]
        assert all(q.bands == BANDS and len(q.files) == 3 and q.path == q.files[0] for q in acqs)
    pisa = found["pisa"]
    assert [Path(f).name for f in pisa[0].files] == [p.name for p in files["20240115"]]  # no SCL: a side product
    assert discover(cat)["pisa"] == pisa  # stable
    # the files of a date in another order of arrival: the same checksum
    moved = tmp_path / "again" / "pisa"
    moved.mkdir(parents=True)
    for f in reversed(sorted((cat / "pisa").iterdir())):
        shutil.copy(f, moved / f.name)
    assert [q.sha256 for q in discover(tmp_path / "again")["pisa"]] == [q.sha256 for q in pisa]


def test_a_changed_or_late_band_file_makes_its_date_new(tmp_path: Path) -> None:
    from changedetect._nightly_catalog import discover, plan_pairs

    cat = tmp_path / "cat"
    files = _split(make_stack(n_dates=2, size=32, seed=3, bands=BANDS), cat / "a", "T32TPP")
    first = discover(cat)["a"]
    processed = {q.sha256: {"date": q.date} for q in first}
    assert plan_pairs(discover(cat)["a"], processed) == ([], [])
    # a band file of the second date replaced with other content
    other = _split(make_stack(n_dates=1, size=32, seed=9, bands=BANDS), tmp_path / "other", "o")
    os.replace(other["20240115"][1], files["20240315"][1])
    again = discover(cat)["a"]
    new, pairs = plan_pairs(again, processed)
    assert [q.date for q in new] == ["2024-03-15"] and [(a.date, b.date) for a, b in pairs] == [
        ("2024-01-15", "2024-03-15")]
    # a band file that comes after its date was processed (the first night knew no other date)
    files["20240315"][2].unlink()
    partial = discover(cat)["a"][1]
    assert partial.bands == BANDS[:2]
    shutil.copy(other["20240115"][2], files["20240315"][2])
    complete = discover(cat)["a"][1]
    new, _ = plan_pairs([first[0], complete], {first[0].sha256: {}, partial.sha256: {}})
    assert new == [complete]


def test_an_incomplete_date_waits_for_a_later_night_with_one_warning(tmp_path: Path) -> None:
    """Before, the area failed (exit 2) since each band file was an acquisition; a date whose bands
    are still arriving must not fail its area or be paired with what it has so far."""
    from changedetect._nightly_catalog import discover
    from changedetect._nightly_plan import plan_night
    from changedetect._nightly_reference import NightState
    from changedetect.config import PipelineConfig
    from changedetect.nightly import NightlySummary

    cat = tmp_path / "cat"
    files = _split(make_stack(n_dates=3, size=32, seed=3, bands=BANDS), cat / "a", "T32TPP")
    late = files["20240514"][1]
    held = late.read_bytes()
    late.unlink()  # B03 of the third date has not arrived
    summary = NightlySummary("2024-12-31")
    tasks, new = plan_night(cat, NightState(), tmp_path / "state", "register.gpkg", PipelineConfig(),
                            "2024-12-31", summary, None)
    assert [q.date for q in new["a"]] == ["2024-01-15", "2024-03-15"]
    assert [(p["before"], p["after"]) for p in tasks[0]["pairs"]] == [("2024-01-15", "2024-03-15")]
    assert len(summary.warnings) == 1, summary.warnings
    (warning,) = summary.warnings
    assert "2024-05-14 is incomplete, missing B03 (" in warning and "T32TPP_20240514_B02.tif" in warning
    # the pair's inputs are all the band files of each date
    pair = tasks[0]["pairs"][0]
    assert [Path(f).name for f in pair["after_files"]] == [p.name for p in files["20240315"]]
    # the band arrives: the date is new the next night, paired with the one before
    late.write_bytes(held)
    done = {q.sha256: {"path": q.path, "date": q.date, "night": "2024-12-31"} for q in new["a"]}
    summary = NightlySummary("2025-01-01")
    tasks, new = plan_night(cat, NightState(acquisitions={"a": done}), tmp_path / "state", "register.gpkg",
                            PipelineConfig(), "2025-01-01", summary, None)
    assert summary.warnings == [] and [q.date for q in new["a"]] == ["2024-05-14"]
    assert [(p["before"], p["after"]) for p in tasks[0]["pairs"]] == [("2024-03-15", "2024-05-14")]
    assert len(discover(cat)["a"]) == 3


def _outputs(base: Path) -> dict:
    import geopandas as gpd

    out = {}
    for f in sorted((base / "out").glob("*.gpkg")):
        gdf = gpd.read_file(f, layer=f.stem)
        out[f.name] = (list(gdf.columns), gdf.drop(columns="geometry").astype(str).values.tolist(),
                       [g.wkt for g in gdf.geometry])
    return out


def test_a_band_per_file_area_runs_night_by_night_as_its_stacked_dates_do(tmp_path: Path) -> None:
    """Night 1 brings two dates, night 2 a third: the second night runs only the new pair, the
    register is the one the same dates give as one multi-band GeoTIFF each, and a rerun of a night
    changes nothing."""
    from changedetect.config import PipelineConfig
    from changedetect.nightly import run_nightly

    (tmp_path / "world").mkdir()
    world = make_nightly_catalog(tmp_path / "world", {})  # its model, register and configuration
    config = PipelineConfig.from_toml(world["config"])
    stack = make_stack(n_dates=3, size=64, seed=1, bands=BANDS)
    full = tmp_path / "full"
    stacked = write_stack(stack, full / "stacked", prefix="pisa")
    bands = _split(stack, full / "bands", "pisa")

    def night(base: Path, n: int, arrived: list[Path]) -> object:
        (base / "catalog" / "pisa").mkdir(parents=True, exist_ok=True)
        for f in arrived:
            if not (base / "catalog" / "pisa" / f.name).exists():
                shutil.copy(f, base / "catalog" / "pisa" / f.name)
        return run_nightly(base / "catalog", permits=world["permits"], state=base / "state", out=base / "out",
                           night=NIGHTS[n], workers=1, config=config)

    days = sorted(bands)
    runs = {}
    for name, by_night in (("stacked", [stacked[:2], stacked]),
                           ("bands", [bands[days[0]] + bands[days[1]], [f for d in days for f in bands[d]]])):
        base = tmp_path / name
        first = night(base, 0, by_night[0])
        second = night(base, 1, by_night[1])
        runs[name] = (first, second)
        assert not first.failed and not second.failed, (first.failed, second.failed)
    first, second = runs["bands"]
    assert (first.new_acquisitions, first.pairs) == (2, 1)
    assert (second.new_acquisitions, second.pairs) == (1, 1)  # only the new pair
    assert first.warnings == [] and second.warnings == []
    reference = _outputs(tmp_path / "stacked")
    assert _outputs(tmp_path / "bands") == reference
    assert second.open_violations == runs["stacked"][1].open_violations > 0
    state = json.loads((tmp_path / "bands" / "state" / "state.json").read_text())
    assert sorted(v["date"] for v in state["acquisitions"]["pisa"].values()) == [
        "2024-01-15", "2024-03-15", "2024-05-14"]
    # a rerun of the night changes nothing, not even the state's generation
    again = night(tmp_path / "bands", 1, [])
    assert (again.new_acquisitions, again.pairs, again.new_violations) == (0, 0, 0)
    assert json.loads((tmp_path / "bands" / "state" / "state.json").read_text())["generation"] == state["generation"]
    assert _outputs(tmp_path / "bands") == reference


def test_two_files_of_one_band_and_date_leave_the_date_out_with_one_warning(tmp_path: Path) -> None:
    """Two tiles of one date in one area folder: one clear line, not one acquisition of 2 x 3 bands."""
    from changedetect._nightly_catalog import discover

    cat = tmp_path / "cat"
    _split(make_stack(n_dates=2, size=32, seed=3, bands=BANDS), cat / "a", "T32TPP")
    _split(make_stack(n_dates=1, size=32, seed=4, bands=BANDS), cat / "a", "T32TPQ")  # another tile, 2024-01-15
    problems: list[str] = []
    found = discover(cat, problems=problems)
    assert [q.date for q in found["a"]] == ["2024-03-15"]
    (line,) = problems
    assert "2024-01-15 has 2 files for band B02" in line and "T32TPQ_20240115_B02.tif" in line
    assert "area folder of its own" in line


def test_a_pinned_band_per_file_reference_dated_after_the_night_is_kept(tmp_path: Path) -> None:
    """A night earlier than the pinned reference's date (a late rerun) finds the reference by its band
    files, not by its first file's checksum (which never equals the date's)."""
    from changedetect._nightly_catalog import discover
    from changedetect._nightly_reference import choose, record

    cat = tmp_path / "cat"
    _split(make_stack(n_dates=2, size=32, seed=3, bands=BANDS), cat / "a", "T32TPP")
    pinned = record(discover(cat)["a"][1])
    assert len(pinned["files"]) == 3
    tonight = discover(cat, night="2024-02-01")["a"]  # the pinned date is after this night
    choice = choose("a", tonight, pinned, {}, {})
    assert choice.warning is None and choice.reference is not None
    assert choice.reference.sha256 == pinned["sha256"] and list(choice.reference.files) == pinned["files"]
