"""H112's leftovers: the merge's dtypes on a night without new rows, the whole-scene series' two COGs
staged together, GDAL's own text on a full disk kept off the CLI's stderr, a file-size limit and `run`'s full
disk said in the user's terms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest


# ------------------------------------------------------------------------------ 1. merge_night's dtypes
def _committed(state_dir: Path) -> Any:
    """A committed register of two rows (generation 1) with numbers of three types and text."""
    import geopandas as gpd
    from shapely.geometry import box

    from changedetect._state import State

    state = State(generation=1)
    register = gpd.GeoDataFrame(
        {"violation_id": ["d1-20240316-001", "d1-20240316-002"], "area": ["d1", "d1"],
         "night": ["2024-03-16"] * 2, "before": ["2024-01-15"] * 2, "after": ["2024-03-15"] * 2,
         "run_violation_id": ["V-1", "V-2"], "footprint_id": ["F-aaaaaaaaaa", "F-bbbbbbbbbb"],
         "status": ["unlicensed", "exceeds_permit"], "reason": ["no permit", "exceeds"],
         "permit_ids": ["", "P-1"], "overlap_ratio": [0.0, 0.4], "excess_area_m2": [400.0, 540.0],
         "area_m2": [400.0, 900.0], "first_seen": ["2024-03-15"] * 2, "change_type": ["new"] * 2,
         "confidence": np.array([0.9103, 0.75], dtype=np.float32),
         "n_dates": np.array([3, 4], dtype=np.int64), "same_sun": ["not needed", "pending"]},
        geometry=[box(0, 0, 20, 20), box(100, 0, 130, 30)], crs="EPSG:32648")
    register.to_parquet(state.violations_path(state_dir))
    return state


def _night(tmp_path: Path, rows: Any) -> list[dict[str, Any]]:
    """The night's results: area d1's one pair, whose run wrote ``rows`` (None: no run at all)."""
    if rows is None:
        return [{"area": "d1", "error": None, "runs": []}]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    rows.to_file(run_dir / "violations.gpkg", layer="violations")
    pair = {"before": "2024-03-15", "after": "2024-05-14", "run_dir": str(run_dir), "carried": []}
    return [{"area": "d1", "error": None, "runs": [pair]}]


@pytest.mark.parametrize("tonight", ["no_candidate", "all_matched"])
def test_a_night_without_new_rows_keeps_the_registers_dtypes(tmp_path: Path, tonight: str) -> None:
    """Nothing new tonight (no candidate at all, or one that is an open violation again, read back from its
    run's GeoPackage as float64): ``merge_night``'s frame has the committed register's dtypes and rows, as
    committed (before: every column ``object``, or ``confidence`` float64)."""
    import geopandas as gpd
    from shapely.geometry import box

    from changedetect import _merge

    state_dir = tmp_path / "state"
    state_dir.mkdir()
    state = _committed(state_dir)
    was = gpd.read_parquet(state.violations_path(state_dir))
    rows = None if tonight == "no_candidate" else gpd.GeoDataFrame(
        {"violation_id": ["V-9"], "footprint_id": ["F-cccccccccc"], "status": ["unlicensed"],
         "area_m2": [401.0], "confidence": [0.8]}, geometry=[box(0, 0, 20, 21)], crs="EPSG:32648")
    merged = _merge.merge_night(state, state_dir, _night(tmp_path, rows), "2024-05-15",
                                permits=str(tmp_path / "none.gpkg"))
    assert merged.dtypes.to_dict() == was.dtypes.to_dict()
    assert list(merged.columns) == list(was.columns)
    assert merged.drop(columns="geometry").equals(was.drop(columns="geometry"))


# ------------------------------------------------------- 2. detect --series: both COGs, or neither
@pytest.fixture(scope="module")
def small_series(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three dates of 96 px and a random model of 64 px windows: one block at the default ``block_px``,
    2 x 2 at 64."""
    from changedetect.detect import DetectConfig
    from changedetect.testing import make_model, make_stack

    root = tmp_path_factory.mktemp("h112-series")
    config = DetectConfig(model=str(make_model(root / "model")), window=64, overlap=8, presence_check=False)
    return {"stack": make_stack(n_dates=3, size=96, seed=3), "config": config}


class _Failing:
    """The second call of ``real`` raises ``exc`` (after the first has run as it would)."""

    def __init__(self, real: Any, exc: BaseException) -> None:
        self.real, self.exc, self.calls = real, exc, 0

    def __call__(self, *args: Any, **kw: Any) -> Any:
        self.calls += 1
        if self.calls == 2:
            raise self.exc
        return self.real(*args, **kw)


@pytest.mark.parametrize(("exc", "existing"), [(OSError(28, "No space left on device"), False),
                                               (OSError(28, "No space left on device"), True),
                                               (KeyboardInterrupt(), True)],
                         ids=["full_disk-new", "full_disk-existing_pair", "interrupted-existing_pair"])
@pytest.mark.parametrize("block_px", [4096, 64], ids=["whole", "blocks"])
def test_a_failing_second_cog_leaves_neither(small_series: dict[str, Any], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch, exc: BaseException, block_px: int,
                                             existing: bool) -> None:
    """The second COG fails (its ``write_cog`` on the whole-scene path, its conversion to a COG on the blocked
    one): neither output is there, or an existing pair is as it was, and no temporary file is left (before, on
    the whole-scene path the probability was written, or replaced, alone; on the blocked path the first-seen
    raster, converted first)."""
    from changedetect import io as cd_io
    from changedetect._detect_series_blocks import detect_series_to_file, first_seen_path
    from changedetect.io import raster

    out = tmp_path / "change.tif"
    if existing:
        out.write_bytes(b"old probability")
        first_seen_path(out).write_bytes(b"old first seen")
    if block_px > 96:
        monkeypatch.setattr(cd_io, "write_cog", _Failing(cd_io.write_cog, exc))
    else:
        monkeypatch.setattr(raster, "_to_cog", _Failing(raster._to_cog, exc))
    with pytest.raises(type(exc)):
        detect_series_to_file(small_series["stack"], out, config=small_series["config"], block_px=block_px,
                              overwrite=True)
    left = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert left == ({"change.tif": b"old probability", "change_first_seen.tif": b"old first seen"}
                    if existing else {})


@pytest.mark.parametrize("block_px", [4096, 64], ids=["whole", "blocks"])
def test_both_cogs_are_written_under_their_names(small_series: dict[str, Any], tmp_path: Path,
                                                 block_px: int) -> None:
    """Without a failure both COGs replace an existing pair, and nothing else is left beside them."""
    import rasterio

    from changedetect._detect_series_blocks import detect_series_to_file, first_seen_path

    out = tmp_path / "change.tif"
    out.write_bytes(b"old probability")
    first_seen_path(out).write_bytes(b"old first seen")
    summary = detect_series_to_file(small_series["stack"], out, config=small_series["config"], block_px=block_px,
                                    overwrite=True)
    assert summary.blocks == (1 if block_px > 96 else 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["change.tif", "change_first_seen.tif"]
    for path in (out, first_seen_path(out)):
        with rasterio.open(path) as src:
            assert (src.width, src.height) == (96, 96)


# --------------------------------------------------------------- 3. a full disk: one line, libtiff's at DEBUG
#: the CLI in a child whose files may not grow past ``argv[1]`` bytes (RLIMIT_FSIZE, SIGXFSZ ignored: a write
#: past it fails with EFBIG, through libtiff's ``_tiffWriteProc`` as on a full disk) and whose folders count as
#: full (``_FULL_BELOW``: what a full disk's free space says, which the limit does not change)
FULL_CHILD = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
import changedetect.io.atomic
changedetect.io.atomic._FULL_BELOW = 1 << 62
from changedetect.cli import main
sys.argv[0] = "changedetect"
main(sys.argv[2:])
"""


@pytest.fixture(scope="module")
def tiles_and_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from changedetect.testing import make_model, make_stack, write_stack

    root = tmp_path_factory.mktemp("h112-full")
    write_stack(make_stack(n_dates=3, size=96, seed=3), root / "tiles")
    make_model(root / "model")
    return root


def _detect_on_a_full_disk(root: Path, tmp_path: Path, *flags: str) -> Any:
    import subprocess
    import sys

    argv = [*flags, "detect", str(root / "tiles"), "--series", "--model", str(root / "model"), "--out",
            str(tmp_path / "out" / "change.tif"), "--no-presence-check"]
    return subprocess.run([sys.executable, "-c", FULL_CHILD, "2000", *argv], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, check=False)


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGXFSZ"), reason="RLIMIT_FSIZE and SIGXFSZ are POSIX")
def test_a_full_disk_prints_our_one_line_and_libtiffs_only_in_the_debug_log(tiles_and_model: Path,
                                                                            tmp_path: Path) -> None:
    """libtiff's own line (``_tiffWriteProc: File too large.``, printed by libtiff's process-wide handler, which
    neither GDAL nor rasterio's log takes) no longer comes before the CLI's one line; with ``--debug`` it is in
    the log (``changedetect.libtiff`` at DEBUG)."""
    quiet = _detect_on_a_full_disk(tiles_and_model, tmp_path, "-q")
    out = tmp_path / "out" / "change.tif"
    assert quiet.returncode == 2, quiet.stderr
    assert quiet.stderr.splitlines() == [
        f"Error: no space left on the disk writing '{out}' (No space left on device): free some space and run the "
        "command again (outputs are written to temporary files and renamed, so nothing half-written is left, and a "
        "nightly state stays as it was)"]
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    debug = _detect_on_a_full_disk(tiles_and_model, tmp_path, "--debug")
    assert "DEBUG changedetect.libtiff: _tiffWriteProc: File too large" in debug.stderr.splitlines(), debug.stderr


#: as FULL_CHILD, but the disk has room: only the process's file-size limit stops the write (``ulimit -f``)
LIMITED_CHILD = FULL_CHILD.replace("changedetect.io.atomic._FULL_BELOW = 1 << 62\n", "")


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGXFSZ"), reason="RLIMIT_FSIZE and SIGXFSZ are POSIX")
def test_a_file_size_limit_is_one_line_saying_so_not_a_bug(tiles_and_model: Path, tmp_path: Path) -> None:
    """A write stopped by ``ulimit -f`` (EFBIG; GDAL's exception says only that a block could not be read back)
    was reported as an internal error, exit 1: it is the machine's setting, said in one line, exit 2."""
    import subprocess
    import sys

    argv = ["-q", "detect", str(tiles_and_model / "tiles"), "--series", "--model", str(tiles_and_model / "model"),
            "--out", str(tmp_path / "out" / "change.tif"), "--no-presence-check"]
    done = subprocess.run([sys.executable, "-c", LIMITED_CHILD, "2000", *argv], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "Error: an output file reached this process's file-size limit (2000 bytes, RLIMIT_FSIZE): raise it "
        "(`ulimit -f unlimited`; systemd: LimitFSIZE=infinity) and run the command again (nothing half-written "
        "is left)"]
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_a_full_disk_during_run_names_the_output_not_its_staged_copy(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`run` writes into a staging folder inside OUT; a full disk's error named the staged copy
    (``OUT/.run.tmp-…/violations.gpkg``), a name the user never gave: it names ``OUT/violations.gpkg``."""
    import errno

    import changedetect.pipeline as pipeline
    from changedetect.testing import make_run_inputs

    config = make_run_inputs(tmp_path, size=96)

    def full(stage: Path, out: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(stage / "violations.gpkg"))

    monkeypatch.setattr(pipeline, "publish", full)
    out = tmp_path / "out"
    with pytest.raises(OSError) as info:
        pipeline.run(tmp_path / "tiles", permits=tmp_path / "permits.gpkg", out=out, config=config, progress=False)
    assert info.value.errno == errno.ENOSPC
    assert info.value.filename == str(out / "violations.gpkg")
    assert not out.exists() or [p.name for p in out.iterdir()] == []


def test_a_libtiff_line_of_an_earlier_command_says_nothing_of_this_ones_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """In a notebook, a ``File too large`` line that libtiff reported in an earlier command made a later command's
    unrelated failure read as a file-size limit where the routing was not installed again (an older GDAL): each
    command starts with nothing remembered."""
    import changedetect._libtiff as libtiff
    import changedetect.io.summary as summary
    from tests.test_cli_errors import _exit

    libtiff._recent.append("_tiffWriteProc: File too large.")  # an earlier command's
    monkeypatch.setattr(libtiff, "route_libtiff_errors", lambda: (lambda: None))  # not installed this time

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something else")

    monkeypatch.setattr(summary, "describe", broken)
    code, err = _exit(["info", str(tmp_path)], capsys)
    assert code == 1 and err.startswith("Internal error: RuntimeError: something else"), err


def test_a_file_too_large_without_a_size_limit_blames_the_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """EFBIG with no RLIMIT_FSIZE set comes from the file system (FAT32's 4 GiB): the line says to write to
    another disk, not to raise a limit that is not there ("no limit now")."""
    import errno
    import resource

    import changedetect.io.summary as summary
    from tests.test_cli_errors import _exit

    if resource.getrlimit(resource.RLIMIT_FSIZE)[0] != resource.RLIM_INFINITY:
        pytest.skip("this process runs under a file-size limit")

    def too_large(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EFBIG, "File too large", str(tmp_path / "info.json"))

    monkeypatch.setattr(summary, "describe", too_large)
    code, err = _exit(["info", str(tmp_path)], capsys)
    assert code == 2 and err.startswith("Error: an output file grew past the largest file its disk allows"), err
    assert "ulimit" not in err
