"""read_float_bands: several bands of a window in one read, NaN where the file says nodata (value,
binary alpha), a NIR band GDAL flags as alpha left a band."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from changedetect.io._read import read_float, read_float_bands


def _write(path: Path, data: np.ndarray, **extra: object) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                       dtype=data.dtype, crs="EPSG:32648", transform=Affine(0.5, 0, 680_000, 0, -0.5, 1_200_000),
                       tiled=True, blockxsize=64, blockysize=64, compress="deflate", **extra) as dst:
        dst.write(data)
    return path


@pytest.mark.parametrize("case", ["plain", "nodata", "alpha", "nir"])
def test_one_read_of_several_bands_equals_band_by_band_reads(tmp_path: Path, case: str) -> None:
    rng = np.random.default_rng(1)
    data = rng.integers(1, 255, (4, 200, 150)).astype(np.uint8)
    extra: dict[str, object] = {}
    if case == "nodata":
        data[:, :30] = 0
        extra["nodata"] = 0
    elif case == "alpha":  # an orthomosaic: alpha 0 outside, 255 inside, RGB 0 outside
        data[3] = 255
        data[:, 150:] = 0
    elif case == "nir":
        data[3, :20] = 0  # NIR flagged alpha by GDAL, with zeros that are data
    path = _write(tmp_path / f"{case}.tif", data, **extra)
    window = Window(10, 20, 120, 170)
    with rasterio.open(path) as src:
        one = read_float_bands(src, [1, 2, 3], window)
        single = read_float(src, 2, window)
    expected = data[:3, 20:190, 10:130].astype(np.float32)
    if case == "nodata":
        expected[expected == 0] = np.nan
    elif case == "alpha":
        expected[:, data[3, 20:190, 10:130] == 0] = np.nan
    assert one.dtype == np.float32 and one.shape == (3, 170, 120)
    np.testing.assert_array_equal(one, expected)
    np.testing.assert_array_equal(single, expected[1])
    assert np.isnan(one).any() == (case in ("nodata", "alpha"))


def test_a_stac_item_of_one_multiband_asset_without_eo_bands_keeps_the_file_s_names(tmp_path: Path) -> None:
    """The asset's key ('image', 'visual') was taken for the name of its one band and a 4-band file refused."""
    import json

    from changedetect.io import open_series

    tile = Path(__file__).resolve().parents[2] / "sample_tiles" / "district12_20240712.tif"
    item = {"type": "Feature", "stac_version": "1.0.0", "id": "d12", "geometry": None, "links": [],
            "properties": {"datetime": "2024-07-12T03:00:00Z"},
            "assets": {"image": {"href": str(tile), "type": "image/tiff; application=geotiff", "roles": ["data"]}}}
    (tmp_path / "item.json").write_text(json.dumps(item), encoding="utf-8")
    series = open_series(tmp_path / "item.json")
    assert [b.info.name for b in series.scenes[0].bands] == ["red", "green", "blue", "nir"]
