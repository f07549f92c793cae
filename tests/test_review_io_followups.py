"""Follow-ups to the north-up reading of rotated/south-up GeoTIFFs, Landsat file names and RGB band names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from test_detect import CFG, FakeCard, Loaded, Pointwise

from changedetect.detect import detect_to_file

CRS = "EPSG:32648"
NORTH_UP = Affine(0.5, 0, 600000, 0, -0.5, 1200000)
SOUTH_UP = Affine(0.5, 0, 600000, 0, 0.5, 1200000 - 150)  # same footprint, rows go north
QUARTER = NORTH_UP @ Affine(0, -1, 300, 1, 0, 0)  # a quarter turn: pixel (col, row) is north-up (300 - row, col)


def _turned(data: np.ndarray, how: str) -> tuple[np.ndarray, Affine]:
    """The same ground as ``data`` on NORTH_UP, written south-up or a quarter turn round."""
    if how == "south-up":
        return np.ascontiguousarray(data[:, ::-1]), SOUTH_UP
    return np.ascontiguousarray(np.rot90(data, 1, axes=(1, 2))), QUARTER


def _write(path: Path, data: np.ndarray, transform: Affine) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1],
                       count=data.shape[0], dtype="uint8", crs=CRS, transform=transform) as dst:
        dst.write(data)
        dst.descriptions = ("red", "green", "blue")
    return path


def _scene(seed: int, changed: bool) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.random((3, 300, 300)) * 255).astype(np.uint8)
    if changed:
        x[:, 100:160, 50:200] = 255 - x[:, 100:160, 50:200]
    return x


@pytest.mark.parametrize("how", ["south-up", "quarter-turn"])
@pytest.mark.parametrize("flip", ["after", "before", "both"])
def test_detect_reads_a_south_up_or_rotated_before_or_after_onto_the_right_ground(
        tmp_path: Path, flip: str, how: str) -> None:
    """`changedetect detect` on a south-up (positive e, rows flipped) or quarter-turned BEFORE or AFTER
    gives the north-up pair's probability, on the north-up grid over BEFORE's footprint (as open_stack
    and gdalwarp).  A south-up BEFORE gave a south-up probability whose rows were flipped against a
    north-up AFTER's; a quarter-turned one was 'does not overlap' (zero-size bounds)."""
    a, b = _scene(0, False), _scene(0, True)
    loaded = Loaded(Pointwise(3), FakeCard())
    pa, pb = _write(tmp_path / "a.tif", a, NORTH_UP), _write(tmp_path / "b.tif", b, NORTH_UP)
    detect_to_file(pa, pb, tmp_path / "ref.tif", config=CFG, model=loaded)
    with rasterio.open(tmp_path / "ref.tif") as src:
        ref, ref_transform = src.read(1), src.transform
    sa = _write(tmp_path / "a_s.tif", *_turned(a, how)) if flip in ("before", "both") else pa
    sb = _write(tmp_path / "b_s.tif", *_turned(b, how)) if flip in ("after", "both") else pb
    detect_to_file(sa, sb, tmp_path / "out.tif", config=CFG, model=loaded)
    with rasterio.open(tmp_path / "out.tif") as src:
        out, transform = src.read(1), src.transform
    assert transform.almost_equals(ref_transform)
    np.testing.assert_allclose(out, ref, atol=1e-4)


LANDSAT = Affine(30, 0, 600000, 0, -30, 1200000)


def _single(path: Path, value: int, dtype: str = "uint16") -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=20, height=20, count=1, dtype=dtype, crs=CRS,
                       transform=LANDSAT, nodata=0) as dst:
        dst.write(np.full((1, 20, 20), value, dtype))
    return path


