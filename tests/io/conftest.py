"""Builders of tiny seeded GeoTIFFs for the IO tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

#: A 0.5 m grid in UTM 48N inside District 12, Ho Chi Minh City.
ORIGIN = (683_000.0, 1_203_000.0)


def _write_tif(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = "EPSG:32648",
    transform: Affine | None = None,
    nodata: float | None = None,
    descriptions: Sequence[str] | None = None,
    res: float = 0.5,
    origin: tuple[float, float] = ORIGIN,
) -> Path:
    """Write ``data`` ``(bands, h, w)`` or ``(h, w)`` as a small GeoTIFF."""
    data = data[None] if data.ndim == 2 else data
    count, height, width = data.shape
    if transform is None and crs is not None:
        transform = Affine(res, 0, origin[0], 0, -res, origin[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": transform or Affine.identity(),
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(descriptions or [], 1):
            dst.set_band_description(i, name)
    return path


@pytest.fixture
def write_tif() -> Callable[..., Path]:
    """The GeoTIFF builder: ``write_tif(path, data, *, crs, transform, nodata, descriptions, res, origin)``."""
    return _write_tif


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12)


@pytest.fixture
def make_series(tmp_path: Path, rng: np.random.Generator) -> Callable[..., Path]:
    """A folder of ``n`` dated 4-band uint8 tiles (``tile_YYYYMMDD.tif``) of ``size`` pixels."""

    def make(
        n: int = 3,
        size: int = 64,
        *,
        folder: str = "tiles",
        descriptions: Sequence[str] | None = ("red", "green", "blue", "nir"),
    ) -> Path:
        out = tmp_path / folder
        for k in range(n):
            data = rng.integers(1, 255, size=(4, size, size), dtype=np.uint8)
            _write_tif(
                out / f"tile_202401{10 + k:02d}.tif", data, nodata=0, descriptions=descriptions
            )
        return out

    return make
