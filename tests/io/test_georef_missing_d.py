"""A raster that lacks half of its georeferencing (audit D: an OSCD label raster, which carries neither,
given the CRS that the old message advised): refused in one line naming the file and what to do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS

from changedetect.cli import main
from changedetect.errors import GeoreferenceError
from changedetect.io import describe, open_series


def _bare(path: Path, crs: CRS | None) -> Path:
    """A 1-band uint8 GeoTIFF without a geotransform (and with ``crs``, or none)."""
    data = np.random.default_rng(3).integers(1, 3, (1, 40, 30)).astype("uint8")
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=30, height=40, count=1, dtype="uint8", crs=crs) as dst:
        dst.write(data)
    return path


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
@pytest.mark.parametrize("epsg", [4326, 32616])
def test_a_crs_without_a_geotransform_is_refused_naming_the_file(tmp_path: Path, epsg: int,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # was: EPSG:4326 -> "Internal error: ValueError: cannot convert float NaN to integer" (its 1-degree
    # pixels run past the pole); EPSG:32616 -> described and read at 1 m pixels from the zone's false origin
    path = _bare(tmp_path / "cm_20180211.tif", CRS.from_epsg(epsg))
    with pytest.raises(GeoreferenceError, match=rf"cm_20180211\.tif' has a CRS \(EPSG:{epsg}\) but no "
                       r"geotransform.*gdal_edit\.py -a_ullr ULX ULY LRX LRY.*--like IMAGE --transform like"):
        open_series(path)
    with pytest.raises(GeoreferenceError, match="no geotransform"):
        describe(path)
    with pytest.raises(SystemExit) as done:
        main(["info", str(path)])
    err = capsys.readouterr().err
    assert done.value.code == 2, err
    assert "has a CRS" in err and "Internal error" not in err


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_a_crs_without_a_geotransform_beside_a_georeferenced_date_is_refused(
        write_tif: Callable[..., Path], tmp_path: Path) -> None:
    write_tif(tmp_path / "t_20240101.tif", np.full((1, 40, 30), 7, "uint8"))
    _bare(tmp_path / "t_20240301.tif", CRS.from_epsg(32648))
    with pytest.raises(GeoreferenceError, match=r"t_20240301\.tif' has a CRS \(EPSG:32648\) but no geotransform"):
        open_series(tmp_path)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_no_crs_nor_geotransform_asks_for_both_not_a_crs_alone(
        write_tif: Callable[..., Path], tmp_path: Path) -> None:
    # was: "assign its CRS (rio edit-info --crs EPSG:32648 ...)", which leaves the file at pixel coordinates
    # (the case above); the other date's CRS is the one suggested
    write_tif(tmp_path / "t_20240101.tif", np.full((1, 40, 30), 7, "uint8"), crs="EPSG:32616")
    _bare(tmp_path / "t_20240301.tif", None)
    with pytest.raises(GeoreferenceError) as info:
        open_series(tmp_path)
    text = str(info.value)
    assert "t_20240301.tif' has no CRS and no geotransform" in text
    assert "gdal_edit.py -a_srs EPSG:32616 -a_ullr ULX ULY LRX LRY" in text
    assert "--like IMAGE --crs like --transform like" in text
    assert "rio edit-info --crs" not in text


@pytest.mark.filterwarnings("ignore::changedetect.errors.NotGeoreferencedWarning")
def test_run_on_images_without_georeferencing_is_refused_before_any_work(tmp_path: Path) -> None:
    # was: the whole chain ran (co-registration, detection, vectorising), then "Internal error: ValueError:
    # cannot write '.../footprints.gpkg': the features have no CRS" (LEVIR's PNG pairs, exit 1)
    from PIL import Image

    import changedetect as cd

    rng = np.random.default_rng(5)
    for day in ("20200101", "20220101"):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3)).astype("uint8")).save(tmp_path / f"t_{day}.png")
    register = Path(__file__).resolve().parents[2] / "permits" / "sample_register.gpkg"
    out = tmp_path / "out"
    with pytest.raises(GeoreferenceError, match=r"have no georeferencing \('t_20200101\.png' has no CRS.*"
                       r"gdal_translate -a_srs .*changedetect detect BEFORE AFTER"):
        cd.run([tmp_path / "t_20200101.png", tmp_path / "t_20220101.png"], permits=register, out=out)
    assert not out.exists()


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_vectorize_of_a_probability_detected_on_pngs_says_why_it_has_no_crs(tmp_path: Path) -> None:
    # was: "give the probability raster written by `changedetect detect`", which is what it was
    from changedetect.vectorize import vectorize_file

    prob = tmp_path / "prob.tif"
    with rasterio.open(prob, "w", driver="GTiff", width=32, height=32, count=1, dtype="float32") as dst:
        dst.write(np.zeros((1, 32, 32), "float32"))
    with pytest.raises(GeoreferenceError, match=r"prob\.tif' has no CRS: footprints need one .*`changedetect "
                       r"detect` writes none when its BEFORE and AFTER have none \(PNG/JPEG\)"):
        vectorize_file(prob, tmp_path / "fp.gpkg")


@pytest.mark.filterwarnings("ignore::changedetect.errors.NotGeoreferencedWarning")
def test_info_on_png_pairs_larger_than_its_sample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # was: "Internal error: ValueError: cannot convert float NaN to integer" for OSCD's own pair/img1.png,
    # img2.png (718 x 776): the cloud share decimated a grid without metres (LEVIR's 256 px crops passed)
    from PIL import Image

    rng = np.random.default_rng(8)
    for day in ("20150704", "20180211"):
        Image.fromarray(rng.integers(0, 255, (300, 280, 3)).astype("uint8")).save(tmp_path / f"img_{day}.png")
    info = describe(tmp_path)
    assert info["dates"] == ["2015-07-04", "2018-02-11"] and info["crs"] is None
    with pytest.raises(SystemExit) as done:
        main(["info", str(tmp_path)])
    assert done.value.code == 0, capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::changedetect.errors.NotGeoreferencedWarning")
def test_coregister_of_a_png_pair_gives_its_shift_in_pixels_only(tmp_path: Path) -> None:
    # was: "shift +0.09, +0.17 px (+0.09 m E, -0.17 m N)" for OSCD's pair/img1.png, img2.png: pixels called metres
    from click.testing import CliRunner
    from PIL import Image
    from scipy import ndimage

    from changedetect.cli import cli

    ground = ndimage.gaussian_filter(np.random.default_rng(9).normal(0, 1, (300, 300)), 3)
    ground = (255 * (ground - ground.min()) / np.ptp(ground)).astype("uint8")
    for day, image in (("20150704", ground[:256, :256]), ("20180211", ground[2:258, 3:259])):
        Image.fromarray(np.repeat(image[:, :, None], 3, axis=2)).save(tmp_path / f"img_{day}.png")
    done = CliRunner().invoke(cli, ["-q", "coregister", str(tmp_path), "--out", str(tmp_path / "al")])
    assert done.exit_code == 0, done.output
    line = next(x for x in done.stdout.splitlines() if x.startswith("2018-02-11"))
    assert "shift" in line and " px" in line and " m E" not in line, line


def test_a_list_of_files_is_named_by_its_files(write_tif: Callable[..., Path], tmp_path: Path) -> None:
    # was: "tiles '2 paths' lacks band(s) ..." (run on solaris' tile and its copy): which files?
    paths = [write_tif(tmp_path / f"sol_{d}.tif", np.full((1, 40, 30), 7, "uint8")) for d in ("20230110", "20240115")]
    assert open_series(paths).source == "2 paths (sol_20230110.tif, sol_20240115.tif)"
    many = [write_tif(tmp_path / f"t_2024010{d}.tif", np.full((1, 40, 30), 7, "uint8")) for d in range(1, 6)]
    assert open_series(many).source == "5 paths (t_20240101.tif, t_20240102.tif, t_20240103.tif, ... (2 more))"
