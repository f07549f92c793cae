"""pipeline.run and `changedetect run`: every output, provenance, overwrite, errors."""

from __future__ import annotations

import dataclasses
import json
import re
import tempfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import rasterio

from changedetect.config import PipelineConfig
from changedetect.errors import ModelError, OutputExistsError
from changedetect.testing import make_footprints, make_model, make_permits, make_stack, write_stack


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("pipeline")
    stack = make_stack(n_dates=3, size=64, seed=3)
    tiles = write_stack(stack, root / "tiles", prefix="district12")
    pair = root / "pair"
    pair.mkdir()
    for p in (tiles[0], tiles[-1]):
        (pair / p.name).write_bytes(p.read_bytes())
    make_permits(make_footprints(stack).iloc[:1]).to_file(root / "permits.gpkg")
    model = make_model(root / "tiny-model")
    config = PipelineConfig().with_model(str(model))
    # a random model: make any change a footprint, so that the chain has something to carry
    config = dataclasses.replace(
        config, detect=dataclasses.replace(config.detect, window=64, overlap=8),
        vectorize=dataclasses.replace(config.vectorize, threshold=0.02, low_threshold=0.02))
    toml = root / "run.toml"
    toml.write_text(config.to_toml(), encoding="utf-8")
    return {"root": root, "tiles": root / "tiles", "pair": pair, "tile_paths": tiles,
            "permits": root / "permits.gpkg", "config": config, "toml": toml}


@pytest.fixture(scope="module")
def series_run(inputs: dict):  # noqa: ANN201
    from changedetect.pipeline import run

    out = inputs["root"] / "out"
    return run(inputs["tiles"], permits=inputs["permits"], out=out, config=inputs["config"])


def test_every_output_is_written(series_run, inputs: dict) -> None:
    from changedetect.pipeline import OUTPUTS

    out = series_run.out
    for key, name in OUTPUTS.items():  # same_season: explicit pairs with a masked same-season pair only
        assert (out / name).is_file() == (key != "same_season"), name
    assert not [p for p in out.iterdir() if p.name.startswith(".")], "no temporary file left"
    assert series_run.n_footprints >= 1
    assert sum(series_run.counts.values()) == series_run.n_footprints
    summary = series_run.to_dict()
    json.dumps(summary)
    assert summary["dates"] == ["2024-01-15", "2024-03-15", "2024-05-14"]
    assert set(summary["timings_s"]) == {"open", "coregister", "detect", "vectorize", "match", "write", "report"}


def test_run_json_provenance(series_run, inputs: dict) -> None:
    from changedetect import __version__
    from changedetect._state import sha256_file

    run = json.loads((series_run.out / "run.json").read_text(encoding="utf-8"))
    assert run["changedetect_version"] == __version__
    assert run["model"]["name"] == "tiny-model" and len(run["model"]["sha256"]) == 64
    tiles = {Path(t["path"]).name: t["sha256"] for t in run["inputs"]["tiles"]}
    assert tiles == {p.name: sha256_file(p) for p in inputs["tile_paths"]}
    assert run["inputs"]["permits"]["sha256"] == sha256_file(inputs["permits"])
    assert run["config"] == inputs["config"].to_dict()
    # only what was written is listed (no same-season pair here: no same_season_change.tif)
    assert "same_season" not in run["outputs"] and run["same_sun_dropped"] == 0
    assert PipelineConfig.from_dict(run["config"]) == inputs["config"]
    assert run["dates"] == series_run.dates and run["counts"] == series_run.counts
    # footprints traced from pixels: matching allows one pixel of positional tolerance
    res = abs(rasterio.open(inputs["tile_paths"][0]).res[0])
    assert run["config"]["match"]["edge_tolerance_m"] is None
    assert run["effective"]["match.edge_tolerance_m"] == pytest.approx(res)


