"""A demanding user's bad inputs to the command line (helper 107's sweep): a tile in another CRS
names its CRS and the others', and what a command cannot use is said, not left out in silence."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import rasterio
from test_badinput_h104 import _one_error
from test_cli_errors import _exit

from changedetect.testing import make_stack, write_stack


@pytest.mark.parametrize(("odd", "crs"), [(1, "EPSG:4326"), (0, "EPSG:32647")])
def test_a_tile_in_another_crs_names_both_crss(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                odd: int, crs: str) -> None:
    """One of three tiles tagged with another CRS (a wrong tag or another UTM zone): it was 'covers
    (...) in EPSG:32648, which does not overlap ...' without the tile's own CRS."""
    paths = write_stack(make_stack(3, size=32), tmp_path / "tiles")
    with rasterio.open(paths[0]) as src:
        stack_crs = f"EPSG:{src.crs.to_epsg()}"
    with rasterio.open(paths[odd], "r+") as dst:
        dst.crs = crs
    for argv in (["info", str(tmp_path / "tiles")],
                 ["coregister", str(tmp_path / "tiles"), "--out", str(tmp_path / "aligned")]):
        code, err = _exit(argv, capsys)
        line = _one_error(err)
        assert code == 2, err
        assert f"'{paths[odd]}' ({paths[odd].stem[-8:-4]}-" in line, line
        assert f"is in {crs} but the other 2 dates" in line and f"are in {stack_crs}" in line, line
        assert f"gdal_edit.py -a_srs {stack_crs}" in line and f"gdalwarp -t_srs {stack_crs}" in line, line
    assert not (tmp_path / "aligned").exists()


def _prob(path: Path, value: float, nodata: float | None = None) -> Path:
    """A 32x32 float32 probability raster of one ``value`` (UTM 48N, 0.5 m)."""
    import numpy as np
    from affine import Affine

    with rasterio.open(path, "w", driver="GTiff", width=32, height=32, count=1, dtype="float32",
                       crs="EPSG:32648", transform=Affine(0.5, 0, 679828.0, 0, -0.5, 1202292.0),
                       nodata=nodata) as dst:
        dst.write(np.full((1, 32, 32), value, np.float32))
    return path


@pytest.mark.parametrize(("value", "nodata"), [(float("nan"), None), (-1.0, -1.0)])
def test_vectorize_a_raster_without_data_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               caplog: pytest.LogCaptureFixture, value: float,
                                               nodata: float | None) -> None:
    """An all-NaN (or all-nodata) PROB: it was 'Wrote ...: 0 footprints' alone, as if nothing had changed."""
    prob = _prob(tmp_path / "prob.tif", value, nodata)
    out = tmp_path / "footprints.gpkg"
    code, err = _exit(["vectorize", str(prob), "--out", str(out)], capsys)
    assert code == 0, err
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "prob.tif" in r.getMessage()]
    assert len(warned) == 1, caplog.text
    assert f"'{prob}' has no data" in warned[0] and str(out) in warned[0], warned
    assert out.exists()


def test_vectorize_a_raster_without_change_does_not_warn(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """All zero is data (no change anywhere): no warning."""
    prob = _prob(tmp_path / "prob.tif", 0.0)
    code, err = _exit(["vectorize", str(prob), "--out", str(tmp_path / "f.gpkg")], capsys)
    assert code == 0, err
    assert "no data" not in err + caplog.text, caplog.text


def _png(path: Path, size: int = 16, bands: int = 3) -> None:
    import numpy as np
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((size, size, bands) if bands > 1 else (size, size), np.uint8)).save(path)


def _bad_evaluate_folder(root: Path, kind: str) -> str:
    """A PATH for `evaluate` that is wrong in one way; what its error names."""
    root.mkdir()
    if kind == "empty":
        return "no 'A/' folder"
    if kind == "oscd_without_cities":
        (root / "images").mkdir()
        (root / "labels").mkdir()
        return "holds no city folder"
    for sub, name in (("A", "p1"), ("B", "p1"), ("label", "p1"), ("A", "p2"), ("label", "p2")):
        _png(root / sub / f"{name}.png", bands=1 if sub == "label" else 3)
    if kind == "unlabelled":
        _png(root / "B" / "p2x.png")
        return "'p2x.png') have no label"
    _png(root / "B" / "p3.png")  # p1 and p3 in B, p2 in label: names that do not match
    (root / "label" / "p3.png").write_bytes((root / "label" / "p1.png").read_bytes())
    return f"label 'p2.png' has no matching image in '{root / 'B'}'"


@pytest.mark.parametrize("kind", ["empty", "oscd_without_cities", "unlabelled", "mismatched"])
def test_evaluate_a_bad_path_says_so_before_any_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             kind: str) -> None:
    """A bad PATH: the error came after an empty progress bar ('0pair [00:00, ?pair/s]', '0/2')."""
    root = tmp_path / "data"
    said = _bad_evaluate_folder(root, kind)
    code, err = _exit(["evaluate", str(root), "--model", "cva"], capsys)
    line = _one_error(err)
    assert code == 2, err
    assert said in line, line
    assert "pair/s" not in err and "pair [" not in err, err


def _run_folder(tmp_path: Path, gone: tuple[str, ...]) -> Path:
    """A run folder with violations.gpkg and the run's before/after images, less those ``gone``."""
    import numpy as np
    from affine import Affine

    from changedetect.io.vectors import write_vector
    from changedetect.testing import make_violations

    run = tmp_path / "run"
    run.mkdir()
    violations = make_violations()
    write_vector(violations, run / "violations.gpkg")
    x0, _, _, y1 = violations.total_bounds
    for name in sorted({"before_rgb.tif", "after_rgb.tif"} - set(gone)):
        with rasterio.open(run / name, "w", driver="GTiff", width=64, height=64, count=3, dtype="uint8",
                           crs=violations.crs, transform=Affine(1.0, 0, x0 - 8, 0, -1.0, y1 + 8)) as dst:
            dst.write(np.full((3, 64, 64), 90, np.uint8))
    return run


@pytest.mark.parametrize("gone", [("before_rgb.tif",), ("after_rgb.tif",), ("before_rgb.tif", "after_rgb.tif")])
def test_report_of_a_run_without_its_images_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  caplog: pytest.LogCaptureFixture, gone: tuple[str, ...]) -> None:
    """A run folder whose before_rgb.tif / after_rgb.tif were deleted: the report was written without its
    chips (and, with both gone, without imagery on the overview) without a word."""
    run = _run_folder(tmp_path, gone)
    code, err = _exit(["report", str(run)], capsys)
    assert code == 0, err
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "missing" in r.getMessage()]
    assert len(said) == 1, caplog.text
    for name in ("before_rgb.tif", "after_rgb.tif"):
        assert (f"'{run / name}'" in said[0]) == (name in gone), said
    assert "chip" in said[0] and "--violations" in said[0], said
    assert (run / "report.html").is_file()


def test_report_of_a_whole_run_does_not_warn(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             caplog: pytest.LogCaptureFixture) -> None:
    code, err = _exit(["report", str(_run_folder(tmp_path, ()))], capsys)
    assert code == 0, err
    assert "missing" not in caplog.text + err, caplog.text
