"""Known displacements for tests and benchmarks: textured scenes, shifts, smooth warps.

A displacement field ``t`` is applied as ``mov(q) = img(q - t(q))``.  The field that
:func:`changedetect.coregister.estimate_shift_field` measures is defined on the
reference's pixels, ``d(p)`` with ``mov(p + d(p)) = img(p)``, i.e. ``d = t(p + d)``;
:func:`true_field` solves that by fixed-point iteration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from changedetect._registration.warp import sample

Field = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def textured_scene(shape: tuple[int, int], *, seed: int = 0, blocks: int = 40) -> np.ndarray:
    """A ``(h, w)`` float64 scene: multi-scale smooth texture plus bright/dark rectangular "roofs"."""
    rng = np.random.default_rng(seed)
    h, w = shape
    img = np.zeros(shape)
    for sigma, amp in ((16, 40.0), (4, 20.0), (1.5, 10.0)):
        layer = ndimage.gaussian_filter(rng.normal(size=shape), sigma)
        img += amp * layer / (layer.std() + 1e-12)
    for _ in range(blocks):
        bh, bw = rng.integers(6, max(7, h // 10)), rng.integers(6, max(7, w // 10))
        r, c = rng.integers(0, h - bh), rng.integers(0, w - bw)
        img[r : r + bh, c : c + bw] = rng.uniform(-80, 120)
    return ndimage.gaussian_filter(img, 0.7) + 100.0


@dataclass(frozen=True)
class SmoothWarp:
    """``t(q) = (sx, sy) + amplitude * sinusoid`` over an image of shape ``(h, w)``."""

    shape: tuple[int, int]
    sx: float
    sy: float
    ax: float = 0.0
    ay: float = 0.0
    fr: float = 0.5
    fc: float = 0.5
    phase_x: float = 0.0
    phase_y: float = 0.0

    def __call__(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = self.shape
        u, v = rows / h, cols / w
        tx = self.sx + self.ax * np.sin(2 * np.pi * (u * self.fr + v * self.fc) + self.phase_x)
        ty = self.sy + self.ay * np.cos(2 * np.pi * (u * self.fc - v * self.fr) + self.phase_y)
        return tx, ty


def displace(image: np.ndarray, t: Field, *, order: int = 3) -> np.ndarray:
    """``mov(q) = image(q - t(q))`` (cubic), NaN where it falls outside ``image``."""
    h, w = image.shape
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    tx, ty = t(rows, cols)
    return sample(image, rows - ty, cols - tx, order=order)


def true_field(t: Field, rows: np.ndarray, cols: np.ndarray, *, iterations: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """``d(p)`` with ``d = t(p + d)``: the displacement a registration should measure at ``p``."""
    dx, dy = t(rows, cols)
    for _ in range(iterations):
        dx, dy = t(rows + dy, cols + dx)
    return dx, dy


def observe(image: np.ndarray, t: Field | None = None, *, factor: int = 3) -> np.ndarray:
    """A sensor-like observation of ``image`` displaced by ``t``: each output pixel integrates a
    ``factor``² grid of sub-pixel samples (cubic) of ``image`` at ``q + o - t(q + o)``.

    Unlike :func:`displace`, this is not the cubic resampling the registration itself uses, so a
    benchmark built on it does not flatter the method; the reference must be observed the same
    way (``t=None``) so that both dates share the pixel's integration.
    """
    h, w = image.shape
    rows, cols = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    offsets = (np.arange(factor) + 0.5) / factor - 0.5
    acc = np.zeros((h, w))
    for orow in offsets:
        for ocol in offsets:
            r, c = rows + orow, cols + ocol
            tx, ty = t(r, c) if t is not None else (0.0, 0.0)
            acc += sample(image, r - ty, c - tx, order=3)
    return acc / factor**2
