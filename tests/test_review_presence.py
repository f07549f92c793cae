"""Review of the `changedetect run` path after the network: the presence check, rebuilds, the
same-sun rule and how detect / pipeline call them (edge cases: no data, explicit pairs)."""

from __future__ import annotations

import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from affine import Affine

from changedetect._rebuilds import rebuilds
from changedetect.vectorize import VectorizeConfig, vectorize

X0, Y0, RES = 686_000.0, 1_192_000.0, 0.5
LOT = (slice(10, 30), slice(10, 30))  # 20 x 20 px, 100 m²


def _raster(values: np.ndarray) -> xr.DataArray:
    h, w = values.shape
    da = xr.DataArray(values.astype(np.float32), dims=("y", "x"),
                      coords={"y": Y0 - RES * (np.arange(h) + 0.5), "x": X0 + RES * (np.arange(w) + 0.5)})
    return da.rio.write_crs("EPSG:32648").rio.write_transform(Affine(RES, 0, X0, 0, -RES, Y0))


class _Dates:
    """A stand-in for DatePresence; ``blind`` dates have no data at all."""

    def __init__(self, levels: tuple[float, ...], blind: tuple[int, ...] = ()) -> None:
        self.levels, self.blind = levels, blind

    def raster(self, t: int) -> xr.DataArray:
        a = np.full((48, 48), 0.05, np.float32)
        a[LOT] = self.levels[t]
        if t in self.blind:
            a[:] = np.nan
        return _raster(a)


def test_a_rebuild_where_the_first_date_has_no_data_is_still_traced() -> None:
    """Four dates; the first (July 2023) does not cover the lot, so the pair 0 -> 1 has no data
    there.  The lot's house is demolished between January and July 2024 and a new one stands the
    next January: the second event must still be a probability (not NaN) that vectorize traces.
    (It was set to NaN wherever the *first* consecutive pair had no data.)"""
    times = np.array(["2023-07-10", "2024-01-15", "2024-07-12", "2025-01-20"], dtype="datetime64[ns]")
    events = []
    for (i, j), level in (((0, 1), 0.0), ((1, 2), 0.9), ((2, 3), 0.8), ((1, 3), 0.9)):
        a = np.zeros((48, 48), np.float32)
        a[LOT] = level
        if i == 0:
            a[:] = np.nan  # date 0 covers none of the scene
        a[:, 44:] = np.nan  # ... and no pair has data on the right edge
        events.append((i, j, _raster(a)))
    found = rebuilds(events, times, 0.5, _Dates((0.5, 0.9, 0.1, 0.9), blind=(0,)), pixel_m2=0.25)
    assert found is not None
    prob, seen = found
    assert (seen.values[LOT] == times[3]).all()
    assert float(prob.values[20, 20]) == pytest.approx(0.8)  # the second event's probability, not NaN
    fp = vectorize(prob, first_seen=seen, config=VectorizeConfig(regularize=False))
    assert len(fp) == 1 and fp["area_m2"].iloc[0] == pytest.approx(100.0)
    # where no pair has data the result stays no data; elsewhere outside the lot it is 0
    assert np.isnan(prob.values[:, 44:]).all() and not np.isnan(prob.values[:, :44]).any()
    assert float(prob.values[:, 30:44].max()) == 0.0
