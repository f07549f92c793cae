"""The nightly job's state directory: lock, checksums, the committed state file.

Layout of ``STATE/``::

    lock                     fcntl.flock'ed by the running job (holds its pid)
    state.json               the commit point: processed acquisitions, generation
    violations-<gen>.parquet cumulative violations of generation <gen> (GeoParquet)
    work/<area>/<key>/       one pipeline run per date pair (cached: reused if complete)

``state.json`` is written atomically, and only after every output of the
night has been written atomically: a job killed at any moment leaves either
the previous state (and the next run redoes the night from cached work) or the
new one (and the next run finds nothing new).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from changedetect.errors import ConfigError, LockedError, OutputLocationError

log = logging.getLogger(__name__)

STATE_VERSION = 1
#: Environment variable of the crash tests: SIGKILL this process at the N-th checkpoint (1-based).
KILL_ENV = "CHANGEDETECT_NIGHTLY_KILL_AT"
_CHECKPOINTS = {"count": 0}


def checkpoint(name: str) -> None:
    """A point where a crash test may kill the job (``CHANGEDETECT_NIGHTLY_KILL_AT=N``)."""
    _CHECKPOINTS["count"] += 1
    log.debug("checkpoint %d: %s", _CHECKPOINTS["count"], name)
    target = os.environ.get(KILL_ENV)
    if target and target.isdigit() and int(target) == _CHECKPOINTS["count"]:
        log.warning("crash test: SIGKILL at checkpoint %d (%s)", _CHECKPOINTS["count"], name)
        os.kill(os.getpid(), signal.SIGKILL)


def sha256_file(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_frame(frame: Any) -> str:
    """Hex sha256 of a (Geo)DataFrame's content: its columns and their types, its values, its
    geometries (WKB) and CRS, whatever it was read from (every part of a Shapefile, a database
    table, a GeoPackage whose layer styles changed but not its rows: the same rows, the same sum)."""
    import pandas as pd

    h = hashlib.sha256()
    geom = frame.geometry.name if hasattr(frame, "geometry") and hasattr(frame, "crs") else None
    h.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    data = frame.drop(columns=geom) if geom else frame
    try:
        h.update(pd.util.hash_pandas_object(pd.DataFrame(data), index=True).to_numpy().tobytes())
    except TypeError:  # unhashable cells (lists, dicts): their text
        h.update(data.astype(str).to_csv().encode())
    if geom:
        h.update(str(frame.crs).encode())
        for wkb in frame.geometry.to_wkb():
            h.update(wkb or b"-")
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """Hex sha256 of an object's canonical JSON."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class State:
    """What the nightly job has committed.

    ``acquisitions[area][sha256] = {"path", "date", "night", "scl"}`` (``scl``: the sha256 of the
    date's scene classification when it was last compared, ``""`` for none; absent in states written
    before it was kept: :mod:`changedetect._nightly_scl`; a date of several files adds ``"files"``, each
    one's sha256 by its path: :mod:`changedetect._nightly_redelivery`); ``generation``
    numbers the cumulative violations file; ``nights[night]`` summarises each commit.
    """

    acquisitions: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    generation: int = 0
    nights: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: checksum cache: path -> [size, mtime_ns, sha256] (saves re-reading a large catalog)
    checksums: dict[str, list[Any]] = field(default_factory=dict)

    def processed(self, area: str) -> dict[str, dict[str, Any]]:
        """The committed acquisitions of ``area`` by checksum."""
        return self.acquisitions.get(area, {})

    def violations_path(self, state_dir: Path, generation: int | None = None) -> Path:
        """The cumulative violations file of a generation (default: the committed one)."""
        return state_dir / f"violations-{self.generation if generation is None else generation:06d}.parquet"

    def withdrawn_path(self, state_dir: Path, generation: int | None = None) -> Path:
        """Every violation withdrawn so far, with its night and reason, as of a generation (default:
        the committed one); absent while none has been."""
        return state_dir / f"withdrawn-{self.generation if generation is None else generation:06d}.parquet"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"version": STATE_VERSION, "generation": self.generation,
                "acquisitions": self.acquisitions, "nights": self.nights, "checksums": self.checksums}


def load_state(state_dir: Path) -> State:
    """Read ``STATE/state.json`` (an empty state when there is none yet)."""
    path = state_dir / "state.json"
    if not path.exists():
        return State()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"nightly state file '{path}' is corrupt ({exc}); restore it from a backup "
                          "or remove the state directory to start over") from None
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        found = data.get("version") if isinstance(data, dict) else None
        raise ConfigError(f"nightly state file '{path}' has version {found!r}; "
                          f"this changedetect reads version {STATE_VERSION}")
    try:
        return State(acquisitions=dict(data["acquisitions"]), generation=int(data["generation"]),
                     nights=dict(data.get("nights", {})), checksums=dict(data.get("checksums", {})))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"nightly state file '{path}' is malformed ({type(exc).__name__}: {exc}); restore it "
                          "from a backup or remove the state directory to start over") from None


def save_state(state_dir: Path, state: State) -> None:
    """Write ``STATE/state.json`` atomically (the commit point of a night)."""
    write_text_atomic(state_dir / "state.json", json.dumps(state.to_json(), indent=1, sort_keys=True))


def write_text_atomic(path: Path, text: str) -> None:
    """Write text to a temporary file beside ``path``, fsync it, rename it onto ``path``."""
    from changedetect.io.atomic import atomic_path

    with atomic_path(path, overwrite=True) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``STATE/lock`` (released on exit or death).

    Raises
    ------
    LockedError
        Another process holds the lock.
    OutputLocationError
        The lock cannot be opened (another user's file).
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # another user's lock (a night run by hand as root, then by cron's user): 'a bug' before
        raise OutputLocationError(f"cannot open the nightly lock '{path}' ({exc.strerror or exc}): run the job "
                                  "as the user that owns the state folder, or let this user write the lock and "
                                  "the state folder's files (chown/chmod)") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise LockedError(f"another nightly run (pid {holder}) holds the lock '{path}'; "
                              "wait for it to finish (a dead run's lock is released by the OS)") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


__all__ = ["KILL_ENV", "State", "checkpoint", "load_state", "save_state", "sha256_file", "sha256_json",
           "state_lock", "write_text_atomic"]
