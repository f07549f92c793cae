"""Review: a command that fails on bad input leaves no new folder on the way to its output.

The shared write check (``check_writable``) makes the folder that will receive an output before the
command reads its inputs; a command that then failed on a bad input (exit 2) left that folder, and
its parents, behind: ``match FOOTPRINTS --permits BAD --out new/a/b/v.gpkg`` left new/a/b.

Each command below is run as an inspector would (``changedetect.cli.main`` under click's CliRunner
isolation), with its output under folders that do not exist yet and an input that cannot be read.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

import changedetect.cli as cdcli
from changedetect.testing import make_footprints, make_stack

#: the output location below the working folder: one new folder, then three
DEPTHS = {"one": ("new",), "three": ("new", "a", "b")}


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` (hidden ones included) with a file's bytes (None: a folder)."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in folder.rglob("*")}


def _cli(argv: list[str]) -> tuple[int, str]:
    """Run the ``changedetect`` console entry point; its exit status and its stderr."""
    cdcli._STATE["debug"] = False
    with CliRunner().isolation() as (_, err, _):
        try:
            cdcli.main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        else:  # main always exits
            code = 0
        return code, err.getvalue().decode("utf-8", "replace")


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Inputs that exist (click's checks pass) but that no command can read."""
    root = tmp_path_factory.mktemp("bad_inputs")
    for name in ("garbage.tif", "garbage.gpkg"):
        (root / name).write_bytes(b"not a raster, not a GeoPackage, only some bytes\n" * 4)
    (root / "empty").mkdir()
    (root / "empty_run").mkdir()
    stack = make_stack(n_dates=2, size=32, seed=3)
    with rasterio.open(root / "photo.tif", "w", driver="GTiff", width=32, height=32, count=3, dtype="uint8",
                       crs=stack.rio.crs, transform=stack.rio.transform()) as dst:  # an image, not a PROB raster
        dst.write(np.zeros((3, 32, 32), dtype="uint8"))
    make_footprints(stack).to_file(root / "footprints.gpkg")  # no status column: not a violation list
    return {"garbage.tif": root / "garbage.tif", "garbage.gpkg": root / "garbage.gpkg", "empty": root / "empty",
            "empty_run": root / "empty_run", "photo": root / "photo.tif", "footprints": root / "footprints.gpkg",
            "missing": root / "no-such-register.gpkg", "root": root}


#: name -> its command line, given the bad inputs and the folder its outputs go into
Args = Callable[[dict[str, Path], Path], list[str]]
COMMANDS: dict[str, Args] = {
    "coregister": lambda b, d: ["coregister", str(b["empty"]), "--out", str(d / "aligned")],
    "detect": lambda b, d: ["detect", str(b["garbage.tif"]), str(b["garbage.tif"]),
                            "--out", str(d / "change.tif"), "--device", "cpu"],
    "detect --series": lambda b, d: ["detect", str(b["empty"]), "--series", "--out", str(d / "change.tif"),
                                     "--device", "cpu"],
    "vectorize": lambda b, d: ["vectorize", str(b["photo"]), "--out", str(d / "fp.gpkg")],
    "match": lambda b, d: ["match", str(b["footprints"]), "--permits", str(b["missing"]),
                           "--out", str(d / "v.gpkg")],
    "match --lenient": lambda b, d: ["match", str(b["garbage.gpkg"]), "--permits",
                                     str(b["missing"]), "--lenient", "--out", str(d / "v.gpkg")],
    "report": lambda b, d: ["report", "--violations", str(b["footprints"]),
                            "--out", str(d / "r.html")],
    "report RUN_DIR": lambda b, d: ["report", str(b["empty_run"]), "--out", str(d / "r.html")],
    "export": lambda b, d: ["export", str(b["root"] / "no-such-model"), "--out", str(d / "deploy")],
    "nightly": lambda b, d: ["nightly", "--catalog", str(b["empty"]), "--permits", str(b["missing"]),
                             "--state", str(d / "state"), "--out", str(d / "violations")],
    "train": lambda b, d: ["train", str(b["empty"]), "--out", str(d / "model"), "--device", "cpu"],
    "run": lambda b, d: ["run", str(b["empty"]), "--permits", str(b["missing"]), "--out", str(d / "out")],
}


