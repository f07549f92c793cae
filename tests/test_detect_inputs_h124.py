"""``changedetect detect BEFORE AFTER`` checks its two files as ``open_series`` checks a series' (H124).

H121 taught the read path (info, coregister, run) to refuse a file georeferenced only by GCPs or RPCs,
a complex band and a palette image, each in one line naming the file and what to do; ``detect``'s pair
of files went through its own checks and still told a GCP-only file to set its CRS, ran on the real
part of a complex band, and said a palette image lacked red, green and blue.  Both now call
:func:`changedetect.io._checks.check_raster`; so do ``vectorize --before/--after`` and ``report``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.rpc import RPC

import changedetect.cli as cdcli

GRID = Affine(0.5, 0, 683_000, 0, -0.5, 1_203_000)
SIZE = 64


def _image(seed: int, bands: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 250, (bands, SIZE, SIZE)).astype(np.uint8)


def _write(path: Path, data: np.ndarray, *, georeferenced: bool = True, crs: object = "EPSG:32648") -> Path:
    kw = {"crs": crs, "transform": GRID} if georeferenced else {}
    with rasterio.open(path, "w", driver="GTiff", width=SIZE, height=SIZE, count=data.shape[0],
                       dtype=data.dtype, **kw) as dst:  # type: ignore[arg-type]
        dst.write(data)
        for i, name in enumerate(("red", "green", "blue")[: data.shape[0]], 1):
            dst.set_band_description(i, name)
    return path


def _gcps_only(path: Path) -> Path:
    _write(path, _image(2), georeferenced=False)
    x, y = 683_000.0, 1_203_000.0
    with rasterio.open(path, "r+") as dst:
        dst.gcps = ([GroundControlPoint(0, 0, x, y), GroundControlPoint(0, SIZE, x + 32, y),
                     GroundControlPoint(SIZE, 0, x, y - 32), GroundControlPoint(SIZE, SIZE, x + 32, y - 32)],
                    CRS.from_epsg(32648))
    return path


def _rpcs_only(path: Path) -> Path:
    _write(path, _image(3), georeferenced=False)
    half = SIZE // 2
    rpc = RPC(height_off=0, height_scale=100, lat_off=10.85, lat_scale=0.01, long_off=106.65, long_scale=0.01,
              line_off=half, line_scale=half, samp_off=half, samp_scale=half,
              line_num_coeff=[0, 0, -1] + [0] * 17, line_den_coeff=[1] + [0] * 19,
              samp_num_coeff=[0, 1] + [0] * 18, samp_den_coeff=[1] + [0] * 19)
    with rasterio.open(path, "r+") as dst:
        dst.rpcs = rpc
    return path


def _palette(path: Path) -> Path:
    _write(path, _image(5, bands=1))
    with rasterio.open(path, "r+") as dst:
        dst.write_colormap(1, {v: (v, 255 - v, v // 2, 255) for v in range(256)})
    return path


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one line the CLI says for ``argv``, which must exit 2 and print nothing else."""
    cdcli._STATE["debug"] = False
    with pytest.raises(SystemExit) as info:
        cdcli.main(argv)
    captured = capsys.readouterr()
    assert info.value.code == 2, captured.out + captured.err
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), captured.err
    return lines[0]


def _detect(before: Path, after: Path, capsys: pytest.CaptureFixture[str]) -> str:
    return _error(["-q", "detect", str(before), str(after), "--out", str(before.with_name("p.tif"))], capsys)


def test_detect_names_a_file_georeferenced_by_gcps_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # was: "'after.tif' has no CRS but the other date has EPSG:32648: set its CRS (e.g. gdal_edit.py ...)",
    # which puts it at pixel coordinates
    before = _write(tmp_path / "before.tif", _image(1))
    line = _detect(before, _gcps_only(tmp_path / "after.tif"), capsys)
    assert "after.tif' is georeferenced only by 4 ground control points (GCPs in EPSG:32648)" in line
    assert "gdalwarp -t_srs EPSG:32648" in line and "set its CRS" not in line
    assert not (tmp_path / "p.tif").exists()


