"""Review (H119) of the Python API as an xarray / geopandas user meets it: a wrong type or a permit
frame without the schema's columns is one line naming what to give, and a raster read with
``rioxarray.open_rasterio`` has its bands named by the file's band descriptions."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import rioxarray
import xarray as xr

import changedetect as cd
from changedetect.coregister import coregister
from changedetect.errors import PermitSchemaError
from changedetect.match import match
from changedetect.parcels import with_parcels
from changedetect.testing import make_footprints, make_model, make_permits, make_stack
from changedetect.vectorize import vectorize


@pytest.fixture(scope="module")
def frames() -> tuple:  # type: ignore[type-arg]
    stack = make_stack(n_dates=2, size=64)
    footprints = make_footprints(stack)
    return stack, footprints, make_permits(footprints)


@pytest.mark.parametrize("column", ["permit_id", "valid_until", "status"])
def test_match_with_a_permit_frame_lacking_a_schema_column_names_it(frames: tuple, column: str) -> None:  # type: ignore[type-arg]
    """A register built in memory with a column named otherwise: before, a KeyError from pandas."""
    _, footprints, permits = frames
    with pytest.raises(PermitSchemaError, match=rf"lacks the column\(s\) {column} .*load_register") as info:
        match(footprints, permits.rename(columns={column: "other"}))
    assert "\n" not in str(info.value)


def test_match_given_a_path_or_a_plain_dataframe_says_what_to_give(frames: tuple) -> None:  # type: ignore[type-arg]
    """Before: AttributeError ('str' object has no attribute 'crs') from inside match."""
    _, footprints, permits = frames
    with pytest.raises(TypeError, match="footprints must be a geopandas.GeoDataFrame, got str"):
        match("footprints.gpkg", permits)
    with pytest.raises(TypeError, match="permits must be a geopandas.GeoDataFrame, got str; give load_register"):
        match(footprints, "permits/sample_register.gpkg")
    with pytest.raises(TypeError, match="pandas DataFrame, which has no geometry"):
        match(footprints.drop(columns="geometry"), permits)


_WRONG_TYPES = {
    "vectorize": (lambda st, fp, out: vectorize(np.zeros((64, 64), dtype=np.float32)),
                  "change probability must be an xarray.DataArray .* got ndarray"),
    "write_cog": (lambda st, fp, out: cd.write_cog(st.isel(time=0).values, out / "a.tif"),
                  "write_cog takes an xarray.DataArray .* got ndarray"),
    "write_vector": (lambda st, fp, out: cd.write_vector(fp.drop(columns="geometry"), out / "a.gpkg"),
                     "write_vector takes a geopandas.GeoDataFrame, got DataFrame"),
    "with_parcels": (lambda st, fp, out: with_parcels(fp, np.zeros(3)),
                     "parcels must be a geopandas.GeoDataFrame, got ndarray; give load_parcels"),
}


@pytest.mark.parametrize("stage", list(_WRONG_TYPES))
def test_stages_given_a_numpy_array_or_a_dataframe_say_what_they_take(
        frames: tuple, tmp_path: Path, stage: str) -> None:  # type: ignore[type-arg]
    """Before: AttributeError ('numpy.ndarray' object has no attribute 'attrs' / 'dims' / 'crs')."""
    stack, footprints, _ = frames
    call, message = _WRONG_TYPES[stage]
    with pytest.raises(TypeError, match=message):
        call(stack, footprints, tmp_path)
    assert not list(tmp_path.iterdir())


def test_band_names_takes_rioxarrays_band_descriptions() -> None:
    from changedetect.types import band_names

    da = xr.DataArray(np.zeros((4, 2, 2)), dims=("band", "y", "x"), coords={"band": [1, 2, 3, 4]},
                      attrs={"long_name": ("blue", "green", "red", None)})
    assert band_names(da) == ["blue", "green", "red", "4"]
    assert band_names(da.sel(band=[3, 1])) == ["red", "blue"]
    assert band_names(da.isel(band=[0]).assign_attrs(long_name="blue")) == ["blue"]
    named = da.assign_coords(band=["B02", "B03", "B04", "B08"])
    assert band_names(named) == ["B02", "B03", "B04", "B08"]
    assert band_names(da.drop_vars("band")) == ["1", "2", "3", "4"]
    assert band_names(da.assign_attrs(long_name="reflectance")) == ["1", "2", "3", "4"]


@pytest.fixture(scope="module")
def bgr_files(tmp_path_factory: pytest.TempPathFactory) -> tuple:  # type: ignore[type-arg]
    """Two dates written blue, green, red, nir (as a Sentinel-2 stack B02, B03, B04, B08 is), the
    bands named in the files' descriptions; and a tiny model reading red, green, blue."""
    root = tmp_path_factory.mktemp("bgr")
    stack = make_stack(n_dates=2, size=96)
    for i in (0, 1):
        cd.write_cog(stack.isel(time=i).sel(band=["blue", "green", "red", "nir"]), root / f"d{i}.tif")
    return stack, root / "d0.tif", root / "d1.tif", make_model(root / "model")


