"""The nightly job's withdrawals of earlier violations at their edges (review of 7d37503..)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401
import xarray as xr
from affine import Affine
from shapely.geometry import box

from changedetect import _merge, _nightly_outputs
from changedetect.io import write_cog
from changedetect.pipeline import OUTPUTS

X0, Y0, RES = 686_000.0, 1_192_000.0, 0.5
SHADOW, HOUSE = (slice(5, 15), slice(5, 15)), (slice(25, 35), slice(25, 35))
SPAN = "2024-01-15/2025-01-20"
NIGHT = "2025-01-21"


def _px_box(rows: slice, cols: slice) -> box:
    return box(X0 + cols.start * RES, Y0 - rows.stop * RES, X0 + cols.stop * RES, Y0 - rows.start * RES)


def _decisions(run_dir: Path, values: np.ndarray, span: str = SPAN) -> None:
    """A pair's same_season_change.tif as pipeline.run writes it: uint8, 1 = change, 255 = no data."""
    h, w = values.shape
    da = xr.DataArray(np.where(np.isfinite(values), values, 255).astype(np.uint8), dims=("y", "x"),
                      coords={"y": Y0 - RES * (np.arange(h) + 0.5), "x": X0 + RES * (np.arange(w) + 0.5)})
    da = da.rio.write_crs("EPSG:32648").rio.write_transform(Affine(RES, 0, X0, 0, -RES, Y0))
    run_dir.mkdir(parents=True, exist_ok=True)
    write_cog(da, run_dir / OUTPUTS["same_season"], dtype="uint8", nodata=255, overwrite=True, tags={"PAIR": span})


def _register(same_sun: str = "pending") -> gpd.GeoDataFrame:
    """Night 2 (January -> July) reported a moved shadow, in the register's CRS (not the raster's)."""
    return gpd.GeoDataFrame({"violation_id": ["d1-20240713-001"], "area": ["d1"], "night": ["2024-07-13"],
                             "before": ["2024-01-15"], "after": ["2024-07-12"], "status": ["unlicensed"],
                             "same_sun": [same_sun]},
                            geometry=[_px_box(*SHADOW)], crs="EPSG:32648").to_crs(9210)


def _run(run_dir: Path) -> dict:
    return {"run_dir": str(run_dir), "before": "2024-07-12", "after": "2025-01-20",
            "partner": {"date": "2024-01-15"}}


def test_a_violation_where_the_partner_pair_has_no_data_stays_pending_not_confirmed(tmp_path: Path) -> None:
    """No data over it: nothing was judged, so it still awaits a same-season check."""
    blind = np.zeros((40, 40), np.float32)
    blind[SHADOW] = np.nan
    _decisions(tmp_path / "run", blind)
    results = [{"area": "d1", "error": None, "runs": [_run(tmp_path / "run")]}]
    kept, gone = _merge.withdraw_unconfirmed(_register(), results, NIGHT, share=0.05, season_days=45)
    assert len(gone) == 0 and kept["same_sun"].tolist() == ["pending"]
    # off the raster altogether: the same
    off = _register().to_crs(32648)
    off.geometry = [box(X0 + 100, Y0 - 10, X0 + 105, Y0 - 5)]
    kept, gone = _merge.withdraw_unconfirmed(off, results, NIGHT, share=0.05, season_days=45)
    assert len(gone) == 0 and kept["same_sun"].tolist() == ["pending"]


def test_a_pair_without_data_there_does_not_outvote_one_that_decides_no_change(tmp_path: Path) -> None:
    """Two pairs of the night judge the row: one is blind there, the other sees no change: withdrawn."""
    blind = np.zeros((40, 40), np.float32)
    blind[SHADOW] = np.nan
    _decisions(tmp_path / "blind", blind)
    _decisions(tmp_path / "clear", np.zeros((40, 40), np.float32))
    results = [{"area": "d1", "error": None, "runs": [_run(tmp_path / "blind"), _run(tmp_path / "clear")]}]
    kept, gone = _merge.withdraw_unconfirmed(_register(), results, NIGHT, share=0.05, season_days=45)
    assert gone["violation_id"].tolist() == ["d1-20240713-001"] and len(kept) == 0


