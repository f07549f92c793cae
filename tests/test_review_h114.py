"""H114's review of 2026-12-02's changes: detect --series' pair of COGs when the second rename fails, the
libtiff error routing when its C library cannot be loaded, and the merge's missing columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest


# --------------------------------------------------------------- 1. detect --series: the pair's two renames
@pytest.fixture(scope="module")
def small_series(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three dates of 48 px and a random model of 32 px windows (a scene of one block)."""
    from changedetect.detect import DetectConfig
    from changedetect.testing import make_model, make_stack

    root = tmp_path_factory.mktemp("h114-series")
    config = DetectConfig(model=str(make_model(root / "model")), window=32, overlap=4, presence_check=False)
    return {"stack": make_stack(n_dates=3, size=48, seed=5), "config": config}


@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing_first_seen"])
def test_a_failing_rename_of_the_probability_leaves_the_first_seen_as_it_was(
        small_series: dict[str, Any], tmp_path: Path, existing: bool) -> None:
    """The probability's final rename fails (OUT is a folder; --overwrite): the first-seen raster, renamed
    just before it, is taken back (before: the new one was left alone, or had replaced the old one)."""
    from changedetect._detect_series_blocks import detect_series_to_file, first_seen_path

    out = tmp_path / "change.tif"
    out.mkdir()
    if existing:
        first_seen_path(out).write_bytes(b"old first seen")
    with pytest.raises(OSError):
        detect_series_to_file(small_series["stack"], out, config=small_series["config"], overwrite=True)
    left = {p.name: (p.read_bytes() if p.is_file() else "folder") for p in tmp_path.iterdir()}
    assert left == ({"change.tif": "folder", "change_first_seen.tif": b"old first seen"} if existing
                    else {"change.tif": "folder"})


def test_an_output_that_appears_meanwhile_stops_both(tmp_path: Path) -> None:
    """Without --overwrite, OUT written by someone else while the pair was computed: OutputExistsError, and
    the first-seen raster is not left beside someone else's OUT (before: it was renamed first)."""
    from changedetect._detect_series_blocks import _both_or_neither, first_seen_path
    from changedetect.errors import OutputExistsError

    out = tmp_path / "change.tif"
    with pytest.raises(OutputExistsError), _both_or_neither(out, first_seen_path(out), False) as (prob, first):
        prob.write_bytes(b"new probability")
        first.write_bytes(b"new first seen")
        out.write_bytes(b"someone else's")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {"change.tif": b"someone else's"}


