"""Known misregistration and radiometry of each date, and the sensor model that applies them.

Convention (also written into ``truth/registration.json``)
-----------------------------------------------------------
Pixel coordinates ``(col, row)`` are 0-based with integers at pixel centres.
A date's image is sampled from the true (reference) scene with::

    image_d(col, row) = scene(col - ux(col, row), row - uy(col, row))

so content appears displaced by ``(ux, uy)`` pixels: a feature at true pixel
``(c, r)`` is seen near ``(c + ux, r + uy)``.  The displacement field is::

    ux(col, row) = dx + sum_k ax_k * sin(2*pi*(fc_k*col + fr_k*row) + phx_k)
    uy(col, row) = dy + sum_k ay_k * sin(2*pi*(fc_k*col + fr_k*row) + phy_k)

with frequencies in cycles per pixel.  To put a date back onto the reference
grid, sample it at ``q + u(p)`` where ``p = q + u(p)`` (:func:`inverse_map`).

Radiometry: ``DN = gain_b * reflectance + offset_b + noise``, rounded and
clipped to 1..255 (0 never occurs).  Relative to the reference date a date is
``DN_d ~= rel_gain_b * DN_ref + rel_offset_b`` where the scene did not change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from changedetect.samplecity.spec import BANDS, Acquisition, CityConfig

#: The convention, as written into ``truth/registration.json`` (one string per line).
CONVENTION: tuple[str, ...] = (
    "Pixel coordinates (col, row) are 0-based, integers at pixel centres, on the reference grid (see size and transform).",
    "A date's image is sampled from the true (reference) scene: image_d(col, row) = scene(col - ux(col, row), row - uy(col, row)).",
    "So content appears displaced by (ux, uy) px: a feature at true pixel (c, r) is seen near (c + ux, r + uy) on date d.",
    "ux(col, row) = dx + sum_k ax_k * sin(2*pi*(fc_k*col + fr_k*row) + phx_k); uy likewise with ay_k, phy_k (frequencies in cycles per pixel).",
    "To put date d back on the reference grid, sample it at p where p = q + u(p) for each reference pixel q (fixed-point iteration).",
    "Python: changedetect.samplecity.registration.inverse_map(Misregistration.from_dict(entry['misregistration']), size) -> (cols, rows).",
    "A single global shift estimated for date d (content displacement) should be about mean_displacement_px.",
    "reference_to_date_px: for reference pixel (col, row) = (ticks[j], ticks[i]), date d shows it at (col + dx[i][j], row + dy[i][j]).",
    "Radiometry: DN = gain_b * reflectance + offset_b + noise, rounded, clipped to 1..255 (0 never occurs).",
    "Where the scene did not change, DN_d ~= rel_gain_b * DN_ref + rel_offset_b (shadows, vegetation and traffic do change).",
)
#: DN per unit reflectance at gain 1, and additive path radiance (DN) at haze 1, per band.
DN_SCALE = np.array([300.0, 300.0, 310.0, 270.0])
PATH_DN = np.array([20.0, 24.0, 32.0, 10.0])
#: Standard deviation of the sensor noise (DN): sqrt(READ**2 + SHOT * DN).
READ_NOISE, SHOT_NOISE = 0.6, 0.004
#: Blur of the optics and of the detector's pixel, in output pixels (Gaussian sigma).
PSF_SIGMA = 0.5


@dataclass(frozen=True)
class Misregistration:
    """Global shift ``(dx, dy)`` plus a sum of plane sinusoids (see the module docstring)."""

    dx: float
    dy: float
    terms: tuple[tuple[float, float, float, float, float, float], ...] = ()  # fc, fr, ax, phx, ay, phy

    def displacement(self, cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(ux, uy)`` in pixels at the given (date-grid) pixel coordinates."""
        ux = np.full(np.broadcast(cols, rows).shape, self.dx, np.float64)
        uy = np.full_like(ux, self.dy)
        for fc, fr, ax, phx, ay, phy in self.terms:
            arg = 2 * np.pi * (fc * cols + fr * rows)
            ux = ux + ax * np.sin(arg + phx)
            uy = uy + ay * np.sin(arg + phy)
        return ux, uy

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Misregistration:
        """Back from the ``misregistration`` entry of ``truth/registration.json``."""
        keys = ("fc", "fr", "ax", "phx", "ay", "phy")
        terms = tuple(tuple(float(t[k]) for k in keys) for t in doc.get("warp_terms", []))
        shift = doc["global_shift_px"]
        return cls(float(shift["dx"]), float(shift["dy"]), terms)  # type: ignore[arg-type]

    def to_dict(self, size: int) -> dict[str, Any]:
        rows, cols = np.mgrid[0:size:8, 0:size:8]
        ux, uy = self.displacement(cols, rows)
        return {
            "global_shift_px": {"dx": self.dx, "dy": self.dy},
            "mean_displacement_px": {"dx": round(float(ux.mean()), 4), "dy": round(float(uy.mean()), 4)},
            "max_local_amplitude_px": round(float(np.hypot(ux - self.dx, uy - self.dy).max()), 4),
            "warp_terms": [dict(zip(("fc", "fr", "ax", "phx", "ay", "phy"), t, strict=True)) for t in self.terms],
            "reference_to_date_px": self.offset_grid(size),
        }

    def offset_grid(self, size: int, step: int = 32) -> dict[str, Any]:
        """Where reference pixel ``(col, row)`` lies on this date: ``(col + dx, row + dy)``, on a grid.

        Solves ``p = q + u(p)`` at ``q`` = every ``step``-th pixel (the last row and column included).
        """
        ticks = np.unique(np.r_[np.arange(0, size, step), size - 1]).astype(np.float64)
        rows, cols = np.meshgrid(ticks, ticks, indexing="ij")
        pc, pr = cols.copy(), rows.copy()
        for _ in range(10):
            ux, uy = self.displacement(pc, pr)
            pc, pr = cols + ux, rows + uy
        return {
            "ticks": [int(t) for t in ticks],
            "dx": np.round(pc - cols, 4).tolist(),
            "dy": np.round(pr - rows, 4).tolist(),
        }


