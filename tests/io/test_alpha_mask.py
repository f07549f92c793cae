"""A real RGBA GeoTIFF's alpha band is its validity mask; an RGB+NIR file's NIR (flagged alpha too) is a band.

Orthomosaics (OpenDroneMap, Pix4D, OpenAerialMap, QGIS exports) are 4-band uint8 RGBA GeoTIFFs whose
alpha is 0 outside the mosaic (RGB 0 there) and 255 inside.  GDAL flags the 4th band of any 4-band
uint8 GeoTIFF as alpha, so only a binary one (0/255) is taken for a mask.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from click.testing import CliRunner
from rasterio.enums import ColorInterp, MaskFlags

from changedetect.io import describe, open_series, open_stack
from changedetect.types import Grid

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_detect import CFG, CRS, TRANSFORM, FakeCard, Loaded, Pointwise  # noqa: E402

SIZE = 96
#: Outside the mosaic: the 24 westmost columns and the 16 northmost rows.
BORDER_COLS, BORDER_ROWS = 24, 16


def _outside() -> np.ndarray:
    out = np.zeros((SIZE, SIZE), bool)
    out[:, :BORDER_COLS] = True
    out[:BORDER_ROWS, :] = True
    return out


def _write4(path: Path, data: np.ndarray, transform: Affine = TRANSFORM, **kw: object) -> Path:
    """A 4-band uint8 GeoTIFF as rasterio writes it by default (GDAL flags the 4th band as alpha)."""
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=4,
                       dtype="uint8", crs=CRS, transform=transform, **kw) as dst:
        dst.write(data.astype(np.uint8))
    with rasterio.open(path) as src:
        assert src.colorinterp[3] == ColorInterp.alpha
        assert all(MaskFlags.alpha in f for f in src.mask_flag_enums[:3])
    return path


def _rgba(seed: int = 0, outside: np.ndarray | None = None) -> np.ndarray:
    """RGB in 1..254 with RGB = 0 and alpha = 0 outside the mosaic, alpha 255 inside."""
    rng = np.random.default_rng(seed)
    data = rng.integers(1, 255, (4, SIZE, SIZE)).astype(np.uint8)
    data[3] = 255
    if outside is not None:
        data[:, outside] = 0
    return data


def _rgbn(seed: int = 1) -> np.ndarray:
    """RGB plus a continuous NIR band (0..254) that is 0 over a patch of water."""
    rng = np.random.default_rng(seed)
    data = rng.integers(1, 255, (4, SIZE, SIZE)).astype(np.uint8)
    data[3] = rng.integers(0, 255, (SIZE, SIZE))
    data[3, 40:60, 40:60] = 0
    return data


@pytest.fixture
def ortho(tmp_path: Path) -> Path:
    return _write4(tmp_path / "ortho_20240105.tif", _rgba(outside=_outside()))


def test_the_border_of_an_rgba_orthomosaic_reads_as_nan_on_its_own_grid(ortho: Path) -> None:
    """Was read as data (RGB 0): four bands B1..B4, no NaN at all."""
    stack = open_stack(ortho)
    assert list(stack.band.values) == ["red", "green", "blue"]  # the mask is not a band for a model
    values = stack.values[0]
    assert np.isnan(values[:, _outside()]).all()
    assert np.isfinite(values[:, ~_outside()]).all()


@pytest.mark.parametrize("resampling", ["nearest", "bilinear"])
def test_the_alpha_mask_travels_through_reprojection(ortho: Path, resampling: str) -> None:
    """Onto a coarser grid in another CRS (EPSG:3857), through the per-window warp."""
    from rasterio.warp import calculate_default_transform

    with rasterio.open(ortho) as src:
        transform, width, height = calculate_default_transform(src.crs, "EPSG:3857", src.width, src.height,
                                                               *src.bounds, resolution=1.5)
    grid = Grid(crs="EPSG:3857", transform=transform, width=width, height=height)
    values = open_stack(ortho, grid=grid, resampling=resampling).values[0]
    # where each target pixel centre falls in the file: well outside the mosaic, or well inside
    with rasterio.open(ortho) as src:
        from rasterio.warp import transform as warp_xy

        rows, cols = np.mgrid[:height, :width]
        xs, ys = rasterio.transform.xy(transform, rows.ravel(), cols.ravel())
        sx, sy = warp_xy("EPSG:3857", src.crs, xs, ys)
        r, c = rasterio.transform.rowcol(src.transform, sx, sy)
    r, c = np.asarray(r).reshape(height, width), np.asarray(c).reshape(height, width)
    inside_file = (r >= 2) & (r < SIZE - 2) & (c >= 2) & (c < SIZE - 2)
    outside = inside_file & ((c < BORDER_COLS - 3) | (r < BORDER_ROWS - 3))
    inside = inside_file & (c > BORDER_COLS + 2) & (r > BORDER_ROWS + 2)
    assert outside.sum() > 50 and inside.sum() > 500
    assert np.isnan(values[:, outside]).all()
    assert np.isfinite(values[:, inside]).all()


def test_two_dates_with_different_footprints_in_one_stack(tmp_path: Path) -> None:
    """The second date on a shifted grid, its border warped onto the first date's grid."""
    first = _write4(tmp_path / "ortho_20240105.tif", _rgba(seed=3))  # alpha 255 everywhere
    shifted = Affine(0.5, 0, 600000 + 2.25, 0, -0.5, 1200000 - 1.75)
    second = _write4(tmp_path / "ortho_20240605.tif", _rgba(seed=4, outside=_outside()), shifted)
    stack = open_stack([first, second])
    assert list(stack.band.values) == ["red", "green", "blue"]
    assert np.isfinite(stack.values[0]).all()
    later = stack.values[1]
    # the second date's border, in the first date's pixels: cols < 4.5 + 24, rows < 3.5 + 16 (the rest
    # of the first grid beyond the second file's extent is no data too)
    assert np.isnan(later[:, :, : 4 + BORDER_COLS - 1]).all()
    assert np.isnan(later[:, : 3 + BORDER_ROWS - 1, :]).all()
    assert np.isfinite(later[:, 3 + BORDER_ROWS + 2: SIZE - 6, 4 + BORDER_COLS + 2: SIZE - 6]).all()


