"""`run` delivers the violation list as GeoJSON and GeoParquet too, when asked: ``[output] geojson`` /
``parquet`` in the configuration, ``--format`` on the command line (the GeoPackage always, the CSV by
default).  Before, `run` wrote violations.gpkg and violations.csv only: a GeoJSON or GeoParquet delivery
needed a second `changedetect match` over the run's footprints."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from click.testing import CliRunner

from changedetect.config import OutputConfig, PipelineConfig
from changedetect.errors import ConfigError, OutputExistsError
from changedetect.testing import make_footprints, make_model, make_permits, make_stack, write_stack

BOTH = {"violations.geojson", "violations.parquet"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("formats")
    stack = make_stack(n_dates=2, size=64, seed=3)
    write_stack(stack, root / "tiles", prefix="district12")
    make_permits(make_footprints(stack).iloc[:1]).to_file(root / "permits.gpkg")
    config = PipelineConfig().with_model(str(make_model(root / "tiny-model")))
    # a random model: any change a footprint, so that the lists have rows to compare
    config = dataclasses.replace(
        config, detect=dataclasses.replace(config.detect, window=64, overlap=8),
        vectorize=dataclasses.replace(config.vectorize, threshold=0.02, low_threshold=0.02),
        output=dataclasses.replace(config.output, report=False))
    toml = root / "run.toml"
    toml.write_text(config.to_toml(), encoding="utf-8")
    return {"root": root, "tiles": root / "tiles", "permits": root / "permits.gpkg", "config": config,
            "toml": toml}


# --- the configuration -------------------------------------------------------------------------------------------


def test_the_default_stays_geopackage_and_csv() -> None:
    assert OutputConfig().formats == ("gpkg", "csv")
    assert PipelineConfig().output.geojson is False and PipelineConfig().output.parquet is False


def test_output_keys_choose_the_formats_and_read_back_from_toml(tmp_path: Path) -> None:
    cfg = PipelineConfig.from_dict({"output": {"geojson": True, "parquet": True, "csv": False}})
    assert cfg.output.formats == ("gpkg", "geojson", "parquet")
    path = tmp_path / "run.toml"
    path.write_text(cfg.to_toml(), encoding="utf-8")
    assert "geojson = true" in path.read_text(encoding="utf-8")
    assert PipelineConfig.from_toml(path) == cfg
    with pytest.raises(ConfigError, match="'output.parquet' must be true or false"):
        PipelineConfig.from_dict({"output": {"parquet": "yes"}})


def test_with_formats_sets_exactly_those_and_names_an_unknown_one() -> None:
    out = OutputConfig().with_formats(["geojson", "PARQUET"])
    assert out.formats == ("gpkg", "geojson", "parquet") and out.csv is False  # exactly those (+ the GeoPackage)
    assert OutputConfig().with_formats(["csv,geojson"]).formats == ("gpkg", "csv", "geojson")  # comma-separated
    assert OutputConfig().with_formats(["gpkg"]).formats == ("gpkg",)
    assert OutputConfig().with_formats([".geoparquet", "json"]).formats == ("gpkg", "geojson", "parquet")
    with pytest.raises(ConfigError) as info:
        OutputConfig().with_formats(["geojson", "shp"])
    message = str(info.value)
    assert "'shp'" in message and "gpkg, csv, geojson, parquet" in message and "\n" not in message


# --- the run -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def all_formats(inputs: dict) -> dict:
    from changedetect.pipeline import run

    config = dataclasses.replace(inputs["config"], output=inputs["config"].output.with_formats(
        ["gpkg", "csv", "geojson", "parquet"]))
    out = inputs["root"] / "all"
    return {"out": out, "summary": run(inputs["tiles"], permits=inputs["permits"], out=out, config=config)}


def test_run_writes_the_geojson_and_geoparquet_lists(all_formats: dict) -> None:
    out, summary = all_formats["out"], all_formats["summary"]
    names = {p.name for p in out.iterdir()}
    assert names >= BOTH | {"violations.gpkg", "violations.csv"}
    assert not [n for n in names if n.startswith(".")], "no staging folder or temporary file left"
    gpkg = gpd.read_file(out / "violations.gpkg", layer="violations")
    assert len(gpkg) >= 1
    info = pyogrio.read_info(out / "violations.geojson")
    assert info["crs"] == "EPSG:4326" and info["features"] == len(gpkg)  # RFC 7946: WGS 84, lon first
    geojson = gpd.read_file(out / "violations.geojson")
    parquet = gpd.read_parquet(out / "violations.parquet")
    assert parquet.crs == gpkg.crs  # GeoParquet keeps the run's own CRS (UTM metres)
    assert sorted(parquet["violation_id"]) == sorted(geojson["violation_id"]) == sorted(gpkg["violation_id"])
    assert parquet.geometry.area.sum() == pytest.approx(gpkg.geometry.area.sum(), rel=1e-6)
    assert summary.paths["violations_geojson"] == out / "violations.geojson"
    assert summary.paths["violations_parquet"] == out / "violations.parquet"


def test_run_json_lists_every_file_written(all_formats: dict) -> None:
    out = all_formats["out"]
    provenance = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert provenance["outputs"]["violations_geojson"] == "violations.geojson"
    assert provenance["outputs"]["violations_parquet"] == "violations.parquet"
    assert provenance["config"]["output"]["geojson"] is True and provenance["config"]["output"]["parquet"] is True
    assert all((out / name).is_file() for name in provenance["outputs"].values())


def test_a_later_run_without_them_removes_the_earlier_runs(all_formats: dict, inputs: dict, tmp_path: Path) -> None:
    from changedetect.pipeline import run

    out = tmp_path / "again"
    config = dataclasses.replace(inputs["config"], output=inputs["config"].output.with_formats(["geojson"]))
    run(inputs["tiles"], permits=inputs["permits"], out=out, config=config)
    assert {"violations.geojson", "violations.gpkg"} <= {p.name for p in out.iterdir()}
    assert not (out / "violations.csv").exists()
    with pytest.raises(OutputExistsError):  # a folder holding such a list holds a run
        run(inputs["tiles"], permits=inputs["permits"], out=out, config=inputs["config"])
    summary = run(inputs["tiles"], permits=inputs["permits"], out=out, config=inputs["config"], overwrite=True)
    names = {p.name for p in out.iterdir()}
    assert not names & BOTH and "violations.csv" in names
    assert "violations_geojson" not in summary.paths
    assert "violations_geojson" not in json.loads((out / "run.json").read_text(encoding="utf-8"))["outputs"]


def test_publish_removes_an_earlier_runs_geojson_and_parquet(tmp_path: Path) -> None:
    from changedetect._pipeline_output import check_out, publish

    out, stage = tmp_path / "out", tmp_path / "out" / ".run.tmp-1"
    stage.mkdir(parents=True)
    for name in ("violations.geojson", "violations.parquet", "run.json", "notes.parquet"):
        (out / name).write_text("old")
    for name in ("violations.gpkg", "run.json"):
        (stage / name).write_text("new")
    publish(stage, out)
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ["notes.parquet", "run.json", "violations.gpkg"]
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "violations.parquet").write_text("old")
    with pytest.raises(OutputExistsError):
        check_out(lone, overwrite=False)


# --- the command line --------------------------------------------------------------------------------------------


def test_cli_format_option_writes_exactly_those(inputs: dict, tmp_path: Path) -> None:
    from changedetect.cli import cli

    out = tmp_path / "cli"
    args = ["-q", "run", str(inputs["tiles"]), "--permits", str(inputs["permits"]), "--out", str(out),
            "--config", str(inputs["toml"])]
    result = CliRunner().invoke(cli, [*args, "--format", "geojson", "--format", "parquet", "--json"])
    assert result.exit_code == 0, result.output
    paths = json.loads(result.output)["paths"]
    assert Path(paths["violations_geojson"]).name == "violations.geojson"
    assert Path(paths["violations_parquet"]).name == "violations.parquet"
    assert "violations_csv" not in paths and "violations" in paths  # exactly those, and the GeoPackage
    text = CliRunner().invoke(cli, [*args, "--format", "csv,geojson", "--overwrite"])
    assert text.exit_code == 0, text.output
    line = next(s for s in text.output.splitlines() if "violations.gpkg" in s)  # one line names the lists
    assert line.strip().startswith("violations: ") and "violations.csv" in line and "violations.geojson" in line
    assert "violations.parquet" not in line and not (out / "violations.parquet").exists()


def test_cli_unknown_format_is_one_line_before_any_work(inputs: dict, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import changedetect.cli as cdcli

    out = tmp_path / "new" / "out"
    cdcli._STATE["debug"] = False
    with pytest.raises(SystemExit) as info:
        cdcli.main(["run", str(inputs["tiles"]), "--permits", str(inputs["permits"]), "--out", str(out),
                    "--config", str(inputs["toml"]), "--format", "shp"])
    err = capsys.readouterr().err
    assert info.value.code == 2
    lines = [s for s in err.splitlines() if s.strip()]
    assert len(lines) == 1 and "'shp'" in lines[0] and "geojson" in lines[0] and "Traceback" not in err
    assert not (tmp_path / "new").exists()


def test_run_help_teaches_format() -> None:
    from changedetect.cli import cli

    result = CliRunner().invoke(cli, ["run", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--format" in text and "geojson" in text and "parquet" in text
    assert "--format geojson --format parquet" in text  # an example
