"""Review of the nightly job with Sentinel-2 scene classifications (SCL): a date's SCL beside its band
files, or beside its one stacked file, travels with the date to the pair's run, which masks its
clouds as ``changedetect run`` does on the same folder; it is not an acquisition of its own, and it
is not part of the date's checksum (a state written before keeps its acquisitions)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import test_review_s2_clouds as s2  # its L2A-like folder and clouds
from test_review_nightly_run_warnings import not_about_the_result

from changedetect.testing import make_nightly_catalog

NIGHTS = ("2020-01-06", "2020-07-05")  # s2.DATES: 2020-01-05, 2020-07-04


def _stacked(folder: Path) -> Path:
    """One 4-band file per date with its SCL beside it (``s2_20200105.tif``, ``s2_20200105_SCL.tif``)."""
    folder.mkdir(parents=True)
    for k, day in enumerate(s2.DATES):
        s2._write(folder / f"s2_{day}.tif", s2._bands(k == 1, k), s2.ORIGIN, names=s2.BANDS)
        s2._write(folder / f"s2_{day}_SCL.tif", s2._scl(k == 1)[None], s2.ORIGIN @ s2.Affine.scale(2))
    return folder


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Area ``bands``: band-per-file dates with their SCL; area ``stacked``: a stacked file and its SCL."""
    root = tmp_path_factory.mktemp("nightly_scl")
    world = make_nightly_catalog(root, {})
    shutil.copytree(s2.s2_folder(root / "src"), world["tiles"] / "bands")
    _stacked(world["tiles"] / "stacked")
    return world


def test_the_scl_belongs_to_its_date(catalog: dict) -> None:
    from changedetect._nightly_catalog import discover

    found = discover(catalog["tiles"])
    assert sorted(found) == ["bands", "stacked"]
    for area, acqs in found.items():
        assert [q.date for q in acqs] == ["2020-01-05", "2020-07-04"], (area, acqs)  # not an acquisition of its own
        for q in acqs:
            assert q.scl is not None and Path(q.scl).name.endswith(("_SCL_20m.tif", "_SCL.tif")), q
            assert q.scl not in q.paths and q.scl in q.inputs
            assert all("SCL" not in Path(f).name for f in q.files)


def test_the_scl_is_not_in_the_checksum(catalog: dict, tmp_path: Path) -> None:
    """A state written when the SCL was left out knows the date by the same checksum."""
    from changedetect._nightly_catalog import discover

    with_scl = {(a, q.date): q.sha256 for a, acqs in discover(catalog["tiles"]).items() for q in acqs}
    bare = tmp_path / "tiles"
    shutil.copytree(catalog["tiles"], bare)
    for f in bare.rglob("*SCL*"):
        f.unlink()
    without = {(a, q.date): q.sha256 for a, acqs in discover(bare).items() for q in acqs}
    assert with_scl == without


def test_the_manifest_keeps_the_scl_of_band_per_file_dates(catalog: dict) -> None:
    """The SCL rows are kept, and the bands only one date has are still left out (an SCL on every date
    made every row kept: its band name, None, was 'shared'); a date without an SCL is no matter."""
    from changedetect.nightly import _manifest

    files = {d: sorted(str(f) for f in (catalog["tiles"] / "bands").glob(f"*{d}*")) for d in s2.DATES}
    extra = files[s2.DATES[0]][0].replace("_B02_", "_B05_")  # a band the other date lacks (not read)
    both = _manifest([(files[s2.DATES[0]] + [extra], s2.DATES[0]), (files[s2.DATES[1]], s2.DATES[1])])
    assert [r["path"] for r in both] == files[s2.DATES[0]] + files[s2.DATES[1]], both
    one = [f for f in files[s2.DATES[0]] if "SCL" not in f]
    rows = _manifest([(one + [extra], s2.DATES[0]), (files[s2.DATES[1]], s2.DATES[1])])
    assert [r["path"] for r in rows] == one + files[s2.DATES[1]], rows


@pytest.fixture(scope="module")
def nights(catalog: dict) -> list:
    from changedetect.config import PipelineConfig
    from changedetect.nightly import run_nightly

    root = catalog["root"]
    config = PipelineConfig.from_toml(catalog["config"])
    return [run_nightly(catalog["tiles"], permits=catalog["permits"], state=root / "state", out=root / "out",
                        night=n, workers=1, config=config) for n in NIGHTS]


@pytest.mark.parametrize("area", ["bands", "stacked"])
def test_a_nightly_pair_masks_the_clouds(nights: list, area: str) -> None:
    """The pair's coverage drops by the cloud and its shadow, as `changedetect run` on the folder."""
    second = nights[1]
    assert not [w for w in not_about_the_result(second.warnings) if area in w and "could not be co-registered" not in w], \
        second.warnings  # the fixture's cloudy synthetic dates cannot be co-registered, which the night says (not checked here)
    cover = second.coverage[area]
    assert len(cover) == 1
    assert cover[0]["coverage_both_dates"] == pytest.approx(1 - s2._masked_10m(True).mean(), abs=0.01)
    assert float(np.mean(s2._masked_10m(True))) > 0.05  # the cloud is large enough to tell


def test_a_pair_under_half_covered_for_its_clouds_says_so(tmp_path: Path) -> None:
    """The night's low-coverage warning names the clouds when the pair's SCL masked them, rather than
    sending the reader to the tiles' nodata share (0 % there)."""
    import json

    from changedetect._nightly_coverage import low_coverage, pair_coverage

    runs = []
    for name, clouds in (("cloudy", [{"date": "2020-01-05", "cloud_share": 0.0, "masked_share": 0.0, "masked": True},
                                     {"date": "2020-07-04", "cloud_share": 0.62, "masked_share": 0.62, "masked": True,
                                      "masked_classes": {"cloud, high probability (9)": 0.62}}]),
                         ("cut", [])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(json.dumps({"coverage_both_dates": 0.38, "clouds": clouds}))
        runs.append({"area": name, "runs": [{"before": "2020-01-05", "after": "2020-07-04",
                                              "run_dir": str(tmp_path / name)}]})
    cover = pair_coverage(runs)
    assert cover["cloudy"][0]["clouds"] == {"2020-01-05": 0.0, "2020-07-04": 0.62}
    said = dict(zip(sorted(cover), low_coverage(cover), strict=True))
    assert "2020-07-04 is 62 % masked by its Sentinel-2 scene classification (SCL): 62 % cloud, high probability (9): " \
        "a clearer date will see more" in said["cloudy"] and "nodata share" not in said["cloudy"], said
    assert "nodata share" in said["cut"] and "cloud" not in said["cut"], said