def test_detect_refuses_two_gcp_only_files_instead_of_pixel_coordinates(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # was: both without a CRS, read as two plain images: a probability at pixel coordinates, exit 0
    line = _detect(_gcps_only(tmp_path / "before.tif"), _gcps_only(tmp_path / "after.tif"), capsys)
    assert "before.tif' is georeferenced only by 4 ground control points" in line


def test_detect_names_a_file_with_rpcs_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _detect(_rpcs_only(tmp_path / "before.tif"), _write(tmp_path / "after.tif", _image(1)), capsys)
    assert "before.tif' is georeferenced only by RPCs" in line and "orthorectify it first" in line
    assert "RPC_DEM=DEM.tif -t_srs EPSG:32648" in line


def test_detect_refuses_a_complex_band(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # was: numpy's ComplexWarning, then a probability from the real part alone, exit 0
    before = _write(tmp_path / "before.tif", _image(1))
    line = _detect(before, _write(tmp_path / "after.tif", _image(4).astype(np.complex64)), capsys)
    assert "after.tif' band 1 is complex64" in line and "give its amplitude" in line


def test_detect_refuses_a_palette_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # was: "AFTER 'after.tif' lacks band(s) ['red', 'green', 'blue'] ... the input has ['1']"
    before = _write(tmp_path / "before.tif", _image(1))
    line = _detect(before, _palette(tmp_path / "after.tif"), capsys)
    assert "after.tif' is a palette (colour-mapped) image" in line and "gdal_translate -expand rgb" in line


def test_detect_names_a_crs_without_a_registered_datum_by_its_name(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # was: "... the other date has EPSG:23868: set its CRS (e.g. gdal_edit.py -a_srs EPSG:23868 ...)",
    # pyproj's 70 % match (DGN95 / UTM 48N, a datum of Indonesia) for UTM 48N on an unnamed datum
    before = _write(tmp_path / "before.tif", _image(1), crs="+proj=utm +zone=48 +ellps=WGS84 +units=m +no_defs")
    line = _detect(before, _write(tmp_path / "after.tif", _image(2), georeferenced=False), capsys)
    assert "after.tif' has no CRS but the other date has" in line and "23868" not in line


def _prob(path: Path) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=SIZE, height=SIZE, count=1, dtype="float32",
                       crs="EPSG:32648", transform=GRID, nodata=float("nan")) as dst:
        dst.write(np.random.default_rng(0).uniform(0, 1, (1, SIZE, SIZE)).astype(np.float32))
    return path


@pytest.mark.parametrize(("odd", "said"), [
    # was: "--before '...' is in no CRS and PROB '...' in EPSG:32648: give images on PROB's grid"
    (_gcps_only, "before.tif' is georeferenced only by 4 ground control points"),
    # was: footprints typed from the real part of a complex band (numpy's ComplexWarning), exit 0
    (lambda p: _write(p, _image(4).astype(np.complex64)), "before.tif' band 1 is complex64"),
])
def test_vectorize_checks_its_images_as_the_read_path_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], odd: object, said: str) -> None:
    prob = _prob(tmp_path / "prob.tif")
    before = odd(tmp_path / "before.tif")  # type: ignore[operator]
    after = _write(tmp_path / "after.tif", _image(2))
    line = _error(["-q", "vectorize", str(prob), "--before", str(before), "--after", str(after),
                   "--out", str(tmp_path / "f.gpkg")], capsys)
    assert said in line
    assert not (tmp_path / "f.gpkg").exists()


def test_report_refuses_a_palette_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # was: the colour indices drawn as a grey image on every card, exit 0
    from changedetect.testing import make_violations
    from changedetect.types import Grid

    violations = tmp_path / "violations.gpkg"
    make_violations(Grid(crs="EPSG:32648", transform=GRID, width=SIZE, height=SIZE)).to_file(violations)
    before = _palette(tmp_path / "before.tif")
    after = _write(tmp_path / "after.tif", _image(2))
    line = _error(["-q", "report", "--violations", str(violations), "--before", str(before), "--after", str(after),
                   "--out", str(tmp_path / "report.html")], capsys)
    assert "before.tif' is a palette (colour-mapped) image" in line
    assert not (tmp_path / "report.html").exists()


def test_the_nightly_screen_names_what_the_read_path_refuses(tmp_path: Path) -> None:
    # was: "'...' has no CRS, so it cannot be placed on the area's grid: set it (e.g. gdal_edit.py -a_srs ...)"
    # for a GCP-only delivery, and a complex or palette file passed the screen to fail the area every night
    from changedetect._nightly_reference import unreadable_reason

    assert "ground control points" in str(unreadable_reason(_gcps_only(tmp_path / "gcp.tif")))
    complex_file = _write(tmp_path / "c.tif", _image(4).astype(np.complex64))
    assert "band 1 is complex64" in str(unreadable_reason(complex_file))
    palette = _palette(tmp_path / "p.tif")
    assert "palette (colour-mapped)" in str(unreadable_reason(palette))
    scl = _palette(tmp_path / "T48PXS_20240101_SCL_20m.tif")
    assert unreadable_reason(scl) is None  # an SCL may carry its classes' colours
    assert unreadable_reason(_write(tmp_path / "ok.tif", _image(1))) is None
