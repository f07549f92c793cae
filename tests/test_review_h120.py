"""Review (H120) of the Python API as a rioxarray / geopandas user meets it: a date read with
``rioxarray.open_rasterio(path)`` (not masked) has its declared nodata taken as no data; the public
signatures name public types; a stage's ``config=`` takes a dict; ``cd.io``, ``cd.with_parcels`` and
``cd.building_segmenter`` resolve from ``import changedetect as cd`` alone."""

from __future__ import annotations

import inspect
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rioxarray
import xarray as xr

import changedetect as cd
from changedetect.coregister import coregister
from changedetect.errors import ConfigError
from changedetect.match import MatchConfig, match
from changedetect.testing import make_footprints, make_model, make_permits, make_stack
from changedetect.vectorize import VectorizeConfig, vectorize

REPO = Path(__file__).resolve().parents[1]
COLLAR = 24  # AFTER's first columns: outside its scene, 0 = the files' declared nodata


@pytest.fixture(scope="module")
def uint16_dates(tmp_path_factory: pytest.TempPathFactory) -> tuple:  # type: ignore[type-arg]
    """Two uint16 dates whose nodata is 0 (1.. elsewhere), AFTER with a collar of 0 on its left, as a
    scene's edge is delivered; and a tiny model."""
    root = tmp_path_factory.mktemp("u16")
    stack = make_stack(n_dates=2, size=96)
    paths = []
    for i in (0, 1):
        data = (stack.isel(time=i).values * 4 + 1).astype(np.uint16)
        if i == 1:
            data[:, :, :COLLAR] = 0
        path = root / f"d{i}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=96, height=96, count=4, dtype="uint16", nodata=0,
                           crs=stack.rio.crs, transform=stack.rio.transform()) as dst:
            dst.write(data)
            dst.descriptions = tuple(str(b) for b in stack["band"].values)
        paths.append(path)
    return paths[0], paths[1], make_model(root / "model")


def _pair(paths: tuple, masked: bool) -> tuple[xr.DataArray, xr.DataArray]:  # type: ignore[type-arg]
    return (rioxarray.open_rasterio(paths[0], masked=masked),  # type: ignore[return-value]
            rioxarray.open_rasterio(paths[1], masked=masked))


def _stack(dates: tuple[xr.DataArray, xr.DataArray]) -> xr.DataArray:
    stack = xr.concat(dates, dim="time").assign_coords(
        time=np.array(["2024-01-15", "2024-03-15"], dtype="datetime64[ns]"))
    return stack.transpose("time", "band", "y", "x")


def test_detect_pair_takes_a_uint16_dates_declared_nodata_as_no_data(uint16_dates: tuple) -> None:  # type: ignore[type-arg]
    """Before: the 0 collar was read as black ground (no NaN there; on the sample city 7.6 % of such
    a collar came out as change, against 0.5 % elsewhere) and skewed the scene's statistics."""
    before, after = _pair(uint16_dates, masked=False)
    assert before.dtype == np.uint16 and before.rio.nodata == 0
    config = cd.DetectConfig(model=str(uint16_dates[2]))
    prob = cd.detect_pair(before, after, config=config).values
    assert np.isnan(prob[:, :COLLAR]).all()
    masked = cd.detect_pair(*_pair(uint16_dates, masked=True), config=config).values
    np.testing.assert_allclose(prob, masked, atol=1e-6)  # NaN where NaN


def test_detect_series_of_a_uint16_stack_takes_its_nodata_as_no_data(uint16_dates: tuple) -> None:  # type: ignore[type-arg]
    config = cd.DetectConfig(model=str(uint16_dates[2]))
    stack = _stack(_pair(uint16_dates, masked=False))
    assert stack.rio.nodata == 0
    prob, _ = cd.detect_series(stack, config=config)
    assert np.isnan(prob.values[:, :COLLAR]).all()
    masked, _ = cd.detect_series(_stack(_pair(uint16_dates, masked=True)), config=config)
    np.testing.assert_allclose(prob.values, masked.values, atol=1e-6)


def test_coregister_of_a_uint16_stack_keeps_its_nodata_as_no_data(uint16_dates: tuple) -> None:  # type: ignore[type-arg]
    """Before: the aligned AFTER held 0 (black ground) in its collar."""
    aligned, _ = coregister(_stack(_pair(uint16_dates, masked=False)))
    assert aligned.dtype == np.float32
    assert np.isnan(aligned.isel(time=1).values[:, :, : COLLAR - 4]).all()
    assert np.isfinite(aligned.isel(time=0).values).all()


def test_nodata_as_nan_leaves_a_float_stack_without_nodata_as_it_is() -> None:
    from changedetect.types import nodata_as_nan

    stack = make_stack(n_dates=2, size=16)  # NaN nodata, as open_stack gives it
    assert nodata_as_nan(stack) is stack
    plain = xr.DataArray(np.zeros((1, 2, 2), dtype=np.uint8), dims=("band", "y", "x"))
    assert nodata_as_nan(plain) is plain  # no nodata declared: every value is data


