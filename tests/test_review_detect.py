"""Review of large-scene change inference: detect_to_file, the window engine and `changedetect detect`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp
from test_detect import CFG, CRS, TRANSFORM, FakeCard, Loaded, Pointwise, _pair

from changedetect.detect import detect_to_file


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
