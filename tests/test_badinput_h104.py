"""A demanding user's bad inputs to the command line (helper 104's sweep): each is exit 2 with one
message naming the file and what to do, never an internal error, and no output is left behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli_errors import _exit

from changedetect.io.vectors import write_vector
from changedetect.testing import make_stack, make_violations, write_stack


def _one_error(err: str) -> str:
    assert "Internal error" not in err and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_coregister_resolution_coarser_than_the_scene(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """--resolution 1000 on a 48 m scene gives a one-pixel grid: it was an IndexError (exit 1)."""
    write_stack(make_stack(2, size=96), tmp_path / "tiles")
    out = tmp_path / "aligned"
    code, err = _exit(["coregister", str(tmp_path / "tiles"), "--resolution", "1000", "--out", str(out)], capsys)
    line = _one_error(err)
    assert code == 2, err
    assert "1x1 pixels" in line and "--resolution" in line and "finer" in line, line
    assert not out.exists()


@pytest.mark.parametrize("text", ["{", "[1, 2]", "\udcff"])
def test_report_with_a_corrupt_run_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    """A run folder whose run.json is cut short, not an object or not UTF-8: it was a JSONDecodeError
    (exit 1, 'This is a bug')."""
    run = tmp_path / "run"
    run.mkdir()
    write_vector(make_violations(), run / "violations.gpkg")
    (run / "run.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    code, err = _exit(["report", str(run)], capsys)
    line = _one_error(err)
    assert code == 2, err
    assert str(run / "run.json") in line and "changedetect run" in line, line
    assert not (run / "report.html").exists()


@pytest.fixture()
def prob_and_images(tmp_path: Path) -> dict[str, Path]:
    """A probability raster, first-seen raster and a before/after pair on one grid, and images elsewhere."""
    import numpy as np
    import rasterio
    from affine import Affine

    grid = {"crs": "EPSG:32648", "transform": Affine(0.5, 0, 679828.0, 0, -0.5, 1202292.0), "width": 64,
            "height": 64, "driver": "GTiff"}
    prob = np.zeros((64, 64), np.float32)
    prob[20:40, 20:40] = 0.9
    paths: dict[str, Path] = {}

    def write(name: str, data: np.ndarray, **over: object) -> None:
        profile = {**grid, "count": data.shape[0], "dtype": str(data.dtype), **over}
        paths[name] = tmp_path / f"{name}.tif"
        with rasterio.open(paths[name], "w", **profile) as dst:
            dst.write(data)

    write("prob", prob[None])
    write("first_seen", np.full((1, 64, 64), 19800, np.float32))
    image = np.full((4, 64, 64), 90, np.uint8)
    write("before", image)
    write("after", image)
    write("other_crs", image, crs="EPSG:32649")
    write("elsewhere", image, transform=Affine(0.5, 0, 779828.0, 0, -0.5, 1202292.0))
    write("first_seen_other_crs", np.full((1, 64, 64), 19800, np.float32), crs="EPSG:32649")
    return paths


@pytest.mark.parametrize(("option", "name", "said"), [
    ("--first-seen", "first_seen_other_crs", "is in EPSG:32649 and PROB"),
    ("--first-seen", "before", "has 4 bands"),
    ("--before", "other_crs", "is in EPSG:32649 and PROB"),
    ("--before", "elsewhere", "lies on another grid than PROB"),
    ("--after", "prob", "has 1 band: change types need an image's red, green and blue bands"),  # was IndexError
])
def test_vectorize_companion_on_another_grid(prob_and_images: dict[str, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str], option: str, name: str,
                                             said: str) -> None:
    """A first-seen raster or an image in another CRS or place was read as if on PROB's grid (exit 0, an
    image of other ground telling new/altered/demolished); a 4-band first-seen was called 'PROB'."""
    p = prob_and_images
    args = ["vectorize", str(p["prob"]), option, str(p[name]), "--out", str(tmp_path / "f.gpkg")]
    if option == "--before":
        args += ["--after", str(p["after"])]
    if option == "--after":
        args += ["--before", str(p["before"])]
    code, err = _exit(args, capsys)
    line = _one_error(err)
    assert code == 2, err
    assert f"{option} '{p[name]}' {said}" in line, line
    assert not (tmp_path / "f.gpkg").exists()


def test_vectorize_before_without_after(prob_and_images: dict[str, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """--before alone was silently ignored (every footprint 'new'); the companions on PROB's grid still run."""
    p = prob_and_images
    out = tmp_path / "f.gpkg"
    code, err = _exit(["vectorize", str(p["prob"]), "--before", str(p["before"]), "--out", str(out)], capsys)
    line = _one_error(err)
    assert code == 2 and "--before needs --after" in line, err
    assert not out.exists()
    code, err = _exit(["vectorize", str(p["prob"]), "--first-seen", str(p["first_seen"]), "--before",
                       str(p["before"]), "--after", str(p["after"]), "--out", str(out)], capsys)
    assert code == 0 and out.exists(), err


def _broken_files(folder: Path) -> dict[str, Path]:
    """An empty GeoPackage, a text file named .gpkg, a GeoPackage cut in half and a GeoJSON cut short."""
    folder.mkdir(parents=True, exist_ok=True)
    whole = folder / "whole.gpkg"
    write_vector(make_violations(n=40), whole)
    files = {"empty": folder / "empty.gpkg", "text": folder / "text.gpkg", "cut": folder / "cut.gpkg",
             "geojson": folder / "cut.geojson"}
    files["empty"].write_bytes(b"")
    files["text"].write_text("permit_id;geometry\n")
    files["cut"].write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    files["geojson"].write_text('{"type": "FeatureCollection", "features": [')
    return files


