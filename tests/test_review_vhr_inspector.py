"""Review: an inspector's own two deliveries of 0.5 m imagery (not the sample city).

Found on a real panchromatic tile and a second delivery reprojected to another UTM zone at 0.6 m:

- ``changedetect info`` said nothing of a date delivered at another resolution (it notes a date
  in another CRS), though ``run`` resamples that date onto the first date's grid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine


def _tile(path: Path, resolution: float, size: int) -> None:
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 3, "dtype": "uint8",
               "crs": "EPSG:32648", "transform": Affine(resolution, 0, 680000.0, 0, -resolution, 1200000.0)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.random.default_rng(0).integers(1, 255, (3, size, size), dtype=np.uint8))
        dst.descriptions = ("red", "green", "blue")


def test_info_names_a_date_delivered_at_another_resolution(tmp_path: Path) -> None:
    from changedetect.cli.info import format_info
    from changedetect.io.summary import describe

    _tile(tmp_path / "city_20230115.tif", 0.5, 60)
    _tile(tmp_path / "city_20240220.tif", 0.6, 50)
    info = describe(tmp_path)
    assert [s["resolution"] for s in info["scenes"]] == [0.5, 0.6]
    text = format_info(info)
    assert "2024-02-20" in text.split("Bands:")[1] and "0.6 m" in text.split("Bands:")[1], text


def test_info_is_silent_on_resolution_when_the_dates_agree(tmp_path: Path) -> None:
    from changedetect.cli.info import format_info
    from changedetect.io.summary import describe

    _tile(tmp_path / "city_20230115.tif", 0.5, 40)
    _tile(tmp_path / "city_20240220.tif", 0.5, 40)
    assert "dates differ" not in format_info(describe(tmp_path))
