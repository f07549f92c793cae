"""GDAL's block cache while changedetect writes: capped at 32 MiB (it was 256 *bytes*, meant as MB: rasterio sets
``GDAL_CACHEMAX`` in bytes), and left as found by two writes in two threads whatever the order they
leave in (two ``rasterio.Env`` left the whole process with that 256-byte cache)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def _cache() -> int:
    from rasterio.env import get_gdal_config

    return int(get_gdal_config("GDAL_CACHEMAX"))


@pytest.fixture
def start() -> Iterator[int]:
    """The process's cache at 1 GiB for the test (above the cap), then as it was."""
    from rasterio.env import set_gdal_config

    was = _cache()
    set_gdal_config("GDAL_CACHEMAX", 2**30)
    yield 2**30
    set_gdal_config("GDAL_CACHEMAX", was)


@pytest.fixture
def raster() -> Any:
    from changedetect.testing import make_stack

    return make_stack(n_dates=1, size=64, seed=1).isel(time=0).sel(band="red")


def test_a_write_runs_with_a_32_mib_cache_and_leaves_it_as_found(raster: Any, start: int, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import changedetect.io.raster as rio_raster
    from changedetect.io import write_cog

    seen: list[int] = []
    store = rio_raster._store

    def recording(*args: Any, **kwargs: Any) -> None:
        seen.append(_cache())
        store(*args, **kwargs)

    monkeypatch.setattr(rio_raster, "_store", recording)
    write_cog(raster, tmp_path / "a.tif")
    assert seen == [32 * 2**20]
    assert _cache() == start


def test_two_writes_in_two_threads_leave_the_cache_as_found(raster: Any, start: int, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The first write enters, the second enters, the first leaves, then the second: the order that left
    a nightly job's process with the cache the first had set."""
    import changedetect.io.raster as rio_raster
    from changedetect.io import write_cog

    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    store = rio_raster._store
    errors: list[BaseException] = []

    def ordered(arr: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if threading.current_thread().name == "first":
            first_in.set()
            assert second_in.wait(30)
        else:
            second_in.set()
            assert first_out.wait(30)
        store(arr, dst, *args, **kwargs)

    monkeypatch.setattr(rio_raster, "_store", ordered)

    def first() -> None:
        try:
            write_cog(raster, tmp_path / "first.tif")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            first_out.set()

    def second() -> None:
        try:
            assert first_in.wait(30)
            write_cog(raster, tmp_path / "second.tif")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=first, name="first"), threading.Thread(target=second, name="second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert (tmp_path / "first.tif").is_file() and (tmp_path / "second.tif").is_file()
    assert _cache() == start


def test_a_smaller_cache_the_user_set_is_kept() -> None:
    from rasterio.env import set_gdal_config

    from changedetect.io._block_cache import capped

    start = _cache()
    try:
        set_gdal_config("GDAL_CACHEMAX", 16 * 2**20)
        with capped(), capped():  # re-entrant
            assert _cache() == 16 * 2**20
        assert _cache() == 16 * 2**20
        set_gdal_config("GDAL_CACHEMAX", 1024 * 2**20)
        with capped():
            assert _cache() == 32 * 2**20
        assert _cache() == 1024 * 2**20
    finally:
        set_gdal_config("GDAL_CACHEMAX", start)
