"""Review of the public Python API as a GIS analyst meets it in a notebook (README's *Python API*,
the stage functions, their result objects and the notebooks' prose)."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from dask.callbacks import Callback

import changedetect
from changedetect.coregister import coregister
from changedetect.match import match
from changedetect.testing import counting_lazy, make_footprints, make_permits, make_stack

REPO = Path(__file__).resolve().parents[1]


def _readme_python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## The Python API", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_python_api_runs_as_written_and_gives_the_counts_it_states(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every line of README's Python API block, run in a folder laid out as the repository, and
    the row counts README's prose gives for the snippet and for `run` (read from README itself)."""
    if not (REPO / "sample_tiles" / "manifest.json").is_file():
        pytest.skip("sample_tiles/ is absent: run `python -m changedetect.samplecity`")
    blocks = _readme_python_blocks()
    assert blocks, "README's Python API section has no python block"
    (tmp_path / "permits").mkdir()
    (tmp_path / "sample_tiles").symlink_to(REPO / "sample_tiles")
    for name in ("sample_register.gpkg", "sample_parcels.gpkg", "schema.json"):
        (tmp_path / "permits" / name).symlink_to(REPO / "permits" / name)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
    prose = (REPO / "README.md").read_text(encoding="utf-8")
    said = re.search(r"has (\d+) rows \((\d+) `unlicensed`, (\d+) `exceeds_permit`\)\s+where `run` gives "
                     r"(\d+) \((\d+) and (\d+)\)", prose)
    assert said, "README no longer states the snippet's and run's counts in the expected words"
    rows, unlicensed, exceeds, run_rows, run_unlicensed, run_exceeds = map(int, said.groups())
    violations = namespace["violations"]
    counts = violations["status"].value_counts()  # type: ignore[attr-defined]
    assert (len(violations), counts.get("unlicensed", 0), counts.get("exceeds_permit", 0)) == (  # type: ignore[arg-type]
        rows, unlicensed, exceeds)
    summary = namespace["summary"]
    assert (summary.n_footprints, summary.counts.get("unlicensed", 0),  # type: ignore[attr-defined]
            summary.counts.get("exceeds_permit", 0)) == (run_rows, run_unlicensed, run_exceeds)  # type: ignore[attr-defined]
    assert Path("violations.gpkg").is_file() and Path("out", "violations.gpkg").is_file()
    assert (violations["parcel_id"] != "").mean() > 0.9  # type: ignore[index]  # each on the sample city's parcels


def test_every_public_name_has_a_docstring() -> None:
    for name in changedetect.__all__:
        if name in ("__version__", "errors"):
            continue
        obj = getattr(changedetect, name)
        assert (obj.__doc__ or "").strip(), f"changedetect.{name} has no docstring"
    import changedetect.io as cio

    for name in cio.__all__:
        assert (getattr(cio, name).__doc__ or "").strip(), f"changedetect.io.{name} has no docstring"


# ----------------------------------------------------------------------------- result objects
def _report() -> changedetect.coregister.CoregistrationReport:  # type: ignore[name-defined]
    from changedetect._registration.report import CoregistrationReport, DateRegistration

    dates = [DateRegistration(date="2024-01-15", status="reference",
                              gain={b: 1.0 for b in "rgbn"}, offset={b: 0.0 for b in "rgbn"}),
             DateRegistration(date="2024-07-12", status="local", shift_px=(1.0082, 3.0681), shift_m=(0.504, -1.534),
                              reliability=0.836, peak_ratio=6.1, snr=44.3, matching="material",
                              tie_points_found=285, tie_points_kept=272, residual_rmse_px=0.144, max_local_px=1.57,
                              gain={b: 1.06 for b in "rgbn"}, offset={b: -10.4 for b in "rgbn"},
                              invariant_fraction=0.52),
             DateRegistration(date="2025-01-20", status="unreliable", reliability=0.1,
                              warnings=["could not be registered <reliably>"])]
    config = {f"option_{i}": i for i in range(25)}
    return CoregistrationReport(reference="2024-01-15", crs="EPSG:32648",
                                transform=(0.5, 0.0, 679828.0, 0.0, -0.5, 1202292.0), shape=(1024, 1024),
                                dates=dates, config=config, seconds=4.2)


