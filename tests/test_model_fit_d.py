"""A model that does not suit the imagery is said where a user of ``run`` looks (audit D).

``vhr-building`` (the default, made for 0.3-1 m) on OSCD pisa's 10 m Sentinel-2 bands gave 28 'unlicensed'
violations, and only a log line said the model was made for other pixels: ``-q`` dropped it, ``--json``,
``run.json`` and the report never had it.  The same for a panchromatic date given to a colour model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _fakes import run_quietly
from click.testing import CliRunner

from changedetect._model_fit import model_fit
from changedetect.cli import cli
from changedetect.io import open_series
from changedetect.testing import make_footprints, make_model, make_permits, make_stack, write_stack


@pytest.fixture(scope="module")
def coarse_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``run -q`` of a 0.3-1 m model on 10 m tiles."""
    root = tmp_path_factory.mktemp("fit")
    stack = make_stack(n_dates=2, size=128, seed=4, resolution=10.0)
    write_stack(stack, root / "tiles", prefix="s2")
    out, stdout = run_quietly(root, stack, root / "tiles", window=64)
    return {"out": out, "stdout": stdout, "root": root}


def test_run_q_says_the_model_is_made_for_other_pixels(coarse_run: dict) -> None:
    line = next((x for x in coarse_run["stdout"].splitlines() if "Warning: model 'tiny-model'" in x), None)
    assert line is not None, coarse_run["stdout"]
    assert "is made for 0.3-1 m pixels, and the tiles have 10.00 m pixels" in line and "--model s2-urban" in line


def test_run_json_and_the_report_say_it_too(coarse_run: dict, tmp_path: Path) -> None:
    doc = json.loads((coarse_run["out"] / "run.json").read_text(encoding="utf-8"))
    assert [(m["kind"], m["model"], m["pixel_m"]) for m in doc["warnings"]] == [("resolution", "tiny-model", 10.0)]
    report = (coarse_run["out"] / "report.html").read_text(encoding="utf-8")
    assert "MODEL NOT MADE FOR THESE IMAGES: model &#x27;tiny-model&#x27; is made for 0.3-1 m pixels" in report
    target = tmp_path / "bao_cao.html"
    done = CliRunner().invoke(cli, ["report", str(coarse_run["out"]), "--lang", "vi", "--out", str(target)])
    assert done.exit_code == 0, done.output
    vi = target.read_text(encoding="utf-8")
    assert "MÔ HÌNH KHÔNG DÀNH CHO ẢNH NÀY" in vi and "--model s2-urban được xây dựng cho ảnh như vậy" in vi
    assert "is made for such pixels" not in vi  # the hint in the report's language, not run.json's English


def test_run_json_output_has_it(coarse_run: dict, tmp_path: Path) -> None:
    root = coarse_run["root"]
    done = CliRunner().invoke(cli, ["-q", "run", str(root / "tiles"), "--permits", str(root / "permits.gpkg"),
                                    "--config", str(root / "run.toml"), "--out", str(tmp_path / "o"), "--json"])
    assert done.exit_code == 0, done.output
    assert [m["kind"] for m in json.loads(done.stdout)["warnings"]] == ["resolution"]


def test_a_panchromatic_date_is_named_and_a_fitting_model_says_nothing(tmp_path: Path) -> None:
    stack = make_stack(n_dates=2, size=64, seed=2, bands=("red", "green", "blue"))
    grey = stack.copy(data=np.repeat(stack.isel(band=[0]).values, 3, axis=1))
    paths = write_stack(grey.isel(time=[1]), tmp_path / "grey", prefix="t")
    write_stack(stack.isel(time=[0]), tmp_path / "grey", prefix="t")
    card = make_model(tmp_path / "rgb").joinpath("metadata.json")
    from changedetect.weights import load_model

    loaded = load_model(str(card.parent))
    series = open_series(tmp_path / "grey")
    found = model_fit(loaded.card, series.reference_grid(), series.scenes)
    day = str(stack["time"].values[1])[:10]
    assert [(m["kind"], m["date"], m["file"]) for m in found] == [("panchromatic", day, Path(paths[0]).name)]
    assert "looks panchromatic" in found[0]["message"]


def test_bands_without_names_read_in_the_model_s_order_are_said(tmp_path: Path) -> None:
    # a 4-band file without band descriptions is B1..B4 (GDAL's alpha flag aside): run took B1, B2, B3 as
    # red, green, blue with one log line, which -q dropped; a blue, green, red, NIR delivery read backwards
    stack = make_stack(n_dates=2, size=64, seed=6)
    paths = write_stack(stack, tmp_path / "named", prefix="t")
    from changedetect.weights import load_model

    loaded = load_model(str(make_model(tmp_path / "rgb")))
    named = open_series(tmp_path / "named")
    assert model_fit(loaded.card, named.reference_grid(), named.scenes) == []
    import rasterio

    for path in paths:
        with rasterio.open(path, "r+") as dst:
            for i in range(1, dst.count + 1):
                dst.set_band_description(i, "")
    bare = open_series(tmp_path / "named")
    found = model_fit(loaded.card, bare.reference_grid(), bare.scenes)
    assert [(m["kind"], m["taken"]) for m in found] == [("unnamed_bands", "B1 as red, B2 as green, B3 as blue")]
    assert "name them (band descriptions in the files" in found[0]["message"]