def test_a_straddling_violation_is_judged_on_the_part_the_raster_covers(tmp_path: Path) -> None:
    """Half of it off the raster's west edge; the half on it decides no change: withdrawn.  Judged
    in the raster's CRS though the register is in another one."""
    _decisions(tmp_path / "run", np.zeros((40, 40), np.float32))
    straddling = _register().to_crs(32648)
    straddling.geometry = [box(X0 - 2.5, Y0 - 7.5, X0 + 2.5, Y0 - 2.5)]
    results = [{"area": "d1", "error": None, "runs": [_run(tmp_path / "run")]}]
    kept, gone = _merge.withdraw_unconfirmed(straddling.to_crs(9210), results, NIGHT, share=0.05, season_days=45)
    assert gone["violation_id"].tolist() == ["d1-20240713-001"]
    seen = np.zeros((40, 40), np.float32)
    seen[5:15, 0:5] = 1
    _decisions(tmp_path / "run", seen)
    kept, gone = _merge.withdraw_unconfirmed(straddling.to_crs(9210), results, NIGHT, share=0.05, season_days=45)
    assert len(gone) == 0 and kept["same_sun"].tolist() == ["confirmed"]


def test_a_second_run_of_the_night_keeps_the_same_sun_of_the_nights_earlier_rows(tmp_path: Path) -> None:
    """A late acquisition re-opens a committed night: the rows that night's first run added (from
    a pair not in this run's results) keep their ``same_sun``, not 'pending'."""
    _decisions(tmp_path / "run", np.zeros((40, 40), np.float32))
    earlier = _register().assign(violation_id="d1-20250121-001", night=NIGHT, before="2024-07-12",
                                 after="2025-01-20", same_sun="confirmed")
    late = {"run_dir": str(tmp_path / "run"), "before": "2025-01-20", "after": "2025-03-10"}
    results = [{"area": "d1", "error": None, "runs": [late]}]
    kept, _ = _merge.withdraw_unconfirmed(earlier, results, NIGHT, share=0.05, season_days=45)
    assert kept["same_sun"].tolist() == ["confirmed"]


def test_rerunning_a_night_withdraws_the_same_rows_once(tmp_path: Path) -> None:
    """Idempotent: the same register and runs give the same withdrawals, one row each in the file."""
    _decisions(tmp_path / "run", np.zeros((40, 40), np.float32))
    results = [{"area": "d1", "error": None, "runs": [_run(tmp_path / "run")]}]
    first = _merge.withdraw_unconfirmed(_register(), results, NIGHT, share=0.05, season_days=45)
    again = _merge.withdraw_unconfirmed(_register(), results, NIGHT, share=0.05, season_days=45)
    for a, b in zip(first, again, strict=True):
        assert a.equals(b)
    for _ in range(2):
        paths = _nightly_outputs.write_outputs(first[0], tmp_path / "out", NIGHT, first[1])
    assert gpd.read_file(paths["withdrawn_gpkg"])["violation_id"].tolist() == ["d1-20240713-001"]
    # a night with no results at all withdraws nothing and still says where each row stands
    kept, gone = _merge.withdraw_unconfirmed(_register(), [], NIGHT, share=0.05, season_days=45)
    assert len(gone) == 0 and kept["same_sun"].tolist() == ["pending"]
    # an empty register
    kept, gone = _merge.withdraw_unconfirmed(_register().iloc[:0], results, NIGHT, share=0.05, season_days=45)
    assert len(kept) == len(gone) == 0


def test_tonights_confirmed_violation_survives_the_withdrawal_of_the_open_one_it_matched(tmp_path: Path) -> None:
    """Night 2 reported a 5 x 5 m blob; tonight the same footprint (carried id) grew to 5 x 10 m and the
    partner pair sees change on the new half only: the blob is withdrawn, tonight's structure,
    which the partner pair confirms, must stay in the register."""
    from changedetect._state import State

    state_dir = tmp_path / "state"
    state_dir.mkdir()
    state = State(generation=1)
    _register().assign(run_violation_id="V-1", footprint_id="F-a").to_parquet(state.violations_path(state_dir))
    run_dir = tmp_path / "run"
    seen = np.zeros((40, 40), np.float32)
    seen[15:25, 5:15] = 1  # the grown half only
    _decisions(run_dir, seen)
    grown = box(X0 + 2.5, Y0 - 12.5, X0 + 7.5, Y0 - 2.5)
    gpd.GeoDataFrame({"violation_id": ["V-2"], "footprint_id": ["F-a"], "status": ["unlicensed"]},
                     geometry=[grown], crs="EPSG:32648").to_file(run_dir / "violations.gpkg")
    results = [{"area": "d1", "error": None, "runs": [{**_run(run_dir), "carried": ["F-a"]}]}]
    # merged first, tonight's outline is taken for the blob and only the blob is judged ...
    merged = _merge.merge_night(state, state_dir, results, NIGHT, permits=str(tmp_path / "none.gpkg"))
    kept, gone = _merge.withdraw_unconfirmed(merged, results, NIGHT, share=0.05, season_days=45)
    assert gone["violation_id"].tolist() == ["d1-20240713-001"] and len(kept) == 0
    # ... so the night is merged again without the withdrawn blob (what run_nightly does)
    kept, gone = _merge.merge_and_withdraw(state, state_dir, results, NIGHT, permits=str(tmp_path / "none.gpkg"),
                                           share=0.05, season_days=45)
    assert gone["violation_id"].tolist() == ["d1-20240713-001"]
    assert len(kept) == 1 and kept.to_crs(32648).geometry.iloc[0].symmetric_difference(grown).area < 0.01  # m²: the round trip through EPSG:9210
    assert kept["night"].tolist() == [NIGHT] and kept["violation_id"].tolist() == ["d1-20250121-001"]