def test_coregistration_report_repr_is_a_short_summary_not_a_dump() -> None:
    # the dataclass repr printed every field of every date and the whole configuration: ~3,000
    # characters on the sample city for a report evaluated at the end of a notebook cell
    text = repr(_report())
    assert len(text) < 800, text
    lines = text.splitlines()
    assert len(lines) <= 8
    assert "2024-07-12" in text and "local" in text and "unreliable" in text and "EPSG:32648" in text
    assert "option_3" not in text  # the configuration is in .config / .to_dict(), not the repr
    assert "+1.01" in text and "+3.07" in text  # the shift, in pixels, rounded


def test_coregistration_report_renders_as_an_html_table_in_jupyter() -> None:
    html = _report()._repr_html_()
    assert html.count("<tr") == 4  # header + 3 dates
    assert "&lt;reliably&gt;" in html  # escaped
    assert "272" in html and "285" in html


# ----------------------------------------------------------------------------- stage inputs
def test_coregister_given_a_dataset_says_to_make_it_a_dataarray() -> None:
    stack = make_stack(2, size=64)
    with pytest.raises(TypeError, match=r"xarray\.Dataset.*to_dataarray\(.band.\)"):
        coregister(stack.to_dataset(dim="band"))  # type: ignore[arg-type]


def test_coregister_given_transposed_dims_says_how_to_transpose() -> None:
    stack = make_stack(2, size=64)
    with pytest.raises(ValueError, match=r"\.transpose\('time', 'band', 'y', 'x'\)"):
        coregister(stack.transpose("band", "time", "y", "x"))


def test_a_dataset_with_one_variable_is_still_refused_by_name() -> None:
    stack = make_stack(2, size=64)
    with pytest.raises(TypeError, match="Dataset"):
        coregister(stack.to_dataset(name="tiles"))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- match keeps the index
def test_match_keeps_the_footprints_index() -> None:
    # an analyst filters footprints and joins the statuses back: with a fresh RangeIndex the
    # statuses landed on the wrong rows (or NaN) silently
    stack = make_stack(3, size=128)
    footprints = make_footprints(stack)
    assert len(footprints) >= 2
    permits = make_permits(footprints.iloc[:1])
    subset = footprints.iloc[1:]
    violations = match(subset, permits)
    assert list(violations.index) == list(subset.index)
    joined = subset.join(violations[["status"]])
    assert joined["status"].notna().all()
    named = footprints.set_index(footprints["footprint_id"].rename("fid"))
    assert list(match(named, permits).index) == list(named.index)
    assert match(named, permits).index.name == "fid"


def test_match_on_a_filtered_frame_still_writes_no_index_column(tmp_path: Path) -> None:
    import geopandas as gpd

    stack = make_stack(3, size=128)
    footprints = make_footprints(stack)
    violations = match(footprints.iloc[1:], make_permits(footprints.iloc[:1]))
    path = changedetect.write_vector(violations, tmp_path / "v.gpkg")
    back = gpd.read_file(path, layer="v")
    assert list(back.columns) == list(violations.columns)


# ----------------------------------------------------------------------------- laziness
class _Biggest(Callback):
    """The largest array any dask task produced (a whole-stack .values shows as a big one)."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def _posttask(self, key, result, dsk, state, id) -> None:  # noqa: ANN001, A002
        nbytes = getattr(result, "nbytes", 0)
        if isinstance(nbytes, int):
            self.largest = max(self.largest, nbytes)


def test_coregister_of_a_chunked_stack_stays_lazy_and_never_materialises_the_stack(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import changedetect.coregister as cg

    size = 512
    numpy_stack = make_stack(3, size=size)
    stack = numpy_stack.copy(data=da.from_array(numpy_stack.values, chunks=(1, 1, 128, 128)))
    # a whole-city stack: above the size read into memory at once (lowered, to keep the test small)
    monkeypatch.setattr(cg, "_IN_MEMORY_PIXELS", 128 * 128)
    with _Biggest() as probe, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        aligned, _ = coregister(stack)
    # a small scene's radiometry is fitted on one whole date (up to 2048² px); never more
    one_date = stack.nbytes // stack.sizes["time"]
    assert 0 < probe.largest <= one_date, probe.largest
    assert isinstance(aligned.data, da.Array)
    assert aligned.rio.crs == stack.rio.crs
    np.testing.assert_array_equal(aligned["time"].values, stack["time"].values)


# ----------------------------------------------------------------------------- warnings
def test_vectorize_on_imagery_with_no_data_pixels_raises_no_numpy_warning() -> None:
    """An aligned date has NaN at its edge (warped in from outside): numpy's 'Mean of empty slice'
    reached the analyst's notebook (notebook 01, section 4) and says nothing useful."""
    from changedetect.vectorize import vectorize

    stack = make_stack(2, size=96)
    after = stack.isel(time=1).copy(deep=True)
    before = stack.isel(time=0)
    prob = xr.zeros_like(stack.isel(time=0, band=0), dtype=np.float32)
    prob[30:60, 30:60] = 0.95
    prob.attrs.update(threshold=0.5, model="m")
    after[:, 25:45, 25:45] = np.nan  # no data over part of the footprint and its ring
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        footprints = vectorize(prob, before=before, after=after)
    assert len(footprints) == 1
    after[:, 15:75, 15:75] = np.nan  # none at all over the footprint and its ring
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert len(vectorize(prob, before=before, after=after)) == 1


