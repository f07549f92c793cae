"""Review of the nightly catalog's areas for Landsat product files lying directly in the catalog:
one area per WRS-2 path/row (and processing level), whichever satellite (LC08, LC09, LE07, ...)
or collection tier (T1, T2, RT) delivered a date; different path/rows stay different areas."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _landsat(folder: Path, product: str, bands: tuple[str, ...] = ("SR_B2", "SR_B3", "SR_B4")) -> None:
    """One single-band uint8 GeoTIFF per band of a Landsat product id, ``<product>_<band>.TIF``."""
    import rasterio
    from rasterio.transform import from_origin

    folder.mkdir(parents=True, exist_ok=True)
    arr = np.arange(16 * 16, dtype=np.uint8).reshape(16, 16)
    for band in bands:
        with rasterio.open(folder / f"{product}_{band}.TIF", "w", driver="GTiff", width=16, height=16, count=1,
                           dtype="uint8", crs="EPSG:32648", transform=from_origin(500000, 1500000, 30, 30)) as dst:
            dst.write(arr, 1)


def test_one_path_row_is_one_area_across_satellites_and_tiers(tmp_path: Path) -> None:
    """Before, the area kept the satellite, level, collection and tier (``LC08_L2SP_125052__02_T1``),
    so LC08's and LC09's dates of one scene were two areas, each paired only with itself."""
    from changedetect._nightly_catalog import discover

    cat = tmp_path / "cat"
    _landsat(cat, "LC08_L2SP_125052_20240101_20240110_02_T1")
    _landsat(cat, "LC09_L2SP_125052_20240109_20240111_02_T1")
    _landsat(cat, "LC08_L2SP_125052_20240117_20240125_02_T2")
    _landsat(cat, "LC09_L2SP_125053_20240109_20240111_02_T1")  # another row: another area
    _landsat(cat, "LC08_L2SP_126052_20240108_20240115_02_T1")  # another path: another area
    found = discover(cat)
    assert sorted(found) == ["125052", "125053", "126052"], sorted(found)
    assert [q.date for q in found["125052"]] == ["2024-01-01", "2024-01-09", "2024-01-17"]
    assert all(len(q.files) == 3 for q in found["125052"])


def test_level_1_and_level_2_of_one_path_row_stay_apart(tmp_path: Path) -> None:
    """Level-1 digital numbers and Level-2 surface reflectance are not one series: a pair of them
    would compare two radiometries, so they stay two areas of the path/row."""
    from changedetect._nightly_catalog import discover

    cat = tmp_path / "cat"
    _landsat(cat, "LC08_L2SP_125052_20240101_20240110_02_T1")
    _landsat(cat, "LC09_L2SR_125052_20240109_20240111_02_T1")  # Level-2 without surface temperature
    _landsat(cat, "LC08_L1TP_125052_20240117_20240125_02_T1", ("B2", "B3", "B4"))
    found = discover(cat)
    assert sorted(found) == ["125052", "125052_L1"], sorted(found)
    assert [q.date for q in found["125052"]] == ["2024-01-01", "2024-01-09"]
