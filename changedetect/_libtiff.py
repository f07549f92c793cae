"""libtiff's own error lines into the log (private; installed by the command line, :mod:`changedetect.cli`).

GDAL (3.7 and later, built on libtiff 4.5 or later) gives each TIFF it opens its own error handler, which
reports through GDAL (and rasterio's log, ``rasterio._err`` at INFO); a few calls in GDAL's I/O layer still
use libtiff's process-wide handler, whose default prints straight onto stderr.  On a full disk that is
``_tiffWriteProc: No space left on device.``, printed before the command's own one-line error (and with
every writer's failure, ``File too large.`` under ``ulimit -f``).  :func:`route_libtiff_errors` points
that handler at the log instead: the line becomes a DEBUG record of ``changedetect.libtiff``, shown with
``-vv`` or ``--debug``, and the handler found is restored when the command ends.

Nothing is done where the libtiff that GDAL uses cannot be found (the line is then printed as before).
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import glob
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("changedetect.libtiff")

#: ``void (*TIFFErrorHandler)(const char *module, const char *fmt, va_list ap)``; a ``va_list`` argument is
#: passed as one pointer-sized word everywhere GDAL's wheels are built: a pointer (``char *`` on Windows and
#: Apple arm64; the array of one ``__va_list_tag`` decays to one on x86-64 System V), or on Linux aarch64 a
#: 32-byte struct that AAPCS64 passes by reference (a pointer to the caller's copy): handed on as it is to
#: ``vsnprintf``, which takes it the same way
_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p)

_installed: list[object] = []  # the callback libtiff holds now (none: libtiff's own handler)
_kept: list[object] = []  # every callback ever handed to libtiff: never freed while a thread may be in one
_vsnprintf: list[Callable[..., int]] = []  # libc's, once found
_recent: collections.deque[str] = collections.deque(maxlen=16)  # the last lines routed, for :func:`said`


def _libtiff_path() -> str | None:
    """The libtiff of rasterio's GDAL, loaded with it: bundled with a rasterio wheel (whose libtiff finds the
    libraries it needs only once GDAL has loaded them), else the process's (a system or conda GDAL), else the
    system's."""
    import rasterio

    package = Path(rasterio.__file__).parent
    for pattern in (str(package.parent / "rasterio.libs" / "libtiff*.so*"), str(package / ".dylibs" / "libtiff*"),
                    str(package.parent / "rasterio.libs" / "libtiff*.dll")):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    maps = Path("/proc/self/maps")
    if maps.is_file():
        for line in maps.read_text(encoding="utf-8", errors="replace").splitlines():
            path = line.split()[-1]
            if "/libtiff" in path and os.path.isfile(path):
                return path
    return ctypes.util.find_library("tiff")


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("msvcrt") if sys.platform == "win32" else None)


def _message(module: bytes | None, fmt: bytes | None, args: int | None) -> str:
    """libtiff's line as its default handler prints it: ``module: message``."""
    text = ""
    if fmt:
        try:
            buffer = ctypes.create_string_buffer(1024)
            _vsnprintf[0](buffer, len(buffer), fmt, args)
            text = buffer.value.decode("utf-8", "replace")
        except Exception:  # noqa: BLE001 - the format as it is, rather than nothing
            text = fmt.decode("utf-8", "replace")
    return f"{module.decode('utf-8', 'replace')}: {text}" if module else text


def _to_log(module: bytes | None, fmt: bytes | None, args: int | None) -> None:
    with contextlib.suppress(Exception):  # never raise into C
        line = _message(module, fmt, args)
        _recent.append(line)
        log.debug("%s", line)


def forget() -> None:
    """Forget the lines :func:`said` remembers (a new command starts)."""
    _recent.clear()


def said(text: str) -> bool:
    """Whether one of the last lines libtiff reported through :func:`route_libtiff_errors` holds ``text``
    (``File too large.``: a write stopped by the process's file-size limit, which GDAL's exception does not say)."""
    return any(text in line for line in list(_recent))


def route_libtiff_errors() -> Callable[[], None]:
    """Send libtiff's process-wide error lines to the log at DEBUG (:mod:`changedetect._libtiff`); returns
    what puts the previous handler back, unless someone else has set it meanwhile (a no-op where libtiff was
    not found, GDAL is older than 3.7 and the handler is its own, or the handler is already ours)."""
    if _installed:
        return lambda: None
    try:
        path = _libtiff_path()
        if path is None:
            return lambda: None
        libtiff = ctypes.CDLL(path)
        libc = _libc()
        vsnprintf = libc.vsnprintf
        vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
        vsnprintf.restype = ctypes.c_int
        set_handler = libtiff.TIFFSetErrorHandler
        if not _gdal_leaves_it_alone(libtiff):
            return lambda: None
    except Exception as exc:  # noqa: BLE001 - the log's plumbing never stops a command (Windows: CDLL(None))
        log.debug("libtiff's error lines are left on stderr: %s", exc)
        return lambda: None
    set_handler.argtypes = [ctypes.c_void_p]
    set_handler.restype = ctypes.c_void_p
    callback = _HANDLER(_to_log)
    _vsnprintf[:] = [vsnprintf]
    _kept.append(callback)
    _installed.append(callback)
    ours = ctypes.cast(callback, ctypes.c_void_p).value
    previous = set_handler(ours)

    _recent.clear()

    def restore() -> None:
        if _installed == [callback]:
            now = set_handler(previous)
            if now != ours:  # set meanwhile by someone else (an older GDAL's first GeoTIFF): theirs stays
                set_handler(now)
            _installed.clear()

    return restore


def _gdal_leaves_it_alone(libtiff: ctypes.CDLL) -> bool:
    """Whether the process-wide handler is libtiff's, not GDAL's: GDAL 3.7 and later on libtiff 4.5 and later
    give each TIFF its own handlers; before, GDAL sets the process-wide one to its own at its first GeoTIFF
    (``GTiffOneTimeInit``), which replacing would keep libtiff's errors from GDAL."""
    import rasterio

    try:
        major, minor = (int(part) for part in str(rasterio.__gdal_version__).split(".")[:2])
    except ValueError:
        return False
    if (major, minor) < (3, 7) or not hasattr(libtiff, "TIFFOpenOptionsSetErrorHandlerExtR"):  # libtiff 4.5
        log.debug("libtiff's error lines are left to GDAL %s", rasterio.__gdal_version__)
        return False
    return True


__all__ = ["forget", "route_libtiff_errors", "said"]
