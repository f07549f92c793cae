"""Review: ``changedetect nightly`` when a night partly or wholly fails, or is interrupted, with the
failure clean-up of f5a2e4d (``command_cleanup``: a failed command removes the new, empty folders on
the way to its outputs).  The nightly exits 2 on purpose when one area fails while the others
succeed: what the good areas wrote, and the state, must survive that clean-up, and the next run must
finish exactly the failed part.

Each run goes through the console entry point (``changedetect.cli.main``, as an inspector or cron
runs it) with ``--state`` and ``--out`` under folders that did not exist before.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import changedetect.cli as cdcli
from changedetect.testing import make_nightly_catalog, make_one_band

NIGHT = "2024-03-16"
AREAS = {"district1": 1, "district3": 2}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two areas of two tiny dates each (one pair each on ``NIGHT``), a register and a tiny model."""
    return make_nightly_catalog(tmp_path_factory.mktemp("nightly_cleanup"), AREAS)


def _catalog(world: dict[str, Path], base: Path) -> Path:
    catalog = base / "catalog"
    shutil.copytree(world["tiles"], catalog)
    return catalog


def _nightly(world: dict[str, Path], catalog: Path, state: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    """``changedetect nightly`` through the console entry point: exit status, stdout, stderr."""
    cdcli._STATE["debug"] = False
    argv = ["nightly", "--catalog", str(catalog), "--permits", str(world["permits"]), "--state", str(state),
            "--out", str(out), "--night", NIGHT, "--config", str(world["config"]), "--workers", "2", *extra]
    with CliRunner().isolation() as (stdout, stderr, _):
        try:
            cdcli.main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        else:
            code = 0
        return code, stdout.getvalue().decode("utf-8", "replace"), stderr.getvalue().decode("utf-8", "replace")


def _state(state: Path) -> dict:
    return json.loads((state / "state.json").read_text(encoding="utf-8"))


def _tree(base: Path) -> list[str]:
    """Every path under ``base`` but the catalog (folders end with /)."""
    return sorted(str(p.relative_to(base)) + ("/" if p.is_dir() else "") for p in base.rglob("*")
                  if p.relative_to(base).parts[0] != "catalog")


def _empty_folders(base: Path) -> list[str]:
    """The empty folders under ``base`` but ``STATE/work/`` (the night's work folders go in it)."""
    return [p for p in _tree(base) if p.endswith("/") and not any((base / p).iterdir()) and p != "new/state/work/"]


def _register(out: Path) -> tuple[list[str], list[list[str]], list[str]]:
    """``OUT/open_violations.gpkg`` in comparable form."""
    import geopandas as gpd

    gdf = gpd.read_file(out / "open_violations.gpkg", layer="open_violations")
    return list(gdf.columns), gdf.drop(columns="geometry").astype(str).values.tolist(), [g.wkt for g in gdf.geometry]


@pytest.fixture(scope="module")
def reference(world: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The night run uninterrupted, nothing failing."""
    base = tmp_path_factory.mktemp("reference")
    code, stdout, stderr = _nightly(world, _catalog(world, base), base / "state", base / "out", "--json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["pairs"] == len(AREAS) and summary["open_violations"] > 0, "violations to carry"
    return {"register": _register(base / "out"), "acquisitions": _acquisitions(base / "state")}


def _acquisitions(state: Path) -> dict[str, list[str]]:
    return {area: sorted(v["date"] for v in acqs.values()) for area, acqs in _state(state)["acquisitions"].items()}


def _count_pairs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the area of each pair the chain runs (the Dask workers are threads of this process)."""
    from changedetect import pipeline

    real, areas = pipeline.run, []

    def counting(manifest: Path, **kwargs: object) -> object:
        areas.append(Path(manifest).parent.name)
        return real(manifest, **kwargs)

    monkeypatch.setattr(pipeline, "run", counting)
    return areas


def test_one_failed_area_keeps_the_others_outputs_and_state_and_the_next_run_finishes_it(
        world: dict[str, Path], reference: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exit 2 on purpose: the clean-up of a failed command must not touch what district1 wrote; the
    failure is one line naming the file; fixed, the next run does district3 alone and ends as the
    uninterrupted run, with no work folder or empty folder left."""
    catalog = _catalog(world, tmp_path)
    bad = catalog / "district3" / "district3_20240315.tif"
    good = make_one_band(bad)
    state, out = tmp_path / "new" / "state", tmp_path / "new2" / "a" / "out"
    ran = _count_pairs(monkeypatch)
    code, stdout, stderr = _nightly(world, catalog, state, out)
    assert code == 2, stderr
    failed = [line for line in stderr.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and failed[0].startswith("  FAILED district3: ") and str(bad) in failed[0], stderr
    assert "Traceback" not in stderr
    night_files = {f"violations-{NIGHT}.gpkg", f"violations-{NIGHT}.csv", "open_violations.gpkg",
                   f"report-{NIGHT}-district1.html"}
    csv_sides = {f"violations-{NIGHT}.prj", f"violations-{NIGHT}.csvt"}  # the CSV's CRS and field types
    assert {p.name for p in out.iterdir()} == night_files | csv_sides, "district1's outputs are kept"
    outputs = [line for line in stdout.splitlines()[1:] if not line.lstrip().startswith("coverage")]
    assert len(outputs) == len(night_files)
    for line in outputs:  # each output the summary names is there (its coverage lines name none)
        assert Path(line.split()[-1]).is_file(), line
    assert _acquisitions(state) == {"district1": ["2024-01-15", "2024-03-15"]}, "district1 committed, not district3"
    assert sorted(_state(state)["references"]) == ["district1"]
    kept = {p: p.read_bytes() for p in out.iterdir()}

    bad.write_bytes(good)  # the feed delivers the file again
    ran.clear()
    code, stdout, stderr = _nightly(world, catalog, state, out, "--json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["areas"] == ["district3"] and summary["pairs"] == 1 and summary["failed"] == {}
    assert ran == ["district3"], "district1's pair is not run again"
    assert _acquisitions(state) == reference["acquisitions"]
    assert _register(out) == reference["register"]
    assert (out / f"report-{NIGHT}-district1.html").read_bytes() == kept[out / f"report-{NIGHT}-district1.html"]
    assert not [p for p in _tree(tmp_path) if p.startswith("new/state/work/") and p != "new/state/work/"
                or p.startswith("new2/a/out/.")], \
        "no work folder of the night (the failed attempt's included) nor temporary file is left once it is committed"
    assert not _empty_folders(tmp_path)


def test_a_night_where_every_area_fails_leaves_no_empty_folder_and_the_next_run_works(
        world: dict[str, Path], reference: dict[str, object], tmp_path: Path) -> None:
    catalog = _catalog(world, tmp_path)
    goods = {}
    for area in AREAS:
        bad = catalog / area / f"{area}_20240315.tif"
        goods[bad] = make_one_band(bad)
    state, out = tmp_path / "new" / "state", tmp_path / "new2" / "a" / "out"
    code, stdout, stderr = _nightly(world, catalog, state, out)
    assert code == 2, stderr
    failed = sorted(line for line in stderr.splitlines() if "FAILED" in line)
    assert len(failed) == 2 and all(str(b) in line for b, line in zip(goods, failed, strict=True)), stderr
    assert _acquisitions(state) == {}, "nothing committed: both areas are retried"
    assert (state / "lock").is_file() and (out / "open_violations.gpkg").is_file()
    assert not _empty_folders(tmp_path), "a failed pair leaves no empty work folder"

    for bad, good in goods.items():
        bad.write_bytes(good)
    code, stdout, stderr = _nightly(world, catalog, state, out)
    assert code == 0, stderr
    assert _acquisitions(state) == reference["acquisitions"] and _register(out) == reference["register"]
    assert not _empty_folders(tmp_path) and not any((state / "work").iterdir())


#: where Ctrl-C lands: before the pairs run, once they have run (the merge's generation written), just
#: before the commit; (module, attribute) of the function that raises KeyboardInterrupt instead
INTERRUPTS = {"pairs": ("changedetect.nightly", "_compute"),
              "outputs": ("changedetect._nightly_outputs", "write_outputs"),
              "commit": ("changedetect.nightly", "save_state")}


@pytest.mark.parametrize("where", list(INTERRUPTS))
def test_ctrl_c_mid_night_exits_130_and_the_next_run_finishes_the_night(
        world: dict[str, Path], reference: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        where: str) -> None:
    import importlib

    module, name = INTERRUPTS[where]

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    catalog = _catalog(world, tmp_path)
    state, out = tmp_path / "new" / "state", tmp_path / "new2" / "a" / "out"
    with monkeypatch.context() as patch:
        patch.setattr(importlib.import_module(module), name, interrupted)
        code, stdout, stderr = _nightly(world, catalog, state, out)
    assert code == 130, stderr
    assert stderr.strip().splitlines()[-1] == "Interrupted." and "Traceback" not in stderr, stderr
    assert not (state / "state.json").exists(), "nothing committed"
    assert not [p for p in _tree(tmp_path) if Path(p).name.startswith(".")], "no temporary file left"
    assert not out.exists() or not any(out.iterdir()) or where != "pairs"
    code, stdout, stderr = _nightly(world, catalog, state, out, "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["pairs"] == len(AREAS)
    assert _acquisitions(state) == reference["acquisitions"] and _register(out) == reference["register"]
    assert not _empty_folders(tmp_path)


def test_a_commit_removes_the_areas_stale_work_folders_and_keeps_a_failed_areas(tmp_path: Path) -> None:
    """An area that failed with two pairs, the first complete, then succeeded after the feed replaced
    the first pair's file: the first attempt's complete pair (another key) was left in STATE/work for
    good.  Once the area commits, its whole work folder goes; a failed area's complete pairs stay
    (the next run reuses them)."""
    from changedetect._nightly_reference import NightState
    from changedetect.nightly import _cleanup

    work = tmp_path / "work"
    for area, key in (("district1", "stale"), ("district1", "tonight"), ("district3", "done")):
        (work / area / key).mkdir(parents=True)
        (work / area / key / "run.json").write_text("{}")
        (work / area / f"{key}.manifest.json").write_text("[]")
    results = [{"area": "district1", "error": None, "runs": [{"run_dir": str(work / "district1" / "tonight")}]},
               {"area": "district3", "error": "district3_20240515.tif has 1 band(s) ...",
                "runs": [{"run_dir": str(work / "district3" / "done")}]}]
    _cleanup(tmp_path, NightState(generation=1), results)
    assert _tree(tmp_path) == ["work/", "work/district3/", "work/district3/done.manifest.json", "work/district3/done/",
                               "work/district3/done/run.json"]