# ----------------------------------------------------------------------------- notebooks
def test_notebook_map_title_says_what_the_white_lines_are() -> None:
    source = (REPO / "notebooks" / "01_sample_city_walkthrough.py").read_text(encoding="utf-8")
    assert 'permits.to_crs(aligned.rio.crs).boundary.plot(ax=ax, color="white"' in source
    from changedetect.report import COLOURS

    assert COLOURS["permitted"] != (255, 255, 255)  # permitted footprints are drawn in their colour
    assert "white: permitted footprints" not in source
    assert os.path.isfile(REPO / "notebooks" / "01_sample_city_walkthrough.ipynb")


def test_coregistration_report_repr_names_a_wkt_crs_instead_of_printing_it() -> None:
    from dataclasses import replace

    from pyproj import CRS

    wkt = CRS.from_epsg(32648).to_wkt()
    text = repr(replace(_report(), crs=wkt))
    assert "WGS 84 / UTM zone 48N" in text and wkt not in text


def _tiny_model(tmp_path: Path) -> str:
    from changedetect.testing import make_model

    return str(make_model(tmp_path / "tiny", bands=("red", "green", "blue")))


def test_detect_pair_accepts_a_date_in_any_dim_order_and_refuses_a_dataset_by_name(tmp_path: Path) -> None:
    config = changedetect.DetectConfig(model=_tiny_model(tmp_path))
    stack = make_stack(2, size=96)
    before, after = stack.isel(time=0), stack.isel(time=1)
    expected = changedetect.detect_pair(before, after, config=config)
    got = changedetect.detect_pair(before.transpose("y", "x", "band"), after.transpose("x", "band", "y"),
                                   config=config)
    np.testing.assert_array_equal(got.values, expected.values)
    with pytest.raises(TypeError, match=r"BEFORE is an xarray\.Dataset.*to_dataarray"):
        changedetect.detect_pair(before.to_dataset(dim="band"), after, config=config)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Dataset"):
        changedetect.detect_series(stack.to_dataset(dim="band"), config=config)  # type: ignore[arg-type]


def test_stages_without_a_progress_bar_do_not_import_tqdm_auto(tmp_path: Path) -> None:
    """tqdm.auto, imported on every call, printed 'TqdmWarning: IProgress not found. Please update jupyter
    and ipywidgets' in notebooks without ipywidgets (notebooks 01 and 02) for bars nobody asked for."""
    import subprocess
    import sys

    model = _tiny_model(tmp_path)
    code = f"""
import sys, changedetect as cd
from changedetect.testing import make_stack
from changedetect.coregister import coregister
from changedetect.vectorize import vectorize
stack = make_stack(2, size=96)
aligned, _ = coregister(stack)
prob, first = cd.detect_series(aligned, config=cd.DetectConfig(model={model!r}))
vectorize(prob, first_seen=first)
print(sorted(m for m in sys.modules if m.startswith("tqdm.auto")))
"""
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_run_summary_repr_is_one_readable_line() -> None:
    from changedetect.pipeline import STAGES, RunSummary

    out = Path("out")
    summary = RunSummary(out=out, counts={"permitted": 22, "unlicensed": 12, "exceeds_permit": 2},
                         n_footprints=36, dates=["2024-01-15", "2024-07-12", "2025-01-20"], model="vhr-building",
                         model_sha256="c768673dca5d2dd7ec706e96585754c025b4b6efff413282d83596f2be91aa1b",
                         paths={f"file{i}": out / f"file{i}.gpkg" for i in range(10)},
                         timings={s: 1.2345678 for s in STAGES})
    text = repr(summary)
    assert len(text) < 300 and "\n" not in text, text
    assert "36 footprints" in text and "14 violations" in text and "unlicensed 12" in text
    assert "2024-01-15 .. 2025-01-20" in text and "c768673dca5d" in text and "8.6 s" in text
    assert "file3" not in text  # the paths are in .paths / .to_dict()