def test_violations_and_report_agree(series_run) -> None:
    import geopandas as gpd

    from changedetect.io.qgis_style import read_default_style
    from changedetect.report import violations_qml

    violations = gpd.read_file(series_run.out / "violations.gpkg", layer="violations")
    assert len(violations) == series_run.n_footprints
    # it opens in QGIS coloured by status (tests/io/test_qgis_style.py)
    assert read_default_style(series_run.out / "violations.gpkg", "violations") == violations_qml()
    assert {"violation_id", "status", "reason", "permit_ids", "address"} <= set(violations.columns)
    assert violations["first_seen"].notna().all()
    html = (series_run.out / "report.html").read_text(encoding="utf-8")
    cards = re.findall(r'<section class="card status-', html)
    assert len(cards) == series_run.n_violations
    csv = (series_run.out / "violations.csv").read_text(encoding="utf-8")
    assert csv.count("\n") == len(violations) + 1


def test_refuses_to_overwrite_a_run(series_run, inputs: dict) -> None:
    from changedetect.pipeline import run

    with pytest.raises(OutputExistsError, match="overwrite"):
        run(inputs["tiles"], permits=inputs["permits"], out=series_run.out, config=inputs["config"])


def test_a_run_that_fails_midway_leaves_the_earlier_run_as_it_was(
        series_run, inputs: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from changedetect import pipeline
    from changedetect.pipeline import run

    out = tmp_path / "rerun"
    shutil.copytree(series_run.out, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken_report(*args: object, **kwargs: object) -> None:  # fails after every other output is written
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "write_report", broken_report, raising=False)
    import changedetect.report as report_mod

    monkeypatch.setattr(report_mod, "write_report", broken_report)
    with pytest.raises(KeyboardInterrupt):
        run(inputs["tiles"], permits=inputs["permits"], out=out, config=inputs["config"], overwrite=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # not a file changed, none added
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rerun"]  # no staging folder left
    monkeypatch.undo()
    # a failed first run leaves no empty folder behind
    with pytest.raises(KeyboardInterrupt):
        monkeypatch.setattr(report_mod, "write_report", broken_report)
        run(inputs["tiles"], permits=inputs["permits"], out=tmp_path / "new", config=inputs["config"])
    assert not (tmp_path / "new").exists()


def test_an_output_folder_on_another_filesystem(inputs: dict, tmp_path: Path) -> None:
    """OUT a symlink (or a mount) onto another filesystem: the staging folder is inside OUT, so
    moving the outputs in is a rename, never a cross-device move (which failed and lost the run)."""
    import os
    import shutil

    from changedetect.pipeline import OUTPUTS, run

    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second filesystem (/dev/shm) beside the temporary folder here")
    target = Path(tempfile.mkdtemp(prefix="cd-out-", dir=shm))
    try:
        (tmp_path / "out").symlink_to(target)
        run(inputs["tiles"], permits=inputs["permits"], out=tmp_path / "out", config=inputs["config"])
        csv_sides = {"violations.prj", "violations.csvt"}  # the CSV's CRS and field types, for GDAL
        assert {p.name for p in target.iterdir()} == set(OUTPUTS.values()) - {OUTPUTS["same_season"]} | csv_sides
        (target / "stale.run").mkdir()
        (target / ".run.tmp-killed").mkdir()  # a killed run's staging folder: removed by the next
        run(inputs["tiles"], permits=inputs["permits"], out=tmp_path / "out", config=inputs["config"],
            overwrite=True)
        assert sorted(p.name for p in target.iterdir() if p.name.startswith(".")) == []
    finally:
        shutil.rmtree(target, ignore_errors=True)


def test_a_lenient_run_sets_bad_permits_aside_and_a_later_run_clears_them(inputs: dict, tmp_path: Path) -> None:
    import geopandas as gpd
    import pandas as pd

    from changedetect.config import PermitsConfig
    from changedetect.pipeline import REJECTS, run

    good = gpd.read_file(inputs["permits"])
    bad_row = good.iloc[:1].assign(permit_id="P-bad", issued_on="15/03/2024")
    bad = gpd.GeoDataFrame(pd.concat([good, bad_row], ignore_index=True), crs=good.crs)
    bad.to_file(tmp_path / "bad.gpkg")
    lenient = dataclasses.replace(inputs["config"], permits=PermitsConfig(strict=False))
    out = tmp_path / "out"
    run(inputs["tiles"], permits=tmp_path / "bad.gpkg", out=out, config=lenient)
    assert gpd.read_file(out / REJECTS)["permit_id"].tolist() == ["P-bad"]
    run(inputs["tiles"], permits=inputs["permits"], out=out, config=inputs["config"], overwrite=True)
    assert not (out / REJECTS).exists()  # nothing rejected this time: the old file would mislead


def test_a_pair_fills_first_seen_with_the_after_date(inputs: dict, tmp_path: Path) -> None:
    import geopandas as gpd

    from changedetect.pipeline import run

    out = tmp_path / "pair_out"
    (out).mkdir()
    (out / "run.json").write_text("{}")  # an earlier run: needs overwrite
    (out / "first_seen.tif").write_text("stale")  # from an earlier series run: removed
    summary = run(inputs["pair"], permits=inputs["permits"], out=out, config=inputs["config"], overwrite=True)
    assert summary.dates == ["2024-01-15", "2024-05-14"]
    assert not (out / "first_seen.tif").exists() and "first_seen" not in summary.paths
    fp = gpd.read_file(out / "footprints.gpkg")
    assert (fp["first_seen"].astype(str).str[:10] == "2024-05-14").all()


def test_missing_model_is_a_model_error_before_any_output(inputs: dict, tmp_path: Path) -> None:
    from changedetect.pipeline import run

    config = inputs["config"].with_model(str(tmp_path / "no-such-model"))
    with pytest.raises(ModelError, match="no-such-model"):
        run(inputs["tiles"], permits=inputs["permits"], out=tmp_path / "out", config=config)
    assert not (tmp_path / "out").exists()  # nothing written, not even the folder


def test_cli_run_json_and_text(inputs: dict, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from changedetect.cli import cli, main

    out = tmp_path / "cli_out"
    args = ["run", str(inputs["pair"]), "--permits", str(inputs["permits"]), "--out", str(out),
            "--config", str(inputs["toml"])]
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["paths"]["report"].endswith("report.html") and "counts" in summary
    again = CliRunner().invoke(cli, ["-q", *args, "--overwrite"])
    assert again.exit_code == 0, again.output
    assert "violations:" in again.output and "report:" in again.output
    with pytest.raises(SystemExit) as info:
        main([*args, "--model", "no-such-model", "--overwrite"])
    assert info.value.code == 2


def test_cli_report_from_a_run_dir(series_run) -> None:
    from click.testing import CliRunner

    from changedetect.cli import cli

    out = series_run.out / "again.html"
    result = CliRunner().invoke(cli, ["report", str(series_run.out), "--out", str(out), "--title", "Quận 12"])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "<title>Quận 12</title>" in html
    assert html.count('<section class="card status-') == series_run.n_violations
    assert "2024-01-15" in html and "tiny-model" in html  # run.json's facts in the header


def test_previous_footprints_keep_their_ids(series_run, inputs: dict, tmp_path: Path) -> None:
    """An earlier run's footprints (here renamed and grown by 0.5 m) lend their ids by overlap."""
    import geopandas as gpd

    from changedetect._state import sha256_file
    from changedetect.pipeline import run

    earlier = gpd.read_file(series_run.out / "footprints.gpkg")
    assert len(earlier) >= 1
    earlier["footprint_id"] = [f"F-earlier-{k}" for k in range(len(earlier))]
    earlier["geometry"] = earlier.geometry.buffer(0.5, join_style="mitre")
    prev_path = tmp_path / "earlier.gpkg"
    earlier.to_crs(4326).to_file(prev_path)  # another CRS than the run's
    summary = run(inputs["pair"], permits=inputs["permits"], out=tmp_path / "next", config=inputs["config"],
                  previous=prev_path)
    now = gpd.read_file(tmp_path / "next" / "footprints.gpkg")
    inter = gpd.overlay(now[["footprint_id", "geometry"]], earlier[["footprint_id", "geometry"]],
                        how="intersection", keep_geom_type=True)
    best = {}
    for _, row in inter.iterrows():
        a = now.geometry[now["footprint_id"] == row["footprint_id_1"]].iat[0]
        b = earlier.geometry[earlier["footprint_id"] == row["footprint_id_2"]].iat[0]
        best[row["footprint_id_1"]] = max(best.get(row["footprint_id_1"], 0.0), row.geometry.area / a.union(b).area)
    well = [fid for fid, v in best.items() if v >= 0.5]
    assert well, "the pair run finds at least one of the series run's footprints again"
    assert all(fid.startswith("F-earlier-") for fid in well)
    assert summary.carried_ids == int(now["footprint_id"].str.startswith("F-earlier-").sum()) >= len(well)
    provenance = json.loads((tmp_path / "next" / "run.json").read_text(encoding="utf-8"))
    assert provenance["inputs"]["previous_footprints"]["sha256"] == sha256_file(prev_path)
    assert provenance["inputs"]["previous_footprints"]["carried_ids"] == summary.carried_ids
    assert series_run.carried_ids is None


def test_cli_run_previous_folder(series_run, inputs: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from click.testing import CliRunner

    from changedetect.cli import cli

    args = ["run", str(inputs["tiles"]), "--permits", str(inputs["permits"]), "--out", str(tmp_path / "again"),
            "--config", str(inputs["toml"]), "--previous", str(series_run.out), "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["carried_ids"] == summary["n_footprints"] == series_run.n_footprints  # the same inputs again
    from changedetect.cli import main

    capsys.readouterr()
    written = (tmp_path / "again" / "violations.gpkg").stat().st_mtime_ns
    with pytest.raises(SystemExit) as exited:  # what the console script does: one line, exit 2, no output
        main([*args[:-3], "--previous", str(tmp_path), "--overwrite"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert exited.value.code == 2 and "Traceback" not in err
    assert len(errors) == 1 and errors[0].startswith("Error: previous footprints: folder")
    assert "footprints.gpkg" in errors[0]
    assert (tmp_path / "again" / "violations.gpkg").stat().st_mtime_ns == written  # refused before any output


def test_register_to_aligns_on_a_date_then_leaves_it_out(inputs: dict, tmp_path: Path) -> None:
    import geopandas as gpd

    from changedetect.errors import ConfigError
    from changedetect.pipeline import run

    dates = [p.stem.split("_")[-1] for p in inputs["tile_paths"]]
    first = f"{dates[0][:4]}-{dates[0][4:6]}-{dates[0][6:]}"
    out = tmp_path / "registered"
    summary = run(inputs["tiles"], permits=inputs["permits"], out=out, config=inputs["config"], register_to=first)
    assert first not in summary.dates and len(summary.dates) == 2  # compared: the two later dates only
    report = json.loads((out / "coregistration.json").read_text())
    assert report["reference"] == first  # ... both aligned onto the first date's grid
    assert not (out / "first_seen.tif").exists()  # a pair
    fp = gpd.read_file(out / "footprints.gpkg")
    assert (fp["first_seen"].astype(str).str[:10] == summary.dates[-1]).all()
    with pytest.raises(ConfigError, match="registration only"):
        run(inputs["pair"], permits=inputs["permits"], out=tmp_path / "two", config=inputs["config"],
            register_to=first)


def _constant_segmenter(folder: Path, logit: float) -> Path:
    """A stand-in building segmenter that says ``sigmoid(logit)`` everywhere."""
    import torch

    from changedetect.testing import make_model
    from changedetect.weights import load_model, save_model

    make_model(folder)
    seg = load_model(folder, fold_bn=False, channels_last=False)
    last = seg.module.head[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(logit)
    save_model(seg.module, seg.card, folder)
    return folder


def test_change_type_from_the_models_building_stage(series_run, inputs: dict, tmp_path: Path) -> None:
    import shutil

    import geopandas as gpd

    from changedetect.errors import ConfigError
    from changedetect.pipeline import run

    plain = json.loads((inputs["root"] / "out" / "run.json").read_text())
    assert plain["effective"]["vectorize.change_type_model"] is None  # the tiny model has no buildings/ stage
    model = Path(inputs["config"].detect.model)
    staged = tmp_path / "staged-model"
    shutil.copytree(model, staged)
    _constant_segmenter(staged / "buildings", 8.0)  # "a building everywhere, on both dates": altered
    config = inputs["config"].with_model(str(staged))
    run(inputs["pair"], permits=inputs["permits"], out=tmp_path / "auto", config=config)
    used = json.loads((tmp_path / "auto" / "run.json").read_text())["effective"]["vectorize.change_type_model"]
    assert used["name"] == "buildings" and len(used["sha256"]) == 64
    kinds = gpd.read_file(tmp_path / "auto" / "footprints.gpkg")["change_type"]
    assert len(kinds) and set(kinds) == {"altered"}
    off = dataclasses.replace(config, vectorize=dataclasses.replace(config.vectorize, change_type_model=""))
    run(inputs["pair"], permits=inputs["permits"], out=tmp_path / "off", config=off)
    assert json.loads((tmp_path / "off" / "run.json").read_text())["effective"]["vectorize.change_type_model"] is None
    assert set(gpd.read_file(tmp_path / "off" / "footprints.gpkg")["change_type"]) != {"altered"}
    # the change model itself is refused, before any output
    itself = dataclasses.replace(config, vectorize=dataclasses.replace(config.vectorize, change_type_model=str(staged)))
    with pytest.raises(ConfigError, match="change model itself"):
        run(inputs["pair"], permits=inputs["permits"], out=tmp_path / "itself", config=itself)
    assert not (tmp_path / "itself").exists()


def test_run_applies_the_presence_check_on_same_season_dates_and_reuses_its_rasters(
        inputs: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The wiring of the check in `run` (the rule itself: tests/test_presence.py): a two-date run
    on same-season dates applies it and says so in the probability's tags; each date's building
    raster is computed once, for the check and for change_type; switched off, only change_type
    asks for them."""
    import shutil

    import numpy as np

    from changedetect import presence
    from changedetect.pipeline import run

    staged = tmp_path / "staged-model"
    shutil.copytree(Path(inputs["config"].detect.model), staged)
    _constant_segmenter(staged / "buildings", 8.0)
    config = inputs["config"].with_model(str(staged))
    tiles = tmp_path / "jan-jan"
    write_stack(make_stack(size=64, seed=3, dates=["2024-01-15", "2025-01-20"]), tiles, prefix="district12")
    calls: list[str] = []
    real = presence.building_presence

    def counted(date, segmenter, cfg, progress=False):  # noqa: ANN001, ANN202
        calls.append(str(date["time"].values)[:10] if "time" in date.coords else "?")
        return real(date, segmenter, cfg, progress)

    def confirm_a_square(before, after, prob, **kwargs):  # noqa: ANN001, ANN003, ANN202
        out = np.asarray(prob, dtype=np.float32).copy()
        out[20:40, 20:40] = 0.9
        return out

    monkeypatch.setattr(presence, "building_presence", counted)
    monkeypatch.setattr(presence, "confirmed_change", confirm_a_square)
    run(tiles, permits=inputs["permits"], out=tmp_path / "on", config=config)
    with rasterio.open(tmp_path / "on" / "change_probability.tif") as src:
        tags, prob = src.tags(), src.read(1)
    assert tags["presence_check"].startswith("buildings ") and (prob[20:40, 20:40] >= 0.9).all()
    assert sorted(calls) == ["2024-01-15", "2025-01-20"]  # once each: the check's, reused for change_type
    calls.clear()
    off = dataclasses.replace(config, detect=dataclasses.replace(config.detect, presence_check=False))
    run(tiles, permits=inputs["permits"], out=tmp_path / "off", config=off)
    with rasterio.open(tmp_path / "off" / "change_probability.tif") as src:
        assert "presence_check" not in src.tags() and not (src.read(1)[20:40, 20:40] >= 0.9).all()
    assert sorted(calls) == ["2024-01-15", "2025-01-20"]  # change_type only


def test_register_to_keeps_the_pairs_own_grid(inputs: dict, tmp_path: Path) -> None:
    from changedetect.pipeline import run

    small = write_stack(make_stack(n_dates=1, size=32, seed=3), tmp_path / "ref", prefix="district12")[0]
    ref_date = "2024-01-15"
    pair = inputs["tile_paths"][1:]
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps([{"path": str(small), "date": ref_date}] + [
        {"path": str(p), "date": f"{p.stem[-8:-4]}-{p.stem[-4:-2]}-{p.stem[-2:]}"} for p in pair]))
    out = tmp_path / "out"
    summary = run(manifest, permits=inputs["permits"], out=out, config=inputs["config"], register_to=ref_date)
    assert ref_date not in summary.dates
    with rasterio.open(out / "change_probability.tif") as src, rasterio.open(pair[0]) as first:
        assert (src.width, src.height) == (first.width, first.height) == (64, 64)  # not the 32 px reference's
        assert src.transform.almost_equals(first.transform)


def test_explicit_pairs_compare_only_those_and_start_at_the_first_before(inputs: dict) -> None:
    """The nightly job's call: (previous, new) and a partner (earlier, new); later stages from `previous`."""
    from changedetect.errors import ConfigError
    from changedetect.pipeline import run

    pairs = [("2024-03-15", "2024-05-14"), ("2024-01-15", "2024-05-14")]
    out = inputs["root"] / "out-pairs"
    config = inputs["config"]  # the random model's probabilities are low: first_seen from 0.02 up
    config = dataclasses.replace(config, detect=dataclasses.replace(config.detect, threshold=0.02))
    summary = run(inputs["tiles"], permits=inputs["permits"], out=out, config=config, pairs=pairs)
    doc = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert doc["effective"]["detect.pairs"] == "2024-03-15/2024-05-14;2024-01-15/2024-05-14"
    assert summary.dates == ["2024-03-15", "2024-05-14"]
    with rasterio.open(out / "first_seen.tif") as src:  # every change is first seen on the AFTER date
        days = src.read(1)
    seen = days[days == days]
    assert seen.size and set(seen.astype(int).tolist()) == {19857}  # 2024-05-14
    with pytest.raises(ConfigError, match=r"2023-01-01.*not in the series"):
        run(inputs["tiles"], permits=inputs["permits"], out=inputs["root"] / "out-bad", config=inputs["config"],
            pairs=[("2023-01-01", "2024-05-14")])
    with pytest.raises(ConfigError, match="before earlier than after"):
        run(inputs["tiles"], permits=inputs["permits"], out=inputs["root"] / "out-bad", config=inputs["config"],
            pairs=[("2024-05-14", "2024-03-15")])
    # the later stages stop at the last date a pair compares, and start at the first pair's BEFORE
    early = run(inputs["tiles"], permits=inputs["permits"], out=inputs["root"] / "out-early", config=config,
                pairs=[("2024-01-15", "2024-03-15")])
    assert early.dates == ["2024-01-15", "2024-03-15"]
    # a pair that skips a date: the last image without a change is its BEFORE date, not the date
    # between that nothing compared
    skip_out = inputs["root"] / "out-skip"
    run(inputs["tiles"], permits=inputs["permits"], out=skip_out, config=config,
        pairs=[("2024-01-15", "2024-05-14"), ("2024-01-15", "2024-03-15")])
    skipped = gpd.read_file(skip_out / "footprints.gpkg")
    late = skipped[pd.to_datetime(skipped["first_seen"]).dt.date.astype(str) == "2024-05-14"]
    assert len(late) and set(pd.to_datetime(late["before_date"]).dt.date.astype(str)) == {"2024-01-15"}
    # also with two pairs (the series path): a later date no pair compares is not the AFTER image
    later = inputs["root"] / "later.json"
    later.write_text(json.dumps([{"path": str(p), "date": d} for p, d in zip(
        [*inputs["tile_paths"], inputs["tile_paths"][0]], ["2024-01-15", "2024-03-15", "2024-05-14", "2024-09-01"],
        strict=True)]))
    two = run(later, permits=inputs["permits"], out=inputs["root"] / "out-two", config=config, pairs=pairs)
    assert two.dates == ["2024-03-15", "2024-05-14"]


def test_explicit_pairs_keep_the_first_pairs_before_grid(inputs: dict, tmp_path: Path) -> None:
    """Without register_to too, the run is on the first pair's BEFORE grid, not the first date's."""
    from changedetect.pipeline import run

    small = write_stack(make_stack(n_dates=1, size=32, seed=3), tmp_path / "early", prefix="district12")[0]
    later = inputs["tile_paths"][1:]
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps([{"path": str(small), "date": "2023-12-01"}] + [
        {"path": str(p), "date": d} for p, d in zip(later, ["2024-03-15", "2024-05-14"], strict=True)]))
    out = tmp_path / "out"
    summary = run(manifest, permits=inputs["permits"], out=out, config=inputs["config"],
                  pairs=[("2024-03-15", "2024-05-14"), ("2023-12-01", "2024-05-14")])
    assert summary.dates == ["2024-03-15", "2024-05-14"]
    with rasterio.open(out / "change_probability.tif") as src, rasterio.open(later[0]) as first:
        assert (src.width, src.height) == (first.width, first.height) == (64, 64)  # not the 32 px first date's
        assert src.transform.almost_equals(first.transform)


def test_a_masked_same_season_pair_leaves_its_decisions_for_the_nightly_job(inputs: dict, tmp_path: Path) -> None:
    """The nightly call: (previous, new) and (partner, new), masking (partner, previous)."""
    import numpy as np

    from changedetect.pipeline import OUTPUTS, run

    stack = make_stack(dates=["2024-01-15", "2024-07-12", "2025-01-20"], size=64, seed=5)
    tiles = write_stack(stack, tmp_path / "tiles", prefix="d1")
    out = tmp_path / "out"
    summary = run(tmp_path / "tiles", permits=inputs["permits"], out=out, config=inputs["config"],
                  pairs=[("2024-07-12", "2025-01-20"), ("2024-01-15", "2025-01-20")],
                  mask_pairs=[("2024-01-15", "2024-07-12")])
    assert len(tiles) == 3 and isinstance(summary.same_sun_dropped, int)
    with rasterio.open(out / OUTPUTS["same_season"]) as src:
        values = src.read(1)
        assert src.dtypes[0] == "uint8" and src.nodata == 255 and src.tags()["PAIR"] == "2024-01-15/2025-01-20"
        assert set(np.unique(values)) <= {0, 1, 255} and src.shape == (64, 64)
    run_json = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run_json["outputs"]["same_season"] == OUTPUTS["same_season"]
    assert run_json["same_sun_dropped"] == summary.same_sun_dropped
