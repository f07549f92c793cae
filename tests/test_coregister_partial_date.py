"""A date that covers part of its grid is measured where it has data.

Before, the global shift's windows sat on a regular 3 x 3 grid over the scene whatever the dates
covered: a new flight over one corner of a district (a date too large to hold, read window by
window) had one or two of them on data, fewer than the three needed, and the date came out
``unreliable`` and was left unshifted though its corner is well textured.  Now a window mostly on no
data is moved to the nearest place on data (:mod:`changedetect._registration.windows`), from the
files' decimated coverage (:meth:`changedetect.io.SeriesSource.coverage`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from _fakes import textured_scene
from affine import Affine

import changedetect.coregister as cg
from changedetect._registration.windows import place_windows, regular_origins, window_shares

SIZE = 2304
CORNER = 760  # date 2 has data in rows and columns 0..760 only (11 % of the grid)
SHIFT = (2, -1)  # date 2 is the scene read (dx, dy) px further
TRANSFORM = Affine(0.5, 0, 680_000, 0, -0.5, 1_200_000)


def _date(t: int) -> np.ndarray:
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    out = np.stack([textured_scene(y + t * SHIFT[1], x + t * SHIFT[0], b) for b in range(3)])
    if t:
        out[:, CORNER:, :] = np.nan
        out[:, :, CORNER:] = np.nan
    return out


def _stack() -> xr.DataArray:
    data = da.from_array(np.stack([_date(0), _date(1)]), chunks=(1, 1, 256, 256))
    stack = xr.DataArray(data, dims=("time", "band", "y", "x"),
                         coords={"time": pd.to_datetime(["2024-01-01", "2024-03-01"]).values,
                                 "band": ["red", "green", "blue"],
                                 "y": 1_200_000 - 0.5 * (np.arange(SIZE) + 0.5),
                                 "x": 680_000 + 0.5 * (np.arange(SIZE) + 0.5)})
    return stack.rio.write_crs("EPSG:32648").rio.write_transform(TRANSFORM)


def _coverage(side: int = 96) -> np.ndarray:
    cells = np.arange(side) * SIZE / side
    inside = cells + SIZE / side <= CORNER
    return np.stack([np.ones((side, side), bool), inside[:, None] & inside[None, :]])


def test_windows_on_a_covered_scene_stay_where_they_are() -> None:
    origins = regular_origins((SIZE, SIZE), 256, 3)
    assert place_windows(origins, (SIZE, SIZE), 256, np.ones((50, 50), bool)) == origins
    assert place_windows(origins, (SIZE, SIZE), 256, None) == origins


def test_windows_off_the_data_move_onto_it_without_overlapping() -> None:
    origins = regular_origins((SIZE, SIZE), 256, 3)
    cover = _coverage()[1]
    before = window_shares(cover, (SIZE, SIZE), 256, *map(np.array, zip(*origins, strict=True)))
    assert (before >= 0.5).sum() == 1  # the regular grid: one window on the corner's data
    placed = place_windows(origins, (SIZE, SIZE), 256, cover)
    rows, cols = map(np.array, zip(*placed, strict=True))
    shares = window_shares(cover, (SIZE, SIZE), 256, rows, cols)
    assert (shares >= 0.5).sum() >= 4, placed  # the corner holds four windows of 256 px (760 px a side)
    moved = [p for p, o in zip(placed, origins, strict=True) if p != o]
    assert all(r + 256 <= CORNER + 48 and c + 256 <= CORNER + 48 for r, c in moved if (r, c) in placed[:4])
    for a in range(len(placed)):
        for b in range(a + 1, len(placed)):
            ra, ca = placed[a]
            rb, cb = placed[b]
            assert abs(ra - rb) >= 256 or abs(ca - cb) >= 256, (placed[a], placed[b])


def test_a_large_date_covering_a_corner_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    # was: status "unreliable" ("only 1 of 9 measuring windows matched"), no shift applied
    monkeypatch.setattr(cg, "_IN_MEMORY_PIXELS", 256 * 256)  # read window by window, as a city is
    config = cg.CoregisterConfig(radiometric=False, local=False)
    _, report = cg.coregister(_stack(), config=config, coverage=_coverage())
    entry = report.dates[1]
    assert entry.status != "unreliable", entry.reason
    assert entry.shift_px == pytest.approx((-SHIFT[0], -SHIFT[1]), abs=0.05)


def test_without_coverage_a_large_corner_date_is_refused_not_guessed(monkeypatch: pytest.MonkeyPatch) -> None:
    # a date read window by window finds no coverage of its own: refused with the reason, never shifted by a guess
    monkeypatch.setattr(cg, "_IN_MEMORY_PIXELS", 256 * 256)
    with pytest.warns(cg.CoregistrationWarning, match="measuring windows matched"):
        _, report = cg.coregister(_stack(), config=cg.CoregisterConfig(radiometric=False, local=False))
    assert report.dates[1].status == "unreliable"


def test_an_in_memory_corner_date_finds_its_own_coverage() -> None:
    from changedetect._registration.windows import finite_cover

    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels off the date
        ref, mov = np.nanmean(_date(0), axis=0), np.nanmean(_date(1), axis=0)
    cover = finite_cover(ref, mov, 256)
    assert cover is not None and 0.05 < cover.mean() < 0.2
    est = cg.estimate_global_shift(ref, mov, config=cg.CoregisterConfig())
    assert est.reliable and (est.dx, est.dy) == pytest.approx((-SHIFT[0], -SHIFT[1]), abs=0.05)
    assert "windows" not in est.reason


def _write(path: Path, image: np.ndarray) -> None:
    data = np.where(np.isfinite(image), np.clip(image, 1, 255), 0).astype(np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=SIZE, height=SIZE, count=3, dtype="uint8", nodata=0,
                       crs="EPSG:32648", transform=TRANSFORM, tiled=True, blockxsize=256, blockysize=256,
                       compress="deflate") as dst:
        dst.write(data)


def test_the_cli_registers_a_new_flight_over_one_corner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the coregister command reads each date's coverage (decimated) and gives it to coregister
    from changedetect._registration import cli_tool

    monkeypatch.setattr(cg, "_IN_MEMORY_PIXELS", 256 * 256)
    tiles = tmp_path / "tiles"
    tiles.mkdir()
    _write(tiles / "d12_20240101.tif", _date(0))
    _write(tiles / "d12_20240301.tif", _date(1))
    report, written = cli_tool.coregister_files(tiles, tmp_path / "out", local=False, radiometric=False)
    entry = report.dates[1]
    assert entry.status != "unreliable", entry.reason
    assert entry.shift_px == pytest.approx((-SHIFT[0], -SHIFT[1]), abs=0.1)
    assert len(written) == 2


def test_tie_points_of_a_corner_date_are_spread_over_its_data() -> None:
    # was: the regular grid over the whole scene, of which a handful of windows fell on the corner
    from changedetect._registration.field import FieldParams
    from changedetect._registration.windows import window_origins

    params = FieldParams(max_windows=100)  # a grid spaced for 100 windows over the scene: 230 px apart
    cover = _coverage()[1]
    rows, cols, sizes = window_origins((SIZE, SIZE), params)
    regular_on = int((window_shares(cover, (SIZE, SIZE), 128, rows[sizes == 128], cols[sizes == 128]) >= 0.5).sum())
    rows, cols, sizes = window_origins((SIZE, SIZE), params, cover)
    for size in np.unique(sizes):
        at = sizes == size
        assert (window_shares(cover, (SIZE, SIZE), int(size), rows[at], cols[at]) >= 0.5).all()
    assert (sizes == 128).sum() >= 3 * regular_on, (regular_on, (sizes == 128).sum())
    assert window_origins((SIZE, SIZE), params, np.ones((40, 40), bool))[0].size == window_origins((SIZE, SIZE), params)[0].size


def test_a_large_corner_date_gets_a_local_field_from_tie_points_on_its_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cg, "_IN_MEMORY_PIXELS", 256 * 256)
    config = cg.CoregisterConfig(radiometric=False, local=True, max_windows=100)
    _, report = cg.coregister(_stack(), config=config, coverage=_coverage())
    entry = report.dates[1]
    assert entry.tie_points_found >= 30, entry  # a regular grid for 100 windows puts about 9 on the corner
    assert entry.tie_points_kept >= 0.8 * entry.tie_points_found, entry
    field = entry.shift_field
    dx, dy = field.dense(0, CORNER, 0, CORNER)  # where the date has data: the true constant shift
    assert np.median(np.hypot(dx + SHIFT[0], dy + SHIFT[1])) < 0.05


def test_a_run_hands_coregister_the_files_coverage_when_the_grid_is_large(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # the pipeline (and so the nightly job) reads each date's coverage from the files for a large grid
    from changedetect import pipeline
    from changedetect.testing import make_run_inputs

    config = make_run_inputs(tmp_path, size=200)
    seen: list[object] = []
    real = cg.coregister

    def spy(stack: xr.DataArray, **kwargs: object) -> object:
        seen.append(kwargs.get("coverage"))
        return real(stack, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(cg, "needs_coverage", lambda height, width: True)  # as for a grid over 4096²
    monkeypatch.setattr(cg, "coregister", spy)
    pipeline.run(tmp_path / "tiles", permits=tmp_path / "permits.gpkg", out=tmp_path / "out", config=config)
    assert len(seen) == 1 and isinstance(seen[0], xr.DataArray), seen
    coverage = seen[0]
    assert coverage.dims == ("time", "y", "x") and coverage.sizes["time"] == 3 and bool(coverage.all())


def test_a_coverage_of_another_series_is_refused_by_name() -> None:
    # was: an IndexError from inside the loop over dates (or, for more dates, the wrong ones paired)
    three = np.ones((3, 96, 96), bool)
    with pytest.raises(ValueError, match=r"one image for each of the stack's 2 dates.*series.coverage\(grid\)"):
        cg.coregister(_stack(), config=cg.CoregisterConfig(radiometric=False, local=False), coverage=three)