def _prob(size: int = 96, value: float = 0.95) -> xr.DataArray:
    stack = make_stack(2, size=size)
    prob = xr.zeros_like(stack.isel(time=0, band=0), dtype=np.float32)
    prob[30:60, 30:60] = value
    prob.attrs.update(threshold=0.5, model="m")
    return prob


def test_vectorize_with_nothing_found_keeps_the_columns_types(tmp_path: Path) -> None:
    """No change: the empty frame had object columns (area_m2, first_seen...) and a float64
    footprint_id, so `fp.first_seen.dt.year` raised, concat with other runs turned every column into
    object, and its GeoPackage had area_m2 as TEXT and footprint_id as REAL."""
    import pyogrio

    from changedetect.vectorize import vectorize

    some, none = vectorize(_prob()), vectorize(_prob(value=0.1))
    assert len(some) == 1 and len(none) == 0
    assert none.dtypes.to_dict() == some.dtypes.to_dict()
    assert none.crs == some.crs
    assert len(none[none["first_seen"].dt.year == 2025]) == 0
    paths = [changedetect.write_vector(f, tmp_path / f"{name}.gpkg") for name, f in (("some", some), ("none", none))]
    types = [dict(zip(*(pyogrio.read_info(p)[k] for k in ("fields", "dtypes")), strict=True)) for p in paths]
    assert types[0] == types[1]


