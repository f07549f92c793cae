"""Each CLI option reaches the library call its command makes, and its absence leaves the default.

The effect of each setting is tested on the library (``DetectConfig.tta``, ``VectorizeConfig.min_area_m2``,
``MatchConfig.tolerance_m2`` ...); what these tests hold is the wiring: a command that parsed an option and then
dropped it, or passed it to the wrong field, would still pass every test of the library.  The library function a
command calls is replaced by a recorder that stops the command with what it was given.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner
from shapely.geometry import box

from changedetect.cli import cli

REPO = Path(__file__).resolve().parents[1]


class Called(Exception):
    """Raised by the recorder in place of the library call: carries its arguments."""

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        super().__init__("recorded")
        self.args_, self.kwargs = args, kwargs


def _record(*args: Any, **kwargs: Any) -> Any:
    raise Called(args, kwargs)


def _called(monkeypatch: pytest.MonkeyPatch, target: str, argv: list[str]) -> Called:
    """Invoke ``changedetect ARGV`` with ``target`` (``module:function``) recorded; what it was given."""
    module, name = target.split(":")
    monkeypatch.setattr(f"{module}.{name}", _record)
    result = CliRunner().invoke(cli, ["-q", *argv])
    assert isinstance(result.exception, Called), (result.exit_code, result.output, result.exception)
    return result.exception


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    """A tiny probability raster, two images and a footprints layer: what the commands check exists."""
    profile = {"driver": "GTiff", "width": 8, "height": 8, "count": 1, "dtype": "float32", "crs": "EPSG:32648",
               "transform": Affine(0.5, 0, 680000.0, 0, -0.5, 1190000.0)}
    paths: dict[str, Path] = {}
    for name in ("prob", "before", "after"):
        paths[name] = tmp_path / f"{name}.tif"
        with rasterio.open(paths[name], "w", **profile) as dst:
            dst.write(np.zeros((1, 8, 8), dtype=np.float32))
    paths["footprints"] = tmp_path / "footprints.gpkg"
    gpd.GeoDataFrame({"footprint_id": ["f1"], "change_type": ["new"]}, geometry=[box(680000, 1189990, 680004, 1189996)],
                     crs="EPSG:32648").to_file(paths["footprints"])
    paths["register"] = REPO / "permits" / "sample_register.gpkg"
    paths["out"] = tmp_path / "out"
    return paths


def _config(call: Called) -> Any:
    return call.kwargs["config"]


# (argv with the option, the same without, recorded call, what to read of it, value with, value without)
CASES: dict[str, tuple[list[str], list[str], str, Callable[[Called], Any], Any, Any]] = {
    "detect --tta": (
        ["detect", "{before}", "{after}", "--out", "{out}.tif", "--tta"],
        ["detect", "{before}", "{after}", "--out", "{out}.tif"],
        "changedetect.detect:detect_to_file", lambda c: _config(c).tta, True, False),
    "vectorize --low-threshold": (
        ["vectorize", "{prob}", "--out", "{out}.gpkg", "--low-threshold", "0.2"],
        ["vectorize", "{prob}", "--out", "{out}.gpkg"],
        "changedetect.vectorize:vectorize_file", lambda c: _config(c).low_threshold, 0.2, 0.3),
    "vectorize --min-area": (
        ["vectorize", "{prob}", "--out", "{out}.gpkg", "--min-area", "33"],
        ["vectorize", "{prob}", "--out", "{out}.gpkg"],
        "changedetect.vectorize:vectorize_file", lambda c: _config(c).min_area_m2, 33.0, 10.0),
    "vectorize --no-regularize": (
        ["vectorize", "{prob}", "--out", "{out}.gpkg", "--no-regularize"],
        ["vectorize", "{prob}", "--out", "{out}.gpkg"],
        "changedetect.vectorize:vectorize_file", lambda c: _config(c).regularize, False, True),
    "match --min-overlap": (
        ["match", "{footprints}", "--permits", "{register}", "--out", "{out}.gpkg", "--min-overlap", "0.35"],
        ["match", "{footprints}", "--permits", "{register}", "--out", "{out}.gpkg"],
        "changedetect.match:match_to_file", lambda c: _config(c).min_overlap_ratio, 0.35, 0.1),
    "match --tolerance-m2": (
        ["match", "{footprints}", "--permits", "{register}", "--out", "{out}.gpkg", "--tolerance-m2", "4.5"],
        ["match", "{footprints}", "--permits", "{register}", "--out", "{out}.gpkg"],
        "changedetect.match:match_to_file", lambda c: _config(c).tolerance_m2, 4.5, 10.0),
    "match --tolerance-pct": (
        ["match", "{footprints}", "--permits", "{register}", "--out", "{out}.gpkg", "--tolerance-pct", "7"],
        ["match", "{footprints}", "--permits", "{register}", "--out", "{out}.gpkg"],
        "changedetect.match:match_to_file", lambda c: _config(c).tolerance_pct, 7.0, 10.0),
    "match --lot-ratio": (
        ["match", "{footprints}", "--permits", "{register}", "--out", "{out}.gpkg", "--lot-ratio", "2.5"],
        ["match", "{footprints}", "--permits", "{register}", "--out", "{out}.gpkg"],
        "changedetect.match:match_to_file", lambda c: _config(c).lot_ratio, 2.5, 1.5),
    "match --lot-ratio off": (
        ["match", "{footprints}", "--permits", "{register}", "--out", "{out}.gpkg", "--lot-ratio", "off"],
        ["match", "{footprints}", "--permits", "{register}", "--out", "{out}.gpkg"],
        "changedetect.match:match_to_file", lambda c: _config(c).lot_ratio, None, 1.5),
    "match --permits-timezone": (
        ["match", "{footprints}", "--permits", "{register}", "--out", "{out}.gpkg", "--permits-timezone", "Asia/Ho_Chi_Minh"],
        ["match", "{footprints}", "--permits", "{register}", "--out", "{out}.gpkg"],
        "changedetect.match:match_to_file", lambda c: c.kwargs["timezone"], "Asia/Ho_Chi_Minh", None),
    "match --query": (
        ["match", "{footprints}", "--permits", "{register}", "--out", "{out}.gpkg", "--query", "SELECT * FROM permits"],
        ["match", "{footprints}", "--permits", "{register}", "--out", "{out}.gpkg"],
        "changedetect.match:match_to_file", lambda c: c.kwargs["query"], "SELECT * FROM permits", None),
    "run --query": (
        ["run", "{tiles}", "--permits", "{register}", "--out", "{out}", "--query", "SELECT * FROM permits"],
        ["run", "{tiles}", "--permits", "{register}", "--out", "{out}"],
        "changedetect.pipeline:run", lambda c: _config(c).permits.query, "SELECT * FROM permits", None),
    "run --permits-timezone": (
        ["run", "{tiles}", "--permits", "{register}", "--out", "{out}", "--permits-timezone", "Asia/Ho_Chi_Minh"],
        ["run", "{tiles}", "--permits", "{register}", "--out", "{out}"],
        "changedetect.pipeline:run", lambda c: _config(c).permits.timezone, "Asia/Ho_Chi_Minh", None),
    "report --include-permitted": (
        ["report", "--violations", "{footprints}", "--out", "{out}.html", "--include-permitted"],
        ["report", "--violations", "{footprints}", "--out", "{out}.html"],
        "changedetect.report:write_report", lambda c: _config(c).include_permitted, True, False),
    "export --opset": (
        ["export", "s2-urban", "--out", "{out}", "--opset", "18"],
        ["export", "s2-urban", "--out", "{out}"],
        "changedetect.export:export_onnx", lambda c: c.kwargs["opset"], 18, 17),
    "coregister --no-local": (
        ["coregister", "{tiles}", "--out", "{out}", "--no-local"],
        ["coregister", "{tiles}", "--out", "{out}"],
        "changedetect._registration.cli_tool:coregister_files", lambda c: c.kwargs["local"], False, True),
    "coregister --no-radiometric": (
        ["coregister", "{tiles}", "--out", "{out}", "--no-radiometric"],
        ["coregister", "{tiles}", "--out", "{out}"],
        "changedetect._registration.cli_tool:coregister_files", lambda c: c.kwargs["radiometric"], False, True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_option_reaches_the_library(case: str, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    given, default, target, read, with_it, without_it = CASES[case]
    names = {k: str(v) for k, v in files.items()} | {"tiles": str(REPO / "sample_tiles")}
    with_call = _called(monkeypatch, target, [a.format(**names) for a in given])
    without_call = _called(monkeypatch, target, [a.format(**names) for a in default])
    assert read(with_call) == with_it
    assert read(without_call) == without_it


def test_models_verify_loads_the_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--verify`` loads the weights (which checks their sha256); without it only the card is read."""
    monkeypatch.setattr("changedetect.weights.load_model", _record)
    plain = CliRunner().invoke(cli, ["models", "s2-urban"])
    assert plain.exit_code == 0 and "(verified)" not in plain.output, plain.output
    verified = CliRunner().invoke(cli, ["models", "s2-urban", "--verify"])
    assert isinstance(verified.exception, Called) and verified.exception.args_ == ("s2-urban",)


def test_train_budget_minutes_sets_the_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--budget-minutes`` turns the measured samples per second into the number of steps."""
    from changedetect.training.config import TrainConfig

    toml = REPO / "models" / "s2-urban" / "train.toml"
    batch = TrainConfig.from_toml(toml).batch_size
    monkeypatch.setattr("changedetect.training.train.measure_throughput", lambda config: 40.0)
    call = _called(monkeypatch, "changedetect.training.train:train",
                   ["train", str(toml), "--out", str(tmp_path / "run"), "--budget-minutes", "1.5"])
    assert call.args_[0].steps == max(1, int(1.5 * 60 * 40.0 / batch))
    plain = _called(monkeypatch, "changedetect.training.train:train",
                    ["train", str(toml), "--out", str(tmp_path / "run2")])
    assert plain.args_[0].steps == TrainConfig.from_toml(toml).steps