# ----------------------------------------------------------------------------- public signatures
def _public_callables() -> list[tuple[str, object]]:
    out = []
    for name in cd.__all__:
        obj = getattr(cd, name)
        if inspect.isfunction(obj) or inspect.isfunction(getattr(obj, "__wrapped__", None)):
            out.append((name, obj))
    import changedetect.presence as presence

    return [*out, ("coregister", coregister), ("vectorize", vectorize), ("match", match),
            ("DatePresence", presence.DatePresence.__init__), ("building_presence", presence.building_presence)]


@pytest.mark.parametrize(("name", "func"), _public_callables())
def test_public_signatures_name_no_private_type(name: str, func: object) -> None:
    """Before: detect_pair's ``model: '_Loaded | None'`` in help(); now ``ModelLike``, public in
    changedetect.detect."""
    text = str(inspect.signature(func))  # type: ignore[arg-type]
    private = re.findall(r"(?<![\w.])_[A-Za-z]\w*", text)
    assert not private, f"{name}{text} names {private}"


def test_model_like_is_public_and_a_loaded_model_is_one(tmp_path: Path) -> None:
    import changedetect.detect as detect_mod
    from changedetect.weights import load_model

    assert "ModelLike" in detect_mod.__all__
    hint = inspect.signature(cd.detect_pair).parameters["model"].annotation
    assert "ModelLike" in str(hint)
    loaded = load_model(make_model(tmp_path / "m"))
    assert hasattr(loaded, "module") and hasattr(loaded, "card")  # what the Protocol asks


# ----------------------------------------------------------------------------- config= as a dict
@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple:  # type: ignore[type-arg]
    stack = make_stack(n_dates=2, size=64)
    footprints = make_footprints(stack)
    model = make_model(tmp_path_factory.mktemp("cfg") / "model")
    prob = cd.detect_pair(stack.isel(time=0), stack.isel(time=1), config=cd.DetectConfig(model=str(model)))
    return stack, footprints, make_permits(footprints), model, prob


def test_detect_pair_takes_a_dict_config_as_its_toml_table(small: tuple) -> None:  # type: ignore[type-arg]
    """Before: AttributeError: 'dict' object has no attribute 'device'."""
    stack, _, _, model, prob = small
    got = cd.detect_pair(stack.isel(time=0), stack.isel(time=1), config={"model": str(model), "threshold": 0.4})
    np.testing.assert_allclose(got.values, prob.values, atol=1e-6)
    assert got.attrs["threshold"] == 0.4


def test_other_stages_take_a_dict_config(small: tuple) -> None:  # type: ignore[type-arg]
    stack, footprints, permits, _, prob = small
    aligned, report = coregister(stack, config={"local": False})
    assert report.config["local"] is False
    want = vectorize(prob, config=VectorizeConfig(min_area_m2=5.0))
    got = vectorize(prob, config={"min_area_m2": 5})
    assert len(got) == len(want)
    a = match(footprints, permits, config={"edge_tolerance_m": 0.5})
    b = match(footprints, permits, config=MatchConfig(edge_tolerance_m=0.5))
    assert list(a["status"]) == list(b["status"])


@pytest.mark.parametrize(("call", "table"), [
    (lambda st, fp, pm, prob: cd.detect_pair(st.isel(time=0), st.isel(time=1), config={"windw": 64}), "detect"),
    (lambda st, fp, pm, prob: coregister(st, config={"max_shift_px": 8}), "coregister"),
    (lambda st, fp, pm, prob: vectorize(prob, config={"min_area": 5}), "vectorize"),
    (lambda st, fp, pm, prob: match(fp, pm, config={"edge_tolerance": 0.5}), "match"),
])
def test_an_unknown_key_of_a_dict_config_is_named(small: tuple, call: object, table: str) -> None:  # type: ignore[type-arg]
    stack, footprints, permits, _, prob = small
    with pytest.raises(ConfigError, match=rf"config: unknown key '{table}\.\w+' \(did you mean '\w+'\?\); "
                                          rf"allowed keys in \[{table}\]"):
        call(stack, footprints, permits, prob)  # type: ignore[operator]


def test_a_config_of_another_stage_or_type_says_what_to_give(small: tuple, tmp_path: Path) -> None:  # type: ignore[type-arg]
    stack, footprints, permits, _, prob = small
    with pytest.raises(TypeError, match="detect_pair's config must be a DetectConfig or a dict of its fields"):
        cd.detect_pair(stack.isel(time=0), stack.isel(time=1), config=VectorizeConfig())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="match's config must be a MatchConfig .* got str"):
        match(footprints, permits, config="match.toml")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="run's config: unknown key 'detct'"):
        cd.run(tmp_path / "none", permits=tmp_path / "none.gpkg", out=tmp_path / "out",
               config={"detct": {"model": "x"}})


