"""Shared fixtures."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# torch's OpenMP threads (libgomp) sleep while they wait for the next parallel region, instead of
# spinning for it (OpenMP's default). Detection runs torch on every core; whenever anything else
# holds a core (the nightly job's second pair in a Dask thread, a CLI child beside this process,
# any other work on the machine), a spinning thread takes the core the working one needs, and the
# model runs several times slower (figures in the commit that added this line). Set before torch is
# imported (libgomp reads it once); a value already set wins; the CLI children and the notebooks'
# kernels the tests start inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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
def _gdal_cache_as_at_start(_gdal_cache_at_start: Any) -> Iterator[None]:
    """A test that leaves GDAL's process-wide block cache other than it found it fails (and the cache is put
    back for the next). Two pairs of a night written at once, each in ``rasterio.Env(GDAL_CACHEMAX=256)``,
    once left the process with a 256-byte cache (rasterio takes bytes), and every later read ran without
    one (a 1200 px read took 13 s instead of 0.01 s): the library now caps it with
    :func:`changedetect.io._block_cache.capped`, and this is the guard that it stays so."""
    from rasterio.env import get_gdal_config, set_gdal_config

    if get_gdal_config("GDAL_CACHEMAX") != _gdal_cache_at_start:
        set_gdal_config("GDAL_CACHEMAX", _gdal_cache_at_start)
    yield
    left = get_gdal_config("GDAL_CACHEMAX")
    if left != _gdal_cache_at_start:
        set_gdal_config("GDAL_CACHEMAX", _gdal_cache_at_start)
        pytest.fail(f"GDAL's block cache was left at {left} bytes (it was {_gdal_cache_at_start}): something set "
                    "GDAL_CACHEMAX and did not put it back (a rasterio.Env in two threads?)")


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