@pytest.mark.parametrize("depth", sorted(DEPTHS))
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_failed_command_leaves_no_new_folder(name: str, depth: str, bad: dict[str, Path],
                                               tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    code, err = _cli(["-q", *COMMANDS[name](bad, work.joinpath(*DEPTHS[depth]))])
    assert code == 2, err
    assert "Internal error" not in err and "Traceback" not in err, err
    assert _tree(work) == {}, f"{name} left {sorted(_tree(work))} behind; stderr: {err}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_failed_command_leaves_an_existing_folder_as_it_was(name: str, bad: dict[str, Path],
                                                              tmp_path: Path) -> None:
    """The output goes into a folder of the user's (holding a file and an empty folder): a failure
    leaves it byte for byte, its empty subfolder included, and removes only what it made below."""
    work = tmp_path / "work"
    (work / "notes").mkdir(parents=True)
    (work / "README.txt").write_text("the user's", encoding="utf-8")
    before = _tree(work)
    code, err = _cli(["-q", *COMMANDS[name](bad, work)])
    assert code == 2, err
    assert _tree(work) == before
    code, err = _cli(["-q", *COMMANDS[name](bad, work / "notes" / "deeper")])
    assert code == 2, err
    assert _tree(work) == before


def test_a_successful_command_still_makes_its_folders(tmp_path: Path) -> None:
    """The clean-up is for failures only: a match into new/a/b/ writes new/a/b/v.gpkg."""
    from changedetect.testing import make_permits

    stack = make_stack(n_dates=2, size=64, seed=5)
    footprints = make_footprints(stack)
    footprints.to_file(tmp_path / "fp.gpkg")
    make_permits(footprints.iloc[:1]).to_file(tmp_path / "permits.gpkg")
    out = tmp_path / "new" / "a" / "b" / "v.gpkg"
    code, err = _cli(["-q", "match", str(tmp_path / "fp.gpkg"), "--permits", str(tmp_path / "permits.gpkg"),
                      "--out", str(out)])
    assert code == 0, err
    assert out.is_file()
    assert sorted(p.name for p in out.parent.iterdir()) == ["v.gpkg"]


def test_removing_new_folders_keeps_its_old_import() -> None:
    from changedetect import _pipeline_output, pipeline
    from changedetect.io import atomic

    assert pipeline.removing_new_folders is _pipeline_output.removing_new_folders is atomic.removing_new_folders


#: A file that is no raster and no vector file, given where each command reads one.
UNREADABLE: dict[str, Callable[[Path, Path, Path], list[str]]] = {
    "vectorize PROB": lambda bad, prob, out: ["vectorize", str(bad.with_suffix(".tif")), "--out", str(out / "f.gpkg")],
    "vectorize --first-seen": lambda bad, prob, out: ["vectorize", str(prob), "--first-seen",
                                                      str(bad.with_suffix(".tif")), "--out", str(out / "f.gpkg")],
    "vectorize --before": lambda bad, prob, out: ["vectorize", str(prob), "--before", str(bad.with_suffix(".tif")),
                                                  "--after", str(bad.with_suffix(".tif")), "--out", str(out / "f.gpkg")],
    "vectorize --buildings": lambda bad, prob, out: ["vectorize", str(prob), "--buildings",
                                                     str(bad.with_suffix(".gpkg")), "--out", str(out / "f.gpkg")],
    "report --violations": lambda bad, prob, out: ["report", "--violations", str(bad.with_suffix(".gpkg")),
                                                   "--out", str(out / "r.html")],
}


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_an_unreadable_input_is_one_line_naming_it(name: str, bad: dict[str, Path], tmp_path: Path) -> None:
    """`vectorize garbage.tif` was 'Internal error: RasterioIOError ... This is a bug' (exit 1), and
    `report --violations garbage.gpkg` 'Internal error: DataSourceError': a user's wrong file, not a bug."""
    stack = make_stack(n_dates=2, size=32, seed=3)
    prob = stack.isel(time=0, band=0, drop=True).astype("float32") * 0
    prob.rio.to_raster(tmp_path / "prob.tif")
    code, err = _cli(["-q", *UNREADABLE[name](bad["garbage.tif"], tmp_path / "prob.tif", tmp_path / "out")])
    assert code == 2, err
    assert "Internal error" not in err and "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("Error")]
    assert len(lines) == 1 and "garbage" in lines[0], err
    assert not (tmp_path / "out").exists()
