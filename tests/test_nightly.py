"""The nightly job: incremental, idempotent, crash-safe (SIGKILL), locked.

A catalog of two areas (tiny generated scenes, one date per simulated night)
is processed night after night.  The reference is an uninterrupted run; the
crash trials kill the CLI with SIGKILL at every checkpoint of a night and at
random moments, rerun it, finish the remaining nights and compare every output
with the reference.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from changedetect._state import KILL_ENV, state_lock
from changedetect.errors import EXIT_LOCKED, LockedError
from changedetect.testing import (
    make_footprints,
    make_one_band,
    make_permits,
    make_stack,
    write_stack,
)

NIGHTS = ["2024-01-16", "2024-03-16", "2024-05-15"]
AREAS = {"district1": 1, "district3": 2}


def _model(root: Path) -> str:
    """A tiny random model: what is tested is the bookkeeping, which must not depend on the
    weights that happen to ship; with the low vectorise thresholds below, every pair gives a
    footprint, so every night has violations to carry (and to deduplicate)."""
    from changedetect.testing import make_model

    return str(make_model(root / "tiny-model", threshold=0.02))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("nightly")
    full = root / "all_dates"
    for area, seed in AREAS.items():
        write_stack(make_stack(n_dates=3, size=64, seed=seed), full / area, prefix=area)
    register = make_permits(make_footprints(make_stack(n_dates=3, size=64)).iloc[:1])
    register.to_file(root / "permits.gpkg")
    model = _model(root)
    config = root / "nightly.toml"
    text = (f'[detect]\nmodel = "{model}"\nwindow = 64\noverlap = 8\n'
            "[vectorize]\nthreshold = 0.02\nlow_threshold = 0.02\n")
    config.write_text(text, encoding="utf-8")
    world = {"root": root, "full": full, "permits": root / "permits.gpkg", "config": config}
    ref = root / "reference"
    for night in NIGHTS:
        _arrive(world, ref / "catalog", night)
        _run_in_process(world, ref, night)
        shutil.copytree(ref, root / f"after-{night}")
    world["reference"] = _outputs(ref)
    world["after-night-2"] = _outputs(root / f"after-{NIGHTS[1]}")
    return world


def _arrive(world: dict, catalog: Path, night: str) -> None:
    """Copy the acquisitions dated on or before ``night`` into the catalog (as a data feed would)."""
    for area in AREAS:
        (catalog / area).mkdir(parents=True, exist_ok=True)
        for f in sorted((world["full"] / area).iterdir()):
            if f.stem.split("_")[-1] <= night.replace("-", "") and not (catalog / area / f.name).exists():
                shutil.copy(f, catalog / area / f.name)


def _run_in_process(world: dict, base: Path, night: str):  # noqa: ANN202
    from changedetect.config import PipelineConfig
    from changedetect.nightly import run_nightly

    return run_nightly(base / "catalog", permits=world["permits"], state=base / "state", out=base / "out",
                       night=night, workers=2, config=PipelineConfig.from_toml(world["config"]))


def _cli(world: dict, base: Path, night: str, **env: str) -> list[str]:
    return [sys.executable, "-m", "changedetect.cli", "nightly", "--catalog", str(base / "catalog"),
            "--permits", str(world["permits"]), "--state", str(base / "state"), "--out", str(base / "out"),
            "--night", night, "--config", str(world["config"]), "--json"]


def _outputs(base: Path) -> dict:
    """Every output, in comparable form: the gpkg/csv contents and the committed state."""
    import geopandas as gpd

    out = {}
    for f in sorted((base / "out").iterdir()):
        if f.name.startswith("."):
            out[f.name] = "LEFTOVER TEMPORARY FILE"
        elif f.suffix == ".gpkg":
            gdf = gpd.read_file(f, layer=f.stem)
            out[f.name] = (list(gdf.columns), gdf.drop(columns="geometry").astype(str).values.tolist(),
                           [g.wkt for g in gdf.geometry])
        else:
            out[f.name] = f.read_text(encoding="utf-8")
    state = json.loads((base / "state" / "state.json").read_text())
    kept = base / "state" / f"footprints-{state['generation']:06d}.parquet"
    fp = gpd.read_parquet(kept)
    out["state.footprints"] = (list(fp.columns), fp.drop(columns="geometry").astype(str).values.tolist(),
                               [g.wkt for g in fp.geometry])
    out["state.acquisitions"] = {a: {k: {kk: vv for kk, vv in v.items() if kk != "path"} for k, v in acq.items()}
                                 for a, acq in state["acquisitions"].items()}
    out["state.generation"] = state["generation"]
    return out


def test_reference_run_finds_new_violations_each_night(world: dict) -> None:
    ref = world["reference"]
    assert ref["open_violations.gpkg"][1], "the reference run found violations to carry"
    assert set(ref) >= {f"violations-{n}.gpkg" for n in NIGHTS} | {"open_violations.gpkg"}
    cols, rows, _ = ref["open_violations.gpkg"]
    assert cols[:3] == ["violation_id", "area", "night"]
    from changedetect.io.qgis_style import read_default_style

    assert read_default_style(world["root"] / "reference" / "out" / "open_violations.gpkg", "open_violations"), \
        "the register opens in QGIS coloured by status"
    work = world["root"] / "reference" / "state" / "work"
    assert not [p for p in work.glob("*") if p.is_dir() and not any(p.iterdir())], "no empty area folders left"
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)), "violation ids are unique"
    for night in NIGHTS:
        tonight = [r for r in rows if r[2] == night]
        assert len(world["reference"][f"violations-{night}.gpkg"][1]) == len(tonight)
    assert not [r for r in rows if r[2] == NIGHTS[0]], "the first night only sets the baseline"
    for area in AREAS:  # the inspectors' report of each area with news, one card per new violation
        html = ref[f"report-{NIGHTS[1]}-{area}.html"]
        assert html.count('<section class="card') == sum(r[1] == area and r[2] == NIGHTS[1] for r in rows)
    assert len(ref["state.acquisitions"]["district1"]) == 3


def test_second_run_adds_nothing(world: dict, tmp_path: Path) -> None:
    base = tmp_path / "again"
    shutil.copytree(world["root"] / f"after-{NIGHTS[-1]}", base)
    summary = _run_in_process(world, base, NIGHTS[-1])
    assert summary.new_acquisitions == 0 and summary.pairs == 0 and summary.new_violations == 0
    assert _outputs(base) == world["reference"]


def test_lock_refuses_a_second_run(world: dict, tmp_path: Path) -> None:
    base = tmp_path / "locked"
    shutil.copytree(world["root"] / f"after-{NIGHTS[0]}", base)
    with state_lock(base / "state"):
        with pytest.raises(LockedError, match="holds the lock"):
            _run_in_process(world, base, NIGHTS[1])
        result = subprocess.run(_cli(world, base, NIGHTS[1]), capture_output=True, text=True, timeout=120)
    assert result.returncode == EXIT_LOCKED, result.stderr
    assert "lock" in result.stderr


def _trial(world: dict, tmp_path: Path, name: str, *, kill_at: int | None = None,
           delay: float | None = None) -> dict:
    """Night 2 killed (at a checkpoint or after ``delay`` seconds), then rerun."""
    base = tmp_path / name
    shutil.copytree(world["root"] / f"after-{NIGHTS[0]}", base)
    _arrive(world, base / "catalog", NIGHTS[1])
    env = dict(os.environ)
    if kill_at is not None:
        env[KILL_ENV] = str(kill_at)
    proc = subprocess.Popen(_cli(world, base, NIGHTS[1]), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    if delay is not None:
        try:  # killed at ``delay`` if still running; a run done sooner is not waited for to the end of it
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=180)
    if kill_at is not None:
        assert proc.returncode == -signal.SIGKILL, f"not killed at checkpoint {kill_at}: {err[-800:]}"
    _run_in_process(world, base, NIGHTS[1])  # the next run finishes the night
    return _outputs(base)


#: checkpoints of night 2: planned, 2 pairs, generation, night gpkg, night csv, outputs, reports, committed
N_CHECKPOINTS = 9


@pytest.mark.parametrize("kill_at", range(1, N_CHECKPOINTS + 1))
def test_sigkill_at_each_checkpoint_then_rerun_gives_the_reference(world: dict, tmp_path: Path,
                                                                  kill_at: int) -> None:
    assert _trial(world, tmp_path, f"kill{kill_at}", kill_at=kill_at) == world["after-night-2"]


@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_at_a_random_moment_then_rerun_gives_the_reference(world: dict, tmp_path: Path,
                                                                   seed: int) -> None:
    delay = random.Random(seed).uniform(1.0, 8.0)
    assert _trial(world, tmp_path, f"timer{seed}", delay=delay) == world["after-night-2"]


@pytest.fixture
def dask_cluster(tmp_path: Path):  # noqa: ANN201
    """A separately started `dask scheduler` and two `dask worker` processes on localhost."""
    dask_exe = Path(sys.executable).parent / "dask"
    if not dask_exe.exists():
        pytest.skip("the `dask` command is absent from this environment")
    info = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([str(dask_exe), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(info)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        procs += [subprocess.Popen([str(dask_exe), "worker", address, "--nworkers", "1", "--nthreads", "1",
                                    "--no-dashboard", "--local-directory", str(tmp_path / f"w{i}")],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(2)]
        from dask.distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        # the workers first, and gone, before the scheduler: a worker whose scheduler went first waits
        # for it to come back (8 s of the teardown)
        for group in (procs[1:], procs[:1]):
            for p in group:
                p.terminate()
            for p in group:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()


def test_external_scheduler_gives_the_same_result(world: dict, dask_cluster: str, tmp_path: Path) -> None:
    base = tmp_path / "ext"
    shutil.copytree(world["root"] / f"after-{NIGHTS[0]}", base)
    _arrive(world, base / "catalog", NIGHTS[1])
    result = subprocess.run([*_cli(world, base, NIGHTS[1]), "--scheduler", dask_cluster],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["pairs"] == len(AREAS)
    assert _outputs(base) == world["after-night-2"]


def test_discover_groups_areas_and_reads_stac_items(tmp_path: Path) -> None:
    from changedetect.nightly import discover, plan_pairs

    stack = make_stack(n_dates=3, size=32, seed=5)
    paths = write_stack(stack, tmp_path / "cat", prefix="district12")  # files at the catalog's root
    cogs = write_stack(stack, tmp_path / "cogs", prefix="scene")
    (tmp_path / "cat" / "district7").mkdir()
    for i, cog in enumerate(cogs[:2]):
        item = {"type": "Feature", "stac_version": "1.0.0", "id": f"d7-{i}",
                "properties": {"datetime": f"2024-0{i + 1}-20T03:15:00Z"},
                "assets": {"visual": {"href": f"../../cogs/{cog.name}", "roles": ["data"],
                                      "type": "image/tiff; application=geotiff; profile=cloud-optimized"}}}
        (tmp_path / "cat" / "district7" / f"item{i}.json").write_text(json.dumps(item))
    (tmp_path / "cat" / ".district12_20990101.tif.tmp").write_bytes(b"partial")  # hidden: ignored
    found = discover(tmp_path / "cat")
    assert sorted(found) == ["district12", "district7"]
    assert [q.date for q in found["district12"]] == ["2024-01-15", "2024-03-15", "2024-05-14"]
    assert [q.date for q in found["district7"]] == ["2024-01-20", "2024-02-20"]
    assert Path(found["district7"][0].path) == cogs[0].resolve()
    assert [q.date for q in discover(tmp_path / "cat", night="2024-03-15")["district12"]] == [
        "2024-01-15", "2024-03-15"]
    # the state knows the first date: the two others are new, each paired with its predecessor
    acqs = found["district12"]
    new, pairs = plan_pairs(acqs, {acqs[0].sha256: {"date": acqs[0].date}})
    assert [q.date for q in new] == ["2024-03-15", "2024-05-14"]
    assert [(a.date, b.date) for a, b in pairs] == [("2024-01-15", "2024-03-15"), ("2024-03-15", "2024-05-14")]
    assert paths[0].name == "district12_20240115.tif"


def test_an_unreadable_new_acquisition_is_left_out_and_its_area_goes_on(world: dict, tmp_path: Path) -> None:
    """A new acquisition that fails the cheap read is reported, left out of the pairs and committed
    (not retried night after night); a good copy is a new acquisition, processed the next run, and
    then the night's outputs are the uninterrupted run's.  The state is one written before
    references were pinned: both areas pin theirs."""
    base = tmp_path / "bad"
    shutil.copytree(world["root"] / f"after-{NIGHTS[0]}", base)
    state_file = base / "state" / "state.json"
    old = json.loads(state_file.read_text())
    assert set(old.pop("references")) == set(AREAS)  # pinned on the first night (the baseline)
    state_file.write_text(json.dumps(old))
    _arrive(world, base / "catalog", NIGHTS[1])
    bad = base / "catalog" / "district3" / "district3_20240315.tif"
    good = bad.read_bytes()
    bad.write_bytes(b"not a GeoTIFF")
    summary = _run_in_process(world, base, NIGHTS[1])
    assert summary.failed == {} and summary.pairs == 1  # district1's pair; district3 has none tonight
    assert [w for w in summary.warnings if "district3_20240315" in w and "left out" in w] == summary.warnings
    state = json.loads(state_file.read_text())
    assert len(state["acquisitions"]["district1"]) == 2 and len(state["acquisitions"]["district3"]) == 2
    assert [(a, r["date"]) for a, r in sorted(state["references"].items())] == [
        ("district1", "2024-01-15"), ("district3", "2024-01-15")]
    again = _run_in_process(world, base, NIGHTS[1])  # nothing new: the bad file is not retried
    assert again.pairs == 0 and again.warnings == []
    bad.write_bytes(good)  # the feed delivers the file again
    third = _run_in_process(world, base, NIGHTS[1])
    assert third.failed == {} and third.areas == ["district3"] and third.pairs == 1
    got, want = _outputs(base), dict(world["after-night-2"])
    assert got.pop("state.generation") == want.pop("state.generation") + 1  # two commits that night
    bad_entry = got["state.acquisitions"]["district3"]
    assert len(bad_entry) == len(want["state.acquisitions"]["district3"]) + 1  # the bad copy, processed
    got.pop("state.acquisitions"), want.pop("state.acquisitions")
    assert got == want


def test_a_new_acquisition_without_a_crs_is_left_out_not_failed_every_night(world: dict, tmp_path: Path) -> None:
    import rasterio

    base = tmp_path / "nocrs"
    shutil.copytree(world["root"] / f"after-{NIGHTS[0]}", base)
    _arrive(world, base / "catalog", NIGHTS[1])
    bad = base / "catalog" / "district3" / "district3_20240315.tif"
    with rasterio.open(bad) as src:
        profile, data = src.profile, src.read()
    profile.pop("crs", None)
    bad.unlink()
    with rasterio.open(bad, "w", **profile) as dst:
        dst.write(data)
    summary = _run_in_process(world, base, NIGHTS[1])
    assert summary.failed == {} and summary.pairs == 1  # district1's pair; district3 waits for a good copy
    assert any("district3_20240315" in w and "has no CRS" in w for w in summary.warnings)
    assert _run_in_process(world, base, NIGHTS[1]).warnings == []  # reported once, not every night


def test_the_cli_says_each_unreadable_file_once(world: dict, tmp_path: Path) -> None:
    """Plain output: the summary's WARNING line, not also the log line it repeats (that one with -v)."""
    base = tmp_path / "cli-bad"
    shutil.copytree(world["root"] / f"after-{NIGHTS[0]}", base)
    _arrive(world, base / "catalog", NIGHTS[1])
    (base / "catalog" / "district3" / "district3_20240315.tif").write_bytes(b"not a GeoTIFF")
    cmd = [c for c in _cli(world, base, NIGHTS[1]) if c != "--json"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    said = (res.stdout + res.stderr).count("district3_20240315.tif' is not a raster")
    assert said == 1 and "WARNING area district3" in res.stderr, res.stdout + res.stderr


def test_a_bad_area_fails_alone_and_is_retried(world: dict, tmp_path: Path) -> None:
    """A new acquisition that passes the cheap read but fails in its pair (here a one-band
    raster where the model needs red, green and blue) fails its area, which commits nothing
    and is retried; the other area goes on."""

    base = tmp_path / "failing"
    shutil.copytree(world["root"] / f"after-{NIGHTS[0]}", base)
    _arrive(world, base / "catalog", NIGHTS[1])
    bad = base / "catalog" / "district3" / "district3_20240315.tif"
    good = make_one_band(bad)
    summary = _run_in_process(world, base, NIGHTS[1])
    assert list(summary.failed) == ["district3"] and "district3_20240315" in summary.failed["district3"]
    state = json.loads((base / "state" / "state.json").read_text())
    assert len(state["acquisitions"]["district1"]) == 2 and len(state["acquisitions"]["district3"]) == 1
    bad.write_bytes(good)  # the feed delivers the file again
    again = _run_in_process(world, base, NIGHTS[1])
    assert again.failed == {} and again.areas == ["district3"]
    got, want = _outputs(base), dict(world["after-night-2"])
    assert got.pop("state.generation") == want.pop("state.generation") + 1  # two commits that night
    assert got == want


def test_a_bad_register_or_model_fails_the_night_once_before_any_area(world: dict, tmp_path: Path) -> None:
    """What every area shares is checked once, before the lock and before anything is written."""
    import geopandas as gpd

    from changedetect.config import PipelineConfig
    from changedetect.errors import ModelError, PermitSchemaError
    from changedetect.nightly import run_nightly

    base = tmp_path / "shared"
    shutil.copytree(world["root"] / f"after-{NIGHTS[0]}", base)
    _arrive(world, base / "catalog", NIGHTS[1])
    before = _outputs(base)
    register = gpd.read_file(world["permits"])
    register["issued_on"] = "15/03/2024"  # not a date
    bad = tmp_path / "bad_register.gpkg"
    register.to_file(bad)
    config = PipelineConfig.from_toml(world["config"])
    with pytest.raises(PermitSchemaError, match="issued_on"):
        run_nightly(base / "catalog", permits=bad, state=base / "state", out=base / "out", night=NIGHTS[1],
                    workers=2, config=config)
    with pytest.raises(ModelError, match="no-such-model"):
        run_nightly(base / "catalog", permits=world["permits"], state=base / "state", out=base / "out",
                    night=NIGHTS[1], workers=2, config=config.with_model("no-such-model"))
    assert _outputs(base) == before  # nothing written, nothing committed
    assert not (base / "state" / "work").exists() or not any((base / "state" / "work").rglob("run.json"))


def test_an_empty_catalog_is_warned_about(world: dict, tmp_path: Path) -> None:
    from changedetect.config import PipelineConfig
    from changedetect.nightly import run_nightly

    (tmp_path / "catalog").mkdir()
    summary = run_nightly(tmp_path / "catalog", permits=world["permits"], state=tmp_path / "state",
                          out=tmp_path / "out", night=NIGHTS[0], config=PipelineConfig.from_toml(world["config"]))
    assert any("holds no acquisitions" in w and "check --catalog" in w for w in summary.warnings)


def test_temporary_files_of_a_killed_run_are_removed(world: dict, tmp_path: Path) -> None:
    """A SIGKILL while an output is being written leaves its temporary file: the next run removes it."""
    base = tmp_path / "temps"
    shutil.copytree(world["root"] / f"after-{NIGHTS[0]}", base)
    _arrive(world, base / "catalog", NIGHTS[1])
    (base / "out" / f".violations-{NIGHTS[1]}.tmp-0badc0de.gpkg").write_bytes(b"half a GeoPackage")
    (base / "out" / f".violations-{NIGHTS[1]}.tmp-0badc0de.gpkg-journal").write_bytes(b"")
    (base / "state" / ".violations-000002.tmp-0badc0de.parquet").write_bytes(b"half")
    _run_in_process(world, base, NIGHTS[1])
    assert _outputs(base) == world["after-night-2"]  # which flags any hidden file left in out/
    assert not [f for f in (base / "state").iterdir() if f.name.startswith(".")]


def test_footprint_ids_follow_structures_from_night_to_night(world: dict) -> None:
    """Night 3's pairs get night 2's footprints as previous: a footprint overlapping one well keeps its id."""
    import geopandas as gpd
    import numpy as np
    import shapely

    def kept(night: str) -> gpd.GeoDataFrame:
        return gpd.read_parquet(next((world["root"] / f"after-{night}" / "state").glob("footprints-*.parquet")))

    assert list(kept(NIGHTS[0])["area"]) == [], "the first night runs no pair: no footprints"
    night2, night3 = kept(NIGHTS[1]), kept(NIGHTS[2])
    assert set(night2["area"]) == set(night3["area"]) == set(AREAS)
    assert (night3["after"] > night2["after"].max()).all()
    carried = 0
    for area in AREAS:
        old, new = night2[night2["area"] == area], night3[night3["area"] == area]
        metric = old.estimate_utm_crs()
        o, n = np.asarray(old.to_crs(metric).geometry.values), np.asarray(new.to_crs(metric).geometry.values)
        inter = shapely.area(shapely.intersection(n[:, None], o[None, :]))
        iou = inter / shapely.area(shapely.union(n[:, None], o[None, :]))
        for i, j in enumerate(iou.argmax(axis=1)):
            mutual = iou[i, j] >= 0.5 and iou[:, j].argmax() == i
            if mutual:
                assert new["footprint_id"].iat[i] == old["footprint_id"].iat[j]
                carried += 1
            elif new["footprint_id"].iat[i] in set(old["footprint_id"]):  # a carried id: it overlaps that one
                k = list(old["footprint_id"]).index(new["footprint_id"].iat[i])
                assert inter[i, k] > 0
    assert carried >= 1, "the tiny model finds the same blobs on consecutive nights"


def test_merge_keeps_one_violation_for_a_structure_whose_outline_grew(tmp_path: Path) -> None:
    """An open violation and tonight's of the same footprint_id but IoU 0.4: one structure, one id."""
    import geopandas as gpd
    from shapely.geometry import box

    from changedetect import _merge
    from changedetect._state import State

    crs = "EPSG:32648"
    state = State(generation=1)
    open_ = gpd.GeoDataFrame({"violation_id": ["d1-20240316-001"], "area": ["d1"], "night": ["2024-03-16"],
                              "before": ["2024-01-15"], "after": ["2024-03-15"], "run_violation_id": ["V-1"],
                              "footprint_id": ["F-aaaaaaaaaa"], "status": ["unlicensed"]},
                             geometry=[box(0, 0, 20, 20)], crs=crs)
    open_.to_parquet(state.violations_path(tmp_path))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    tonight = gpd.GeoDataFrame({"violation_id": ["V-2", "V-3"], "footprint_id": ["F-aaaaaaaaaa", "F-bbbbbbbbbb"],
                                "status": ["unlicensed", "unlicensed"]},
                               geometry=[box(0, 0, 20, 50), box(100, 0, 120, 20)], crs=crs)
    tonight.to_file(run_dir / "violations.gpkg")
    pair = {"before": "2024-03-15", "after": "2024-05-14", "run_dir": str(run_dir), "carried": ["F-aaaaaaaaaa"]}
    results = [{"area": "d1", "error": None, "runs": [pair]}]
    merged = _merge.merge_night(state, tmp_path, results, "2024-05-15", permits=str(tmp_path / "none.gpkg"))
    assert list(merged["violation_id"]) == ["d1-20240316-001", "d1-20240515-001"]
    assert list(merged["footprint_id"]) == ["F-aaaaaaaaaa", "F-bbbbbbbbbb"]
    assert "_carried" not in merged
    # without the shared id the grown outline (IoU 0.4) would be a second violation
    tonight.assign(footprint_id=["F-cccccccccc", "F-bbbbbbbbbb"]).to_file(run_dir / "violations.gpkg")
    again = _merge.merge_night(state, tmp_path, results, "2024-05-15", permits=str(tmp_path / "none.gpkg"))
    assert len(again) == 3


def test_merge_same_id_counts_only_when_the_pair_carried_it(tmp_path: Path) -> None:
    """An id equal to an open violation's only by its cell hash (the open one's structure is not in
    the pair's previous footprints) is no evidence: a different structure touching it is new."""
    import geopandas as gpd
    from shapely.geometry import box

    from changedetect import _merge
    from changedetect._state import State

    crs = "EPSG:32648"
    state = State(generation=1)
    gpd.GeoDataFrame({"violation_id": ["d1-20240316-001"], "area": ["d1"], "night": ["2024-03-16"],
                      "before": ["2024-01-15"], "after": ["2024-03-15"], "run_violation_id": ["V-1"],
                      "footprint_id": ["F-aaaaaaaaaa"], "status": ["unlicensed"]},
                     geometry=[box(0, 0, 4, 4)], crs=crs).to_parquet(state.violations_path(tmp_path))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # a 4 x 8 m neighbour touching the open 4 x 4 m one (IoU 0), its id the same cell hash
    gpd.GeoDataFrame({"violation_id": ["V-2"], "footprint_id": ["F-aaaaaaaaaa"], "status": ["unlicensed"]},
                     geometry=[box(4, 0, 8, 8)], crs=crs).to_file(run_dir / "violations.gpkg")
    pair = {"before": "2024-03-15", "after": "2024-05-14", "run_dir": str(run_dir)}
    for carried, n in (([], 2), (["F-bbbbbbbbbb"], 2), (["F-aaaaaaaaaa"], 1)):
        results = [{"area": "d1", "error": None, "runs": [{**pair, "carried": carried}]}]
        merged = _merge.merge_night(state, tmp_path, results, "2024-05-15", permits=str(tmp_path / "none.gpkg"))
        assert len(merged) == n, carried
    assert list(merged["violation_id"]) == ["d1-20240316-001"]


def _late_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, object, object]:
    """Area d1: 01-01 and 03-01 committed (footprints kept after 03-01); 02-01 (late) and 04-01 arrive.
    Area d2: 01-01 committed; 02-01 and 03-01 arrive (a plain chain).  No reference pinned yet (a
    state written before they were); the stand-in files pass the readability check."""
    import geopandas as gpd
    from shapely.geometry import box

    from changedetect import _nightly_reference
    from changedetect._nightly_reference import NightState as State
    from changedetect._state import sha256_file

    monkeypatch.setattr(_nightly_reference, "unreadable_reason", lambda path: None)

    cat = tmp_path / "catalog"
    files = {}
    for area, dates in (("d1", ["20240101", "20240201", "20240301", "20240401"]),
                        ("d2", ["20240101", "20240201", "20240301"])):
        (cat / area).mkdir(parents=True)
        for d in dates:  # discover() only reads names and checksums
            files[area, d] = cat / area / f"{area}_{d}.tif"
            files[area, d].write_bytes(f"{area} {d}".encode())
    done = {"d1": ["20240101", "20240301"], "d2": ["20240101"]}
    state = State(generation=1, acquisitions={area: {
        sha256_file(files[area, d]): {"path": str(files[area, d]), "date": f"{d[:4]}-{d[4:6]}-{d[6:]}",
                                      "night": "2024-03-02"} for d in dates} for area, dates in done.items()})
    committed = gpd.GeoDataFrame({"area": ["d1", "d2"], "after": ["2024-03-01", "2024-01-01"],
                                  "footprint_id": ["F-d1committed", "F-d2committed"]},
                                 geometry=[box(105, 10, 105.001, 10.001)] * 2, crs="EPSG:4326")
    return cat, state, committed