@pytest.mark.parametrize("sensor, bands", [
    ("LC09", {"SR_B2": "blue", "SR_B3": "green", "SR_B4": "red", "SR_B5": "nir"}),
    ("LE07", {"SR_B1": "blue", "SR_B2": "green", "SR_B3": "red", "SR_B4": "nir"}),
])
def test_landsat_collection2_band_files_are_named_as_landsat_bands_not_sentinel2(
        tmp_path: Path, sensor: str, bands: dict[str, str]) -> None:
    """A folder of Landsat Collection 2 Level-2 band files (..._SR_B5.TIF) is a series of Landsat
    bands: blue/green/red/nir at 30 m, dated by the acquisition (4th field), its QA side products
    left out.  _SR_B5 was read as Sentinel-2's B05 (red edge, nominal 20 m), _SR_B2 as B02 and so on,
    and the single-band QA files were all 'B1': 'date ... appears more than once with the same band B1'."""
    from changedetect.io import open_series, open_stack

    for acquired, processed in (("20240115", "20240117"), ("20240131", "20240202")):
        stem = f"{sensor}_L2SP_125052_{acquired}_{processed}_02_T1"
        for k, (token, _) in enumerate(bands.items()):
            _single(tmp_path / f"{stem}_{token}.TIF", 7000 + 100 * k)
        _single(tmp_path / f"{stem}_QA_PIXEL.TIF", 21824)
        _single(tmp_path / f"{stem}_QA_RADSAT.TIF", 1)
        _single(tmp_path / f"{stem}_SR_QA_AEROSOL.TIF", 1, "uint8")
    series = open_series(tmp_path)
    assert [b.name for b in series.bands] == list(bands.values())
    assert [b.nominal_resolution for b in series.bands] == [30.0] * len(bands)
    stack = open_stack(tmp_path)
    assert [str(t)[:10] for t in stack.time.values] == ["2024-01-15", "2024-01-31"]
    assert list(stack.band.values) == ["blue", "green", "red", "nir"]
    np.testing.assert_array_equal(stack.isel(time=0).values[:, 0, 0], [7000, 7100, 7200, 7300])


def _rgb_file(path: Path, data: np.ndarray, descriptions: tuple[str, ...] | None = None,
              photometric: str | None = None) -> Path:
    kw = {"photometric": photometric} if photometric else {}
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=3,
                       dtype="uint8", crs=CRS, transform=NORTH_UP, **kw) as dst:
        dst.write(data)
        if descriptions:
            dst.descriptions = descriptions
    return path


def test_a_date_named_blue_green_red_beside_an_untagged_rgb_date_is_combined_by_name(tmp_path: Path) -> None:
    """A date whose descriptions say blue, green, red (BGR order) beside a 3-band uint8 date without
    descriptions (GDAL's RGB photometric tag: red, green, blue) gives each band its own values on both
    dates, in open_stack and in detect_to_file; a date with neither names nor the RGB tag is one error
    naming its file, saying it has no band names (it said "has bands ['B1', 'B2', 'B3']", leaving the
    user to guess where those came from) and how to name them."""
    from changedetect.errors import TimeSeriesError
    from changedetect.io import open_stack

    rgb = np.stack([np.full((20, 20), v, np.uint8) for v in (10, 20, 30)])
    _rgb_file(tmp_path / "a_20240101.tif", np.ascontiguousarray(rgb[::-1]), ("blue", "green", "red"))
    _rgb_file(tmp_path / "b_20240201.tif", rgb)
    stack = open_stack(tmp_path)
    assert list(stack.band.values) == ["blue", "green", "red"]
    np.testing.assert_array_equal(stack.values[:, :, 0, 0], [[30, 20, 10], [30, 20, 10]])

    _rgb_file(tmp_path / "c_20240301.tif", rgb, photometric="MINISBLACK")
    with pytest.raises(TimeSeriesError, match=r"c_20240301\.tif.*no band names.*manifest") as err:
        open_stack(tmp_path)
    assert "['B1', 'B2', 'B3']" in str(err.value) and "['blue', 'green', 'red']" in str(err.value)

    a, b = _scene(0, False), _scene(0, True)
    loaded = Loaded(Pointwise(3), FakeCard())
    ref = tmp_path / "ref.tif"
    detect_to_file(_write(tmp_path / "pa.tif", a, NORTH_UP), _rgb_file(tmp_path / "pb.tif", b), ref,
                   config=CFG, model=loaded)
    out = tmp_path / "bgr.tif"
    detect_to_file(_rgb_file(tmp_path / "qa.tif", np.ascontiguousarray(a[::-1]), ("blue", "green", "red")),
                   _rgb_file(tmp_path / "qb.tif", b), out, config=CFG, model=loaded)
    with rasterio.open(ref) as r, rasterio.open(out) as o:
        np.testing.assert_allclose(o.read(1), r.read(1), atol=1e-5)