@pytest.mark.parametrize("cog", [False, True])
def test_info_reports_the_share_outside_the_mosaic(ortho: Path, tmp_path: Path, cog: bool) -> None:
    """Was 0.0: the black border counted as data."""
    path = ortho
    if cog:  # a bigger COG with overviews, sampled through them
        from rasterio.shutil import copy

        big = np.repeat(np.repeat(_rgba(outside=_outside()), 8, axis=1), 8, axis=2)
        plain = _write4(tmp_path / "big.tif", big, Affine(0.0625, 0, 600000, 0, -0.0625, 1200000))
        path = tmp_path / "cog_20240105.tif"
        copy(str(plain), str(path), driver="COG", BLOCKSIZE="128")
        with rasterio.open(path) as src:
            assert src.overviews(1)
    share = _outside().mean()
    info = describe(path, sample=64 if cog else 256)
    assert info["nodata_share"] == pytest.approx(share, abs=0.02)
    assert [b["name"] for b in info["bands"]] == ["red", "green", "blue"]
    from changedetect.cli import cli

    result = CliRunner().invoke(cli, ["info", "--json", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["nodata_share"] == pytest.approx(share, abs=0.02)


def _detect(before: Path, after: Path, out: Path) -> np.ndarray:
    from changedetect.detect import detect_to_file

    detect_to_file(before, after, out, config=CFG, model=Loaded(Pointwise(3), FakeCard()))
    with rasterio.open(out) as src:
        return src.read(1)


def test_detect_to_file_gives_nan_outside_either_mosaic(ortho: Path, tmp_path: Path) -> None:
    """Was a probability computed against the black border (a false change along the footprint)."""
    full = _write4(tmp_path / "full_20230105.tif", _rgba(seed=7))
    prob = _detect(full, ortho, tmp_path / "after_masked.tif")  # AFTER's border, same grid
    assert np.isnan(prob[_outside()]).all() and np.isfinite(prob[~_outside()]).all()
    prob = _detect(ortho, full, tmp_path / "before_masked.tif")  # BEFORE's border
    assert np.isnan(prob[_outside()]).all() and np.isfinite(prob[~_outside()]).all()
    # AFTER on a grid shifted by whole pixels: its border warped onto BEFORE's grid
    shifted = Affine(0.5, 0, 600000 - 4.0, 0, -0.5, 1200000 + 3.0)  # 8 px west, 6 px north
    big = np.zeros((4, SIZE + 16, SIZE + 16), np.uint8)
    big[:, 6:6 + SIZE, 8:8 + SIZE] = _rgba(seed=5, outside=_outside())
    other = _write4(tmp_path / "other_grid_20240605.tif", big, shifted)
    prob = _detect(full, other, tmp_path / "warped.tif")
    inner = np.zeros_like(_outside())
    inner[BORDER_ROWS + 2:, BORDER_COLS + 2:] = True
    assert np.isnan(prob[_outside()]).all() and np.isfinite(prob[inner]).all()


def test_rgb_nir_file_keeps_its_nir_band_and_its_zero_nir_pixels(tmp_path: Path) -> None:
    """The guard: a continuous NIR band that GDAL flags as alpha is a band, its 0s are data."""
    data = _rgbn()
    path = _write4(tmp_path / "rgbn_20240105.tif", data)
    stack = open_stack(path)
    assert list(stack.band.values) == ["B1", "B2", "B3", "B4"]
    assert not np.isnan(stack.values).any()
    np.testing.assert_array_equal(stack.values[0, 3], data[3].astype(np.float32))
    grid = open_series(path).reference_grid(resolution=1.0)
    assert not np.isnan(open_stack(path, grid=grid, resampling="nearest").values).any()
    assert describe(path)["nodata_share"] == 0.0
    other = _write4(tmp_path / "rgbn_20240605.tif", _rgbn(seed=2))
    assert np.isfinite(_detect(path, other, tmp_path / "p.tif")).all()


def test_a_manifest_may_name_an_orthomosaics_bands_with_or_without_its_alpha(ortho: Path, tmp_path: Path) -> None:
    """Three names are the bands; four name the alpha band too, which stays the mask; two are refused."""
    from changedetect.errors import TimeSeriesError

    for names in ("r;g;b", "r;g;b;a"):
        (tmp_path / "m.csv").write_text(f"path,date,bands\n{ortho.name},2024-01-05,{names}\n")
        stack = open_stack(tmp_path / "m.csv")
        assert list(stack.band.values) == ["r", "g", "b"]
        assert np.isnan(stack.values[0][:, _outside()]).all()
    (tmp_path / "m.csv").write_text(f"path,date,bands\n{ortho.name},2024-01-05,r;g\n")
    with pytest.raises(TimeSeriesError, match=r"2 band names .* which has 3 band\(s\) and an alpha band"):
        open_series(tmp_path / "m.csv")
