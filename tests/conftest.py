"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()


def pytest_collection_finish(session: pytest.Session) -> None:
    """What is alive once the tests are collected (the imported libraries, the test modules) lives to the
    end: frozen out of the garbage collector's full passes, which every test's objects then no longer
    wait on (those passes, and the pipeline's own gc.collect() per block, walked it each time)."""
    import gc

    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data, or skip the test with the reason."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (../shared/data beside the repo)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def _gdal_cache_at_start() -> Any:
    """GDAL's block cache size (bytes) as the test process started."""
    from rasterio.env import get_gdal_config

    return get_gdal_config("GDAL_CACHEMAX")


@pytest.fixture(autouse=True)
def _gdal_cache_as_at_start(_gdal_cache_at_start: Any) -> None:
    """Each test starts with GDAL's block cache as the process started. Two pairs of a night written at once
    (run_nightly's two worker threads, each in write_cog's ``rasterio.Env(GDAL_CACHEMAX=256)``) can leave
    the process-wide cache at 256 bytes when the second Env restores what the first had set: every later
    test then read and wrote its rasters without a cache (a 1200 px read of test_review_run_coverage took
    13 s instead of 0.01 s)."""
    from rasterio.env import get_gdal_config, set_gdal_config

    if get_gdal_config("GDAL_CACHEMAX") != _gdal_cache_at_start:
        set_gdal_config("GDAL_CACHEMAX", _gdal_cache_at_start)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def full_plan() -> Any:
    """The vector side of the committed sample city, regenerated (no rendering; 2 s): made once for
    tests/test_samplecity.py and tests/test_samplecity_parcels.py, which only read it."""
    from changedetect.samplecity import CityConfig, plan

    return plan(CityConfig())


class WriteRace:
    """A window that fails while another thread still writes its own into an open dataset: wrap the
    dataset with :meth:`dataset` and the writer class with :meth:`writer`, fail a window with
    :meth:`failing`; :meth:`held` says whether every write ended before the dataset closed."""

    def __init__(self) -> None:
        import threading

        self.writing, self.closing, self.written = threading.Event(), threading.Event(), threading.Event()
        self.closed_under_write: list[bool] = []

    def dataset(self, dst: Any) -> Any:
        race = self

        class Closing:  # the dataset, saying when it starts to close
            def __init__(self) -> None:
                object.__setattr__(self, "dst", dst)

            def __enter__(self) -> Any:
                return self

            def __exit__(self, *exc: object) -> None:
                race.closing.set()
                dst.close()

            def __getattr__(self, name: str) -> Any:
                return getattr(dst, name)

            def __setattr__(self, name: str, value: Any) -> None:
                setattr(dst, name, value)

        return Closing()

    def writer(self, base: type) -> type:
        race = self

        class SlowWriter(base):  # type: ignore[misc,valid-type]  # the first write still runs when a window fails
            def __setitem__(self, key: Any, block: Any) -> None:
                first = not race.writing.is_set()
                race.writing.set()
                if first:
                    race.closing.wait(timeout=2)
                race.closed_under_write.append(race.closing.is_set())
                if not race.closing.is_set():
                    super().__setitem__(key, block)
                race.written.set()

        return SlowWriter

    def failing(self, location: tuple[int, ...]) -> Callable[..., Any]:
        """A ``map_blocks`` function that fails at chunk ``location`` once another window is being written."""

        def window(x: Any, block_info: Any = None) -> Any:
            if block_info[0]["chunk-location"] == location:
                self.writing.wait(timeout=10)
                raise OSError("a corrupt source tile")
            return x

        return window

    def held(self) -> bool:
        return self.written.wait(timeout=10) and bool(self.closed_under_write) and not any(self.closed_under_write)


@pytest.fixture
def write_race() -> WriteRace:
    """See :class:`WriteRace`."""
    return WriteRace()
