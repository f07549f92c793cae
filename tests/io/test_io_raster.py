"""write_cog and atomic_path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401
import xarray as xr
from affine import Affine

from changedetect.errors import OutputExistsError
from changedetect.io import atomic_path, open_stack, write_cog

TRANSFORM = Affine(0.5, 0, 683_000, 0, -0.5, 1_203_000)


def _raster(
    data: np.ndarray, dims: tuple[str, ...], bands: list[str] | None = None
) -> xr.DataArray:
    h, w = data.shape[-2:]
    coords: dict[str, object] = {
        "y": 1_203_000 - 0.25 - 0.5 * np.arange(h),
        "x": 683_000 + 0.25 + 0.5 * np.arange(w),
    }
    if bands:
        coords["band"] = bands
    arr = xr.DataArray(data, dims=dims, coords=coords)
    return arr.rio.write_crs("EPSG:32648").rio.write_transform(TRANSFORM)


def test_float32_yx_roundtrip_is_a_cog(tmp_path: Path) -> None:
    data = np.random.default_rng(3).random((1100, 700)).astype(np.float32)
    data[5, 7] = np.nan
    prob = _raster(data, ("y", "x")).assign_attrs(
        model="vhr-building", before="2024-01-10", _FillValue=np.nan
    )
    out = write_cog(prob, tmp_path / "prob.tif")
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 32648
        assert src.transform == TRANSFORM
        assert np.isnan(src.nodata)
        assert src.dtypes == ("float32",)
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.block_shapes[0] == (512, 512)
        assert src.overviews(1) == [2, 4]
        assert src.tags()["model"] == "vhr-building" and src.tags()["before"] == "2024-01-10"
        assert "_FillValue" not in src.tags()
        np.testing.assert_array_equal(src.read(1), data)
        assert src.descriptions == (None,)  # an unnamed array: no band description
    assert [p.name for p in tmp_path.iterdir()] == ["prob.tif"]  # no temporary files left
    with rasterio.open(write_cog(prob.rename("change_probability"), tmp_path / "named.tif")) as src:
        assert src.descriptions == ("change_probability",)  # QGIS shows it as the band's name


def test_uint8_band_yx_dask_roundtrip_with_names_and_nodata(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    data = rng.integers(0, 200, (3, 300, 260)).astype(np.float32)
    data[1, 0, 0] = np.nan
    lazy = _raster(
        da.from_array(data, chunks=(1, 100, 70)), ("band", "y", "x"), ["red", "green", "nir"]
    )
    out = write_cog(lazy, tmp_path / "sub" / "img.tif", dtype="uint8", nodata=255)
    with rasterio.open(out) as src:
        assert src.descriptions == ("red", "green", "nir")
        assert src.nodata == 255
        got = src.read()
    expected = np.where(np.isnan(data), 255, data).astype(np.uint8)
    np.testing.assert_array_equal(got, expected)
    back = open_stack([out.rename(out.with_name("img_20240101.tif"))])
    assert list(back.band.values) == ["red", "green", "nir"]
    assert np.isnan(back.values[0, 1, 0, 0])


def test_a_band_of_a_stack_is_written_with_its_grid(tmp_path: Path, write_tif) -> None:
    data = np.arange(2 * 20 * 30, dtype=np.uint16).reshape(2, 20, 30)
    write_tif(tmp_path / "in" / "t_20240101.tif", data, descriptions=["red", "nir"])
    stack = open_stack(tmp_path / "in", chunks=8)
    out = write_cog(stack.isel(time=0).sel(band="nir"), tmp_path / "nir.tif", dtype="uint8")
    with rasterio.open(out) as src:
        assert src.transform == TRANSFORM and src.crs.to_epsg() == 32648
        assert src.descriptions == ("nir",)
        np.testing.assert_array_equal(src.read(1), np.clip(data[1], 0, 255))


def test_write_cog_refuses_to_overwrite(tmp_path: Path) -> None:
    arr = _raster(np.zeros((4, 4), np.float32), ("y", "x"))
    write_cog(arr, tmp_path / "a.tif")
    with pytest.raises(OutputExistsError, match=r"a\.tif' already exists; pass overwrite=True"):
        write_cog(arr, tmp_path / "a.tif")
    write_cog(arr + 1, tmp_path / "a.tif", overwrite=True)
    with rasterio.open(tmp_path / "a.tif") as src:
        assert src.read(1)[0, 0] == 1


def test_write_cog_rejects_a_stack(tmp_path: Path) -> None:
    arr = _raster(np.zeros((1, 1, 4, 4), np.float32), ("time", "band", "y", "x"))
    with pytest.raises(ValueError, match="select one date first"):
        write_cog(arr, tmp_path / "a.tif")


def test_atomic_path_removes_the_temporary_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.gpkg"
    seen: list[Path] = []
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(target) as tmp:
        seen.append(tmp)
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.tmp-") and tmp.suffix == ".gpkg"
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert not target.exists() and not seen[0].exists()
    with atomic_path(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole"
    assert list(tmp_path.iterdir()) == [target]


def test_without_gdal_cog_driver_a_tiled_geotiff_with_overviews_is_written(
    tmp_path: Path, monkeypatch
) -> None:
    real = rasterio.Env.drivers
    monkeypatch.setattr(
        rasterio.Env, "drivers", lambda self: {k: v for k, v in real(self).items() if k != "COG"}
    )
    data = np.random.default_rng(5).random((1030, 600)).astype(np.float32)
    out = write_cog(_raster(data, ("y", "x")), tmp_path / "old_gdal.tif")
    with rasterio.open(out) as src:
        assert src.profile["tiled"] and src.block_shapes[0] == (512, 512)
        assert src.overviews(1) == [2, 4]
        np.testing.assert_array_equal(src.read(1), data)


def test_write_cog_leaves_no_write_running_when_a_window_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                write_race: Any) -> None:
    """Before: dask raised one window's error while another thread still wrote its window into the
    staging GeoTIFF, which was then closed under that write (a crash in GDAL, not the error)."""
    import dask

    import changedetect.io.raster as raster_mod

    real_open = raster_mod._open_stage
    monkeypatch.setattr(raster_mod, "_open_stage", lambda stage, profile: write_race.dataset(real_open(stage, profile)))
    monkeypatch.setattr(raster_mod, "_WindowWriter", write_race.writer(raster_mod._WindowWriter))
    size = chunk = raster_mod._WRITE_CHUNK
    size *= 2  # four windows written
    plane = xr.DataArray(np.ones((1, size, size), np.float32), dims=("band", "y", "x"),
                         coords={"y": np.arange(size)[::-1] + 0.5, "x": np.arange(size) + 0.5})
    plane = plane.rio.write_crs("EPSG:32648").copy(
        data=da.from_array(plane.values, chunks=(1, chunk, chunk)).map_blocks(write_race.failing((0, 1, 1)),
                                                                             dtype=np.float32))
    with dask.config.set(num_workers=2), pytest.raises(OSError, match="corrupt source tile"):
        raster_mod.write_cog(plane, tmp_path / "p.tif")
    assert write_race.held()
    assert not list(tmp_path.iterdir())  # nothing half-written


@pytest.mark.parametrize("lazy", [False, True])
def test_a_raster_of_dates_is_written_as_days_and_read_back_by_vectorize(tmp_path: Path, lazy: bool) -> None:
    """detect_series' first_seen (datetime64, NaT where never changed) through write_cog: days since 1970,
    NaN for NaT, the units tag, and vectorize reads the dates back.  It was written as float32 nanoseconds
    with NaT a valid -9.2e18, and every footprint's first_seen read back NaT."""
    from changedetect.vectorize import vectorize

    prob = np.zeros((64, 64), np.float32)
    prob[10:30, 10:30] = prob[40:60, 40:60] = 0.9
    first = np.full((64, 64), np.datetime64("NaT"), dtype="datetime64[ns]")
    first[10:30, 10:30], first[40:60, 40:60] = np.datetime64("2024-07-12"), np.datetime64("2025-01-20")
    dates = _raster(da.from_array(first, chunks=32) if lazy else first, ("y", "x")).assign_attrs(model="m")
    out = write_cog(dates, tmp_path / "first_seen.tif")
    with rasterio.open(out) as src:
        assert src.dtypes == ("float32",) and np.isnan(src.nodata)
        assert src.tags()["units"] == "days since 1970-01-01" and src.tags()["model"] == "m"
        values = src.read(1)
    assert np.isnan(values[0, 0]) and values[20, 20] == (np.datetime64("2024-07-12") - np.datetime64("1970-01-01")).astype(int)
    read = rioxarray.open_rasterio(out).squeeze("band", drop=True)
    found = vectorize(_raster(prob, ("y", "x")), first_seen=read).sort_values("first_seen")
    assert [str(d)[:10] for d in found["first_seen"]] == ["2024-07-12", "2025-01-20"]
    with pytest.raises(ValueError, match="days since 1970-01-01"):
        write_cog(dates, tmp_path / "dates8.tif", dtype="uint8")


