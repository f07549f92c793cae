"""The nightly job's last clear view reads only dates it can read.

A pair's run reads the area's ``[detect] fill_dates`` dates just before its BEFORE.  A date that failed
the readability check when it arrived is reported once, left out of that night's pairs and committed;
on a later night it is a processed date like any other, and it was read as a fill date: the pair's run
failed on it, and its area with it, every night, though the pair compares two good dates.  A fill date
now passes the same cheap check as a same-season partner; one that fails it is passed over, as the
night that found it unreadable passed over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from changedetect import _nightly_reference
from changedetect._nightly_plan import plan_night
from changedetect._nightly_reference import NightState
from changedetect._state import sha256_file
from changedetect.config import PipelineConfig
from changedetect.nightly import NightlySummary

DATES = ["20240101", "20240201", "20240301", "20240401", "20240501"]


def _plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    cat = tmp_path / "catalog" / "d1"
    cat.mkdir(parents=True)
    files = {}
    for d in DATES:  # discover() reads names and checksums only
        files[d] = cat / f"d1_{d}.tif"
        files[d].write_bytes(f"d1 {d}".encode())
    bad = str(files["20240301"])  # arrived with 04-01, unreadable: left out that night, committed
    monkeypatch.setattr(_nightly_reference, "unreadable_reason",
                        lambda path: f"'{path}' is not a raster" if str(path) == bad else None)
    state = NightState(generation=1, acquisitions={"d1": {
        sha256_file(files[d]): {"path": str(files[d]), "date": f"{d[:4]}-{d[4:6]}-{d[6:]}", "night": "2024-04-02"}
        for d in DATES[:4]}})
    tasks, _ = plan_night(tmp_path / "catalog", state, tmp_path / "state", "register.gpkg", PipelineConfig(),
                          "2024-05-02", NightlySummary("2024-05-02"))
    [task] = tasks
    return task["pairs"]


def test_an_unreadable_date_before_the_pair_is_not_read_to_fill_it(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    [pair] = _plan(tmp_path, monkeypatch)
    assert (pair["before"], pair["after"]) == ("2024-04-01", "2024-05-01")
    fill = [d["date"] for d in pair["fill"]]
    assert "2024-03-01" not in fill  # the run would fail reading it
    assert fill == ["2024-01-01", "2024-02-01"]  # the latest readable dates before BEFORE, as `usable` skips it


def test_an_unreadable_processed_date_is_not_a_new_dates_before(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """04-01 arrived unreadable (left out of its night's pairs, committed): 05-01 is compared with
    the latest date that can be read, 03-01, not with 04-01, on which its run (and its area) would
    fail every night; the night says why once."""
    cat = tmp_path / "catalog" / "d1"
    cat.mkdir(parents=True)
    files = {}
    for d in DATES:
        files[d] = cat / f"d1_{d}.tif"
        files[d].write_bytes(f"d1 {d}".encode())
    bad = str(files["20240401"])
    monkeypatch.setattr(_nightly_reference, "unreadable_reason",
                        lambda path: f"'{path}' is not a raster" if str(path) == bad else None)
    state = NightState(generation=1, acquisitions={"d1": {
        sha256_file(files[d]): {"path": str(files[d]), "date": f"{d[:4]}-{d[4:6]}-{d[6:]}", "night": "2024-04-02"}
        for d in DATES[:4]}})
    summary = NightlySummary("2024-05-02")
    tasks, _ = plan_night(tmp_path / "catalog", state, tmp_path / "state", "register.gpkg", PipelineConfig(),
                          "2024-05-02", summary)
    [task] = tasks
    [pair] = task["pairs"]
    assert (pair["before"], pair["after"]) == ("2024-03-01", "2024-05-01")
    assert "2024-04-01" not in [d["date"] for d in pair["fill"]]
    assert any("2024-04-01" in w or "20240401" in w for w in summary.warnings)
