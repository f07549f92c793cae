"""Exceptions and warnings of changedetect.

One root, :class:`ChangeDetectError`; each specific error also inherits the
builtin a caller would expect (as rasterio does), so ``except OSError`` still
catches an unreadable tile and ``except ValueError`` a bad permit row.

Every message says what was received, what is allowed and what to do.  The
CLI prints ``str(error)`` on one line and exits with :data:`EXIT_BAD_INPUT`.
"""

from __future__ import annotations

#: Exit status for success.
EXIT_OK = 0
#: Exit status for an unexpected internal error (a bug: please report it).
EXIT_INTERNAL = 1
#: Exit status for bad input or bad usage (a message names what to fix).
EXIT_BAD_INPUT = 2
#: Exit status when another run holds the lock (nightly job).
EXIT_LOCKED = 3


class ChangeDetectError(Exception):
    """Root of every error raised on purpose by changedetect."""


class TileReadError(ChangeDetectError, OSError):
    """A tile is missing, unreadable, truncated or not a raster."""


class GeoreferenceError(ChangeDetectError, ValueError):
    """A tile lacks a CRS or transform, or tiles do not overlap."""


class TimeSeriesError(ChangeDetectError, ValueError):
    """Dates are missing or duplicated, or dates disagree on their bands."""


class CoregistrationError(ChangeDetectError, RuntimeError):
    """A date could not be put onto the reference grid."""


class ModelError(ChangeDetectError, ValueError):
    """Unknown model name, weights that fail their checksum, or bands the model cannot read."""


class DatasetError(ChangeDetectError, ValueError):
    """A training or evaluation dataset does not have the expected layout."""


class PermitSchemaError(ChangeDetectError, ValueError):
    """A permit register violates its schema (a row, a column or the CRS)."""


class RegisterReadError(ChangeDetectError, OSError):
    """A permit register file is missing, unreadable or of an unknown format."""


class RegisterConnectionError(ChangeDetectError, ConnectionError):
    """A permit register in a database could not be reached."""


class ConfigError(ChangeDetectError, ValueError):
    """A configuration file or option is invalid."""


class OutputExistsError(ChangeDetectError, FileExistsError):
    """An output exists and ``overwrite`` was not asked for."""


class OutputFormatError(ChangeDetectError, ValueError):
    """An output path names a format changedetect does not write (e.g. ``.shp``)."""


class OutputLocationError(ChangeDetectError, OSError):
    """An output folder cannot be created or written to."""


class DiskFullError(OutputLocationError):
    """A write was stopped by a full disk.  It stops a nightly job's night (exit 2, the state as it was), as
    every full disk does, rather than failing the one area it happened in."""


class LockedError(ChangeDetectError, RuntimeError):
    """Another run holds the lock on a state directory."""


class ClusterTimeoutError(ChangeDetectError, TimeoutError):
    """The nightly job's Dask cluster did not start, or its scheduler was not reached, in time."""


class ChangeDetectWarning(UserWarning):
    """Root of changedetect's warnings."""


#: ``extra`` of a warning's log record whose message the call also returns, for its caller to say: a
#: run's ``warnings`` (its model fit, its match's), the ``unregistered`` dates of its co-registration, a
#: ``CoregistrationReport``'s ``warnings``, ``match``'s ``attrs["warnings"]``.  A library user hears the
#: log line; a command that prints that result (its ``Warning:`` lines, its summary, ``--json``) leaves the
#: line out (:func:`changedetect.cli.options.said_by_result`), so that each warning is said once.  The
#: nightly job's records of what its summary says carry the same key.
SAID_IN_RESULT = {"in_summary": True}


def outside_stacklevel() -> int:
    """The ``stacklevel`` for :func:`warnings.warn`, called by the caller of this function, that names the
    first frame outside this package: the user's line, however deep in the package the warning is said
    (``detect_series`` -> ``detect_each_pair`` -> ...), as pandas' ``find_stack_level`` does."""
    import contextlib
    import os
    import sys

    ours = (os.path.dirname(os.path.abspath(__file__)) + os.sep, os.path.abspath(contextlib.__file__))
    frame, level = sys._getframe(1), 1  # the function that will call warnings.warn: stacklevel 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(ours):
        frame, level = frame.f_back, level + 1  # (a contextlib frame: a decorator of the package's)
    return level


class NotGeoreferencedWarning(ChangeDetectWarning):
    """An image has no georeferencing; pixel coordinates are used."""


class CoregistrationWarning(ChangeDetectWarning):
    """A date was registered with low reliability or not at all."""


class PermitRowWarning(ChangeDetectWarning):
    """A permit row was repaired or rejected in lenient mode."""


__all__ = [name for name in dir() if name[0].isupper() and isinstance(globals()[name], type)]
