"""Noise fields and material colours for the sample city (numpy only, seeded)."""

from __future__ import annotations

import numpy as np

#: Reflectance (red, green, blue, nir) of the ground and roof materials.
MATERIALS: dict[str, tuple[float, float, float, float]] = {
    "soil": (0.29, 0.21, 0.15, 0.32),
    "dry_grass": (0.21, 0.20, 0.12, 0.31),
    "green_grass": (0.07, 0.13, 0.055, 0.46),
    "asphalt": (0.095, 0.10, 0.105, 0.12),
    "concrete": (0.31, 0.30, 0.285, 0.31),
    "old_concrete": (0.22, 0.215, 0.205, 0.23),
    "water": (0.10, 0.12, 0.085, 0.04),
    "rubble": (0.30, 0.27, 0.23, 0.30),
    "canopy": (0.045, 0.085, 0.04, 0.43),
    "light_canopy": (0.10, 0.17, 0.06, 0.50),
    "marking": (0.62, 0.62, 0.60, 0.60),
    "court": (0.36, 0.17, 0.13, 0.32),
    "tank": (0.66, 0.67, 0.68, 0.64),
}

#: Roof palettes: (material, weight, reflectance); drawn with a little jitter.
ROOF_PALETTE: tuple[tuple[str, float, tuple[float, float, float, float]], ...] = (
    ("tile", 0.20, (0.46, 0.22, 0.15, 0.41)),  # terracotta
    ("tile", 0.07, (0.55, 0.31, 0.17, 0.47)),  # orange tile
    ("tile", 0.05, (0.33, 0.17, 0.13, 0.33)),  # dark old tile
    ("metal", 0.12, (0.13, 0.24, 0.42, 0.29)),  # blue corrugated
    ("metal", 0.09, (0.52, 0.21, 0.17, 0.38)),  # red corrugated
    ("metal", 0.09, (0.56, 0.58, 0.59, 0.56)),  # white / galvanised
    ("metal", 0.05, (0.36, 0.38, 0.39, 0.37)),  # weathered zinc
    ("metal", 0.03, (0.15, 0.33, 0.24, 0.30)),  # green metal
    ("concrete", 0.22, (0.34, 0.33, 0.31, 0.35)),  # flat concrete terrace
    ("concrete", 0.08, (0.25, 0.245, 0.235, 0.27)),  # stained concrete
)


def fractal_noise(shape: tuple[int, int], rng: np.random.Generator, *, beta: float = 2.0, scale_px: float = 0.0) -> np.ndarray:
    """Zero-mean, unit-variance ``1/f**beta`` noise of ``shape`` (float32).

    ``scale_px`` removes structure finer than that many pixels (a Gaussian low-pass).
    """
    white = rng.standard_normal(shape, dtype=np.float32)
    spec = np.fft.rfft2(white)
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    f2 = fx * fx + fy * fy
    f2[0, 0] = 1.0
    filt = f2 ** (-beta / 4.0)
    if scale_px > 0:
        filt = filt * np.exp(-f2 * (np.pi * scale_px) ** 2 / 2.0)
    filt[0, 0] = 0.0
    out = np.fft.irfft2(spec * filt, s=shape).astype(np.float32)
    out -= out.mean()
    out /= max(float(out.std()), 1e-6)
    return out


def pick_roof(rng: np.random.Generator, *, kinds: tuple[str, ...] | None = None) -> tuple[str, tuple[float, float, float, float]]:
    """A roof material and its jittered reflectance."""
    rows = [r for r in ROOF_PALETTE if kinds is None or r[0] in kinds]
    w = np.array([r[1] for r in rows])
    i = int(rng.choice(len(rows), p=w / w.sum()))
    name, _, col = rows[i]
    k = rng.uniform(0.85, 1.12)
    jit = rng.normal(0, 0.015, 4)
    grey = sum(col[:3]) / 3
    fade = rng.uniform(0.3, 0.6)  # sun-faded, dusty roofs are less saturated than new paint
    faded = [c + (grey - c) * fade if b < 3 else c for b, c in enumerate(col)]
    color = tuple(float(np.clip(c * k + j, 0.02, 0.8)) for c, j in zip(faded, jit, strict=True))
    return name, color  # type: ignore[return-value]


def mix(a: tuple[float, ...], b: tuple[float, ...], t: np.ndarray) -> np.ndarray:
    """Per-pixel blend of two colours: ``(4, *t.shape)`` float32."""
    shape = (4,) + (1,) * t.ndim
    ca = np.asarray(a, np.float32).reshape(shape)
    cb = np.asarray(b, np.float32).reshape(shape)
    return ca + (cb - ca) * t[None].astype(np.float32)