def test_one_grey_band_given_to_a_colour_model_says_what_can_be_done() -> None:
    # was: "lacks band(s) ['red', 'green', 'blue'] ... give a stack with these bands or choose a model for the
    # bands you have" for solaris' 0.5 m panchromatic tile, and there is no model for one grey band
    from changedetect._detect_inputs import resolve_bands
    from changedetect.errors import ModelError

    with pytest.raises(ModelError, match=r"the input has \['B1'\].*it has one band \(a panchromatic or grey image\?\)"
                       r".*gdal_translate -b 1 -b 1 -b 1 -colorinterp red,green,blue IN\.tif OUT\.tif.*find less"):
        resolve_bands(["B1"], ["red", "green", "blue"], source="BEFORE 'sol.tif'")
    with pytest.raises(ModelError) as info:  # a model that reads more than colour (s2-urban): no such advice
        resolve_bands(["B1"], ["B02", "B03", "B04", "B08"], source="BEFORE 'sol.tif'")
    assert "gdal_translate" not in str(info.value)


def test_a_register_far_from_the_footprints_is_said_by_run_q(tmp_path: Path) -> None:
    # OSCD pisa with a register of another city (or one whose CRS is declared wrong): 87 footprints, all
    # 'unlicensed', and only match's log line said why, which -q dropped; run.json and the report said nothing
    stack = make_stack(n_dates=2, size=128, seed=4)
    write_stack(stack, tmp_path / "tiles", prefix="t")
    far = make_permits(make_footprints(stack).iloc[:1])
    far["geometry"] = far.geometry.translate(50_000, 0)
    far.to_file(tmp_path / "far.gpkg")
    out = tmp_path / "o"
    done = CliRunner().invoke(cli, ["-q", "run", str(tmp_path / "tiles"), "--permits", str(tmp_path / "far.gpkg"),
                                    "--out", str(out)])
    assert done.exit_code == 0, done.output
    line = next((x for x in done.stdout.splitlines() if "Warning: no permit of the register lies within" in x), None)
    assert line is not None, done.stdout
    doc = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert doc["counts"] == {"unlicensed": doc["n_footprints"]} and doc["n_footprints"] > 0
    assert [m["kind"] for m in doc["warnings"]] == ["register_far"]
    assert "NO PERMIT NEAR: no permit of the register lies within 1000 m" in (out / "report.html").read_text("utf-8")


def test_match_returns_what_it_warned_of(tmp_path: Path) -> None:
    from changedetect.match import match

    stack = make_stack(n_dates=2, size=64, seed=1)
    footprints = make_footprints(stack)
    permits = make_permits(footprints.iloc[:1])
    assert match(footprints, permits).attrs["warnings"] == []
    far = permits.copy()
    far["geometry"] = far.geometry.translate(0, 80_000)
    assert [w["kind"] for w in match(footprints, far).attrs["warnings"]] == ["register_far"]
    assert [w["kind"] for w in match(footprints, permits.iloc[:0]).attrs["warnings"]] == ["register_empty"]


def test_match_q_says_the_register_is_far(tmp_path: Path) -> None:
    stack = make_stack(n_dates=2, size=64, seed=1)
    footprints = make_footprints(stack)
    footprints.to_file(tmp_path / "fp.gpkg")
    far = make_permits(footprints.iloc[:1])
    far["geometry"] = far.geometry.translate(0, 80_000)
    far.to_file(tmp_path / "far.gpkg")
    done = CliRunner().invoke(cli, ["-q", "match", str(tmp_path / "fp.gpkg"), "--permits", str(tmp_path / "far.gpkg"),
                                    "--out", str(tmp_path / "v.gpkg")])
    assert done.exit_code == 0, done.output
    assert "Warning: no permit of the register lies within 1000 m of the footprints" in done.stderr


def test_detect_q_says_the_model_is_made_for_other_pixels(tmp_path: Path) -> None:
    # was: "Wrote p.tif: ..." alone under -q: its log line was the only word of it
    stack = make_stack(n_dates=2, size=64, seed=3, resolution=10.0)
    before, after = write_stack(stack, tmp_path, prefix="t")
    done = CliRunner().invoke(cli, ["-q", "detect", str(before), str(after), "--out", str(tmp_path / "p.tif")])
    assert done.exit_code == 0, done.output
    assert "Warning: model 'vhr-building' is made for 0.3-1 m pixels" in done.stderr
    from changedetect.detect import detect_to_file

    summary = detect_to_file(before, after, tmp_path / "q.tif")
    assert len(summary.warnings) == 1 and "10.00 m pixels" in summary.warnings[0]


def test_a_notebook_s_run_summary_shows_its_warnings() -> None:
    from changedetect.pipeline import RunSummary

    summary = RunSummary(out=Path("out"), counts={"unlicensed": 3}, n_footprints=3, dates=["2024-01-15", "2024-03-15"],
                         model="vhr-building", model_sha256="0" * 64,
                         warnings=[{"kind": "register_far", "message": "..."}])
    assert "WARNINGS: register_far (.warnings)" in repr(summary)
    assert "WARNINGS" not in repr(RunSummary(out=Path("out"), counts={}, n_footprints=0, dates=[], model="m",
                                             model_sha256="0" * 64))


def test_detect_series_q_says_the_model_is_made_for_other_pixels(tmp_path: Path) -> None:
    stack = make_stack(n_dates=2, size=64, seed=3, resolution=10.0)
    write_stack(stack, tmp_path / "tiles", prefix="t")
    done = CliRunner().invoke(cli, ["-q", "detect", "--series", str(tmp_path / "tiles"), "--out",
                                    str(tmp_path / "p.tif")])
    assert done.exit_code == 0, done.output
    assert "Warning: model 'vhr-building' is made for 0.3-1 m pixels" in done.stderr