def test_notebook_02_builds_its_labelled_pairs_from_aligned_dates(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Its pairs were cut from the raw dates, which the sample city misregisters by up to 3 px: the
    model scored F1 0.28 (0.86 on aligned chips) and the threshold curve advised 0.95, in a notebook
    that warns that a shifted label makes every score meaningless."""
    if not (REPO / "sample_tiles" / "manifest.json").is_file():
        pytest.skip("sample_tiles/ is absent: run `python -m changedetect.samplecity`")
    from PIL import Image

    from changedetect.coregister import estimate_global_shift

    source = (REPO / "notebooks" / "02_evaluate_your_model.py").read_text(encoding="utf-8")
    cells = source.split("# %%")
    define = next(c for c in cells if "def build_levir_folder" in c)
    define = define.split("\nif PAIRS is None:")[0]
    monkeypatch.chdir(REPO)
    namespace: dict[str, object] = {}
    exec(compile(define.split("\n", 1)[1], "02_evaluate_your_model.py", "exec"), namespace)  # noqa: S102
    out = namespace["build_levir_folder"](REPO, tmp_path / "pairs", 256, 4)  # type: ignore[operator]
    shifts = []
    for name in sorted(p.name for p in (out / "A").iterdir()):
        a, b = (np.asarray(Image.open(out / sub / name), dtype=np.float32).mean(axis=2) for sub in ("A", "B"))
        est = estimate_global_shift(a, b)
        shifts.append(float(np.hypot(est.dx, est.dy)))
    assert np.median(shifts) < 0.5, shifts


def test_export_summary_repr_leaves_out_the_whole_export_json(tmp_path: Path) -> None:
    from changedetect.export import ExportSummary

    meta = {"format": "onnx", "inputs": {f"input{i}": {"shape": ["n", 3, "h", "w"], "doc": "x" * 80} for i in range(6)}}
    summary = ExportSummary(folder=tmp_path, onnx_sha256="ab" * 32, max_abs_diff=1.1e-7, metadata=meta)
    text = repr(summary)
    assert len(text) < 400 and "input3" not in text, text
    assert str(tmp_path) in text and "abab" in text and "1.1e-07" in text
    assert summary.metadata == meta


def test_nightly_summary_repr_is_a_short_account_of_the_night() -> None:
    from changedetect.nightly import NightlySummary

    areas = [f"district{i:02d}" for i in range(24)]
    summary = NightlySummary(
        "2025-01-21", new_acquisitions=30, pairs=48, new_violations=7, open_violations=120,
        withdrawn=[f"d01-20240712-{i:03d}" for i in range(9)], pending=11, areas=areas,
        failed={"district07": "cannot read 'x.tif': not a raster"},
        outputs={"violations": "/srv/out/violations-2025-01-21.gpkg", "open": "/srv/out/open_violations.gpkg"},
        references={a: {"path": f"/data/{a}/2024-01-15.tif", "date": "2024-01-15", "sha256": "f" * 64} for a in areas},
        warnings=["district03: 'bad.tif' left out"])
    text = repr(summary)
    assert len(text) < 400, text
    for part in ("2025-01-21", "30 new acquisitions", "48 pairs", "7 new violations", "120 open",
                 "11 pending", "9 withdrawn", "24 areas", "district07", "1 warning"):
        assert part in text, (part, text)
    assert "f" * 64 not in text


def test_vectorize_takes_one_band_rasters_as_rioxarray_reads_them(tmp_path: Path) -> None:
    """`rioxarray.open_rasterio('change_probability.tif')` is (band: 1, y, x): vectorize said only
    'a change probability is (y, x)', and a first-seen raster read so was 'the first-seen raster
    has 1x96 pixels and the probability 96x96'."""
    import rioxarray

    from changedetect.vectorize import vectorize

    prob = _prob()
    days = xr.full_like(prob, np.nan, dtype=np.float64)
    days[30:60, 30:60] = float(np.datetime64("2024-07-12", "D").astype(int))
    days = days.rio.write_crs(prob.rio.crs).rio.write_transform(prob.rio.transform())
    changedetect.write_cog(prob, tmp_path / "p.tif")
    changedetect.write_cog(days.astype(np.float32), tmp_path / "f.tif")
    read = rioxarray.open_rasterio(tmp_path / "p.tif", masked=True)
    first = rioxarray.open_rasterio(tmp_path / "f.tif", masked=True)
    assert read.dims == ("band", "y", "x")
    expected = vectorize(prob, first_seen=days)
    got = vectorize(read, first_seen=first)  # type: ignore[arg-type]
    assert list(got["footprint_id"]) == list(expected["footprint_id"])
    assert list(got["first_seen"]) == list(expected["first_seen"])
    with pytest.raises(ValueError, match=r"isel\(band=i\)"):
        vectorize(xr.concat([prob, prob], dim="band"))


def test_report_of_violations_with_the_footprints_index(tmp_path: Path) -> None:
    from changedetect.report import write_report

    stack = make_stack(3, size=128)
    footprints = make_footprints(stack)
    footprints.index = [7, 3][: len(footprints)] + list(range(100, 100 + len(footprints) - 2))
    violations = match(footprints, make_permits(footprints.iloc[:1]))
    path = write_report(violations, out_path=tmp_path / "r.html", stack=stack)
    text = path.read_text(encoding="utf-8")
    flagged = violations.loc[violations["status"] != "permitted", "violation_id"]
    assert len(flagged) and all(v in text for v in flagged)


def test_validation_result_repr_says_what_was_found_not_the_frames() -> None:
    import geopandas as gpd

    register = gpd.read_file(REPO / "permits" / "sample_register.gpkg")
    register.loc[register.index[:30], "issued_on"] = None
    result = changedetect.validate_register(register)
    text = repr(result)
    assert len(text.splitlines()) <= 9 and len(text) < 1200, text
    assert f"{len(result.permits)} permits kept" in text and f"{len(result.rejects)} rows rejected" in text
    assert "row 1" in text and "'issued_on'" in text and "... and" in text
    assert "POLYGON" not in text
    clean = repr(changedetect.validate_register(gpd.read_file(REPO / "permits" / "sample_register.gpkg")))
    assert "0 rows rejected" in clean and "\n" not in clean


def test_model_cards_and_loaded_models_print_as_one_line_each() -> None:
    """`cd.list_shipped()` printed 24,547 characters for two cards (every metric, the training
    record); `cd.load_model(name)` 28,512 characters over 253 lines (the torch module)."""
    from changedetect.testing import make_model

    cards = changedetect.list_shipped()
    assert cards
    for card in cards:
        text = repr(card)
        assert len(text) < 300 and "\n" not in text, text
        assert card.name in text and card.version in text and all(b in text for b in card.bands)
        assert card.sha256[:12] in text
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        folder = make_model(Path(tmp) / "tiny")
        loaded = changedetect.load_model(str(folder))
        text = repr(loaded)
        assert len(text) < 400 and "\n" not in text, text
        assert "tiny" in text and "0-test" in text and "parameters" in text and str(folder) in text


def test_detect_pair_on_dask_dates_reads_windows_not_whole_dates(tmp_path: Path) -> None:
    """No dask task may produce a whole date (a .values on it): blocks, windows and the decimated
    sample of the scene statistics only."""
    size = 1536
    numpy_stack = make_stack(2, size=size, bands=("red", "green", "blue"), noise=1.0)
    stack = numpy_stack.copy(data=da.from_array(numpy_stack.values, chunks=(1, 1, 512, 512)))
    config = changedetect.DetectConfig(model=_tiny_model(tmp_path), window=512, overlap=32)
    with _Biggest() as probe:
        prob = changedetect.detect_pair(stack.isel(time=0), stack.isel(time=1), config=config)
    one_date = stack.nbytes // stack.sizes["time"]
    assert 0 < probe.largest < one_date / 2, (probe.largest, one_date)
    assert prob.shape == (size, size) and prob.rio.crs == stack.rio.crs


def test_a_permits_geodataframe_where_a_register_source_is_expected_is_told_what_to_do(tmp_path: Path) -> None:
    """`cd.run(..., permits=gdf)` and `cd.load_register(gdf)` raised Python's bare 'expected str, bytes or
    os.PathLike object, not GeoDataFrame'."""
    import geopandas as gpd

    register = gpd.read_file(REPO / "permits" / "sample_register.gpkg")
    with pytest.raises(TypeError, match=r"validate_register"):
        changedetect.load_register(register)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"file or postgresql:// URL.*match\(footprints, permits\)"):
        changedetect.run(REPO / "sample_tiles", permits=register, out=tmp_path / "out")  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


