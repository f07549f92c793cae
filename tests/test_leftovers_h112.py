"""H112's leftovers: the merge's dtypes on a night without new rows, the whole-scene series' two COGs
staged together, and GDAL's own text on a full disk kept off the CLI's stderr."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest


# ------------------------------------------------------------------------------ 1. merge_night's dtypes
def _committed(state_dir: Path) -> Any:
    """A committed register of two rows (generation 1) with numbers of three types and text."""
    import geopandas as gpd
    from shapely.geometry import box

    from changedetect._state import State

    state = State(generation=1)
    register = gpd.GeoDataFrame(
        {"violation_id": ["d1-20240316-001", "d1-20240316-002"], "area": ["d1", "d1"],
         "night": ["2024-03-16"] * 2, "before": ["2024-01-15"] * 2, "after": ["2024-03-15"] * 2,
         "run_violation_id": ["V-1", "V-2"], "footprint_id": ["F-aaaaaaaaaa", "F-bbbbbbbbbb"],
         "status": ["unlicensed", "exceeds_permit"], "reason": ["no permit", "exceeds"],
         "permit_ids": ["", "P-1"], "overlap_ratio": [0.0, 0.4], "excess_area_m2": [400.0, 540.0],
         "area_m2": [400.0, 900.0], "first_seen": ["2024-03-15"] * 2, "change_type": ["new"] * 2,
         "confidence": np.array([0.9103, 0.75], dtype=np.float32),
         "n_dates": np.array([3, 4], dtype=np.int64), "same_sun": ["not needed", "pending"]},
        geometry=[box(0, 0, 20, 20), box(100, 0, 130, 30)], crs="EPSG:32648")
    register.to_parquet(state.violations_path(state_dir))
    return state


def _night(tmp_path: Path, rows: Any) -> list[dict[str, Any]]:
    """The night's results: area d1's one pair, whose run wrote ``rows`` (None: no run at all)."""
    if rows is None:
        return [{"area": "d1", "error": None, "runs": []}]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    rows.to_file(run_dir / "violations.gpkg", layer="violations")
    pair = {"before": "2024-03-15", "after": "2024-05-14", "run_dir": str(run_dir), "carried": []}
    return [{"area": "d1", "error": None, "runs": [pair]}]


@pytest.mark.parametrize("tonight", ["no_candidate", "all_matched"])
def test_a_night_without_new_rows_keeps_the_registers_dtypes(tmp_path: Path, tonight: str) -> None:
    """Nothing new tonight (no candidate at all, or one that is an open violation again, read back from its
    run's GeoPackage as float64): ``merge_night``'s frame has the committed register's dtypes and rows, as
    committed (before: every column ``object``, or ``confidence`` float64)."""
    import geopandas as gpd
    from shapely.geometry import box

    from changedetect import _merge

    state_dir = tmp_path / "state"
    state_dir.mkdir()
    state = _committed(state_dir)
    was = gpd.read_parquet(state.violations_path(state_dir))
    rows = None if tonight == "no_candidate" else gpd.GeoDataFrame(
        {"violation_id": ["V-9"], "footprint_id": ["F-cccccccccc"], "status": ["unlicensed"],
         "area_m2": [401.0], "confidence": [0.8]}, geometry=[box(0, 0, 20, 21)], crs="EPSG:32648")
    merged = _merge.merge_night(state, state_dir, _night(tmp_path, rows), "2024-05-15",
                                permits=str(tmp_path / "none.gpkg"))
    assert merged.dtypes.to_dict() == was.dtypes.to_dict()
    assert list(merged.columns) == list(was.columns)
    assert merged.drop(columns="geometry").equals(was.drop(columns="geometry"))