def test_detect_pair_on_rioxarray_reads_the_bands_the_file_names(
        bgr_files: tuple, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[type-arg]
    """rioxarray numbers the bands 1..4 and keeps the descriptions in attrs["long_name"]; before, detect_pair
    said the bands were unnamed and read blue as red."""
    stack, before, after, model = bgr_files
    a, b = rioxarray.open_rasterio(before), rioxarray.open_rasterio(after)
    assert list(a["band"].values) == [1, 2, 3, 4] and a.attrs["long_name"] == ("blue", "green", "red", "nir")
    config = cd.DetectConfig(model=str(model))
    with caplog.at_level(logging.WARNING, logger="changedetect"):
        read = cd.detect_pair(a, b, config=config)
    assert "unnamed bands" not in caplog.text
    named = cd.detect_pair(stack.isel(time=0), stack.isel(time=1), config=config)
    np.testing.assert_allclose(read.values, named.values, atol=1e-6)


def test_coregister_of_rioxarray_dates_reports_gains_by_band_name(bgr_files: tuple) -> None:  # type: ignore[type-arg]
    _, before, after, _ = bgr_files
    dates = [rioxarray.open_rasterio(p).astype("float32") for p in (before, after)]
    stack = xr.concat(dates, dim="time").assign_coords(time=np.array(["2024-01-15", "2024-03-15"],
                                                                        dtype="datetime64[ns]"))
    stack.attrs["long_name"] = dates[0].attrs["long_name"]
    _, report = coregister(stack.transpose("time", "band", "y", "x"))
    assert list(report.dates[1].gain) == ["blue", "green", "red", "nir"]


def test_report_chips_of_a_rioxarray_stack_are_true_colour(bgr_files: tuple) -> None:  # type: ignore[type-arg]
    """The report's imagery takes red, green, blue by the files' descriptions; before: bands 1, 2, 3
    (blue, green, red: a false-colour chip)."""
    from changedetect._imagery import StackImagery

    _, before, after, _ = bgr_files
    stack = xr.concat([rioxarray.open_rasterio(p) for p in (before, after)], dim="time")
    assert list(StackImagery(stack, 0).da["band"].values) == [3, 2, 1]


def test_testing_builders_give_an_empty_frame_with_their_columns_when_there_is_nothing() -> None:
    """make_footprints of one date (no new building), make_permits of no footprint and
    make_violations(n=0) raised geopandas' 'Unknown column geometry'; the nothing-found path of a
    user's own test needs them."""
    from changedetect.testing import make_violations

    footprints = make_footprints(make_stack(n_dates=1, size=64))
    permits = make_permits(footprints)
    violations = make_violations(n=0)
    for frame, column in ((footprints, "footprint_id"), (permits, "permit_id"), (violations, "status")):
        assert len(frame) == 0 and column in frame.columns and frame.crs is not None
    assert len(match(footprints, permits)) == 0
