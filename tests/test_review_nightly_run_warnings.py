"""Review: the nightly job's warnings carry what its pairs' runs warned of about their result.

``changedetect run`` says, in its summary's ``Warning:`` lines, ``run.json`` and the report, when its
violations cannot be trusted although it exits 0: a permit register with no permit within 1 km of the
footprints (another district's register, a wrongly declared CRS: every building ``unlicensed``), an empty
one, a model made for other pixels.  Until 2026-12-03 the nightly job, which runs each pair through the
pipeline, left that in each pair's ``run.json``: a night over a district whose register had been swapped for
another's opened every building as ``unlicensed`` and its summary said nothing.  Now each such warning is a
line of the night's ``warnings`` (printed, and in ``--json``), once per area and kind, naming how many of
the area's pairs tonight it concerns (:func:`changedetect._nightly_coverage.run_warnings`).

The world is :mod:`test_review_nightly_rerun_withdraw`'s deterministic detector (change where the after
date is brighter) over three dates: a house on the July date, a block on the September date, so that each
of the night's two pairs finds a building; the register is :mod:`test_review_nightly_rematch`'s (one permit
600 m from both buildings), as it is or moved 5 km."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
from test_review_nightly_rematch import BLOCK, DATES, _register
from test_review_nightly_rerun_withdraw import HOUSE, _brighter_model, _write_dates

from changedetect.testing import make_nightly_catalog

NIGHT = "2020-09-04"  # the three dates: the first sets the baseline, two pairs run
#: how the night's lines of what a pair's run warned of about its result begin or read (run.json's
#: ``warnings``: register_far, register_empty, resolution, panchromatic, unnamed_bands)
ABOUT_THE_RESULT = ("no permit of the register lies within", "the permit register is empty", " pixels, and the tiles have ",
                    "looks panchromatic", "bands have no names")


def not_about_the_result(warnings: list[str]) -> list[str]:
    """``warnings`` without the lines of what the pairs' runs warned of about their result: other files'
    synthetic worlds (a tiny model on 10 m tiles, a register far from the noise's footprints) have them."""
    return [w for w in warnings if not any(m in w for m in ABOUT_THE_RESULT)]


def _paint(k: int, data: np.ndarray, scl: np.ndarray) -> None:
    if k >= 1:
        data[(slice(None), *HOUSE)] = 5000
    if k >= 2:
        data[(slice(None), *BLOCK)] = 5000


def _night_over(root: Path, moved_m: float) -> tuple[Any, str]:
    """One night over area ``s2`` with the register moved ``moved_m`` metres north: its summary and the
    area's night report."""
    from changedetect.config import PipelineConfig
    from changedetect.nightly import run_nightly

    world = make_nightly_catalog(root, {})
    _write_dates(world["tiles"] / "s2", DATES, _paint)
    model = _brighter_model(root / "brighter")
    world["config"].write_text(f'[detect]\nmodel = "{model}"\nwindow = 64\noverlap = 8\n', encoding="utf-8")
    register = gpd.read_file(_register(root / "register.gpkg"))
    register["geometry"] = register.geometry.translate(0.0, moved_m)
    register.to_file(root / "moved.gpkg")
    summary = run_nightly(world["tiles"], permits=root / "moved.gpkg", state=root / "state", out=root / "out",
                          night=NIGHT, workers=1, config=PipelineConfig.from_toml(world["config"]))
    return summary, (root / "out" / f"report-{NIGHT}-s2.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def far(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, str]:
    return _night_over(tmp_path_factory.mktemp("register_far"), 5000.0)


@pytest.fixture(scope="module")
def near(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, str]:
    return _night_over(tmp_path_factory.mktemp("register_near"), 0.0)


def test_a_register_5_km_away_is_one_warning_of_the_night_naming_the_area_and_its_pairs(far: tuple[Any, str]) -> None:
    far, _ = far
    assert far.pairs == 2 and far.new_violations == 2 and not far.failed, far
    said = [w for w in far.warnings if "no permit of the register lies within" in w]
    assert len(said) == 1, far.warnings  # once for the area, not once per pair
    assert said[0].startswith("area s2: no permit of the register lies within 1000 m of the footprints"), said
    assert said[0].endswith("(both of its 2 pairs tonight: 2020-01-05..2020-07-04, 2020-07-04..2020-09-03)"), said
    assert said[0] in far.to_dict()["warnings"]  # --json's


def test_a_normal_night_says_nothing_of_the_register(near: tuple[Any, str], far: tuple[Any, str]) -> None:
    """The register line is the one difference the moved register makes to the night's warnings."""
    (near, _), (far, _) = near, far
    assert near.pairs == 2 and near.new_violations == 2 and not near.failed, near
    assert not [w for w in near.warnings if "no permit" in w], near.warnings
    assert [w for w in far.warnings if w not in near.warnings] == [
        w for w in far.warnings if "no permit of the register" in w] != [], (far.warnings, near.warnings)


def test_the_nights_report_flags_the_register_once(far: tuple[Any, str], near: tuple[Any, str]) -> None:
    """The area's night report, what inspectors read, says it at the top of its coverage section, as
    ``changedetect run``'s report does, once for the night's two pairs; a normal night's does not."""
    (_, far_report), (_, near_report) = far, near
    assert far_report.count("NO PERMIT NEAR: no permit of the register lies within 1000 m") == 1, far_report
    assert "NO PERMIT NEAR" not in near_report
    for pair in ("2020-01-05 → 2020-07-04", "2020-07-04 → 2020-09-03"):  # both pairs' coverage rows
        assert pair in far_report and pair in near_report


def _results(root: Path, runs: list[tuple[str, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Area ``a``'s night of ``runs`` (before, after, its run.json), each written under ``root``."""
    import json

    pairs = []
    for before, after, doc in runs:
        (root / after).mkdir()
        (root / after / "run.json").write_text(json.dumps(doc), encoding="utf-8")
        pairs.append({"before": before, "after": after, "run_dir": str(root / after)})
    return [{"area": "a", "error": None, "runs": pairs}]


def test_each_kind_once_naming_the_pairs_that_warned(tmp_path: Path) -> None:
    """Two of three pairs warn of the register, a panchromatic date once per date, a date not
    co-registered (the AFTER of one pair and the BEFORE of the next) once."""
    from changedetect._nightly_coverage import run_warnings, unregistered

    far = {"kind": "register_far", "message": "no permit of the register lies within 1000 m", "near_m": "1000"}
    grey = [{"kind": "panchromatic", "date": d, "message": f"{d}: grey"} for d in ("2024-02-01", "2024-03-01")]
    off = {"date": "2024-02-01", "reference": "2024-01-01", "reason": "too few windows matched"}
    results = _results(tmp_path, [("2024-01-01", "2024-02-01", {"warnings": [far, grey[0]], "unregistered": [off]}),
                                  ("2024-02-01", "2024-03-01", {"warnings": grey, "unregistered": [off]}),
                                  ("2024-03-01", "2024-04-01", {"warnings": [far]})])
    assert run_warnings(results) == [
        "area a: no permit of the register lies within 1000 m (2 of its 3 pairs tonight: 2024-01-01..2024-02-01, "
        "2024-03-01..2024-04-01)",
        "area a: 2024-02-01: grey (2 of its 3 pairs tonight: 2024-01-01..2024-02-01, 2024-02-01..2024-03-01)",
        "area a: 2024-03-01: grey (1 of its 3 pairs tonight: 2024-02-01..2024-03-01)"]
    (line,) = unregistered(results)
    assert line.startswith("area a: the 2024-02-01 acquisition could not be co-registered on 2024-01-01 (too few "
                           "windows matched) and was compared as it lies (2 of its 3 pairs tonight: "
                           "2024-01-01..2024-02-01, 2024-02-01..2024-03-01): "), line


def test_the_night_reads_each_pairs_run_json_once_for_its_summary(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The coverage, the dates not co-registered and what the runs warned of come from each pair's run.json,
    which each of the three read again (three reads a pair: a city's night of hundreds of pairs)."""
    from changedetect import _nightly_coverage
    from changedetect.nightly import NightlySummary

    far = {"kind": "register_far", "message": "no permit of the register lies within 1000 m", "near_m": "1000"}
    off = {"date": "2024-02-01", "reference": "2024-01-01", "reason": "too few windows matched"}
    results = _results(tmp_path, [("2024-01-01", "2024-02-01", {"warnings": [far], "unregistered": [off]}),
                                  ("2024-02-01", "2024-03-01", {"warnings": [far]})])
    reads: list[str] = []
    read_text = Path.read_text

    def counted(self: Path, *args: Any, **kwargs: Any) -> str:
        if self.name == "run.json":
            reads.append(str(self))
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counted)
    summary = NightlySummary("2024-03-02")
    _nightly_coverage.record(summary, results)
    assert sorted(reads) == sorted(str(Path(p["run_dir"]) / "run.json") for p in results[0]["runs"]), reads
    assert [w for w in summary.warnings if "no permit" in w] == [
        "area a: no permit of the register lies within 1000 m (both of its 2 pairs tonight: 2024-01-01..2024-02-01, "
        "2024-02-01..2024-03-01)"]
    assert [w for w in summary.warnings if "could not be co-registered" in w]
    assert [c["before"] for c in summary.coverage["a"]] == ["2024-01-01", "2024-02-01"]
