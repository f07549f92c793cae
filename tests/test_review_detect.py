"""Review of large-scene change inference: detect_to_file, the window engine and `changedetect detect`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401
import xarray as xr
from affine import Affine
from rasterio.enums import ColorInterp
from test_detect import CFG, CRS, TRANSFORM, FakeCard, Loaded, Pointwise, _pair

from changedetect.detect import detect_pair, detect_to_file


def _write_bands(path: Path, data: np.ndarray, transform: Affine = TRANSFORM,
                 descriptions: tuple[str, ...] | None = None) -> Path:
    """A uint8 GeoTIFF as rasterio writes it by default (4 bands: GDAL flags the 4th as alpha)."""
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype="uint8", crs=CRS, transform=transform) as dst:
        dst.write(data.astype(np.uint8))
        if descriptions:
            dst.descriptions = descriptions
    return path


def _rgbn(rgb: np.ndarray) -> np.ndarray:
    """RGB plus a NIR band that is 0 over a patch of water (rows 20-60, cols 20-60)."""
    nir = np.full((1, *rgb.shape[1:]), 120, np.uint8)
    nir[:, 20:60, 20:60] = 0
    return np.concatenate([rgb.astype(np.uint8), nir])


@pytest.mark.parametrize("descriptions", [None, ("red", "green", "blue", "nir")])
def test_rgbn_file_whose_nir_gdal_flags_as_alpha_is_read_as_a_band_not_a_mask(
        tmp_path: Path, descriptions: tuple[str, ...] | None) -> None:
    """A 4-band uint8 RGB+NIR GeoTIFF (rasterio's default: the 4th band flagged alpha), as
    open_stack reads it: NIR is a band, never a mask.  It was the mask: NaN wherever NIR = 0, and an
    AFTER on another grid (through a WarpedVRT, which took NIR for opacity) came out all NaN."""
    a, b = _pair(200, 200)
    loaded = Loaded(Pointwise(3), FakeCard())
    pa3 = _write_bands(tmp_path / "a3.tif", a.values, descriptions=("red", "green", "blue"))
    pb3 = _write_bands(tmp_path / "b3.tif", b.values, descriptions=("red", "green", "blue"))
    detect_to_file(pa3, pb3, tmp_path / "ref.tif", config=CFG, model=loaded)
    with rasterio.open(tmp_path / "ref.tif") as src:
        ref = src.read(1)
    assert np.isfinite(ref).all()

    pa = _write_bands(tmp_path / "a4.tif", _rgbn(a.values), descriptions=descriptions)
    with rasterio.open(pa) as src:
        assert src.colorinterp[3] == ColorInterp.alpha
    pb = _write_bands(tmp_path / "b4.tif", _rgbn(b.values), descriptions=descriptions)
    summary = detect_to_file(pa, pb, tmp_path / "same.tif", config=CFG, model=loaded)
    with rasterio.open(tmp_path / "same.tif") as src:
        np.testing.assert_allclose(src.read(1), ref, atol=1e-5)
    assert summary.valid_share == 1.0

    # AFTER on a grid 10 px larger on every side (read onto BEFORE's grid)
    big = np.zeros((4, 220, 220), np.uint8)
    big[:, 10:210, 10:210] = _rgbn(b.values)
    shifted = Affine(0.5, 0, 600000 - 5.0, 0, -0.5, 1200000 + 5.0)
    pw = _write_bands(tmp_path / "b4_other_grid.tif", big, shifted, descriptions=descriptions)
    summary = detect_to_file(pa, pw, tmp_path / "warped.tif", config=CFG, model=loaded)
    with rasterio.open(tmp_path / "warped.tif") as src:
        np.testing.assert_allclose(src.read(1), ref, atol=1e-3)
    assert summary.valid_share == 1.0


def test_an_overlap_given_with_the_cards_window_is_used_or_refused_never_silently_cut(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --window (the card's 512 px), --overlap 200 was cut to 128 and --overlap 600 to 128
    without a word, while --window 512 --overlap 600 was refused: the overlap asked for is used
    when it is below half the window, refused with one line (exit 2) otherwise."""
    from changedetect._detect_engine import _Runner
    from changedetect.cli import main
    from changedetect.detect import DetectConfig
    from changedetect.errors import ConfigError

    card = FakeCard()
    object.__setattr__(card, "window", 512)
    loaded = Loaded(Pointwise(3), card)
    assert _Runner(loaded, DetectConfig(model="tiny", overlap=200, num_threads=1)).overlap == 200
    assert _Runner(loaded, DetectConfig(model="tiny", num_threads=1)).overlap == 64  # the default
    with pytest.raises(ConfigError, match=r"overlap of 600 px .* half the model card's window \(512 px\)"):
        _Runner(loaded, DetectConfig(model="tiny", overlap=600, num_threads=1))
    small = FakeCard()
    object.__setattr__(small, "window", 96)  # the default overlap adapts to a small card window
    assert _Runner(Loaded(Pointwise(3), small), DetectConfig(model="tiny", num_threads=1)).overlap == 24

    a, b = _pair(64, 64)
    pa = _write_bands(tmp_path / "a.tif", a.values, descriptions=("red", "green", "blue"))
    pb = _write_bands(tmp_path / "b.tif", b.values, descriptions=("red", "green", "blue"))
    with pytest.raises(SystemExit) as exit_:
        main(["-q", "detect", str(pa), str(pb), "--out", str(tmp_path / "p.tif"), "--overlap", "600"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert err.startswith("Error: an overlap of 600 px") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "p.tif").exists()


def _shifted(da: xr.DataArray, px: int) -> xr.DataArray:
    """``da``'s ground on a grid ``px`` pixels further east, same size (its last ``px`` columns NaN)."""
    t = da.rio.transform()
    data = np.full(da.shape, np.nan, np.float32)
    data[:, :, :-px] = da.values[:, :, px:]
    moved = t @ Affine.translation(px, 0)
    out = xr.DataArray(data, dims=da.dims, coords={"band": da["band"].values, "y": da["y"].values,
                                                     "x": da["x"].values + px * t.a})
    return out.rio.write_crs(da.rio.crs).rio.write_transform(moved)


@pytest.mark.parametrize("crs, pixel", [("EPSG:32648", 0.5), ("EPSG:4326", 3e-6)])
def test_detect_pair_reads_an_after_a_few_pixels_off_onto_befores_grid(crs: str, pixel: float) -> None:
    """AFTER of BEFORE's size and CRS on a grid 10 px east (5 m at 0.5 m, 3e-5 deg at 0.3 m) was taken
    for BEFORE's grid (np.allclose on the transform: 1e-5 of 600000 m is 6 m) and compared pixel by
    pixel with ground 10 px away; it is now put onto BEFORE's grid, like a farther one."""
    a, b = _pair(120, 160)
    t = Affine(pixel, 0, 600000 * pixel / 0.5 if crs == "EPSG:32648" else 106.6, 0, -pixel,
               1200000 * pixel / 0.5 if crs == "EPSG:32648" else 10.9)
    a = a.rio.write_crs(crs).rio.write_transform(t)
    a = a.assign_coords(x=t.c + pixel * (np.arange(160) + 0.5), y=t.f - pixel * (np.arange(120) + 0.5))
    loaded = Loaded(Pointwise(3), FakeCard())
    ref = detect_pair(a, a, config=CFG, model=loaded).values
    prob = detect_pair(a, _shifted(a, 10), config=CFG, model=loaded)
    assert prob.rio.transform() == t
    assert np.isnan(prob.values[:, :10]).all()  # west of AFTER's grid
    np.testing.assert_allclose(prob.values[:, 11:-1], ref[:, 11:-1], atol=1e-3)  # bilinear at the edges


def test_detect_to_file_reads_an_after_two_pixels_off_in_degrees_onto_befores_grid(tmp_path: Path) -> None:
    """In EPSG:4326 at 0.3 m (3e-6 deg) an AFTER of BEFORE's size 2 px east passed Affine.almost_equals
    (1e-5 deg) and was read pixel for pixel; it is now read onto BEFORE's grid."""
    a, _ = _pair(100, 120)
    t = Affine(3e-6, 0, 106.6, 0, -3e-6, 10.9)
    data = a.values.astype(np.uint8)

    def write(path: Path, values: np.ndarray, transform: Affine) -> Path:
        with rasterio.open(path, "w", driver="GTiff", width=120, height=100, count=3, dtype="uint8",
                           crs="EPSG:4326", transform=transform) as dst:
            dst.write(values)
            dst.descriptions = ("red", "green", "blue")
        return path

    moved = np.zeros_like(data)
    moved[:, :, :-2] = data[:, :, 2:]
    pa = write(tmp_path / "a.tif", data, t)
    pb = write(tmp_path / "b.tif", moved, t @ Affine.translation(2, 0))
    loaded = Loaded(Pointwise(3), FakeCard())
    summary = detect_to_file(pa, pb, tmp_path / "p.tif", config=CFG, model=loaded)
    detect_to_file(pa, pa, tmp_path / "same.tif", config=CFG, model=loaded)
    with rasterio.open(tmp_path / "p.tif") as p, rasterio.open(tmp_path / "same.tif") as same:
        prob, ref = p.read(1), same.read(1)
    assert np.isnan(prob[:, :2]).all() and summary.valid_share == pytest.approx(118 / 120)
    np.testing.assert_allclose(prob[:, 3:-3], ref[:, 3:-3], atol=1e-3)


def test_an_output_that_is_one_of_the_inputs_is_refused_even_with_overwrite(tmp_path: Path) -> None:
    """``detect a.tif b.tif --out a.tif --overwrite`` replaced the BEFORE imagery by its own probability."""
    from changedetect.errors import OutputLocationError

    a, b = _pair(64, 64)
    pa = _write_bands(tmp_path / "a.tif", a.values, descriptions=("red", "green", "blue"))
    pb = _write_bands(tmp_path / "b.tif", b.values, descriptions=("red", "green", "blue"))
    before = pa.read_bytes()
    loaded = Loaded(Pointwise(3), FakeCard())
    for out, which in ((pa, "BEFORE"), (tmp_path / "." / "b.tif", "AFTER")):
        with pytest.raises(OutputLocationError, match=rf"'.*{out.name}' is the {which} raster itself"):
            detect_to_file(pa, pb, out, config=CFG, model=loaded, overwrite=True)
    assert pa.read_bytes() == before
    with rasterio.open(pb) as src:
        assert src.count == 3 and src.dtypes[0] == "uint8"


def test_detect_pair_takes_integer_arrays_on_another_grid() -> None:
    """uint16 DataArrays (what rioxarray.open_rasterio gives) with AFTER on another grid raised
    'ValueError: cannot convert float NaN to integer' from the reprojection; they give the float result."""
    a, _ = _pair(96, 128)
    a = a.round()
    after = _shifted(a, 8)
    loaded = Loaded(Pointwise(3), FakeCard())
    ref = detect_pair(a, after, config=CFG, model=loaded).values
    ints = (a.astype(np.uint16), after.fillna(0).astype(np.uint16))
    prob = detect_pair(*ints, config=CFG, model=loaded).values
    assert np.isnan(prob[:, :8]).all()
    np.testing.assert_allclose(prob[:, 9:-9], ref[:, 9:-9], atol=1e-3)


def test_a_device_this_machine_lacks_is_one_config_error_from_the_python_api(tmp_path: Path) -> None:
    """DetectConfig(device="cuda") on a machine without a CUDA GPU raised torch's bare
    'AssertionError: Torch not compiled with CUDA enabled' from detect_to_file / detect_pair (the
    CLI checks --device itself); it is a ConfigError naming the device and saying to use cpu."""
    import torch

    from changedetect.detect import DetectConfig
    from changedetect.errors import ConfigError

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: cuda is a device it has")
    a, b = _pair(64, 64)
    pa = _write_bands(tmp_path / "a.tif", a.values, descriptions=("red", "green", "blue"))
    pb = _write_bands(tmp_path / "b.tif", b.values, descriptions=("red", "green", "blue"))
    for device in ("cuda", "cuda:1"):
        config = DetectConfig(window=64, overlap=16, device=device)
        with pytest.raises(ConfigError, match=rf"device '{device}' is not available .*device='cpu'"):
            detect_to_file(pa, pb, tmp_path / "p.tif", config=config)
        with pytest.raises(ConfigError, match=rf"device '{device}'"):
            detect_pair(a, b, config=config, model=Loaded(Pointwise(3), FakeCard()))
    with pytest.raises(ConfigError, match="unknown device 'gpu'"):
        detect_pair(a, b, config=DetectConfig(window=64, overlap=16, device="gpu"),
                    model=Loaded(Pointwise(3), FakeCard()))
    assert not (tmp_path / "p.tif").exists()


def test_a_usage_error_leaves_no_output_folder(tmp_path: Path) -> None:
    """`detect a.tif --out new/p.tif` (AFTER forgotten) made the folder new/ before saying AFTER is missing."""
    from click.testing import CliRunner

    from changedetect.cli import cli

    a, _ = _pair(64, 64)
    pa = _write_bands(tmp_path / "a.tif", a.values, descriptions=("red", "green", "blue"))
    for args in ([str(pa)], [str(pa), str(pa), "--series"]):
        res = CliRunner().invoke(cli, ["-q", "detect", *args, "--out", str(tmp_path / "new" / "p.tif")])
        assert res.exit_code == 2 and ("AFTER" in res.output or "--series" in res.output), res.output
        assert not (tmp_path / "new").exists()
