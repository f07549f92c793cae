"""changedetect: find buildings put up or altered without a permit.

Data flows one way through typed stages::

    io.open_stack -> coregister -> detect -> vectorize -> match -> io writers / report

Only :mod:`changedetect.io` and :mod:`changedetect.pipeline` open files.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from changedetect import errors
from changedetect.errors import ChangeDetectError

try:
    __version__ = version("changedetect")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["ChangeDetectError", "__version__", "errors"]
