"""Local shift field: tie points on a grid of windows, outlier rejection, a smooth dense model.

Every window of the reference is matched against the moving image (offset by the
global shift) with :func:`~changedetect._registration.shift.estimate_shift`.
Windows with too little texture or an unreliable correlation peak are dropped;
the rest are screened twice: against a robust low-order polynomial (a whole changed
district, a cloud bank) and against their neighbours' median (a single changed
block, a shadow).  The kept tie points define the dense field: the polynomial plus
a smoothing thin-plate spline of its residuals.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
from scipy import ndimage
from scipy.interpolate import RBFInterpolator
from scipy.spatial import cKDTree

from changedetect._registration.blocks import BlockImage, prefetch
from changedetect._registration.nodata import both_finite, covered_box
from changedetect._registration.shift import estimate_shift, gradient_magnitude
from changedetect._registration.windows import covered_area, window_origins

logger = logging.getLogger(__name__)

# With 3 to 5 tie points the spline's trend is a constant (degree 0): too few points to fit a plane as
# well.  SciPy warns that a thin-plate spline of degree 0 "may not be uniquely solvable"; the smoothing
# term makes the system regular, and the field is applied from 8 tie points only, so the warning said
# nothing to a user but came out as a "py.warnings: UserWarning" line on every small scene's coregister.
warnings.filterwarnings("ignore", message=r"`degree` should not be below 1", category=UserWarning,
                        module=re.escape(__name__))  # SciPy warns at its caller's line: here

#: Median absolute deviation to standard deviation.
_MAD = 1.4826


@dataclass(frozen=True)
class FieldParams:
    """How tie points are measured and screened (see :class:`changedetect.coregister.CoregisterConfig`)."""

    window: int = 128
    spacing: int = 96
    max_windows: int = 900
    min_texture: float = 0.3
    max_nan_fraction: float = 0.3
    min_peak_ratio: float = 1.5
    min_snr: float = 8.0
    max_shift: float = 20.0
    neighbour_tolerance: float = 0.3
    smoothing: float | None = None
    edge_windows: bool = True
    edges: bool = False


@dataclass
class ShiftField:
    """A smooth displacement field ``(dx, dy)`` over an image of shape ``shape``.

    Attributes
    ----------
    shape
        ``(h, w)`` of the reference image.
    rows, cols
        Tie-point centres (pixel coordinates, row/column of the reference).
    dx, dy
        Displacement measured at each tie point (see :mod:`~changedetect._registration.shift`).
    reliability
        Per tie point, in [0, 1].
    kept
        Tie points that define the field (reliable, textured, not outliers).
    scale
        Pixels to one unit of the spline's coordinates (its smoothing is relative to it): default the
        image's larger side; for tie points on part of the image only, the side of a square of that
        part's area, so that a ward of a city-wide grid is fitted as closely as a scene of its size.
    """

    shape: tuple[int, int]
    rows: np.ndarray
    cols: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    reliability: np.ndarray
    kept: np.ndarray
    constant: tuple[float, float] | None = None
    scale: float | None = None
    _models: list[Any] = field(default_factory=list, repr=False)

    @classmethod
    def uniform(cls, shape: tuple[int, int], dx: float, dy: float) -> ShiftField:
        """A constant field (a global shift)."""
        empty = np.zeros(0)
        return cls(shape, empty, empty, empty, empty, empty, np.zeros(0, bool), constant=(dx, dy))

    @property
    def n_found(self) -> int:
        """Tie points measured."""
        return int(self.rows.size)

    @property
    def n_kept(self) -> int:
        """Tie points kept."""
        return int(self.kept.sum())

    def evaluate(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(dx, dy)`` of the field at pixel positions ``rows``, ``cols`` (any matching shapes)."""
        rows = np.asarray(rows, dtype=np.float64)
        cols = np.asarray(cols, dtype=np.float64)
        if self.constant is not None:
            return np.full(rows.shape, self.constant[0]), np.full(rows.shape, self.constant[1])
        pts = self._normalise(rows.ravel(), cols.ravel())
        out = [model(pts).reshape(rows.shape) for model in self._models]
        return out[0], out[1]

    def dense(self, row0: int, row1: int, col0: int, col1: int, *, step: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """``(dx, dy)`` on every pixel of ``[row0:row1, col0:col1]`` (evaluated on a coarse lattice, then bilinear)."""
        h, w = row1 - row0, col1 - col0
        if self.constant is not None:
            return np.full((h, w), self.constant[0]), np.full((h, w), self.constant[1])
        lr = np.arange(row0, row1 + step, step, dtype=np.float64)
        lc = np.arange(col0, col1 + step, step, dtype=np.float64)
        grid_r, grid_c = np.meshgrid(lr, lc, indexing="ij")
        coarse = self.evaluate(grid_r, grid_c)
        rr, cc = np.meshgrid(np.arange(h) / step, np.arange(w) / step, indexing="ij")
        return tuple(ndimage.map_coordinates(c, [rr, cc], order=1, mode="nearest") for c in coarse)  # type: ignore[return-value]

    def max_abs(self) -> float:
        """Largest |dx| or |dy| of the field (on a coarse lattice)."""
        if self.constant is not None:
            return float(max(abs(self.constant[0]), abs(self.constant[1])))
        h, w = self.shape
        r, c = np.meshgrid(np.linspace(0, h - 1, 33), np.linspace(0, w - 1, 33), indexing="ij")
        dx, dy = self.evaluate(r, c)
        return float(max(np.abs(dx).max(), np.abs(dy).max()))

    def residuals(self) -> np.ndarray:
        """Distance in pixels between the kept tie points and the field."""
        if self.n_kept == 0:
            return np.zeros(0)
        ex, ey = self.evaluate(self.rows[self.kept], self.cols[self.kept])
        return np.hypot(self.dx[self.kept] - ex, self.dy[self.kept] - ey)

    def _normalise(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        scale = float(self.scale or max(self.shape))
        return np.column_stack([rows / scale, cols / scale])

    def fit(self, smoothing: float = 1.0, *, robust: bool = False) -> None:
        """Fit the dense model on the kept tie points (a thin-plate smoothing spline with a linear trend).

        ``robust``: then refit three times, each tie point's smoothing divided by its Tukey
        biweight (4.685 robust sigmas of the distances to the previous fit), so that the few
        tie points still far off after outlier rejection pull the field less.
        """
        k = self.kept
        pts = self._normalise(self.rows[k], self.cols[k])
        n = int(k.sum())
        if n < 3:
            self.constant = (float(np.median(self.dx[k])), float(np.median(self.dy[k]))) if n else (0.0, 0.0)
            return
        degree = 1 if n >= 6 else 0
        s: float | np.ndarray = smoothing * 1e-3
        self.constant = None
        for i in range(4 if robust and n >= 12 else 1):
            if i:
                ex, ey = self.evaluate(self.rows[k], self.cols[k])
                dist = np.hypot(self.dx[k] - ex, self.dy[k] - ey)
                scale = max(_MAD * float(np.median(dist)), 1e-6)
                weight = np.clip(1 - (dist / (4.685 * scale)) ** 2, 0, None) ** 2
                s = smoothing * 1e-3 / np.maximum(weight, 1e-3)
            self._models = [
                RBFInterpolator(pts, vals[k], kernel="thin_plate_spline", smoothing=s, degree=degree,
                                neighbors=None if n <= 1500 else 200)
                for vals in (self.dx, self.dy)
            ]


def measure_tie_points(
    ref: Any, mov: Any, *, params: FieldParams, initial: tuple[float, float] = (0.0, 0.0),
    cover: np.ndarray | None = None,
) -> ShiftField:
    """Measure the displacement of every window (reading ``ref``/``mov`` one window at a time).

    ``ref`` and ``mov`` are 2-D numpy or dask arrays (or :class:`~changedetect._registration.blocks.BlockImage`)
    of one shape; only a window of each is in memory at once, whatever the scene's width, and a lazy
    image is computed under the windows only (a strip of windows at a time: each block once).
    ``cover``: where both have data, coarse (:func:`window_origins`).
    """
    h, w = ref.shape
    ref, mov = (BlockImage(img, dtype=img.dtype) if isinstance(img, da.Array) else img for img in (ref, mov))
    r0s, c0s, sizes = window_origins((h, w), params, cover)
    ix, iy = int(round(initial[0])), int(round(initial[1]))
    out: dict[str, list[float]] = {k: [] for k in ("rows", "cols", "dx", "dy", "rel", "tex", "ok")}
    for r0, win in sorted(set(zip(r0s.tolist(), sizes.tolist(), strict=True))):
        strip = c0s[(r0s == r0) & (sizes == win)].tolist()
        prefetch(ref, [(r0, r0 + win, c0, c0 + win) for c0 in strip])
        prefetch(mov, [(r0 + iy, r0 + iy + win, c0 + ix, c0 + ix + win) for c0 in strip])
        for c0 in strip:
            a = np.asarray(ref[r0 : r0 + win, c0 : c0 + win], dtype=np.float64)
            b = _window_padded(mov, r0 + iy, r0 + iy + win, c0 + ix, c0 + ix + win)
            est, texture, (cr, cc) = _match(a, b, params)
            out["rows"].append(r0 + cr)
            out["cols"].append(c0 + cc)
            out["dx"].append(est[0] + ix)
            out["dy"].append(est[1] + iy)
            out["rel"].append(est[2])
            out["tex"].append(texture)
            out["ok"].append(float(est[3]))
    arr = {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
    tex = arr["tex"]
    med_tex = float(np.median(tex[tex > 0])) if np.any(tex > 0) else 0.0
    textured = tex >= params.min_texture * med_tex if med_tex > 0 else np.zeros(tex.shape, bool)
    kept = (arr["ok"] > 0) & textured
    area = covered_area((h, w), cover)
    return ShiftField((h, w), arr["rows"], arr["cols"], arr["dx"], arr["dy"], arr["rel"], kept,
                      scale=math.sqrt(area) if area else None)


def _window_padded(img: Any, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Rows ``r0:r1``, columns ``c0:c1`` of ``img`` as float64, NaN where they fall outside it."""
    h, w = img.shape
    out = np.full((r1 - r0, c1 - c0), np.nan)
    lo, hi, left, right = max(r0, 0), min(r1, h), max(c0, 0), min(c1, w)
    if hi > lo and right > left:
        out[lo - r0 : hi - r0, left - c0 : right - c0] = np.asarray(img[lo:hi, left:right], dtype=np.float64)
    return out


def _match(
    a: np.ndarray, b: np.ndarray, params: FieldParams
) -> tuple[tuple[float, float, float, bool], float, tuple[float, float]]:
    """Shift of window ``b`` against ``a``, the texture of ``a`` (mean gradient magnitude) and
    the position (row, col in the window) the shift applies to: the centroid of gradient energy."""
    centre = ((a.shape[0] - 1) / 2, (a.shape[1] - 1) / 2)
    nan_frac = max(float(np.mean(~np.isfinite(a))), float(np.mean(~np.isfinite(b))))
    if nan_frac > params.max_nan_fraction:
        return (0.0, 0.0, 0.0, False), 0.0, centre
    r0 = c0 = 0
    shared = not np.isfinite(a).all() and not np.isfinite(b).all()
    box = covered_box(both_finite(a, b)) if shared else None
    if box is not None:  # nodata edges in both windows are no edges (changedetect._registration.nodata)
        a, b = a[box], b[box]
        r0, c0 = box[0].start, box[1].start
    grad = np.nan_to_num(a) if params.edges else gradient_magnitude(a, sigma=1.0)
    texture = float(np.mean(grad))
    if texture <= 0:
        return (0.0, 0.0, 0.0, False), 0.0, centre
    # the whole band, 3 measurements: on the generated sample city, band-limited tie points follow the
    # scene's moving shadows more (0.092 -> 0.125 px median on 2025-01-20, docs/benchmarks.md)
    est = estimate_shift(a, b, iterations=3, max_shift=params.max_shift, band=None,
                         min_peak_ratio=params.min_peak_ratio, min_snr=params.min_snr, edges=params.edges)
    energy = grad**2 * np.outer(_taper(a.shape[0]), _taper(a.shape[1]))
    total = float(energy.sum())
    if total > 0:
        centre = (r0 + float((energy.sum(axis=1) * np.arange(a.shape[0])).sum() / total),
                  c0 + float((energy.sum(axis=0) * np.arange(a.shape[1])).sum() / total))
    return (est.dx, est.dy, est.reliability, est.reliable), texture, centre


def _taper(n: int) -> np.ndarray:
    return np.hanning(n + 2)[1:-1]


def reject_outliers(fld: ShiftField, params: FieldParams) -> None:
    """Drop kept tie points that disagree with a robust trend or with their neighbours (in place)."""
    for _ in range(3):
        before = fld.n_kept
        if before < 4:
            return
        _reject_against_trend(fld)
        _reject_against_neighbours(fld, params.neighbour_tolerance)
        if fld.n_kept == before:
            return


def _reject_against_trend(fld: ShiftField) -> None:
    k = np.flatnonzero(fld.kept)
    degree = 2 if k.size >= 12 else (1 if k.size >= 6 else 0)
    design = _poly_design(fld.rows[k] / max(fld.shape), fld.cols[k] / max(fld.shape), degree)
    resid = np.zeros(k.size)
    for vals in (fld.dx[k], fld.dy[k]):
        coef, *_ = np.linalg.lstsq(design, vals, rcond=None)
        for _ in range(5):  # iteratively reweighted (Tukey biweight)
            r = vals - design @ coef
            s = max(_MAD * float(np.median(np.abs(r - np.median(r)))), 0.05)
            wts = np.clip(1 - (r / (4.685 * s)) ** 2, 0, None) ** 2
            sw = np.sqrt(wts)
            coef, *_ = np.linalg.lstsq(design * sw[:, None], vals * sw, rcond=None)
        resid = np.maximum(resid, np.abs(vals - design @ coef))
    s = max(_MAD * float(np.median(resid)), 0.1)
    fld.kept[k[resid > max(5 * s, 1.0)]] = False


def _reject_against_neighbours(fld: ShiftField, tolerance: float) -> None:
    """Drop tie points far from the plane through their nearest kept neighbours (a sloping field
    is not an outlier; a plane rather than the neighbours' median keeps the test fair on slopes)."""
    k = np.flatnonzero(fld.kept)
    pts = np.column_stack([fld.rows[k], fld.cols[k]])
    n_nb = min(9, k.size)
    _, idx = cKDTree(pts).query(pts, k=n_nb)
    nb = idx[:, 1:]
    dev = np.zeros(k.size)
    for vals in (fld.dx[k], fld.dy[k]):
        pred = _plane_predict(pts, vals, nb) if n_nb >= 5 else np.median(vals[nb], axis=1)
        dev = np.maximum(dev, np.abs(vals - pred))
    s = _MAD * float(np.median(dev))
    fld.kept[k[dev > max(3 * s, tolerance)]] = False


def _plane_predict(pts: np.ndarray, vals: np.ndarray, nb: np.ndarray) -> np.ndarray:
    """For each point, the value at it of the least-squares plane through its neighbours ``nb``."""
    centre = pts[:, None, :]
    d = pts[nb] - centre  # (n, k, 2) offsets from the point
    scale = np.maximum(np.abs(d).max(axis=(1, 2), keepdims=True), 1.0)
    design = np.concatenate([np.ones(d.shape[:2] + (1,)), d / scale], axis=2)  # (n, k, 3)
    gram = np.einsum("nki,nkj->nij", design, design) + 1e-9 * np.eye(3)
    rhs = np.einsum("nki,nk->ni", design, vals[nb])
    sol = np.linalg.solve(gram, rhs[..., None])[..., 0]
    return sol[:, 0]  # the plane's value at the point itself (offset 0)


def _poly_design(r: np.ndarray, c: np.ndarray, degree: int) -> np.ndarray:
    cols = [np.ones_like(r)]
    if degree >= 1:
        cols += [r, c]
    if degree >= 2:
        cols += [r * r, r * c, c * c]
    return np.column_stack(cols)


#: Smoothing levels tried by :func:`choose_smoothing` (1 is the least, and the fixed default before).
SMOOTHING_LEVELS = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)
#: Folds of the cross-validation in :func:`choose_smoothing`.
CV_FOLDS = 5


def choose_smoothing(fld: ShiftField, levels: tuple[float, ...] = SMOOTHING_LEVELS) -> float:
    """The smoothing of the field's spline that best predicts kept tie points left out of the fit
    (5-fold cross-validation, folds drawn with a fixed seed): noisy tie points are averaged,
    precise ones followed. 1 with fewer than 12 kept tie points."""
    k = np.flatnonzero(fld.kept)
    if k.size < 12:
        return levels[0]
    fold = np.random.default_rng(0).permutation(k.size) % CV_FOLDS
    errors = []
    for level in levels:
        sq = 0.0
        for f in range(CV_FOLDS):
            train = np.zeros(fld.kept.shape, bool)
            train[k[fold != f]] = True
            part = ShiftField(fld.shape, fld.rows, fld.cols, fld.dx, fld.dy, fld.reliability, train, scale=fld.scale)
            part.fit(level)
            test = k[fold == f]
            ex, ey = part.evaluate(fld.rows[test], fld.cols[test])
            sq += float(np.sum((fld.dx[test] - ex) ** 2 + (fld.dy[test] - ey) ** 2))
        errors.append(sq)
    return levels[int(np.argmin(errors))]


def estimate_shift_field(
    ref: Any, mov: Any, *, params: FieldParams = FieldParams(), initial: tuple[float, float] = (0.0, 0.0),
    cover: np.ndarray | None = None,
) -> ShiftField:
    """Tie points, outlier rejection and a fitted dense field of ``mov`` against ``ref`` (2-D arrays).

    ``params.smoothing`` ``None``: chosen by cross-validation on the tie points (:func:`choose_smoothing`).
    ``cover``: where both have data, coarse; the tie points are spread over it (:func:`window_origins`).
    """
    fld = measure_tie_points(ref, mov, params=params, initial=initial, cover=cover)
    reject_outliers(fld, params)
    fld.fit(params.smoothing if params.smoothing is not None else choose_smoothing(fld), robust=True)
    logger.debug("shift field: %d tie points found, %d kept", fld.n_found, fld.n_kept)
    return fld
