"""Review: a file without band names that has ten or more bands (io names them B1..B10 or more) is
unnamed as a whole: detection takes its first bands in order, as it does for B1..B9."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from changedetect._detect_inputs import _anonymous, resolve_bands
from changedetect.cli import main
from changedetect.testing import make_stack


@pytest.mark.parametrize("name", ["B10", "B12", "band_10", "band 11", "band13", "10", "b25"])
def test_two_digit_unnamed_bands_are_unnamed(name: str) -> None:
    assert _anonymous(name)


@pytest.mark.parametrize("name", ["B02", "B8A", "red", "nir", "band_a", "B01"])
def test_named_bands_are_not_unnamed(name: str) -> None:
    """Sentinel-2's zero-padded names (B02, B01) and words are names, not io's B1..Bn."""
    assert not _anonymous(name)


def test_resolve_bands_takes_the_first_of_twelve_unnamed() -> None:
    names = [f"B{i}" for i in range(1, 13)]
    assert resolve_bands(names, ["red", "green", "blue"]) == [0, 1, 2]


def _unnamed(stack, path: Path, t: int) -> Path:  # type: ignore[no-untyped-def]
    arr = np.nan_to_num(stack.isel(time=t).values).round().clip(0, 255).astype(np.uint8)
    profile = {"driver": "GTiff", "width": arr.shape[2], "height": arr.shape[1], "count": arr.shape[0],
               "dtype": "uint8", "crs": stack.rio.crs, "transform": stack.rio.transform()}
    with rasterio.open(path, "w", **profile) as dst:  # no band descriptions: io names them B1..B10
        dst.write(arr)
    return path


@pytest.mark.parametrize("series", [False, True])
def test_detect_runs_on_unnamed_ten_band_files(series: bool, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Both ``detect BEFORE AFTER`` and ``detect FOLDER --series`` (which refused the folder: "lacks
    band(s) ['red', 'green', 'blue']" beside its B1..B10)."""
    stack = make_stack(size=64, n_dates=2, bands=[f"x{i}" for i in range(10)])
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    before = _unnamed(stack, tiles / "a_20200101.tif", 0)
    after = _unnamed(stack, tiles / "b_20210101.tif", 1)
    out = tmp_path / "prob.tif"
    argv = ["detect", str(tiles), "--series"] if series else ["detect", str(before), str(after)]
    with pytest.raises(SystemExit) as info:
        main([*argv, "--out", str(out)])
    assert int(info.value.code or 0) == 0, capsys.readouterr().err
    assert out.is_file()


# ------------------------------------------------------------------ Sentinel-2's B10..B12 are names
@pytest.mark.parametrize("names", [["B10", "B11", "B12"], ["B12", "B11", "B10"], ["b10", "b11", "b12"]])
def test_sentinel2_b10_to_b12_alone_are_refused(names: list[str]) -> None:
    """Sentinel-2's B10-B12 (cirrus, SWIR) are names: not red, green and blue taken in order."""
    from changedetect.errors import ModelError

    with pytest.raises(ModelError, match=r"lacks band\(s\) \['red', 'green', 'blue'\]"):
        resolve_bands(names, ["red", "green", "blue"])


def test_io_names_a_twelve_band_file_b1_to_b12(tmp_path: Path) -> None:
    """What io names the bands of a file without descriptions (B1..B12, not zero-padded): unnamed."""
    from changedetect.io import open_series

    stack = make_stack(size=32, n_dates=2, bands=[f"x{i}" for i in range(12)])
    _unnamed(stack, tmp_path / "a_20200101.tif", 0)
    _unnamed(stack, tmp_path / "b_20210101.tif", 1)
    names = open_series(tmp_path).band_names
    assert names == [f"B{i}" for i in range(1, 13)]
    assert resolve_bands(names, ["red", "green", "blue"]) == [0, 1, 2]


def test_a_sentinel2_folder_of_b10_to_b12_is_refused_before_any_work(tmp_path: Path) -> None:
    from changedetect._detect_inputs import check_stack_bands
    from changedetect.errors import ModelError
    from changedetect.io import open_series
    from changedetect.testing import make_grid

    grid = make_grid(32, resolution=20.0)
    profile = {"driver": "GTiff", "width": 32, "height": 32, "count": 1, "dtype": "uint16", "crs": grid.crs,
               "transform": grid.transform}
    for day in ("20200105", "20200704"):
        for band in ("B10", "B11", "B12"):
            with rasterio.open(tmp_path / f"T32TPP_{day}T101021_{band}_20m.tif", "w", **profile) as dst:
                dst.write(np.full((1, 32, 32), 1000, dtype=np.uint16))
    stack = open_series(tmp_path).to_stack()
    assert [str(b) for b in stack["band"].values] == ["B10", "B11", "B12"]
    card = type("Card", (), {"bands": ("red", "green", "blue"), "band_aliases": None})()
    with pytest.raises(ModelError, match="lacks band"):
        check_stack_bands(stack, card, "tiles")
