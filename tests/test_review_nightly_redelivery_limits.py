"""Limits of the nightly's handling of a date delivered again that the last session documented, now judged.

- The operator runs the last committed night again after a corrected delivery (the natural thing to do): that
  night's rows counted as tonight's, so its rerun pairs withdrew none of them, and the next night, the file
  committed, had nothing to run again: the replaced file's artefacts stayed open for good.  A night done again
  now withdraws what its rerun pairs no longer find among the rows committed before it, its own included, as
  the next night would (a late SCL so taken up likewise); run once more on unchanged inputs it changes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import test_review_nightly_rerun_withdraw as rw  # a late SCL's crafted rerun folder

from changedetect.config import PipelineConfig
from changedetect.nightly import run_nightly
from changedetect.testing import make_nightly_catalog

KIND = "not in the file delivered again"


def _ids(path: Path) -> set[str]:
    return set(gpd.read_file(path)["violation_id"]) if path.is_file() else set()


def test_a_redelivery_taken_up_by_running_the_last_night_again_withdraws_and_a_third_run_changes_nothing(
        tmp_path: Path) -> None:
    world = make_nightly_catalog(tmp_path / "world", {"district1": 1})
    config = PipelineConfig.from_toml(world["config"])
    nothing = replace(config, vectorize=replace(config.vectorize, threshold=1.0, low_threshold=1.0))
    out = tmp_path / "out"

    def night(day: str, cfg: PipelineConfig) -> Any:
        return run_nightly(world["tiles"], permits=world["permits"], state=tmp_path / "state", out=out, night=day,
                           workers=1, config=cfg)

    night("2024-05-20", config)
    reported = _ids(out / "open_violations.gpkg")
    assert reported and _ids(out / "violations-2024-05-20.gpkg") == reported  # the night's own rows
    earlier, later = sorted((world["tiles"] / "district1").glob("*.tif"))
    later.write_bytes(earlier.read_bytes() + b"\0")  # corrected, showing nothing
    again = night("2024-05-20", nothing)  # the operator runs the night again
    assert [w for w in again.warnings if "new content" in w], again.warnings
    assert set(again.withdrawn) == reported and again.withdrawn_reasons == {KIND: len(reported)}, again
    withdrawn = gpd.read_file(out / "withdrawn-2024-05-20.gpkg")
    assert set(withdrawn["violation_id"]) == reported
    assert withdrawn["withdrawn_reason"].str.startswith(f"{KIND}: the file of 2024-03-15 was delivered again").all()
    assert not _ids(out / "open_violations.gpkg") & reported
    assert not _ids(out / "violations-2024-05-20.gpkg") & reported  # in the night's withdrawn list only
    state = (tmp_path / "state" / "state.json").read_text(encoding="utf-8")
    files = {p: p.read_bytes() for p in out.iterdir() if p.is_file()}
    third = night("2024-05-20", nothing)  # once more, nothing changed: nothing changes
    assert third.pairs == 0 and not third.withdrawn, third
    assert (tmp_path / "state" / "state.json").read_text(encoding="utf-8") == state
    assert {p: p.read_bytes() for p in out.iterdir() if p.is_file()} == files


def test_a_late_scl_taken_up_by_the_night_done_again_withdraws_its_own_committed_rows(tmp_path: Path) -> None:
    """The same rule for a late SCL's rerun (unit level, on a crafted rerun folder): of two rows of tonight's
    night under the mask, the one committed before it is judged; the other, found tonight, is not."""
    from changedetect._withdraw_masked import withdraw_masked

    run_dir = rw._rerun_folder(tmp_path / "rerun")
    cloud = rw._px(*rw.CLOUD)
    tonight = rw._register([("committed", cloud, *rw.DATES_ISO), ("found", cloud, *rw.DATES_ISO)]).assign(
        night=rw.NIGHTS[2])
    results = [{"area": "s2", "error": None, "runs": [{**rw.RUN, "run_dir": str(run_dir)}]}]
    assert not len(withdraw_masked(tonight, results, rw.NIGHTS[2])[1])
    kept, gone = withdraw_masked(tonight, results, rw.NIGHTS[2], {"committed"})
    assert gone["violation_id"].tolist() == ["committed"] and kept["violation_id"].tolist() == ["found"]