def test_detect_series_on_a_lazy_aligned_stack_computes_each_block_once(tmp_path: Path) -> None:
    """README's chain hands coregister's lazy stack to detect_series: every window of every pair (and
    of the presence check) recomputed the warp of the blocks under it, 45.6 s on the sample city
    against 4.1 s on the same stack persisted (what `run` does)."""
    numpy_stack = make_stack(3, size=256, bands=("red", "green", "blue"), noise=1.0)
    stack, computed = counting_lazy(numpy_stack, (1, 1, 128, 128))  # stands for coregister's lazy warp
    config = changedetect.DetectConfig(model=_tiny_model(tmp_path), window=64, overlap=16)
    changedetect.detect_series(stack, config=config)
    assert len(computed) <= stack.data.npartitions, (len(computed), stack.data.npartitions)
    computed.clear()
    changedetect.detect_pair(stack.isel(time=0), stack.isel(time=2), config=config)
    assert len(computed) <= stack.data.npartitions * 2 // 3, len(computed)


def test_vectorize_with_lazy_images_computes_each_block_once() -> None:
    """README passes before=aligned.isel(time=0), after=aligned.isel(time=-1), coregister's lazy warp:
    each footprint's window recomputed the blocks under it (28.2 s on the sample city, 0.7 s held)."""
    from changedetect.vectorize import vectorize

    numpy_stack = make_stack(2, size=256, noise=1.0)
    source = da.from_array(numpy_stack.values, chunks=(1, 1, 128, 128))
    computed: list[tuple[int, ...]] = []

    def warp(block: np.ndarray) -> np.ndarray:
        if block.size:
            computed.append(block.shape)
        return block + 0

    stack = numpy_stack.copy(data=source.map_blocks(warp, dtype=source.dtype))
    prob = xr.zeros_like(numpy_stack.isel(time=0, band=0), dtype=np.float32)
    for r, c in ((20, 20), (20, 150), (150, 20), (150, 150), (90, 90)):
        prob[r:r + 30, c:c + 30] = 0.95
    prob.attrs.update(threshold=0.5, model="m")
    footprints = vectorize(prob, before=stack.isel(time=0), after=stack.isel(time=1))
    assert len(footprints) == 5
    assert len(computed) <= stack.data.npartitions, (len(computed), stack.data.npartitions)


def test_series_repr_of_a_long_series_stays_one_short_line(tmp_path: Path) -> None:
    from changedetect.testing import write_stack

    dates = [f"2024-{m:02d}-{d:02d}" for m in range(1, 13) for d in (1, 15)]
    write_stack(make_stack(size=32, dates=dates, noise=0.0), tmp_path / "tiles")
    series = changedetect.open_series(tmp_path / "tiles")
    text = repr(series)
    assert len(series.dates) == 24 and len(text) < 250 and "\n" not in text, text
    assert "24 dates" in text and "2024-01-01" in text and "2024-12-15" in text and "..." in text
    short = repr(changedetect.open_series(REPO / "sample_tiles")) if (REPO / "sample_tiles").is_dir() else ""
    assert not short or ("2024-07-12" in short and "..." not in short)
