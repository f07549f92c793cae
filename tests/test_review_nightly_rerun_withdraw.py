"""Review of the nightly job when a late Sentinel-2 SCL makes a date's pairs run again: a violation the
first run reported under what that SCL now masks (a white cloud read as a new roof), and that the
rerun no longer finds, is withdrawn (kept in ``withdrawn-<night>``, with why), not left open; one the
rerun finds again, or does not find for another reason, is not touched; a second night changes nothing.

The detector here is deterministic (registered in the test): change where the after date is brighter
than the before date, so that the first run (no SCL) reports the cloud and the building, the rerun
(the cloud masked) the building alone."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from shapely.geometry import box
from test_review_s2_clouds import _write  # an EPSG:32632 GeoTIFF with band names

from changedetect.testing import make_nightly_catalog

SIZE, RES, X0, Y0 = 64, 10.0, 600_000.0, 4_800_000.0
ORIGIN = Affine(RES, 0.0, X0, 0.0, -RES, Y0)
DATES = ("20200105", "20200704")
DATES_ISO = ("2020-01-05", "2020-07-04")
NIGHTS = ("2020-01-06", "2020-07-05", "2020-07-06", "2020-07-07")
CLOUD = (slice(20, 36), slice(18, 34))  # 10 m pixels; the SCL's 20 m rows 10:18, cols 9:17
HOUSE = (slice(44, 54), slice(40, 52))
KIND = "under a cloud a late SCL masks"


def _brighter_model(folder: Path) -> Path:
    import torch
    from torch import nn

    from changedetect import nn as cd_nn
    from changedetect.testing import make_model

    class Brighter(nn.Module):
        """Logits rise where the after date is over one standard deviation brighter (every band)."""

        def __init__(self, **_: object) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.tensor(20.0))

        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return self.scale * ((b - a).mean(1, keepdim=True) - 1.0)

    if "review_brighter" not in cd_nn.list_models():
        cd_nn.register("review_brighter")(lambda **kw: Brighter(**kw))
    return make_model(folder, arch="review_brighter", bands=("blue", "green", "red"), threshold=0.5, widths=1)


def _write_dates(area: Path, dates: Sequence[str], paint: Callable[[int, np.ndarray, np.ndarray], None]) -> Path:
    """Make ``area`` and write one 4-band file (noise 900-1300) and its SCL (all vegetation, 4) per date,
    after ``paint(k, data, scl)`` has drawn on the k-th date's arrays."""
    area.mkdir(parents=True)
    for k, day in enumerate(dates):
        data = np.random.default_rng(k).integers(900, 1300, size=(4, SIZE, SIZE)).astype(np.uint16)
        scl = np.full((SIZE // 2, SIZE // 2), 4, dtype=np.uint8)
        paint(k, data, scl)
        _write(area / f"s2_{day}.tif", data, ORIGIN, names=("B02", "B03", "B04", "B08"))
        _write(area / f"s2_{day}_SCL.tif", scl[None], ORIGIN @ Affine.scale(2))
    return area


def _world(root: Path) -> dict[str, Any]:
    """Area ``s2``: one 4-band file per date; the July date has a new house (bright, its own) and a
    cloud (white); its SCL (cloud, class 9) is held back in ``root/held``."""
    def paint(k: int, data: np.ndarray, scl: np.ndarray) -> None:
        if k:
            data[(slice(None), *HOUSE)] = 5000
            data[(slice(None), *CLOUD)] = 9000
            scl[10:18, 9:17] = 9

    return _world_of(root, DATES, paint)


def _world_of(root: Path, dates: Sequence[str], paint: Callable[[int, np.ndarray, np.ndarray], None]) -> dict[str, Any]:
    """A nightly catalog with area ``s2``: ``dates`` painted by ``paint`` (:func:`_write_dates`), the
    second date's SCL held back in ``root/held`` (``world["held"]``), the brighter model in the config."""
    world = make_nightly_catalog(root, {})
    area = _write_dates(world["tiles"] / "s2", dates, paint)
    (root / "held").mkdir()
    held = Path(shutil.move(area / f"s2_{dates[1]}_SCL.tif", root / "held"))
    model = _brighter_model(root / "brighter")
    world["config"].write_text(f'[detect]\nmodel = "{model}"\nwindow = 64\noverlap = 8\n', encoding="utf-8")
    return {**world, "held": held}


def _night(world: dict[str, Any], night: str) -> Any:
    from changedetect.config import PipelineConfig
    from changedetect.nightly import run_nightly

    root = world["root"]
    return run_nightly(world["tiles"], permits=world["permits"], state=root / "state", out=root / "out",
                       night=night, workers=1, config=PipelineConfig.from_toml(world["config"]))


def _px(rows: slice, cols: slice) -> Any:
    return box(X0 + cols.start * RES, Y0 - rows.stop * RES, X0 + cols.stop * RES, Y0 - rows.start * RES)


def _open(out: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(out / "open_violations.gpkg", layer="open_violations").to_crs(32632)


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    world = _world(tmp_path_factory.mktemp("rerun_withdraw"))
    summaries = [_night(world, NIGHTS[0]), _night(world, NIGHTS[1])]
    world["after_night_2"] = _open(world["root"] / "out")
    shutil.copy(world["held"], world["tiles"] / "s2" / world["held"].name)  # the SCL lands a night late
    summaries.append(_night(world, NIGHTS[2]))
    return {**world, "summaries": summaries}


def _under(frame: gpd.GeoDataFrame, where: Any) -> list[str]:
    return [v for v, g in zip(frame["violation_id"], frame.geometry, strict=True)
            if g.intersection(where).area > 0.5 * g.area]


def test_the_first_run_reports_the_cloud_and_the_house(nights: dict[str, Any]) -> None:
    """The premise: without its SCL the July date's cloud is a 'new building'."""
    first = nights["after_night_2"]
    assert len(_under(first, _px(*CLOUD))) == 1 and len(_under(first, _px(*HOUSE))) == 1, first


def test_the_rerun_withdraws_the_violation_under_the_late_clouds_mask(nights: dict[str, Any]) -> None:
    third = nights["summaries"][2]
    out = nights["root"] / "out"
    (cloud,) = _under(nights["after_night_2"], _px(*CLOUD))
    (house,) = _under(nights["after_night_2"], _px(*HOUSE))
    assert [r["date"] for r in third.reruns] == ["2020-07-04"], third.reruns
    assert third.withdrawn == [cloud] and third.withdrawn_reasons == {KIND: 1}, third
    assert _open(out)["violation_id"].tolist() == [house]  # the house stays, under its id
    gone = gpd.read_file(out / f"withdrawn-{NIGHTS[2]}.gpkg", layer=f"withdrawn-{NIGHTS[2]}")
    assert gone["violation_id"].tolist() == [cloud]
    assert gone["withdrawn"].dt.strftime("%Y-%m-%d").tolist() == [NIGHTS[2]]  # a DATE field
    why = gone["withdrawn_reason"].iloc[0]
    assert why.startswith(f"{KIND}: ") and "2020-07-04 ('s2_20200704_SCL.tif')" in why, why
    assert "2020-01-05 -> 2020-07-04" in why and "no longer finds" in why, why
    csv = (out / f"withdrawn-{NIGHTS[2]}.csv").read_text(encoding="utf-8")
    assert cloud in csv and KIND in csv
    report = (out / f"report-{NIGHTS[2]}-s2.html").read_text(encoding="utf-8")
    assert cloud in report and KIND in report


def test_the_next_nights_change_nothing(nights: dict[str, Any]) -> None:
    root, out = nights["root"], nights["root"] / "out"
    files = sorted(p for p in [*out.iterdir(), root / "state" / "state.json"] if p.is_file())
    before = {p.name: p.read_bytes() for p in files}
    again = _night(nights, NIGHTS[2])  # the same night again
    assert (again.pairs, again.withdrawn) == (0, []), again
    assert {p.name: p.read_bytes() for p in files} == before
    (out / f"withdrawn-{NIGHTS[2]}.csv").unlink()  # restored from the state, the same
    _night(nights, NIGHTS[2])
    assert (out / f"withdrawn-{NIGHTS[2]}.csv").read_bytes() == before[f"withdrawn-{NIGHTS[2]}.csv"]
    fourth = _night(nights, NIGHTS[3])
    assert (fourth.pairs, fourth.reruns, fourth.withdrawn, fourth.new_violations) == (0, [], [], 0), fourth
    assert _open(out)["violation_id"].tolist() == _under(nights["after_night_2"], _px(*HOUSE))


# ------------------------------------------------------------------------------------- unit level
RUN = {"before": "2020-01-05", "after": "2020-07-04", "scl_rerun": {"2020-07-04": "its SCL arrived after"}}


def _rerun_folder(run_dir: Path, *, masked: bool = True, found: list[Any] = ()) -> Path:
    """What a rerun pair leaves: after_rgb.tif with no data over CLOUD, run.json's clouds, its footprints."""
    run_dir.mkdir(parents=True)
    rgb = np.full((3, SIZE, SIZE), 120, dtype=np.uint8)
    rgb[(slice(None), *CLOUD)] = 0
    profile = {"driver": "GTiff", "width": SIZE, "height": SIZE, "count": 3, "dtype": "uint8",
               "crs": "EPSG:32632", "transform": ORIGIN, "nodata": 0}
    for name, data in (("after_rgb.tif", rgb), ("before_rgb.tif", np.full_like(rgb, 120))):
        with rasterio.open(run_dir / name, "w", **profile) as dst:
            dst.write(data)
    clouds = [{"date": "2020-07-04", "cloud_share": 0.06, "masked_share": 0.06, "masked": masked,
               "scl": "s2_20200704_SCL.tif"}]
    (run_dir / "run.json").write_text(json.dumps({"clouds": clouds}), encoding="utf-8")
    gpd.GeoDataFrame({"footprint_id": [f"F-{i}" for i in range(len(found))]}, geometry=list(found),
                     crs="EPSG:32632").to_file(run_dir / "footprints.gpkg")
    return run_dir


def _register(rows: list[tuple[str, Any, str, str]]) -> gpd.GeoDataFrame:
    """(id, geometry, before, after) rows of area s2 reported on night 2, in the register's CRS."""
    return gpd.GeoDataFrame({"violation_id": [r[0] for r in rows], "area": "s2", "night": NIGHTS[1],
                             "before": [r[2] for r in rows], "after": [r[3] for r in rows],
                             "status": "unlicensed", "footprint_id": "F-x"},
                            geometry=[r[1] for r in rows], crs="EPSG:32632").to_crs(9210)


def test_only_what_the_rerun_no_longer_finds_under_the_mask_is_withdrawn(tmp_path: Path) -> None:
    from changedetect._withdraw_masked import withdraw_masked

    cloud, edge = _px(*CLOUD), _px(slice(20, 36), slice(30, 40))  # edge: 40 % under the cloud
    found_again = _px(slice(22, 30), slice(20, 28))
    run_dir = _rerun_folder(tmp_path / "rerun", found=[found_again])
    register = _register([("under", cloud, *DATES_ISO), ("elsewhere", _px(*HOUSE), *DATES_ISO),
                          ("edge", edge, *DATES_ISO), ("found", found_again, *DATES_ISO),
                          ("other_pair", cloud, "2019-07-04", "2020-07-04")])
    results = [{"area": "s2", "error": None, "runs": [{**RUN, "run_dir": str(run_dir)}]}]
    kept, gone = withdraw_masked(register, results, NIGHTS[2])
    assert gone["violation_id"].tolist() == ["under"], gone
    assert kept["violation_id"].tolist() == ["elsewhere", "edge", "found", "other_pair"]
    assert gone["withdrawn_reason"].iloc[0].startswith(f"{KIND}: 100% of it lies where"), gone
    # tonight's own rows, a pair that is no rerun, or an SCL the run did not mask: nothing
    tonight = register.assign(night=NIGHTS[2])
    assert not len(withdraw_masked(tonight, results, NIGHTS[2])[1])
    plain = [{"area": "s2", "error": None, "runs": [{**RUN, "scl_rerun": {}, "run_dir": str(run_dir)}]}]
    assert not len(withdraw_masked(register, plain, NIGHTS[2])[1])
    unmasked = _rerun_folder(tmp_path / "unmasked", masked=False)
    results = [{"area": "s2", "error": None, "runs": [{**RUN, "run_dir": str(unmasked)}]}]
    assert not len(withdraw_masked(register, results, NIGHTS[2])[1])


def test_a_late_before_date_reads_the_before_image(tmp_path: Path) -> None:
    """The late SCL is the pair's BEFORE date's: its mask is read from before_rgb.tif."""
    from changedetect._withdraw_masked import withdraw_masked

    run_dir = _rerun_folder(tmp_path / "rerun")
    register = _register([("under", _px(*CLOUD), *DATES_ISO)])
    results = [{"area": "s2", "error": None, "runs": [{**RUN, "run_dir": str(run_dir),
                                                        "scl_rerun": {"2020-01-05": "late"}}]}]
    doc = json.loads((run_dir / "run.json").read_text())
    doc["clouds"][0]["date"] = "2020-01-05"
    (run_dir / "run.json").write_text(json.dumps(doc))
    assert not len(withdraw_masked(register, results, NIGHTS[2])[1])  # before_rgb.tif has data there
    shutil.copy(run_dir / "after_rgb.tif", run_dir / "before_rgb.tif")
    assert withdraw_masked(register, results, NIGHTS[2])[1]["violation_id"].tolist() == ["under"]


def test_the_command_says_why_violations_were_withdrawn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from changedetect import nightly
    from changedetect.cli import cli

    reasons = {KIND: 1, "not seen under the same sun": 2}
    monkeypatch.setattr(nightly, "run_nightly", lambda *a, **k: nightly.NightlySummary(
        NIGHTS[2], withdrawn=["a", "b", "c"], withdrawn_reasons=reasons, open_violations=4))
    (tmp_path / "catalog").mkdir()
    args = ["nightly", "--catalog", str(tmp_path / "catalog"), "--permits", "r.gpkg", "--state", str(tmp_path / "st"),
            "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"3 withdrawn (1 {KIND}, 2 not seen under the same sun), 4 open in total" in result.output
    assert json.loads(CliRunner().invoke(cli, [*args, "--json"]).stdout)["withdrawn_reasons"] == reasons