def draw_misregistration(rng: np.random.Generator, size: int, reference: bool) -> Misregistration:
    """A global shift of 0.8-4.5 px and a smooth warp of ~0.5-1.5 px (none for the reference)."""
    if reference:
        return Misregistration(0.0, 0.0)
    mag, ang = rng.uniform(0.8, 4.5), rng.uniform(0, 2 * np.pi)
    dx, dy = round(mag * math.cos(ang), 3), round(mag * math.sin(ang), 3)
    terms = []
    total = rng.uniform(0.9, 1.6)
    weights = rng.dirichlet([3.0, 3.0, 3.0])
    for w in weights:
        wavelength = rng.uniform(0.35, 1.2) * max(size, 256)
        direction = rng.uniform(0, 2 * np.pi)
        fc, fr = math.cos(direction) / wavelength, math.sin(direction) / wavelength
        amp = total * float(w)
        ax = amp * rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.0)
        ay = amp * rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.0)
        terms.append(tuple(round(float(v), 6) for v in (fc, fr, ax, rng.uniform(0, 2 * np.pi), ay, rng.uniform(0, 2 * np.pi))))
    return Misregistration(dx, dy, tuple(terms))  # type: ignore[arg-type]


def inverse_map(mis: Misregistration, size: int, *, iterations: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Where to sample a date to put it on the reference grid: ``(cols, rows)`` float64 of ``(size, size)``.

    Solves ``p = q + u(p)`` for every reference pixel ``q`` by fixed-point iteration.
    """
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    pc, pr = cols.copy(), rows.copy()
    for _ in range(iterations):
        ux, uy = mis.displacement(pc, pr)
        pc, pr = cols + ux, rows + uy
    return pc, pr


def radiometry(acq: Acquisition) -> tuple[np.ndarray, np.ndarray]:
    """``(gain, offset)`` per band turning reflectance into DN for ``acq``."""
    gain = DN_SCALE * np.asarray(acq.gain)
    offset = PATH_DN * acq.haze
    return gain, offset


def radiometry_dict(acq: Acquisition, ref: Acquisition) -> dict[str, Any]:
    g, o = radiometry(acq)
    g0, o0 = radiometry(ref)
    rel = g / g0
    return {
        "bands": list(BANDS),
        "gain": [round(float(v), 4) for v in g],
        "offset": [round(float(v), 4) for v in o],
        "rel_gain": [round(float(v), 6) for v in rel],
        "rel_offset": [round(float(v), 4) for v in o - rel * o0],
        "haze": acq.haze,
        "noise_dn": {"read": READ_NOISE, "shot": SHOT_NOISE},
    }


def observe(refl: np.ndarray, config: CityConfig, mis: Misregistration, acq: Acquisition, rng: np.random.Generator) -> np.ndarray:
    """Blur, misregister, scale, add noise and quantise: ``(4, size, size)`` uint8.

    ``refl`` is the fine-grid reflectance from :func:`~.scene.render`.
    """
    os_, m, n = config.oversample, config.margin, config.size
    rows, cols = np.mgrid[0:n, 0:n].astype(np.float64)
    ux, uy = mis.displacement(cols, rows)
    fr = (rows - uy + m + 0.5) * os_ - 0.5
    fc = (cols - ux + m + 0.5) * os_ - 0.5
    gain, offset = radiometry(acq)
    out = np.empty((len(BANDS), n, n), np.uint8)
    for b in range(len(BANDS)):
        band = ndimage.gaussian_filter(refl[b], PSF_SIGMA * os_, mode="nearest")
        samp = ndimage.map_coordinates(band, [fr, fc], order=3, mode="nearest", prefilter=True)
        dn = gain[b] * samp + offset[b]
        sigma = np.sqrt(READ_NOISE**2 + SHOT_NOISE * np.clip(dn, 0, None))
        dn = dn + sigma * rng.standard_normal(dn.shape)
        out[b] = np.clip(np.rint(dn), 1, 255).astype(np.uint8)
    return out
