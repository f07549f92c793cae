"""The configuration of :func:`changedetect.coregister.coregister`: its fields, the reference date it
names in a stack, and its record in the report.  Private: import :class:`CoregisterConfig` from
:mod:`changedetect.coregister`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from changedetect._registration.field import FieldParams
from changedetect.errors import CoregistrationError
from changedetect.types import TileStack


@dataclass(frozen=True)
class CoregisterConfig:
    """How :func:`coregister` aligns a stack.

    Attributes
    ----------
    reference
        The reference date: an index into ``time`` (negative counts from the end), an ISO
        date ``"YYYY-MM-DD"``, a :class:`datetime.date`, or ``None`` for the first date.
    local
        Estimate and apply a local shift field (else one global shift per date).
    radiometric
        Normalise each band of each date to the reference (gain and offset).
    band
        Band used for matching, by name (``"nir"``) or, for a stack read by rioxarray whose bands
        take the file's descriptions as names, by the file's band number (``"4"``); ``None``: see
        ``matching``.
    matching
        What each date is matched on (when ``band`` is ``None``): ``"material"``, the
        brightness edges weighted by how much of each is a change of colour (red/green
        chromaticity) rather than of light, so that cast shadows that lengthen or turn with
        the sun and sun-lit roof slopes hardly count (see
        :func:`~changedetect._registration.matching.material_edges`); ``"mean"``, the
        gradients of the mean of all bands; ``"auto"`` (default): ``"material"`` when the stack
        has bands named red and green, else ``"mean"``. A date that cannot be matched reliably
        on ``"material"`` (a grey scene) is matched on ``"mean"``.
    max_shift
        Largest plausible shift in pixels; beyond it a date is reported unreliable.
    global_window, global_grid
        The global shift is measured on windows of this size (see :func:`estimate_global_shift`):
        the central one, or on scenes over four windows wide a ``global_grid``² grid of them.
    min_peak_ratio, min_snr
        Reliability thresholds of the global estimate.
    iterations
        Measurements of the global estimate (each after resampling by the previous answer):
        1 (default) gives ~0.01 px on the benchmark's real imagery (the sub-pixel peak is
        band-limited); 2 is 0.003-0.008 px better on known shifts, worse on real change, and
        1.3-1.6 times slower (see ``docs/benchmarks.md``).
    window, spacing, max_windows
        Tie-point windows: size and spacing in pixels, and a cap on their number
        (the spacing grows on large scenes).
    min_texture
        Windows whose mean gradient is below this fraction of the median window's are dropped.
    tie_min_peak_ratio, tie_min_snr
        Reliability thresholds of a tie point.
    neighbour_tolerance
        A tie point further than this (pixels, and 3 robust sigmas) from its neighbours' median is an outlier.
    min_tie_points
        Fewer kept tie points than this: the local field is not applied.
    local_min_variation
        The local field is applied only if the kept tie points depart from the global shift
        by more than this RMS (pixels); else the (more precise) global shift is applied.
    smoothing
        Smoothing of the thin-plate spline through the tie points; ``None`` (default): the one
        of 1, 3, 10 ... 1000 that best predicts tie points left out of the fit (5-fold
        cross-validation); the spline is then refitted with Tukey weights on the tie points.
    order
        Spline order of the warp: 3 cubic (imagery, default), 1 bilinear, 0 nearest (masks, labels).
    """

    reference: int | str | dt.date | None = None
    local: bool = True
    radiometric: bool = True
    band: str | None = None
    matching: str = "auto"
    max_shift: float = 20.0
    global_window: int = 256
    global_grid: int = 3
    min_peak_ratio: float = 1.6
    min_snr: float = 9.0
    iterations: int = 1
    window: int = 128
    spacing: int = 64
    max_windows: int = 900
    min_texture: float = 0.3
    tie_min_peak_ratio: float = 1.5
    tie_min_snr: float = 8.0
    neighbour_tolerance: float = 0.3
    min_tie_points: int = 8
    local_min_variation: float = 0.1
    smoothing: float | None = None
    order: int = 3

    def field_params(self) -> FieldParams:
        """The tie-point parameters."""
        return FieldParams(
            window=self.window, spacing=self.spacing, max_windows=self.max_windows,
            min_texture=self.min_texture, min_peak_ratio=self.tie_min_peak_ratio,
            min_snr=self.tie_min_snr, max_shift=self.max_shift,
            neighbour_tolerance=self.neighbour_tolerance, smoothing=self.smoothing,
        )


def _reference_index(stack: TileStack, reference: int | str | dt.date | None) -> int:
    n = stack.sizes["time"]
    dates = [str(np.datetime_as_string(t, unit="D")) for t in stack["time"].values]
    if reference is None:
        return 0
    if isinstance(reference, int | np.integer):
        if not -n <= int(reference) < n:
            raise CoregistrationError(f"reference index {reference} is out of range for {n} dates ({dates})")
        return int(reference) % n
    if isinstance(reference, np.datetime64):  # a value of the stack's time coordinate
        key = str(np.datetime_as_string(reference, unit="D"))
    else:  # a datetime (or pandas Timestamp) is a date too: its day
        key = reference.isoformat()[:10] if isinstance(reference, dt.date) else str(reference)
    if key not in dates:
        raise CoregistrationError(f"reference date {key!r} is not in the stack; dates are {dates}")
    return dates.index(key)


def _config_dict(config: CoregisterConfig) -> dict[str, Any]:
    out = asdict(config)
    ref = out["reference"]
    if isinstance(ref, np.datetime64):
        ref = str(np.datetime_as_string(ref, unit="D"))
    out["reference"] = ref.isoformat() if isinstance(ref, dt.date) else ref
    return out