def _every_stage_with_a_config(tmp: Path) -> dict[str, object]:
    from changedetect.coregister import estimate_global_shift
    from changedetect.match import match_to_file
    from changedetect.report import render_report, report_from_run
    from changedetect.vectorize import vectorize_file

    none, out = tmp / "none.tif", tmp / "out"
    stack, frame = make_stack(n_dates=2, size=16), make_footprints()
    return {
        "detect_to_file": lambda c: cd.detect_to_file(none, none, out / "p.tif", config=c),
        "detect_series_to_file": lambda c: cd.detect_series_to_file(stack, out / "p.tif", config=c),
        "detect_each_pair": lambda c: cd.detect_each_pair(stack, config=c),
        "detect_series": lambda c: cd.detect_series(stack, config=c),
        "estimate_global_shift": lambda c: estimate_global_shift(np.zeros((8, 8)), np.zeros((8, 8)), config=c),
        "vectorize_file": lambda c: vectorize_file(none, out / "f.gpkg", config=c),
        "match_to_file": lambda c: match_to_file(none, none, out / "v.gpkg", config=c),
        "render_report": lambda c: render_report(frame, config=c),
        "write_report": lambda c: cd.write_report(frame, out_path=out / "r.html", config=c),
        "report_from_run": lambda c: report_from_run(tmp, config=c),
        "run_nightly": lambda c: cd.run_nightly(none, permits=none, state=tmp / "state", out=out, config=c),
    }


@pytest.mark.parametrize("name", list(_every_stage_with_a_config(Path("."))))
def test_every_public_config_parameter_reads_a_dict(name: str, tmp_path: Path) -> None:
    """The same in every function that takes a stage's ``config=``: a dict is read as the TOML table
    is, so a key it lacks is named before any work (before: AttributeError from inside)."""
    call = _every_stage_with_a_config(tmp_path)[name]
    with pytest.raises(ConfigError, match=rf"^{name}'s config: unknown key '(\w+\.)?no_such_key'"):
        call({"no_such_key": 1})  # type: ignore[operator]
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- top level
def test_parcels_and_the_segmenter_are_top_level() -> None:
    """README's chain used them from their modules only; DESIGN.md's public API lists them."""
    from changedetect.parcels import with_parcels
    from changedetect.weights import building_segmenter

    assert cd.with_parcels is with_parcels and cd.building_segmenter is building_segmenter
    assert {"with_parcels", "building_segmenter"} <= set(cd.__all__)
    design = (REPO / "DESIGN.md").read_text(encoding="utf-8").split("## Public API", 1)[1].split("\n## ", 1)[0]
    assert "`with_parcels`" in design and "`building_segmenter`" in design


def test_public_submodules_are_attributes_in_a_fresh_interpreter() -> None:
    """Before: ``cd.io`` was AttributeError until something imported changedetect.io; still no torch."""
    code = ("import sys, changedetect as cd; print(cd.io.__name__, cd.testing.__name__, cd.detect.__name__, "
            "'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.split() == ["changedetect.io", "changedetect.testing", "changedetect.detect", "False"]


def test_the_submodule_list_is_every_public_module() -> None:
    public = {m.name for m in pkgutil.iter_modules(cd.__path__) if not m.name.startswith("_")}
    assert public == cd._SUBMODULES


def test_readmes_python_api_names_resolve_from_the_top_level() -> None:
    """Every ``cd.NAME`` README's Python API block uses (its comments too) in a fresh interpreter."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("## The Python API", 1)[1].split("\n## ", 1)[0]
    names = sorted(set(re.findall(r"\bcd\.(\w+(?:\.\w+)?)", block)))
    assert "with_parcels" in names and "building_segmenter" in names and "io.spill_stack" in names
    code = "import functools, changedetect as cd\n" + "".join(
        f"functools.reduce(getattr, {n.split('.')!r}, cd)\n" for n in names)
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    tops = {n.split(".")[0] for n in names}
    assert tops <= set(cd.__all__) | cd._SUBMODULES, tops - set(cd.__all__) - cd._SUBMODULES


def test_nodata_its_dtype_cannot_hold_is_no_pixel() -> None:
    """A uint8 date declaring nodata -9999 (a header copied from another product): no pixel can be it, so the
    date is read as it is, each time (it raised rioxarray's OverflowError from inside detect_pair)."""
    from changedetect.types import nodata_as_nan

    da = xr.DataArray(np.array([[[0, 7]]], dtype=np.uint8), dims=("band", "y", "x"), attrs={"_FillValue": -9999})
    for _ in range(2):
        out = nodata_as_nan(da)
        assert out.dtype == np.uint8 and out.values.tolist() == [[[0, 7]]]
