"""changedetect: find buildings put up or altered without a permit.

Data flows one way through typed stages::

    open_series / open_stack -> coregister -> detect_pair / detect_series
        -> vectorize -> load_register + match -> write_vector / write_report

Only :mod:`changedetect.io` and :mod:`changedetect.pipeline` open files; every
stage in between works on in-memory xarray / GeoDataFrame objects.  The whole
chain is :func:`run`; the nightly job is :func:`run_nightly`.

Names are imported lazily (PEP 562), so ``import changedetect`` is cheap and
torch is only imported when a detection function is first used.  The stage
functions whose names are also module names (``coregister``, ``vectorize``,
``match``, ``evaluate``) are imported from their modules, e.g.
``from changedetect.match import match``: re-exporting them here would shadow
the submodules.  The public submodules themselves are attributes too, imported when first used
(``import changedetect as cd; cd.io.spill_stack(...)``).
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from changedetect import errors
from changedetect.errors import ChangeDetectError

try:
    __version__ = version("changedetect")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

#: public name -> module that defines it
_LAZY: dict[str, str] = {
    "Grid": "changedetect.types",
    "open_series": "changedetect.io",
    "open_stack": "changedetect.io",
    "write_cog": "changedetect.io",
    "CoregisterConfig": "changedetect.coregister",
    "detect_pair": "changedetect.detect",
    "detect_series": "changedetect.detect",
    "detect_each_pair": "changedetect.detect",
    "detect_to_file": "changedetect.detect",
    "detect_series_to_file": "changedetect._detect_series_blocks",
    "DetectConfig": "changedetect.detect",
    "load_model": "changedetect.weights",
    "list_shipped": "changedetect.weights",
    "building_segmenter": "changedetect.weights",
    "export_onnx": "changedetect.export",
    "VectorizeConfig": "changedetect.vectorize",
    "load_register": "changedetect.permits",
    "validate_register": "changedetect.permits",
    "load_parcels": "changedetect.parcels",
    "with_parcels": "changedetect.parcels",
    "MatchConfig": "changedetect.match",
    "write_vector": "changedetect.io.vectors",
    "write_report": "changedetect.report",
    "PipelineConfig": "changedetect.config",
    "run": "changedetect.pipeline",
    "RunSummary": "changedetect.pipeline",
    "run_nightly": "changedetect.nightly",
}

#: the public submodules, imported when first used as attributes (``cd.io``, ``cd.testing``)
_SUBMODULES = frozenset({
    "baselines", "cli", "config", "coregister", "detect", "errors", "evaluate", "export", "io", "match",
    "nightly", "nn", "parcels", "permits", "pipeline", "presence", "report", "samplecity", "testing",
    "testing_postgis", "tiling", "training", "types", "vectorize", "weights",
})

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from changedetect._detect_series_blocks import detect_series_to_file
    from changedetect.config import PipelineConfig
    from changedetect.coregister import CoregisterConfig
    from changedetect.detect import (
        DetectConfig,
        detect_each_pair,
        detect_pair,
        detect_series,
        detect_to_file,
    )
    from changedetect.export import export_onnx
    from changedetect.io import open_series, open_stack, write_cog
    from changedetect.io.vectors import write_vector
    from changedetect.match import MatchConfig
    from changedetect.nightly import run_nightly
    from changedetect.parcels import load_parcels, with_parcels
    from changedetect.permits import load_register, validate_register
    from changedetect.pipeline import RunSummary, run
    from changedetect.report import write_report
    from changedetect.types import Grid
    from changedetect.vectorize import VectorizeConfig
    from changedetect.weights import building_segmenter, list_shipped, load_model


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:  # importing it sets it here, as `import changedetect.io` does
        return importlib.import_module(f"changedetect.{name}")
    raise AttributeError(f"module 'changedetect' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, *_SUBMODULES})


__all__ = [
    "ChangeDetectError",
    "__version__",
    "errors",
    "Grid",
    "open_series",
    "open_stack",
    "write_cog",
    "CoregisterConfig",
    "detect_pair",
    "detect_to_file",
    "detect_series_to_file",
    "detect_series",
    "detect_each_pair",
    "DetectConfig",
    "load_model",
    "list_shipped",
    "building_segmenter",
    "export_onnx",
    "VectorizeConfig",
    "load_register",
    "validate_register",
    "load_parcels",
    "with_parcels",
    "MatchConfig",
    "write_vector",
    "write_report",
    "PipelineConfig",
    "run",
    "RunSummary",
    "run_nightly",
]
