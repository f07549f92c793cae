"""Stand-ins shared by several test modules (imported as ``from _fakes import ...``: pytest puts
``tests/`` on ``sys.path``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr


@dataclass
class DiffPredictor:
    """A :class:`changedetect.evaluate.Predictor` whose probability is the mean absolute difference
    of the two dates / 255: deterministic and checkable by hand."""

    name: str = "diff"
    bands: tuple[str, ...] | None = None
    threshold: float = 0.5

    def __call__(self, before: xr.DataArray, after: xr.DataArray) -> np.ndarray:
        return np.abs(after.values - before.values).mean(axis=0) / 255.0