def test_each_pair_gets_the_latest_footprints_dated_on_or_before_its_first_date(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from changedetect._nightly_plan import plan_night
    from changedetect.config import PipelineConfig
    from changedetect.nightly import NightlySummary

    cat, state, committed = _late_catalog(tmp_path, monkeypatch)
    sd = tmp_path / "state"

    # the last clear view off: with it, 03-01..04-01 also reads 02-01 to fill 03-01 (checked below)
    unfilled = replace(PipelineConfig(), detect=replace(PipelineConfig().detect, fill_masked_before=False))

    def plan(table: object, config: PipelineConfig = unfilled) -> dict[str, list[dict]]:
        tasks, _ = plan_night(cat, state, sd, "register.gpkg", config, "2024-04-02",
                         NightlySummary("2024-04-02"), table)
        return {t["area"]: t["pairs"] for t in tasks}

    filled = plan(committed, PipelineConfig())["d1"][1]
    assert [d["date"] for d in filled["fill"]] == ["2024-01-01", "2024-02-01"]
    pairs = plan(committed)
    d1, d2 = pairs["d1"], pairs["d2"]
    assert [(p["before"], p["after"]) for p in d1] == [("2024-01-01", "2024-02-01"), ("2024-03-01", "2024-04-01")]
    # the late pair has nothing dated on or before 01-01; the next one continues from the kept 03-01 ones
    assert [p["previous"] for p in d1] == [None, "committed"]
    assert [p["previous"] for p in d2] == ["committed", d2[0]["run_dir"]]  # a chain: the pair before
    # the work folders' keys follow the same choice: 03-01..04-01 does not depend on the late pair ...
    (cat / "d1" / "d1_20240201.tif").write_bytes(b"the late file, delivered again")
    again = plan(committed)
    assert again["d1"][0]["run_dir"] != d1[0]["run_dir"] and again["d1"][1]["run_dir"] == d1[1]["run_dir"]
    # (filling 03-01 from it, the pair reads the late file: a new copy is another run)
    assert plan(committed, PipelineConfig())["d1"][1]["run_dir"] != filled["run_dir"]
    # ... but on the committed footprints it was given
    moved = committed.assign(footprint_id=["F-d1other", "F-d2committed"])
    other = plan(moved)
    assert other["d1"][0]["run_dir"] == again["d1"][0]["run_dir"]
    assert other["d1"][1]["run_dir"] != again["d1"][1]["run_dir"]
    assert [p["run_dir"] for p in other["d2"]] == [p["run_dir"] for p in d2]
    # every pair is registered onto its area's first acquisition (but a pair that starts there)
    first = {a: {"path": str(cat / a / f"{a}_20240101.tif"), "date": "2024-01-01"} for a in ("d1", "d2")}
    assert [p["reference"] for p in d1] == [None, first["d1"]]
    assert [p["reference"] for p in d2] == [None, first["d2"]]


def test_run_area_gives_each_pair_its_chosen_previous_and_records_the_carried_ids(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Dask task hands pipeline.run the previous footprints plan_night chose (not the pair before it)."""
    import geopandas as gpd
    from shapely.geometry import box

    from changedetect import nightly, pipeline
    from changedetect._nightly_plan import plan_night
    from changedetect.config import PipelineConfig

    cat, state, committed = _late_catalog(tmp_path, monkeypatch)
    tasks, _ = plan_night(cat, state, tmp_path / "state", "register.gpkg", PipelineConfig(), "2024-04-02",
                             nightly.NightlySummary("2024-04-02"), committed)
    given: list[list[str] | None] = []

    def fake_run(manifest: Path, *, out: Path, previous: object, **_: object) -> None:
        if previous is None:
            given.append(None)
        else:
            frame = previous if isinstance(previous, gpd.GeoDataFrame) else gpd.read_file(previous)
            given.append(sorted(frame["footprint_id"]))
        first = json.loads(Path(manifest).read_text())[0]["date"]
        ids = [f"F-{Path(out).name[:6]}", *(given[-1] or [])]  # a fresh id, and every previous one carried
        gpd.GeoDataFrame({"footprint_id": ids}, geometry=[box(105, 10, 105.001, 10.001)] * len(ids),
                         crs="EPSG:4326").to_file(Path(out) / "footprints.gpkg")
        (Path(out) / "run.json").write_text(json.dumps({"first": first}))

    monkeypatch.setattr(pipeline, "run", fake_run)
    d1 = nightly._run_area(next(t for t in tasks if t["area"] == "d1"))
    assert d1["error"] is None
    assert given == [None, ["F-d1committed"]]  # not the late pair's footprints
    assert [p["carried"] for p in d1["runs"]] == [[], ["F-d1committed"]]
    given.clear()
    d2 = nightly._run_area(next(t for t in tasks if t["area"] == "d2"))
    fresh = f"F-{Path(d2['runs'][0]['run_dir']).name[:6]}"
    assert given == [["F-d2committed"], sorted([fresh, "F-d2committed"])]
    assert [p["carried"] for p in d2["runs"]] == [["F-d2committed"], sorted([fresh, "F-d2committed"])]
    given.clear()
    assert nightly._run_area(next(t for t in tasks if t["area"] == "d2")) == d2 and given == []  # reused


def test_relative_paths_work(world: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--catalog catalog --state state` from the folder that holds them (the pairs run elsewhere)."""
    from changedetect.config import PipelineConfig
    from changedetect.nightly import run_nightly

    base = tmp_path / "relative"
    shutil.copytree(world["root"] / f"after-{NIGHTS[0]}", base)
    _arrive(world, base / "catalog", NIGHTS[1])
    shutil.copy(world["permits"], base / "permits.gpkg")
    monkeypatch.chdir(base)
    summary = run_nightly("catalog", permits="permits.gpkg", state="state", out="out", night=NIGHTS[1],
                          workers=2, config=PipelineConfig.from_toml(world["config"]))
    assert summary.failed == {} and summary.pairs == len(AREAS)
    assert _outputs(base) == world["after-night-2"]


def test_kept_footprints_follow_the_latest_pair_of_each_area(tmp_path: Path) -> None:
    import geopandas as gpd
    from shapely.geometry import box

    from changedetect import _nightly_footprints as fps

    def fp(ids: list[str], x0: float) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame({"footprint_id": ids}, crs="EPSG:32648",
                                geometry=[box(x0 + 10 * k, 0, x0 + 10 * k + 5, 5) for k in range(len(ids))])

    committed = pd_concat([fp(["F-a1"], 686_000).assign(area="a", after="2024-05-14"),
                           fp(["F-b1"], 686_100).assign(area="b", after="2024-05-14"),
                           fp(["F-c1"], 686_200).assign(area="c", after="2024-05-14")]).to_crs(4326)
    results = []
    for area, after, ids, error in (("a", "2024-03-15", ["F-a2"], None), ("b", "2024-07-01", ["F-b2", "F-b3"], None),
                                    ("c", "2024-07-01", ["F-c2"], "tile unreadable")):
        run_dir = tmp_path / area
        run_dir.mkdir()
        kinds = ["new", "demolished"][:len(ids)] if area == "b" else [None] * len(ids)
        fp(ids, 686_000).assign(change_type=kinds).to_file(run_dir / "footprints.gpkg")
        results.append({"area": area, "error": error, "runs": [{"after": after, "run_dir": str(run_dir)}]})
    table = fps.next_table(committed[["area", "after", "footprint_id", "geometry"]], results)
    assert list(table["footprint_id"]) == ["F-a1", "F-b2", "F-b3", "F-c1"]  # late pair, new pair, failed area
    assert list(table["after"]) == ["2024-05-14", "2024-07-01", "2024-07-01", "2024-05-14"]
    assert table.crs.to_epsg() == 4326
    # the kinds travel with the ids (a demolition's id must not pass to a rebuild next night)
    assert list(table["change_type"].iloc[1:3]) == ["new", "demolished"]
    assert table["change_type"].iloc[[0, 3]].isna().all()  # rows of a state written before kinds were kept
    fps.save(table, tmp_path, 3)
    back = fps.load(tmp_path, 3)
    assert back is not None and list(back["footprint_id"]) == list(table["footprint_id"])
    assert fps.checksum(fps.of_area(back, "b")) == fps.checksum(fps.of_area(table, "b")) != fps.checksum(None)
    assert fps.of_area(back, "zzz") is None and fps.load(tmp_path, 4) is None
    b = fps.of_area(back, "b")
    assert fps.checksum(b) != fps.checksum(b.assign(change_type=["new", "new"]))
    # a state written before the kinds were kept has the checksum it had then (the work folders
    # named by it stay valid): ids and WKB only, and no kind or an unknown one adds nothing
    import hashlib

    plain = fps.of_area(back, "a").drop(columns="change_type")
    digest = hashlib.sha256()
    for fid, wkb in zip(plain["footprint_id"], plain.geometry.to_wkb(), strict=True):
        digest.update(str(fid).encode())
        digest.update(bytes(wkb))
    assert fps.checksum(plain) == digest.hexdigest() == fps.checksum(plain.assign(change_type=None))


def pd_concat(frames: list):  # noqa: ANN201
    import geopandas as gpd
    import pandas as pd

    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=frames[0].crs)


def test_a_backfilled_older_acquisition_does_not_move_the_pinned_reference(world: dict, tmp_path: Path) -> None:
    """Night 3 with an acquisition older than the area's first one arriving late: its pairs are still
    registered onto the pinned reference, so its outputs are the uninterrupted run's."""
    from changedetect import _nightly_reference
    from changedetect._nightly_plan import plan_night
    from changedetect._state import sha256_file
    from changedetect.config import PipelineConfig
    from changedetect.nightly import NightlySummary

    base = tmp_path / "backfill"
    shutil.copytree(world["root"] / f"after-{NIGHTS[1]}", base)
    first = base / "catalog" / "district1" / "district1_20240115.tif"
    pinned = json.loads((base / "state" / "state.json").read_text())["references"]["district1"]
    assert (pinned["date"], pinned["sha256"]) == ("2024-01-15", sha256_file(first))
    _arrive(world, base / "catalog", NIGHTS[2])
    late = base / "catalog" / "district1" / "district1_20231115.tif"  # another image, dated earlier
    shutil.copy(base / "catalog" / "district3" / "district3_20240115.tif", late)
    tasks, _ = plan_night(base / "catalog", _nightly_reference.load(base / "state"), base / "state",
                     str(world["permits"]), PipelineConfig.from_toml(world["config"]), NIGHTS[2],
                     NightlySummary(NIGHTS[2]), None)
    pairs = next(t for t in tasks if t["area"] == "district1")["pairs"]
    assert [(p["before"], p["after"], p["reference"]) for p in pairs] == [
        ("2024-03-15", "2024-05-14", {"path": str(first), "date": "2024-01-15"})]  # register_to 01-15
    summary = _run_in_process(world, base, NIGHTS[2])
    assert summary.failed == {} and summary.warnings == [] and summary.pairs == len(AREAS)
    assert summary.references["district1"] == {"path": str(first), "date": "2024-01-15",
                                               "sha256": pinned["sha256"]}
    state = json.loads((base / "state" / "state.json").read_text())
    assert state["references"]["district1"] == summary.references["district1"]  # still 01-15 (its new path)
    assert len(state["acquisitions"]["district1"]) == 4  # the late one is committed
    got, want = _outputs(base), world["reference"]
    for name in (f"violations-{NIGHTS[2]}.gpkg", "open_violations.gpkg", "state.footprints"):
        assert got[name] == want[name], name


def test_an_unreadable_first_file_does_not_block_its_area(world: dict, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """The area's first acquisition is truncated: it is reported (its name, what to do, no traceback),
    the earliest readable one becomes the reference, and the later pair runs and finds violations."""
    import geopandas as gpd

    base = tmp_path / "corrupt"
    folder = base / "catalog" / "district1"
    folder.mkdir(parents=True)
    bad = folder / "district1_20240115.tif"
    bad.write_bytes((world["full"] / "district1" / bad.name).read_bytes()[:100])

    def night(name: str) -> tuple:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="changedetect"):
            summary = _run_in_process(world, base, name)
        named = [r for r in caplog.records if bad.name in r.getMessage()]
        return summary, named, json.loads((base / "state" / "state.json").read_text())

    summary, named, state = night(NIGHTS[0])  # alone: nothing to pair, no reference to pin
    assert summary.failed == {} and summary.pairs == 0 and summary.references == {}
    assert len(named) == 1 and named[0].levelno == logging.ERROR and named[0].exc_info is None
    assert summary.warnings == [named[0].getMessage()] and "truncated or corrupt" in summary.warnings[0]
    assert len(state["acquisitions"]["district1"]) == 1 and state["references"] == {}
    for f in ("district1_20240315.tif", "district1_20240514.tif"):  # the later acquisitions arrive
        shutil.copy(world["full"] / "district1" / f, folder / f)
    summary, named, state = night(NIGHTS[2])
    assert summary.failed == {} and summary.pairs == 1, summary.failed
    assert len(named) == 1 and summary.warnings == [named[0].getMessage()] and "Traceback" not in caplog.text
    assert summary.references["district1"]["path"] == str(folder / "district1_20240315.tif")
    assert state["references"]["district1"]["date"] == "2024-03-15"  # pinned
    assert len(state["acquisitions"]["district1"]) == 3
    tonight = gpd.read_file(base / "out" / f"violations-{NIGHTS[2]}.gpkg", layer=f"violations-{NIGHTS[2]}")
    assert summary.new_violations == len(tonight) > 0
    days = [tonight[c].dt.strftime("%Y-%m-%d") for c in ("before", "after")]  # DATE fields
    assert set(zip(*days, strict=True)) == {("2024-03-15", "2024-05-14")}


def test_a_pinned_reference_that_vanished_or_changed_is_reported_and_replaced(tmp_path: Path) -> None:
    import pandas as pd

    from changedetect._nightly_reference import NightState, choose, load, record
    from changedetect._state import load_state, save_state
    from changedetect.nightly import _next_state, discover

    paths = write_stack(make_stack(n_dates=3, size=32, seed=5), tmp_path / "cat" / "d", prefix="d")
    acqs = discover(tmp_path / "cat")["d"]
    checked: dict = {}
    assert choose("d", acqs, None, {}, checked).reference == acqs[0] and list(checked) == [acqs[0].path]
    pin = record(acqs[0])
    kept = choose("d", acqs, pin, {}, {})
    assert (kept.reference, kept.unreadable, kept.warning) == (acqs[0], {}, None)
    # a state committed with it, read back (and by a reader of the plain State, which ignores it)
    sd = tmp_path / "state"
    sd.mkdir()
    save_state(sd, NightState(generation=1, references={"d": pin}))
    assert load(sd).references == {"d": pin} and load_state(sd).generation == 1
    old = json.loads((sd / "state.json").read_text())
    del old["references"]  # a state written before references were pinned
    (sd / "state.json").write_text(json.dumps(old))
    assert load(sd).references == {}

    paths[0].write_bytes(paths[0].read_bytes()[:100])  # rewritten: another checksum, and unreadable
    changed = choose("d", discover(tmp_path / "cat")["d"], pin, {}, {})
    assert changed.reference is not None and changed.reference.path == str(paths[1])
    assert changed.warning is not None and "has changed" in changed.warning and str(paths[0]) in changed.warning
    assert list(changed.unreadable) == [str(paths[0])]
    paths[0].unlink()
    gone = choose("d", discover(tmp_path / "cat")["d"], pin, {}, {})
    assert gone.reference is not None and gone.reference.path == str(paths[1]) and gone.unreadable == {}
    assert gone.warning is not None and "no longer in the catalog" in gone.warning

    # the commit pins the night's reference of each area that succeeded, and only of those
    night = {"night": pd.Series([], dtype=object)}
    current = NightState(generation=1, references={"d": pin, "e": pin})
    new = _next_state(current, {"d": [], "e": [], "f": []}, {"d", "f"}, "2024-06-01", pd.DataFrame(night),
                      {"d": record(gone.reference), "e": record(acqs[2]), "f": record(acqs[2])})
    assert new.references == {"d": record(gone.reference), "e": pin, "f": record(acqs[2])}


def test_a_pair_with_a_same_season_partner_compares_it_and_masks_earlier_news(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """2024-07-01 -> 2025-01-05 gets the partner 2024-01-01 (a year before, same season): pipeline.run
    compares (previous, new) and (partner, new), masking (partner, previous); none without season pairs."""
    from dataclasses import replace

    from changedetect import _nightly_reference, nightly, pipeline
    from changedetect._nightly_plan import plan_night
    from changedetect._nightly_reference import NightState as State
    from changedetect._state import sha256_file
    from changedetect.config import PipelineConfig

    monkeypatch.setattr(_nightly_reference, "unreadable_reason", lambda path: None)
    cat = tmp_path / "catalog" / "d1"
    cat.mkdir(parents=True)
    files = {d: cat / f"d1_{d}.tif" for d in ("20240101", "20240701", "20250105")}
    for d, f in files.items():
        f.write_bytes(d.encode())
    state = State(generation=1, acquisitions={"d1": {
        sha256_file(files[d]): {"path": str(files[d]), "date": f"{d[:4]}-{d[4:6]}-{d[6:]}", "night": "2024-07-02"}
        for d in ("20240101", "20240701")}})

    def plan(config: PipelineConfig, summary: nightly.NightlySummary | None = None) -> list[dict]:
        tasks, _ = plan_night(cat.parent, state, tmp_path / "state", "register.gpkg", config, "2025-01-06",
                              summary or nightly.NightlySummary("2025-01-06"), None)
        return tasks[0]["pairs"]

    [pair] = plan(PipelineConfig())
    assert (pair["before"], pair["after"]) == ("2024-07-01", "2025-01-05")
    assert pair["partner"] == {"path": str(files["20240101"]), "date": "2024-01-01"}
    base = PipelineConfig()
    [plain] = plan(replace(base, detect=replace(base.detect, season_days=None)))
    assert plain["partner"] is None and plain["run_dir"] != pair["run_dir"]
    calls: list[dict] = []

    def fake_run(manifest: Path, *, out: Path, **kwargs: object) -> None:
        calls.append({"dates": [d["date"] for d in json.loads(Path(manifest).read_text())], **kwargs})
        (Path(out) / "run.json").write_text("{}")

    monkeypatch.setattr(pipeline, "run", fake_run)
    monkeypatch.setattr(nightly, "_carried", lambda run_dir, previous: [])
    task = {"area": "d1", "permits": "register.gpkg", "config": base.to_dict(), "committed": None, "pairs": [pair]}
    assert nightly._run_area(task)["error"] is None
    [call] = calls
    assert call["dates"] == ["2024-01-01", "2024-07-01", "2025-01-05"]  # the partner is also the reference
    assert call["register_to"] == "2024-01-01"
    assert call["pairs"] == [("2024-07-01", "2025-01-05"), ("2024-01-01", "2025-01-05")]
    assert call["mask_pairs"] == [("2024-01-01", "2024-07-01")]
    # a partner that cannot be read is passed over (the pinned reference is July: nothing else checks it)
    monkeypatch.setattr(_nightly_reference, "unreadable_reason",
                        lambda path: "truncated" if Path(path).name == "d1_20240101.tif" else None)
    state.references["d1"] = {"path": str(files["20240701"]), "date": "2024-07-01",
                              "sha256": sha256_file(files["20240701"])}
    summary = nightly.NightlySummary("2025-01-06")
    [skipped] = plan(PipelineConfig(), summary)
    assert skipped["partner"] is None and skipped["register_to"] == "2024-07-01"
    # reported as the night's other problems that fail no area (--json warnings, WARNING lines, even with -q)
    assert [w for w in summary.warnings if "d1_20240101.tif" in w and "same-season partner" in w
            and "truncated" in w] == summary.warnings and len(summary.warnings) == 1
    # ... for the next one: a readable January two years before the new date
    older = cat / "d1_20230110.tif"
    older.write_bytes(b"20230110")
    state.acquisitions["d1"][sha256_file(older)] = {"path": str(older), "date": "2023-01-10", "night": "2023-01-11"}
    [next_one] = plan(PipelineConfig())
    assert next_one["partner"] == {"path": str(older), "date": "2023-01-10"}


def test_the_command_prints_the_nights_warnings_and_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from changedetect import nightly
    from changedetect.cli import cli

    def fake(*args: object, **kwargs: object) -> nightly.NightlySummary:
        return nightly.NightlySummary("2025-01-21", new_acquisitions=1, areas=["d1"],
                                      warnings=["d1_20240115.tif is truncated or corrupt; copy it again"])

    monkeypatch.setattr(nightly, "run_nightly", fake)
    (tmp_path / "catalog").mkdir()
    result = CliRunner().invoke(cli, ["nightly", "--catalog", str(tmp_path / "catalog"), "--permits", "r.gpkg",
                                      "--state", str(tmp_path / "st"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "WARNING d1_20240115.tif is truncated or corrupt; copy it again" in result.output
    assert "withdrawn" not in result.output and "awaiting" not in result.output

    def later(*args: object, **kwargs: object) -> nightly.NightlySummary:
        return nightly.NightlySummary("2025-01-21", new_acquisitions=1, areas=["d1"], new_violations=4,
                                      open_violations=9, withdrawn=["d1-20240713-002", "d1-20240713-006"],
                                      pending=3)

    monkeypatch.setattr(nightly, "run_nightly", later)
    result = CliRunner().invoke(cli, ["nightly", "--catalog", str(tmp_path / "catalog"), "--permits", "r.gpkg",
                                      "--state", str(tmp_path / "st"), "--out", str(tmp_path / "out")])
    assert "4 new violation(s), 2 withdrawn, 9 open in total (3 awaiting a same-season check)" in result.output


def test_a_night_that_has_not_come_is_refused_before_anything_is_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--night 2062-11-30 for 2026-11-30 (a typo) named the night's files after it and marked the
    catalog's acquisitions as processed; now one line, exit 2, and nothing in the state or output."""
    import datetime as dt

    import changedetect.cli as cdcli
    from changedetect.errors import ConfigError
    from changedetect.nightly import _night

    (tmp_path / "catalog").mkdir()
    later = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    cdcli._STATE["debug"] = False
    with pytest.raises(SystemExit) as exc:
        cdcli.main(["nightly", "--catalog", str(tmp_path / "catalog"), "--permits", "r.gpkg",
                    "--state", str(tmp_path / "st"), "--out", str(tmp_path / "out"), "--night", later])
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    assert f"night {later} has not come yet" in err and "Traceback" not in err
    assert not any((tmp_path / "st").glob("*")) and not any((tmp_path / "out").glob("*"))
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    assert _night(tomorrow) == tomorrow.isoformat()  # a day's grace for the catalog's clock
    assert _night(None) == dt.date.today().isoformat()
    with pytest.raises(ConfigError, match="not a date"):
        _night("2024-13-40")