def test_cog_windows_refuses_a_template_of_dates(tmp_path: Path) -> None:
    """Its windows are written as given: a datetime64 template gave a file tagged in days holding nanoseconds."""
    from changedetect.io.raster import cog_windows

    first = _raster(np.full((8, 8), np.datetime64("2024-07-12"), dtype="datetime64[ns]"), ("y", "x"))
    with pytest.raises(ValueError, match="dates_as_days"), cog_windows(first, tmp_path / "d.tif"):
        pass
    assert not (tmp_path / "d.tif").exists()


def test_nan_written_as_0_into_a_uint8_file_without_nodata_is_said(tmp_path: Path) -> None:
    """NaN became 0 with no nodata declared, indistinguishable from 'no change', with nothing said."""
    import warnings

    from changedetect.errors import ChangeDetectWarning

    data = np.full((40, 40), 0.9, dtype=np.float32)
    data[:3, :5] = np.nan
    with pytest.warns(ChangeDetectWarning, match=r"15 no-data \(NaN\) pixel\(s\) written as 0") as said:
        write_cog(_raster(data, ("y", "x")), tmp_path / "p8.tif", dtype="uint8")
    (ours,) = [w for w in said if issubclass(w.category, ChangeDetectWarning)]
    assert ours.filename == __file__  # the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error", ChangeDetectWarning)  # declared, or no NaN: nothing to say
        write_cog(_raster(data, ("y", "x")), tmp_path / "p8n.tif", dtype="uint8", nodata=255)
        write_cog(_raster(np.nan_to_num(data), ("y", "x")), tmp_path / "p8z.tif", dtype="uint8")
    with rasterio.open(tmp_path / "p8n.tif") as src:
        assert src.nodata == 255 and src.read(1)[0, 0] == 255