def test_a_second_run_of_the_night_adds_to_its_withdrawn_file(tmp_path: Path) -> None:
    """A late acquisition re-opens a committed night and withdraws another violation: the night's
    withdrawn file lists both (the first run's rows are no longer in the register: the state keeps
    every withdrawn row, ``State.withdrawn_path``)."""
    from changedetect._state import State

    reg = _register()
    first = reg.assign(withdrawn=NIGHT, withdrawn_reason="not seen under the same sun")
    second = first.assign(violation_id="d2-20240713-001", area="d2")
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    everything = _merge.withdrawn_table(State(generation=1), state_dir, first)
    _merge.write_generation(everything, State(generation=1).withdrawn_path(state_dir))
    _nightly_outputs.write_outputs(reg.iloc[:0], tmp_path, NIGHT, everything)
    # the second run: the first one's rows come from the state, once each (first is withdrawn again too)
    everything = _merge.withdrawn_table(State(generation=1), state_dir, pd.concat([second, first]))
    assert sorted(everything["violation_id"]) == ["d1-20240713-001", "d2-20240713-001"]
    everything = _merge.withdrawn_table(State(generation=1), state_dir, second)
    paths = _nightly_outputs.write_outputs(reg.iloc[:0], tmp_path, NIGHT, everything[everything["withdrawn"] == NIGHT])
    assert sorted(gpd.read_file(paths["withdrawn_gpkg"], layer=f"withdrawn-{NIGHT}")["violation_id"]) == [
        "d1-20240713-001", "d2-20240713-001"]
    assert len(pd.read_csv(paths["withdrawn_csv"])) == 2
    # nothing withdrawn tonight: the committed table as it is
    assert len(_merge.withdrawn_table(State(generation=1), state_dir, reg.iloc[:0])) == 1


def test_a_violation_confirmed_under_the_same_sun_is_not_judged_again(tmp_path: Path) -> None:
    """Confirmed by one same-season pair, a violation is not withdrawn by a later one that also spans
    its pair (a monthly series has many): it was shown not to be a moved shadow."""
    confirmed = _register("confirmed").assign(before="2024-07-12", after="2024-10-10")
    # a later same-season pair decides no change there
    _decisions(tmp_path / "run", np.zeros((40, 40), np.float32), span="2024-06-12/2025-06-10")
    run = {"run_dir": str(tmp_path / "run"), "before": "2025-05-10", "after": "2025-06-10",
           "partner": {"date": "2024-06-12"}}
    results = [{"area": "d1", "error": None, "runs": [run]}]
    from changedetect._same_sun import judged

    # the later span does contain the row's pair
    assert judged(confirmed["before"].to_numpy(dtype="datetime64[D]"), confirmed["after"].to_numpy(
        dtype="datetime64[D]"), (np.datetime64("2024-06-12"), np.datetime64("2025-06-10")), 45).tolist() == [True]
    kept, gone = _merge.withdraw_unconfirmed(confirmed, results, "2025-06-11", share=0.05, season_days=45)
    assert len(gone) == 0 and kept["same_sun"].tolist() == ["confirmed"]
    # ... while a pending one is withdrawn
    kept, gone = _merge.withdraw_unconfirmed(confirmed.assign(same_sun="pending"), results, "2025-06-11",
                                             share=0.05, season_days=45)
    assert gone["violation_id"].tolist() == ["d1-20240713-001"]


def test_tonights_violation_where_the_partner_pair_has_no_data_is_not_confirmed(tmp_path: Path) -> None:
    """The run keeps, unjudged, a footprint its partner pair has no data over: still pending (and
    one the pair has data over and that the run kept is confirmed)."""
    blind = np.zeros((40, 40), np.float32)
    blind[SHADOW] = np.nan
    _decisions(tmp_path / "run", blind)
    tonight = _register("").assign(violation_id="d1-20250121-001", night=NIGHT, before="2024-07-12",
                                   after="2025-01-20")
    results = [{"area": "d1", "error": None, "runs": [_run(tmp_path / "run")]}]
    kept, _ = _merge.withdraw_unconfirmed(tonight, results, NIGHT, share=0.05, season_days=45)
    assert kept["same_sun"].tolist() == ["pending"]
    _decisions(tmp_path / "run", np.where(np.isnan(blind), 1, blind))  # data there, change decided
    kept, gone = _merge.withdraw_unconfirmed(tonight, results, NIGHT, share=0.05, season_days=45)
    assert kept["same_sun"].tolist() == ["confirmed"] and len(gone) == 0


