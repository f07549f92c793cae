"""Review of the nightly job's low-coverage warning: it names what masked the pair's scene as ``run``
does (:func:`changedetect.io.clouds.coverage_why`, from the pair's ``run.json``: its dates' SCL
classes and its tiles' own no data), not "check that the tiles cover the area" when the SCL masked
its no data, saturated pixels or cloud shadows rather than cloud."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

PAIR = ("2020-01-05", "2020-07-04")


def _run(tmp_path: Path, name: str, doc: dict[str, Any]) -> dict[str, Any]:
    (tmp_path / name).mkdir()
    (tmp_path / name / "run.json").write_text(json.dumps(doc), encoding="utf-8")
    return {"area": name, "runs": [{"before": PAIR[0], "after": PAIR[1], "run_dir": str(tmp_path / name)}]}


def _clouds(after: dict[str, Any]) -> list[dict[str, Any]]:
    clear = {"date": PAIR[0], "cloud_share": 0.0, "masked_share": 0.0, "masked": True, "masked_classes": {},
             "scl": "T32TPP_20200105_SCL_20m.tif"}
    return [clear, {"date": PAIR[1], "masked": True, "scl": "T32TPP_20200704_SCL_20m.tif", **after}]


def _coverage(share: float, nodata_after: float) -> dict[str, Any]:
    return {"pairs": [{"before": PAIR[0], "after": PAIR[1], "coverage_both_dates": share, "low": share < 0.5}],
            "dates": [{"date": PAIR[0], "valid_share": 1.0, "tiles_nodata_share": 0.0},
                      {"date": PAIR[1], "valid_share": share, "tiles_nodata_share": nodata_after}]}


def _warnings(tmp_path: Path, docs: dict[str, dict[str, Any]]) -> dict[str, str]:
    from changedetect._nightly_coverage import record
    from changedetect._nightly_summary import NightlySummary

    summary = NightlySummary("2020-07-05")
    record(summary, [_run(tmp_path, name, doc) for name, doc in docs.items()])
    said = {w.split(":")[0].removeprefix("area "): w for w in summary.warnings}
    assert len(said) == len(summary.warnings), summary.warnings
    return said


def test_an_scl_masking_its_no_data_is_named_not_the_tiles(tmp_path: Path) -> None:
    nodata = {"cloud_share": 0.0, "masked_share": 0.62, "masked_classes": {"no data (0)": 0.62}}
    shadow = {"cloud_share": 0.05, "masked_share": 0.7,
              "masked_classes": {"cloud shadow (3)": 0.65, "cloud, high probability (9)": 0.05}}
    said = _warnings(tmp_path, {
        "nodata": {"coverage_both_dates": 0.38, "clouds": _clouds(nodata), "coverage": _coverage(0.38, 0.0)},
        "shadow": {"coverage_both_dates": 0.30, "clouds": _clouds(shadow), "coverage": _coverage(0.30, 0.0)},
        "cut": {"coverage_both_dates": 0.40, "clouds": _clouds({"cloud_share": 0.0, "masked_share": 0.0}),
                "coverage": _coverage(0.40, 0.6)},
    })
    assert "2020-07-04 is 62 % masked by its Sentinel-2 scene classification (SCL): 62 % no data (0)" \
        in said["nodata"], said
    assert "check that 'T32TPP_20200704_SCL_20m.tif' is this date's SCL, of the bands' tile" in said["nodata"], said
    assert "tiles cover the area" not in said["nodata"], said
    assert "65 % cloud shadow (3)" in said["shadow"] and "tiles cover the area" not in said["shadow"], said
    assert "2020-07-04's tiles have no data over 60 % of the scene" in said["cut"], said
    assert "tiles cover the area" in said["cut"] and "SCL" not in said["cut"], said


def test_the_pairs_own_coverage_entry_gives_its_share(tmp_path: Path) -> None:
    """run.json's ``coverage.pairs`` entry of the nightly pair is its figure (a partner's pair beside it)."""
    from changedetect._nightly_coverage import pair_coverage

    cov = _coverage(0.45, 0.55)
    cov["pairs"].insert(0, {"before": "2019-07-01", "after": PAIR[1], "coverage_both_dates": 0.9, "low": False})
    run = _run(tmp_path, "a", {"clouds": _clouds({"cloud_share": 0.0, "masked_share": 0.0}), "coverage": cov})
    entry = pair_coverage([run])["a"][0]
    assert entry["coverage_both_dates"] == pytest.approx(0.45), entry
    assert entry["clouds"] == {PAIR[0]: 0.0, PAIR[1]: 0.0}, entry


def test_clouds_the_scl_did_not_mask_are_not_the_reason(tmp_path: Path) -> None:
    """A cloud share counts only where the SCL masked it (``--no-cloud-mask``: the clouds are data)."""
    unmasked = [{"date": PAIR[1], "cloud_share": 0.62, "masked_share": 0.62, "masked": False,
                 "masked_classes": {"cloud, high probability (9)": 0.62}}]
    said = _warnings(tmp_path, {"a": {"coverage_both_dates": 0.38, "clouds": unmasked}})
    assert "tiles cover the area" in said["a"] and "cloud" not in said["a"].split(";")[-1], said