def test_an_interruption_between_the_renames_takes_the_first_back(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (or SIGTERM, a KeyboardInterrupt here) lands between the two renames: the existing pair is as
    it was (before: a new first-seen raster beside the old probability)."""
    import os

    import changedetect.io.atomic as atomic
    from changedetect._detect_series_blocks import _both_or_neither, first_seen_path

    out = tmp_path / "change.tif"
    out.write_bytes(b"old probability")
    first_seen_path(out).write_bytes(b"old first seen")
    real = os.replace

    def replace(src: Any, dst: Any) -> None:
        if Path(dst) == out:
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt), _both_or_neither(out, first_seen_path(out), True) as (prob, first):
        prob.write_bytes(b"new probability")
        first.write_bytes(b"new first seen")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {
        "change.tif": b"old probability", "change_first_seen.tif": b"old first seen"}


# ------------------------------------------------------------------ 2. libtiff's handler: never in the way
def test_a_libc_that_cannot_be_loaded_leaves_libtiffs_lines_where_they_were(monkeypatch: pytest.MonkeyPatch,
                                                                            ) -> None:
    """On Windows ``ctypes.util.find_library("msvcrt")`` is None and ``ctypes.CDLL(None)`` raises TypeError
    (``'/' in name``); a libtiff found there (a conda or OSGeo4W ``tiff.dll`` on PATH) then made every command's
    group callback fail: 'Internal error: TypeError'.  Any failure to install is now a no-op."""
    from changedetect import _libtiff

    def no_libc() -> Any:
        raise TypeError("argument of type 'NoneType' is not iterable")

    monkeypatch.setattr(_libtiff, "_libc", no_libc)
    monkeypatch.setattr(_libtiff, "_installed", [])
    restore = _libtiff.route_libtiff_errors()
    restore()
    assert _libtiff._installed == []


def test_the_cli_runs_where_libtiffs_handler_cannot_be_set(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The same through the command line: ``changedetect detect --help`` still prints its help, exit 0."""
    from changedetect import _libtiff
    from changedetect import cli as cdcli

    def no_libc() -> Any:
        raise TypeError("argument of type 'NoneType' is not iterable")

    monkeypatch.setattr(_libtiff, "_libc", no_libc)
    monkeypatch.setattr(_libtiff, "_installed", [])
    with pytest.raises(SystemExit) as info:
        cdcli.main(["detect", "--help"])
    assert info.value.code == 0, capsys.readouterr().err
    assert "Usage:" in capsys.readouterr().out


def _handler_now() -> int | None:
    """The address of libtiff's process-wide error handler now (read by setting it back at once)."""
    import ctypes

    from changedetect._libtiff import _libtiff_path

    path = _libtiff_path()
    assert path is not None
    set_handler = ctypes.CDLL(path).TIFFSetErrorHandler
    set_handler.argtypes, set_handler.restype = [ctypes.c_void_p], ctypes.c_void_p
    now = set_handler(None)
    set_handler(now)
    return now


def test_a_handler_set_meanwhile_is_left_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """GDAL before 3.7 (rasterio 1.3.9's wheels: GDAL 3.6.4, which pyproject allows) sets libtiff's process-wide
    handler to its own at its first GeoTIFF (gtiffdataset.cpp, ``#if !defined(SUPPORTS_LIBTIFF_OPEN_OPTIONS)``),
    i.e. during the command, after the group callback routed it.  Restoring the handler found before then put
    libtiff's default back over GDAL's: afterwards (CliRunner, a notebook) libtiff's errors printed onto stderr
    and no longer reached GDAL (checked 2026-12-02 about 07:50 UTC in a scratch venv with rasterio 1.3.9: a corrupt
    tile's 'ZIPDecode: Decoding error ...' on stderr).  A handler that is no longer ours is left in place."""
    import ctypes

    from changedetect import _libtiff

    monkeypatch.setattr(_libtiff, "_installed", [])
    before = _handler_now()
    restore = _libtiff.route_libtiff_errors()
    assert _libtiff._installed, "routed"
    theirs = _libtiff._HANDLER(lambda module, fmt, args: None)  # GDAL's, as its one-time init sets it
    path = _libtiff._libtiff_path()
    assert path is not None
    set_handler = ctypes.CDLL(path).TIFFSetErrorHandler
    set_handler.argtypes, set_handler.restype = [ctypes.c_void_p], ctypes.c_void_p
    set_handler(ctypes.cast(theirs, ctypes.c_void_p))
    try:
        restore()
        assert _handler_now() == ctypes.cast(theirs, ctypes.c_void_p).value
        assert _libtiff._installed == []
    finally:
        set_handler(before)


def test_gdal_without_its_own_tiff_handlers_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where GDAL's process-wide handler is GDAL's own (GDAL before 3.7), it is not replaced: replacing it would
    divert libtiff's errors from GDAL (its CPLError, rasterio's messages) to a DEBUG line for the command."""
    import rasterio

    from changedetect import _libtiff

    monkeypatch.setattr(_libtiff, "_installed", [])
    monkeypatch.setattr(rasterio, "__gdal_version__", "3.6.4")
    before = _handler_now()
    restore = _libtiff.route_libtiff_errors()
    try:
        assert _libtiff._installed == []
        assert _handler_now() == before
    finally:
        restore()


# ---------------------------------------------------------------- 3. the merge: an empty side's columns
def test_an_empty_sides_bool_column_is_missing_not_true() -> None:
    """A column only the empty side has is missing on the other side's rows: a ``bool`` one was filled with
    True (``pd.Series(index=..., dtype=bool)`` is all True), a value nobody set."""
    import geopandas as gpd
    from shapely.geometry import box

    from changedetect._merge import _stacked

    previous = gpd.GeoDataFrame({"violation_id": ["a-1"], "confidence": np.array([0.9], np.float32)},
                                geometry=[box(0, 0, 1, 1)], crs="EPSG:32632")
    new = gpd.GeoDataFrame({"violation_id": pd_series([], object), "flagged": pd_series([], bool)},
                           geometry=gpd.GeoSeries([], crs="EPSG:32632"), crs="EPSG:32632")
    both = _stacked(previous, new)
    assert len(both) == 1
    assert both["flagged"].isna().all(), both["flagged"].tolist()
    assert both["confidence"].dtype == np.float32
    back = _stacked(new, previous)  # the empty side first: the same rows
    assert back["flagged"].isna().all() and len(back) == 1


def pd_series(values: list[Any], dtype: Any) -> Any:
    import pandas as pd

    return pd.Series(values, dtype=dtype)