def test_a_done_night_restores_its_withdrawn_files_from_the_state(tmp_path: Path) -> None:
    """Running a committed night again restores missing outputs, the withdrawn ones too."""
    from changedetect._state import State
    from changedetect.nightly import NightlySummary, _already_done

    state_dir, out = tmp_path / "state", tmp_path / "out"
    state_dir.mkdir()
    state = State(generation=3)
    _merge.write_generation(_register("confirmed").assign(violation_id="d1-20250121-001", night=NIGHT),
                            state.violations_path(state_dir))
    gone = _register().assign(withdrawn=NIGHT, withdrawn_reason="not seen under the same sun")
    older = gone.assign(violation_id="d1-20240101-001", withdrawn="2024-01-02")  # another night's
    _merge.write_generation(pd.concat([older, gone], ignore_index=True), state.withdrawn_path(state_dir))
    summary = _already_done(state, state_dir, out, NightlySummary(night=NIGHT))
    assert set(summary.outputs) == {"night_gpkg", "night_csv", "open_gpkg", "withdrawn_gpkg", "withdrawn_csv"}
    back = gpd.read_file(out / f"withdrawn-{NIGHT}.gpkg", layer=f"withdrawn-{NIGHT}")
    assert back["violation_id"].tolist() == ["d1-20240713-001"]  # tonight's only
    # all there: nothing rewritten, the same keys
    stamp = (out / f"withdrawn-{NIGHT}.csv").stat().st_mtime_ns
    again = _already_done(state, state_dir, out, NightlySummary(night=NIGHT))
    assert again.outputs == summary.outputs and (out / f"withdrawn-{NIGHT}.csv").stat().st_mtime_ns == stamp


def test_a_new_id_never_repeats_one_given_before_even_withdrawn(tmp_path: Path) -> None:
    """The night's counter counted the open ids of its prefix: with -001 withdrawn and -002 open, a
    second run of that night (a late acquisition) numbered its new violation -002 again."""
    from changedetect._state import State

    state_dir = tmp_path / "state"
    state_dir.mkdir()
    state = State(generation=1)
    stamp = NIGHT.replace("-", "")
    open_one = _register("confirmed").assign(violation_id=f"d1-{stamp}-002", night=NIGHT, run_violation_id="V-9",
                                            footprint_id="F-z")
    open_one.to_parquet(state.violations_path(state_dir))
    gone = _register().assign(violation_id=f"d1-{stamp}-001", night=NIGHT, withdrawn=NIGHT,
                              withdrawn_reason="not seen under the same sun")
    _merge.write_generation(gone, state.withdrawn_path(state_dir))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    far = box(X0 + 15, Y0 - 15, X0 + 19, Y0 - 11)  # a new structure, away from the open one
    gpd.GeoDataFrame({"violation_id": ["V-1"], "footprint_id": ["F-new"], "status": ["unlicensed"]},
                     geometry=[far], crs="EPSG:32648").to_file(run_dir / "violations.gpkg")
    results = [{"area": "d1", "error": None, "runs": [{**_run(run_dir), "carried": []}]}]
    merged = _merge.merge_night(state, state_dir, results, NIGHT, permits=str(tmp_path / "none.gpkg"))
    assert sorted(merged["violation_id"]) == [f"d1-{stamp}-002", f"d1-{stamp}-003"]


def test_a_violation_an_inspector_confirmed_is_not_judged_again(tmp_path: Path) -> None:
    """'confirmed by an inspector' (a pending row an inspector confirmed on site) awaits no image check:
    a same-season pair that decides no change over it neither withdraws it nor overwrites the value (it
    was judged, then withdrawn as a moved shadow when no decision kept it out)."""
    _decisions(tmp_path / "run", np.zeros((40, 40), np.float32))
    results = [{"area": "d1", "error": None, "runs": [_run(tmp_path / "run")]}]
    kept, gone = _merge.withdraw_unconfirmed(_register("confirmed by an inspector"), results, NIGHT, share=0.05,
                                             season_days=45)
    assert len(gone) == 0 and kept["same_sun"].tolist() == ["confirmed by an inspector"]
    seen = np.zeros((40, 40), np.float32)
    seen[SHADOW] = 1
    _decisions(tmp_path / "seen", seen)
    results = [{"area": "d1", "error": None, "runs": [_run(tmp_path / "seen")]}]
    kept, _ = _merge.withdraw_unconfirmed(_register("confirmed by an inspector"), results, NIGHT, share=0.05,
                                          season_days=45)
    assert kept["same_sun"].tolist() == ["confirmed by an inspector"]
