"""A co-registered stack larger than ``[run] hold_gib`` is written once to scratch GeoTIFFs and read
back window by window (``changedetect.io.spill``): the same values, the same run, no scratch left."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest

from changedetect.config import PipelineConfig, RunConfig
from changedetect.errors import ConfigError, OutputLocationError
from changedetect.io.spill import VALID_ATTR, spill_stack
from changedetect.testing import make_run_inputs, make_stack

RASTERS = ("change_probability.tif", "first_seen.tif")


@functools.lru_cache(maxsize=1)
def _stack_1300() -> Any:
    """The 3 dates x 1300 px of :func:`_lazy_stack`, made once (1-2 s each): never handed out itself."""
    return make_stack(n_dates=3, size=1300, seed=5).astype(np.float32)


def _lazy_stack() -> Any:
    stack = _stack_1300().copy(deep=True)
    values = stack.values.copy()
    values[1, :, :40, :] = np.nan  # nodata is NaN in an aligned stack
    values[2, 2, 700:, 1250:] = np.nan
    stack = stack.copy(data=da.from_array(values, chunks=(1, 1, 512, 512)))
    stack.attrs = {"sources": ["a.tif", "b.tif", "c.tif"], "_FillValue": np.nan}
    return stack, values


def test_a_spilled_stack_reads_back_the_same_values_coordinates_and_attributes(tmp_path: Path) -> None:
    stack, values = _lazy_stack()
    out = spill_stack(stack, tmp_path / "scratch")
    (own,) = (tmp_path / "scratch").iterdir()  # a folder of its own (the next test)
    assert sorted(p.name for p in own.iterdir()) == ["date_000.tif", "date_001.tif", "date_002.tif"]
    assert out.chunks is not None and set(out.chunks[1]) == {1}  # one band a chunk, as open_stack chunks
    assert out.dims == stack.dims and out.name == stack.name
    assert {k: v for k, v in out.attrs.items() if k != VALID_ATTR} == stack.attrs and out.rio.crs == stack.rio.crs
    for coord in stack.coords:
        np.testing.assert_array_equal(out[coord].values, stack[coord].values)
    np.testing.assert_array_equal(out.values, values)  # NaN where NaN, bit for bit elsewhere
    window = out.isel(time=2, y=slice(650, 720), x=slice(1200, 1300)).values
    np.testing.assert_array_equal(window, values[2, :, 650:720, 1200:1300])


def test_a_second_spill_into_the_same_folder_leaves_the_first_stack_reading_its_own_pixels(tmp_path: Path) -> None:
    """A notebook cell run twice, or two areas spilled into one folder: each call writes its own files.  The
    second call once rewrote the first stack's files in place (it then read the other area's pixels, or
    failed on a half-written file)."""
    stack, values = _lazy_stack()
    first = spill_stack(stack, tmp_path / "scratch")
    again = spill_stack(first, tmp_path / "scratch")  # the same cell, run again on its own result
    other = spill_stack(stack.isel(time=[2, 1, 0]), tmp_path / "scratch")  # another area, the same folder
    np.testing.assert_array_equal(first.values, values)
    np.testing.assert_array_equal(again.values, values)
    np.testing.assert_array_equal(other.values, values[[2, 1, 0]])
    assert len(list((tmp_path / "scratch").iterdir())) == 3


def test_a_failed_spill_leaves_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import changedetect.io.spill as spill

    def broken(arrays: Any, targets: Any) -> None:
        targets[0][(slice(0, 1), slice(0, 8), slice(0, 8))] = np.zeros((1, 8, 8), np.float32)
        raise RuntimeError("the warp failed")

    monkeypatch.setattr(spill, "store_drained", broken)
    stack, _ = _lazy_stack()
    with pytest.raises(RuntimeError, match="the warp failed"):
        spill_stack(stack, tmp_path / "scratch")
    assert not any((tmp_path / "scratch").iterdir())


def test_too_little_free_space_is_a_clear_error_before_anything_is_written(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    stack, _ = _lazy_stack()
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=stack.nbytes // 2))
    with pytest.raises(OutputLocationError, match=r"too large to hold in memory.*spill_dir") as err:
        spill_stack(stack, tmp_path / "scratch")
    assert str(tmp_path / "scratch") in str(err.value)
    assert f"({stack.nbytes / 2**20:.1f} MiB)" in str(err.value)  # not '(0.1 GiB)'
    assert not any((tmp_path / "scratch").iterdir())


def test_run_table_takes_hold_gib_and_spill_dir() -> None:
    got = PipelineConfig.from_dict({"run": {"hold_gib": 0.5, "spill_dir": "/scratch"}}).run
    assert got == RunConfig(hold_gib=0.5, spill_dir="/scratch")
    with pytest.raises(ConfigError, match="hold_gib"):
        PipelineConfig.from_dict({"run": {"hold_gib": -1}})


# ----------------------------------------------------------------------------- a run that spills
@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("spill")
    return {"root": root, "config": make_run_inputs(root)}


def _run(tiny: dict, name: str, run: RunConfig) -> Path:
    from changedetect.pipeline import run as run_chain

    out = tiny["root"] / name
    run_chain(tiny["root"] / "tiles", permits=tiny["root"] / "permits.gpkg", out=out,
              config=dataclasses.replace(tiny["config"], run=run))
    return out


@pytest.fixture
def spills(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The scratch folders :func:`spill_stack` was given, and whether their files existed then."""
    import changedetect.io.spill as spill_mod

    seen: list[Path] = []
    real = spill_mod.spill_stack

    def spy(stack: Any, folder: Any) -> Any:
        seen.append(Path(folder))
        return real(stack, folder)

    monkeypatch.setattr(spill_mod, "spill_stack", spy)
    return seen


