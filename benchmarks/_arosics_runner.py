"""AROSICS (Scheffler et al. 2017) on in-memory arrays, in this project's shift convention.

Only imported by ``benchmarks/coregistration.py``; AROSICS is not a dependency of
changedetect.  It installs in a separate environment::

    apt-get install libgdal-dev
    python -m venv /work/bench-venv && /work/bench-venv/bin/pip install numpy "setuptools>=77" wheel
    /work/bench-venv/bin/pip install --no-build-isolation gdal==$(gdal-config --version) arosics
    /work/bench-venv/bin/pip install -e . --no-deps && /work/bench-venv/bin/pip install rasterio xarray rioxarray dask psutil

AROSICS reports the correction to apply to the target (``x_shift_px``, ``y_shift_px``
in map orientation); changedetect reports the displacement of the moving image
in pixel (column, row) orientation.  Both are converted here to the latter:
``dx = -x_shift_px`` and ``dy = -y_shift_px`` (checked on known shifts: the benchmark's
errors would be twice the shift otherwise).
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass

import numpy as np

try:  # AROSICS is optional: the benchmark prints our figures without it
    from arosics import COREG, COREG_LOCAL
    from geoarray import GeoArray

    AVAILABLE = True
    IMPORT_ERROR = ""
except Exception as exc:  # ImportError, or GDAL's own errors
    AVAILABLE = False
    IMPORT_ERROR = f"{type(exc).__name__}: {exc}"

_GT = (500000.0, 10.0, 0.0, 4000000.0, 0.0, -10.0)
_WKT = 'PROJCS["WGS 84 / UTM zone 31N",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",3],PARAMETER["scale_factor",0.9996],PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1],AXIS["Easting",EAST],AXIS["Northing",NORTH],AUTHORITY["EPSG","32631"]]'
_NODATA = -9999.0


@dataclass
class GlobalResult:
    dx: float
    dy: float
    ok: bool
    seconds: float
    note: str = ""


@dataclass
class LocalResult:
    rows: np.ndarray
    cols: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    seconds: float
    note: str = ""


def _geo(arr: np.ndarray) -> GeoArray:
    a = np.where(np.isfinite(arr), arr, _NODATA).astype(np.float32)
    return GeoArray(a, _GT, _WKT, nodata=_NODATA)


def arosics_global(ref: np.ndarray, mov: np.ndarray, *, max_shift: int = 12, window: int = 256) -> GlobalResult:
    """AROSICS COREG (global shift) of ``mov`` against ``ref``."""
    ws = int(min(window, 2 ** int(np.log2(min(ref.shape) - 2 * max_shift - 8))))
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            co = COREG(_geo(ref), _geo(mov), ws=(ws, ws), max_shift=max_shift, q=True, progress=False,
                       nodata=(_NODATA, _NODATA), ignore_errors=True)
            co.calculate_spatial_shifts()
        seconds = time.perf_counter() - start
        if not co.success or co.x_shift_px is None:
            return GlobalResult(np.nan, np.nan, False, seconds, "no success")
        return GlobalResult(-float(co.x_shift_px), -float(co.y_shift_px), True, seconds)
    except Exception as exc:  # AROSICS raises on failure to match
        return GlobalResult(np.nan, np.nan, False, time.perf_counter() - start, f"{type(exc).__name__}")


def arosics_local(ref: np.ndarray, mov: np.ndarray, *, grid_res: int = 64, window: int = 128,
                  max_shift: int = 12) -> LocalResult:
    """AROSICS COREG_LOCAL tie points (outliers and failures removed) of ``mov`` against ``ref``."""
    start = time.perf_counter()
    empty = np.zeros(0)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            cl = COREG_LOCAL(_geo(ref), _geo(mov), grid_res=grid_res, window_size=(window, window),
                             max_shift=max_shift, q=True, progress=False, nodata=(_NODATA, _NODATA))
            tab = cl.CoRegPoints_table
    except Exception as exc:
        return LocalResult(empty, empty, empty, empty, time.perf_counter() - start, type(exc).__name__)
    seconds = time.perf_counter() - start
    good = (~tab["OUTLIER"].astype(bool)) & (tab["X_SHIFT_PX"] != -9999) & np.isfinite(tab["X_SHIFT_PX"])
    t = tab[good]
    return LocalResult(t["Y_IM"].to_numpy(float), t["X_IM"].to_numpy(float),
                       -t["X_SHIFT_PX"].to_numpy(float), -t["Y_SHIFT_PX"].to_numpy(float), seconds)
