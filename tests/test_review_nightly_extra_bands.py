"""A band-per-file date waits for the bands the run reads, not for every band some other date has:
an archive delivered with more bands than the nightly feed (all 13 Sentinel-2 bands, or L1C's B10
that L2A lacks) must not hold every later night back for ever."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from changedetect.testing import make_stack


def _split(stack, folder: Path, prefix: str, bands: tuple[str, ...]) -> None:  # noqa: ANN001
    """``bands`` of each date of ``stack`` as single-band files ``<prefix>_YYYYMMDD_<band>.tif``
    (a band the stack lacks is a copy of its first band)."""
    import pandas as pd
    import rasterio

    folder.mkdir(parents=True, exist_ok=True)
    for t in range(stack.sizes["time"]):
        day = pd.Timestamp(stack["time"].values[t]).strftime("%Y%m%d")
        for band in bands:
            one = stack.isel(time=t).sel(band=band) if band in stack["band"].values else stack.isel(time=t, band=0)
            arr = np.nan_to_num(one.values, nan=0).round().clip(0, 255).astype(np.uint8)
            with rasterio.open(folder / f"{prefix}_{day}_{band}.tif", "w", driver="GTiff", width=arr.shape[1],
                               height=arr.shape[0], count=1, dtype="uint8", crs=stack.rio.crs,
                               transform=stack.rio.transform()) as dst:
                dst.write(arr, 1)


def _plan(cat: Path, tmp_path: Path) -> tuple[list, dict, list[str]]:
    from changedetect._nightly_plan import plan_night
    from changedetect._nightly_reference import NightState
    from changedetect.config import PipelineConfig
    from changedetect.nightly import NightlySummary

    summary = NightlySummary("2024-12-31")
    tasks, new = plan_night(cat, NightState(), tmp_path / "state", "register.gpkg", PipelineConfig(),
                            "2024-12-31", summary, None)
    return tasks, new, summary.warnings


def test_a_date_without_a_band_nobody_reads_is_not_incomplete(tmp_path: Path) -> None:
    stack = make_stack(n_dates=3, size=32, seed=3, bands=("B02", "B03", "B04"))
    cat = tmp_path / "cat"
    _split(stack.isel(time=[0]), cat / "a", "T32TPP", ("B02", "B03", "B04", "B10", "B11"))  # the archive
    _split(stack.isel(time=[1, 2]), cat / "a", "T32TPP", ("B02", "B03", "B04"))  # the feed: what the run reads
    tasks, new, warnings = _plan(cat, tmp_path)
    assert warnings == []
    assert [q.date for q in new["a"]] == ["2024-01-15", "2024-03-15", "2024-05-14"]
    assert [(p["before"], p["after"]) for p in tasks[0]["pairs"]] == [("2024-01-15", "2024-03-15"),
                                                                      ("2024-03-15", "2024-05-14")]


def test_a_date_still_missing_a_band_the_model_reads_waits(tmp_path: Path) -> None:
    stack = make_stack(n_dates=3, size=32, seed=3, bands=("B02", "B03", "B04"))
    cat = tmp_path / "cat"
    _split(stack.isel(time=[0, 1]), cat / "a", "T32TPP", ("B02", "B03", "B04", "B11"))
    _split(stack.isel(time=[2]), cat / "a", "T32TPP", ("B02", "B04", "B11"))  # its B03 (green) still arriving
    tasks, new, warnings = _plan(cat, tmp_path)
    assert [q.date for q in new["a"]] == ["2024-01-15", "2024-03-15"]
    assert len(warnings) == 1 and "2024-05-14 is incomplete, missing B03 (" in warnings[0], warnings


def test_an_area_whose_archive_has_more_bands_than_its_feed_runs(tmp_path: Path) -> None:
    """The pairs compare the bands every date of the pair has: before, the archive date's pair failed
    ('2024-03-15 (...) has 3 band(s) but 2024-01-15 (...) has 4') and so did the area, every night."""
    from changedetect.config import PipelineConfig
    from changedetect.nightly import run_nightly
    from changedetect.testing import make_nightly_catalog

    (tmp_path / "world").mkdir()
    world = make_nightly_catalog(tmp_path / "world", {})  # its model, register and configuration
    stack = make_stack(n_dates=3, size=64, seed=1, bands=("B02", "B03", "B04"))
    cat = tmp_path / "catalog"
    _split(stack.isel(time=[0]), cat / "pisa", "T32TPP", ("B02", "B03", "B04", "B11"))
    _split(stack.isel(time=[1, 2]), cat / "pisa", "T32TPP", ("B02", "B03", "B04"))
    summary = run_nightly(cat, permits=world["permits"], state=tmp_path / "state", out=tmp_path / "out",
                          night="2024-05-15", workers=1, config=PipelineConfig.from_toml(world["config"]))
    assert not summary.failed, summary.failed
    assert (summary.new_acquisitions, summary.pairs) == (3, 2) and summary.warnings == []
