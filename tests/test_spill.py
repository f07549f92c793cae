"""A co-registered stack larger than ``[run] hold_gib`` is written once to scratch GeoTIFFs and read
back window by window (``changedetect.io.spill``): the same values, the same run, no scratch left."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest

from changedetect.config import PipelineConfig, RunConfig
from changedetect.errors import ConfigError, OutputLocationError
from changedetect.io.spill import spill_stack
from changedetect.testing import make_footprints, make_model, make_permits, make_stack, write_stack

RASTERS = ("change_probability.tif", "first_seen.tif")


def _lazy_stack() -> Any:
    stack = make_stack(n_dates=3, size=1300, seed=5).astype(np.float32)
    values = stack.values.copy()
    values[1, :, :40, :] = np.nan  # nodata is NaN in an aligned stack
    values[2, 2, 700:, 1250:] = np.nan
    stack = stack.copy(data=da.from_array(values, chunks=(1, 1, 512, 512)))
    stack.attrs = {"sources": ["a.tif", "b.tif", "c.tif"], "_FillValue": np.nan}
    return stack, values


def test_a_spilled_stack_reads_back_the_same_values_coordinates_and_attributes(tmp_path: Path) -> None:
    stack, values = _lazy_stack()
    out = spill_stack(stack, tmp_path / "scratch")
    assert sorted(p.name for p in (tmp_path / "scratch").iterdir()) == ["date_000.tif", "date_001.tif", "date_002.tif"]
    assert out.chunks is not None and set(out.chunks[1]) == {1}  # one band a chunk, as open_stack chunks
    assert out.dims == stack.dims and out.name == stack.name
    assert out.attrs == stack.attrs and out.rio.crs == stack.rio.crs
    for coord in stack.coords:
        np.testing.assert_array_equal(out[coord].values, stack[coord].values)
    np.testing.assert_array_equal(out.values, values)  # NaN where NaN, bit for bit elsewhere
    window = out.isel(time=2, y=slice(650, 720), x=slice(1200, 1300)).values
    np.testing.assert_array_equal(window, values[2, :, 650:720, 1200:1300])


def test_too_little_free_space_is_a_clear_error_before_anything_is_written(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    stack, _ = _lazy_stack()
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage._replace(free=stack.nbytes // 2))
    with pytest.raises(OutputLocationError, match=r"too large to hold in memory.*spill_dir") as err:
        spill_stack(stack, tmp_path / "scratch")
    assert str(tmp_path / "scratch") in str(err.value)
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
    stack = make_stack(n_dates=3, size=300, seed=3)
    write_stack(stack, root / "tiles", prefix="district12")
    make_permits(make_footprints(stack).iloc[:1]).to_file(root / "permits.gpkg")
    config = PipelineConfig().with_model(str(make_model(root / "tiny-model")))
    config = dataclasses.replace(
        config, detect=dataclasses.replace(config.detect, window=64, overlap=8),
        vectorize=dataclasses.replace(config.vectorize, threshold=0.02, low_threshold=0.02),
        output=dataclasses.replace(config.output, report=False))
    return {"root": root, "config": config}


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