_SAID = {"empty": "it is empty (0 bytes)", "text": "it is not a vector file GDAL can read",
         "cut": "it is cut short or corrupt", "geojson": "it is not valid GeoJSON"}


@pytest.mark.parametrize("kind", sorted(_SAID))
def test_an_unreadable_register_or_footprints_file_says_what_it_is(tmp_path: Path, kind: str,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """It was GDAL's "not recognized as being in a supported file format.; It might help to specify the
    correct driver explicitly by prefixing the file path with '<DRIVER>:'", or an SQLite statement."""
    bad = _broken_files(tmp_path / "in")[kind]
    good = tmp_path / "footprints.gpkg"
    write_vector(make_violations(n=2)[["footprint_id", "area_m2", "geometry"]], good)
    out = tmp_path / "v.gpkg"
    for args, what in ((["match", str(good), "--permits", str(bad)], "permit register"),
                       (["match", str(bad), "--permits", str(bad)], "footprints file")):
        code, err = _exit([*args, "--out", str(out)], capsys)
        line = _one_error(err)
        assert code == 2, err
        assert f"{what} '{bad}' cannot be read: {_SAID[kind]}" in line, line
        assert "DRIVER" not in line and "sqlite3_prepare" not in line, line
        assert not out.exists()


def test_unreadable_previous_footprints_and_violations(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       prob_and_images: dict[str, Path]) -> None:
    files = _broken_files(tmp_path / "in")
    out = tmp_path / "f.gpkg"
    code, err = _exit(["vectorize", str(prob_and_images["prob"]), "--previous", str(files["cut"]),
                       "--out", str(out)], capsys)
    line = _one_error(err)
    assert code == 2 and f"'{files['cut']}': it is cut short or corrupt" in line, err
    assert not out.exists()
    run = tmp_path / "run"
    run.mkdir()
    (run / "violations.gpkg").write_bytes(b"")
    code, err = _exit(["report", str(run)], capsys)
    line = _one_error(err)
    assert code == 2 and "it is empty (0 bytes)" in line and "DRIVER" not in line, err
    assert not (run / "report.html").exists()


def test_coregister_an_all_nodata_date_says_so_without_numpy_noise() -> None:
    """A date whose tile is all nodata: numpy's 'Mean of empty slice' reached the user (as 'WARNING
    py.warnings: RuntimeWarning') beside 'one of the images has no texture or no data to match'."""
    import warnings

    import numpy as np

    from changedetect.coregister import coregister
    from changedetect.errors import CoregistrationWarning

    stack = make_stack(3, size=96)
    stack[1] = np.nan
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        coregister(stack)
    noise = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert not noise, noise
    said = [str(w.message) for w in caught if issubclass(w.category, CoregistrationWarning)]
    assert len(said) == 1 and "has no data (every pixel is nodata)" in said[0] and "leave the date out" in said[0], said


def test_an_output_under_a_file_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               prob_and_images: dict[str, Path]) -> None:
    """--out run.json/x.gpkg, run.json a file: it was "cannot write to 'run.json': File exists"."""
    blocker = tmp_path / "run.json"
    blocker.write_text("{}")
    for out in (blocker / "x.gpkg", blocker / "sub" / "x.gpkg"):
        code, err = _exit(["vectorize", str(prob_and_images["prob"]), "--out", str(out)], capsys)
        line = _one_error(err)
        assert code == 2 and f"'{blocker}' is a file, not a folder" in line, err
    assert blocker.read_text() == "{}"


def test_vectorize_unreadable_buildings_says_what_it_is(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        prob_and_images: dict[str, Path]) -> None:
    """--buildings with a text file: it was GDAL's advice to prefix the path with '<DRIVER>:'."""
    bad = _broken_files(tmp_path / "in")["text"]
    out = tmp_path / "f.gpkg"
    code, err = _exit(["vectorize", str(prob_and_images["prob"]), "--buildings", str(bad), "--out", str(out)],
                      capsys)
    line = _one_error(err)
    assert code == 2 and f"'{bad}': it is not a vector file GDAL can read" in line, err
    assert "DRIVER" not in line, line
    assert not out.exists()


def test_match_a_register_as_footprints_is_one_error_without_the_change_type_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    """The register given as the footprints is refused; the warning that every footprint is taken as new
    (which it is not: nothing is matched) came before the error."""
    import geopandas as gpd
    from shapely.geometry import box

    register = tmp_path / "register.gpkg"
    write_vector(gpd.GeoDataFrame({"permit_id": ["P1"]}, geometry=[box(0, 0, 10, 10)], crs="EPSG:32648"), register)
    code, err = _exit(["match", str(register), "--permits", str(register), "--out", str(tmp_path / "v.gpkg")],
                      capsys)
    line = _one_error(err)
    assert code == 2 and "looks like a permit register" in line, err
    assert "change_type" not in err + caplog.text, caplog.text


def test_change_types_from_a_one_band_image_is_one_error_not_an_index_error() -> None:
    """The Python API's path (vectorize(before=..., after=...)): a one-band 'image' was IndexError."""
    import geopandas as gpd
    import numpy as np
    import xarray as xr
    from affine import Affine
    from shapely.geometry import box

    from changedetect._change_types import change_types
    from changedetect.errors import ConfigError

    image = xr.DataArray(np.zeros((1, 32, 32), np.float32), dims=("band", "y", "x"), coords={"band": ["1"]})
    geoms = gpd.GeoSeries([box(4, -12, 12, -4)], crs="EPSG:32648")
    with pytest.raises(ConfigError, match=r"1 band\(s\).*red, green and blue"):
        change_types(geoms, before=image, after=image, buildings=None, transform=Affine(1, 0, 0, 0, -1, 0),
                     shape=(32, 32))
