"""Atomic outputs: write to a temporary file beside the target, then rename.

Every writer in changedetect goes through :func:`atomic_path`, so a crash,
a full disk or Ctrl-C never leaves a half-written GeoTIFF or GeoPackage under
the name a reader (or tomorrow's nightly run) will trust.

Example
-------
>>> from changedetect.io.atomic import atomic_path
>>> with atomic_path("out/change.tif", overwrite=True) as tmp:  # doctest: +SKIP
...     write_something(tmp)                                    # renamed on success
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

from changedetect.errors import ChangeDetectError, OutputExistsError, OutputLocationError

log = logging.getLogger(__name__)

#: A writer that fails while its folder has less than this free was stopped by a full disk (GDAL's
#: writers say so in their own words, without an errno: pyogrio's "cannot rollback", rasterio's "Write failed").
_FULL_BELOW = 16 * 2**20

#: Suffixes of the side files that GDAL/SQLite may leave beside a temporary file.
_SIDECARS = (".aux.xml", ".ovr", "-wal", "-shm", "-journal", ".msk")


def temp_name(path: str | os.PathLike[str]) -> Path:
    """A fresh temporary name beside ``path``: ``.<stem>.tmp-XXXXXXXX<suffix>``.

    The suffix is kept at the end so that drivers which choose a format from
    the extension (GDAL, pyogrio) still recognise it; the leading dot hides
    the file from directory listings and from :func:`changedetect.io.open_series`.
    """
    path = Path(path)
    return path.with_name(f".{path.stem}.tmp-{secrets.token_hex(4)}{path.suffix}")


def is_temp_name(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` looks like a temporary file made by :func:`temp_name`."""
    name = Path(path).name
    return name.startswith(".") and ".tmp-" in name


def remove_with_sidecars(path: Path) -> None:
    """Remove ``path`` and the side files GDAL or SQLite may have left beside it."""
    for candidate in (path, *(Path(f"{path}{s}") for s in _SIDECARS)):
        try:
            candidate.unlink()
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            log.warning("leaving temporary directory %s in place", candidate)


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    Parameters
    ----------
    path
        The final output file.  Its folder is created if needed.
    overwrite
        Replace ``path`` if it exists.  Without it an existing ``path`` raises
        :class:`~changedetect.errors.OutputExistsError` before any work is done
        (and again at the end, should the file have appeared meanwhile).

    Yields
    ------
    pathlib.Path
        A path that does not exist yet, in the same folder as ``path`` (so the
        final :func:`os.replace` is atomic on POSIX), named
        ``.<stem>.tmp-XXXXXXXX<suffix>``.  The caller creates the file.

    Raises
    ------
    OutputExistsError
        ``path`` exists and ``overwrite`` is false.
    OutputLocationError
        ``path`` is a folder (with or without ``overwrite``).
    Exception
        Whatever the body raised; the temporary file (and its side files) are
        removed first and ``path`` is left untouched.
    """
    path = Path(path)
    _refuse_existing(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    while tmp.exists():  # pragma: no cover - 32 random bits
        tmp = temp_name(path)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"the writer did not create its temporary output '{tmp}'")
        _refuse_existing(path, overwrite)
        os.replace(tmp, path)
        log.debug("wrote %s", path)
    except Exception as exc:
        if _disk_full(path.parent, exc):  # measured before the temporary file goes and frees its space
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from exc
        if _size_limited(tmp, exc):  # (the same for `ulimit -f`: SQLite, torch.save say it in their own words)
            raise OSError(errno.EFBIG, os.strerror(errno.EFBIG), str(path)) from exc
        raise
    finally:
        remove_with_sidecars(tmp)


def not_an_input(target: str | os.PathLike[str] | None, inputs: Mapping[str, object], *, name: str = "output",
                 becomes: str, where: str) -> None:
    """OutputLocationError when ``target`` is one of the files ``inputs`` names (``{"permit register": path}``;
    a value that is not a local path, a database URL or a frame, is passed over): ``--overwrite`` would replace
    it with ``becomes`` (a city's register with its violation list).  ``where`` says what to give instead."""
    from changedetect.errors import OutputLocationError

    if target is None or not Path(target).exists():
        return
    for which, given in inputs.items():
        if isinstance(given, str | os.PathLike) and "://" not in str(given) and Path(given).exists() \
                and Path(target).samefile(given):
            raise OutputLocationError(f"{name} '{target}' is the {which} this reads: it would be replaced by "
                                      f"{becomes}; write it to another file ({where})")


def _disk_full(folder: Path, exc: Exception) -> bool:
    """Whether a write into ``folder`` that raised ``exc`` failed for want of disk space."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return False  # says so itself
    if isinstance(exc, ChangeDetectError):
        return False  # a refusal, not a failed write
    try:
        return shutil.disk_usage(folder).free < _FULL_BELOW
    except OSError:
        return False


def fsize_limit() -> int | None:
    """The process's file-size limit in bytes (RLIMIT_FSIZE: ``ulimit -f``, systemd's ``LimitFSIZE=``), None
    when there is none."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return None
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if soft == resource.RLIM_INFINITY else int(soft)


#: A writer that fails while its temporary file (or a side file) is within this of the file-size limit was
#: stopped by it: a write past the limit is cut at the limit, and the next fails (EFBIG)
_LIMIT_MARGIN = 64 * 2**10


def _size_limited(tmp: Path, exc: Exception) -> bool:
    """Whether a writer of ``tmp`` that raised ``exc`` was stopped by the process's file-size limit: GDAL's
    GeoPackage driver says 'no such table: gpkg_contents' (SQLite's 'disk I/O error' before it), torch.save
    'unexpected pos', neither with an errno (before, both were 'Internal error ... This is a bug')."""
    if isinstance(exc, ChangeDetectError) or (isinstance(exc, OSError) and exc.errno == errno.EFBIG):
        return False  # a refusal, or says so itself
    limit = fsize_limit()
    if limit is None:
        return False
    sizes = []
    for candidate in (tmp, *(Path(f"{tmp}{s}") for s in _SIDECARS)):
        with suppress(OSError):
            sizes.append(candidate.stat().st_size)
    return bool(sizes) and max(sizes) + _LIMIT_MARGIN >= limit


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if path.is_dir():  # os.replace cannot put a file there, and --overwrite must not remove a folder
        raise OutputLocationError(folder_not_file(path))
    if path.exists() and not overwrite:
        raise OutputExistsError(
            f"output '{path}' already exists; pass overwrite=True (--overwrite on the command line) "
            "to replace it, or choose another path"
        )


def folder_not_file(path: Path) -> str:
    """The message for an output file's path that is an existing folder."""
    return (f"'{path}' is a folder, but this output is a file: give a file path, e.g. '{path / path.name}' "
            "to write it inside that folder")


@contextmanager
def removing_new_folders(out: str | os.PathLike[str]) -> Iterator[None]:
    """Should the body raise, remove again the folders on the way to ``out`` (``out`` included) that
    did not exist on entry and are empty: a failed run or command (or the CLI's write check before it)
    leaves no new folder behind; a folder that existed before, or holds anything, stays."""
    out = Path(out)
    missing = [p for p in (out, *out.parents) if not p.exists()]  # deepest first
    try:
        yield
    except BaseException:
        for folder in missing:
            try:
                if folder.is_dir():
                    folder.rmdir()  # OSError when not empty: then neither are its parents
            except OSError:
                break
        raise


__all__ = ["atomic_path", "folder_not_file", "fsize_limit", "is_temp_name", "not_an_input", "remove_with_sidecars",
           "removing_new_folders", "temp_name"]