def test_a_spilled_run_gives_the_held_run_s_outputs_and_leaves_no_scratch(tiny: dict, spills: list[Path]) -> None:
    import geopandas as gpd

    held = _run(tiny, "held", RunConfig())
    assert spills == []  # 300² x 3 dates x 4 bands: held in memory
    spilled = _run(tiny, "spilled", RunConfig(hold_gib=0))
    assert len(spills) == 1 and spills[0].parent == spilled and not spills[0].exists()
    assert not [p.name for p in spilled.iterdir() if p.name.startswith(".")]
    for name in RASTERS:
        assert (spilled / name).read_bytes() == (held / name).read_bytes(), name
    a, b = (gpd.read_file(o / "violations.gpkg", layer="violations") for o in (held, spilled))
    assert len(a) and list(a["status"]) == list(b["status"]) and a.geometry.geom_equals_exact(b.geometry, 0).all()
    # in blocks as well: the blocks read the spilled files
    blocks = _run(tiny, "spilled-blocks", RunConfig(block_px=256, halo_px=32, hold_gib=0))
    assert len(spills) == 2 and not spills[1].exists()
    assert len(gpd.read_file(blocks / "footprints.gpkg"))


def test_spill_dir_takes_the_scratch_elsewhere(tiny: dict, spills: list[Path], tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    _run(tiny, "elsewhere", RunConfig(hold_gib=0, spill_dir=str(scratch)))
    assert len(spills) == 1 and spills[0].parent == scratch and not any(scratch.iterdir())


def test_a_missing_spill_dir_is_a_clear_error_and_leaves_no_output(tiny: dict, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"spill_dir = '.*nowhere'.*existing folder"):
        _run(tiny, "missing-spill-dir", RunConfig(spill_dir=str(tmp_path / "nowhere")))
    assert not (tiny["root"] / "missing-spill-dir").exists()


# ----------------------------------------------------------------------------- review: defects found
def test_a_failing_window_leaves_no_write_running_when_the_files_close(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_race: Any) -> None:
    """Before: dask raised one window's error while another thread still wrote its own window, and
    the scratch files were closed under that write (GDAL freeing a dataset in use: a crash, not
    the error)."""
    import dask

    import changedetect.io.spill as spill_mod

    real_open = spill_mod._open
    monkeypatch.setattr(spill_mod, "_open", lambda path, profile: write_race.dataset(real_open(path, profile)))
    monkeypatch.setattr(spill_mod, "_WindowWriter", write_race.writer(spill_mod._WindowWriter))
    stack, values = _lazy_stack()
    stack = stack.isel(time=[0]).copy(data=da.from_array(values[:1], chunks=(1, 4, 1024, 1024)).map_blocks(
        write_race.failing((0, 0, 1, 1)), dtype=np.float32))
    with dask.config.set(num_workers=2), pytest.raises(OSError, match="corrupt source tile"):
        spill_stack(stack, tmp_path / "scratch")
    assert write_race.held()


def test_a_stack_with_x_before_y_spills_in_its_own_order(tmp_path: Path) -> None:
    """Before: a (time, band, x, y) stack failed with GDAL's 'Write failed' (or, square, wrote its
    rows as columns)."""
    stack, values = _lazy_stack()
    stack = stack.isel(x=slice(0, 1000)).transpose("time", "band", "x", "y")
    out = spill_stack(stack, tmp_path / "scratch")
    assert out.dims == stack.dims
    np.testing.assert_array_equal(out.values, values[..., :1000].transpose(0, 1, 3, 2))


def test_hold_gib_inf_holds_any_stack_in_memory(tiny: dict, spills: list[Path]) -> None:
    """Before: `hold_gib = inf` (valid TOML: never spill) failed the run with OverflowError."""
    out = _run(tiny, "held-inf", RunConfig(hold_gib=float("inf")))
    assert spills == [] and (out / "run.json").is_file()


def test_a_killed_run_s_scratch_in_spill_dir_goes_with_the_next_run_into_its_out(tiny: dict,
                                                                                 tmp_path: Path) -> None:
    """Before: a killed (e.g. out-of-memory) run's scratch in [run] spill_dir, as large as its stack,
    stayed there for good: only those inside OUT were removed by the next run."""
    from changedetect.pipeline import _spill_folder

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    run = RunConfig(spill_dir=str(scratch))
    config = dataclasses.replace(tiny["config"], run=run)
    stale = _spill_folder(config, tiny["root"] / "killed")  # what the killed run left
    (stale / "date_000.tif").write_bytes(b"\0" * 1024)
    other = _spill_folder(config, tiny["root"] / "another")  # another OUT's run, maybe running now
    _run(tiny, "killed", run)
    assert not stale.exists() and other.exists()


def test_a_disk_filled_during_the_spill_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: the free space was checked first only; a disk filled after it (another run's outputs,
    a quota) failed the run with 'Internal error: RasterioIOError: Write failed ... This is a bug'."""
    import shutil

    import rasterio.errors

    import changedetect.io.spill as spill_mod

    stack, _ = _lazy_stack()
    usage = shutil.disk_usage(tmp_path)
    frees = iter([stack.nbytes * 2])  # room at the check, none later
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=next(frees, 0)))

    class Full(spill_mod._WindowWriter):  # what GDAL says when the disk is full
        def __setitem__(self, key: Any, block: np.ndarray) -> None:
            raise rasterio.errors.RasterioIOError("Write failed. See previous exception for details.")

    monkeypatch.setattr(spill_mod, "_WindowWriter", Full)
    with pytest.raises(OutputLocationError, match=r"scratch.*disk is full.*spill_dir"):
        spill_stack(stack, tmp_path / "scratch")


def test_a_spill_into_a_relative_folder_reads_back_from_another_working_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: the lazy reads kept the relative path, so a notebook that changed folder after
    spilling (``%cd``, ``os.chdir``) read 'No such file or directory'."""
    stack, values = _lazy_stack()
    monkeypatch.chdir(tmp_path)
    out = spill_stack(stack, "scratch")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    np.testing.assert_array_equal(out.values, values)


def test_a_registration_only_reference_is_not_spilled(tiny: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import changedetect.io.spill as spill_mod
    from changedetect.pipeline import run as run_chain

    dates: list[list[str]] = []
    real = spill_mod.spill_stack

    def spy(stack: Any, folder: Any) -> Any:
        dates.append([str(t)[:10] for t in stack["time"].values])
        return real(stack, folder)

    monkeypatch.setattr(spill_mod, "spill_stack", spy)
    stack_dates = sorted(p.stem.split("_")[-1] for p in (tiny["root"] / "tiles").glob("*.tif"))
    first = f"{stack_dates[0][:4]}-{stack_dates[0][4:6]}-{stack_dates[0][6:]}"
    run_chain(tiny["root"] / "tiles", permits=tiny["root"] / "permits.gpkg", out=tiny["root"] / "register-to",
              config=dataclasses.replace(tiny["config"], run=RunConfig(hold_gib=0)), register_to=first)
    assert len(dates) == 1 and first not in dates[0] and len(dates[0]) == 2  # the two compared dates only


def test_hold_gib_bounds_every_hold_of_the_run_not_only_the_stack(tiny: dict, spills: list[Path],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: detection, the presence check and the change types held the spilled stack (or each
    date of it) again whenever it fit in 2 GiB, whatever ``hold_gib`` said."""
    import xarray as xr

    held: list[int] = []
    real = xr.DataArray.persist

    def spy(self: xr.DataArray, **kwargs: Any) -> xr.DataArray:
        held.append(int(self.nbytes))
        return real(self, **kwargs)

    monkeypatch.setattr(xr.DataArray, "persist", spy)
    limit_gib = 1.5 * 300 * 300 * 4 / 2**30  # more than one band of one date, less than one date's four
    out = _run(tiny, "bounded", RunConfig(hold_gib=limit_gib))
    assert len(spills) == 1 and (out / "run.json").is_file()
    assert all(n <= limit_gib * 2**30 for n in held), held
    # outside a run, the default bound again: a 1 MiB lazy array is held
    from changedetect._pipeline_steps import hold

    held.clear()
    hold(xr.DataArray(da.zeros((512, 512), dtype=np.float32, chunks=256)))
    assert held == [512 * 512 * 4]
