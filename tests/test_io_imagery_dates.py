"""A file whose name holds no date takes its acquisition date from GDAL's IMAGERY metadata domain
(``ACQUISITIONDATETIME``: what GDAL reads from a Maxar .IMD or a Pleiades DIM beside the image, or
what a GeoTIFF stores), as ``gdalinfo -mdd IMAGERY`` shows it (H121's leftover)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from changedetect.errors import TimeSeriesError
from changedetect.io import open_series


def _tile(path: Path, acquired: str | None) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=32, height=32, count=3, dtype="uint8",
                       crs="EPSG:32648", transform=Affine(0.5, 0, 680_000, 0, -0.5, 1_200_000)) as dst:
        dst.write(np.random.default_rng(0).integers(0, 255, (3, 32, 32), dtype=np.uint8))
        if acquired is not None:
            dst.update_tags(ns="IMAGERY", ACQUISITIONDATETIME=acquired, SATELLITEID="WV03")
    return path


def test_undated_names_take_the_files_acquisition_dates(tmp_path: Path) -> None:
    # was: "no date in the file name ..."; the date the file itself states was not looked at
    _tile(tmp_path / "district12_west.tif", "2024-07-12T03:21:45.000Z")
    _tile(tmp_path / "district12_east.tif", "2024-01-15T03:19:02.500Z")
    series = open_series(tmp_path)
    assert [d.isoformat() for d in series.dates] == ["2024-01-15", "2024-07-12"]
    assert [s.files[0].name for s in series.scenes] == ["district12_east.tif", "district12_west.tif"]
    assert not series.placeholder_dates


def test_a_date_in_the_name_wins_over_the_metadata(tmp_path: Path) -> None:
    _tile(tmp_path / "a_20240301.tif", "2024-07-12T03:21:45Z")
    _tile(tmp_path / "b_20240401.tif", None)
    assert [d.isoformat() for d in open_series(tmp_path).dates] == ["2024-03-01", "2024-04-01"]


def test_a_file_with_neither_is_named_and_the_metadata_is_said_to_be_looked_at(tmp_path: Path) -> None:
    _tile(tmp_path / "west.tif", "2024-07-12T03:21:45Z")
    _tile(tmp_path / "east.tif", None)
    with pytest.raises(TimeSeriesError, match=r"no date in the file name '.*east\.tif' \(looked for a date like "
                                              r"20240131 or 2024-01-31\) nor in its IMAGERY metadata"):
        open_series(tmp_path)


def test_a_manifest_date_the_file_name_contradicts_is_said(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Two rows' dates swapped in a manifest passed in silence; the manifest's date is still the one used."""
    import logging

    tiles = Path(__file__).resolve().parents[1] / "sample_tiles"
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,date\n{tiles / 'district12_20240712.tif'},2025-01-20\n"
                        f"{tiles / 'district12_20250120.tif'},2024-07-12\n{tiles / 'district12_20240115.tif'},"
                        "2024-01-15\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="changedetect.io"):
        series = open_series(manifest)
    said = [r.getMessage() for r in caplog.records if "says" in r.getMessage()]
    assert len(said) == 2 and "line 2: date 2025-01-20, but the file name 'district12_20240712.tif' says 2024-07-12" \
        in said[0]
    assert [d.isoformat() for d in series.dates] == ["2024-01-15", "2024-07-12", "2025-01-20"]
