"""Whether a date's red, green and blue are one grey image copied three times (pure, on arrays).

A panchromatic image delivered as RGB (the same band in red, green and blue) reads without error,
and a model trained on colour (``vhr-building``) runs on it and does worse: nothing else says so.
:func:`looks_grey` judges a sample; :func:`sample_windows` draws one through a reader of windows
(a few windows spread over the scene, never the whole scene); :func:`grey_warning` says it, once
per date, in the words ``changedetect detect``, ``run`` and ``info`` share.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from changedetect.tiling import Window

#: correlation between red and green, and red and blue, above which they count as one band
GREY_CORRELATION = 0.999
#: the medians may differ by this share of red's 2-98 % spread (rounding, compression)
_MEDIAN_SHARE = 0.01
#: the sample: a grid of GRID x GRID windows of SIDE px spread over the scene
_GRID, _SIDE = 3, 128


def looks_grey(sample: np.ndarray) -> bool:
    """Whether a ``(3, ...)`` sample of red, green and blue holds one image three times: equal
    everywhere, or nearly (correlation above :data:`GREY_CORRELATION` and equal medians).  NaN
    pixels are left out; a flat sample (no texture) or one of under 100 pixels says nothing (False)."""
    flat = np.asarray(sample, dtype=np.float64).reshape(3, -1)
    flat = flat[:, np.isfinite(flat).all(axis=0)]
    if flat.shape[1] < 100 or np.any(flat.std(axis=1) == 0):
        return False
    red = flat[0]
    lo, hi = np.percentile(red, [2, 98])
    tolerance = _MEDIAN_SHARE * max(float(hi - lo), 1e-12)
    for other in flat[1:]:
        if abs(float(np.median(other) - np.median(red))) > tolerance:
            return False
        if not np.array_equal(other, red) and np.corrcoef(red, other)[0, 1] <= GREY_CORRELATION:
            return False
    return True


def sample_windows(read: Callable[[Window], np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """``(c, n)``: the pixels of a grid of 3 x 3 windows of 128 px spread over a ``(h, w)`` scene,
    read through ``read`` (the whole scene when it is smaller than that)."""
    h, w = shape
    side_h, side_w = min(_SIDE, h), min(_SIDE, w)
    rows = sorted({int(r) for r in np.linspace(0, h - side_h, _GRID)})
    cols = sorted({int(c) for c in np.linspace(0, w - side_w, _GRID)})
    parts = [read(Window(r, c, side_h, side_w)) for r in rows for c in cols]
    return np.concatenate([p.reshape(p.shape[0], -1) for p in parts], axis=1)


def rgb_positions(names: Sequence[str]) -> list[int] | None:
    """Positions of red, green and blue among band ``names`` (by name or alias, any case), or None
    when one of them is missing."""
    from changedetect._detect_inputs import _canon  # the aliases detection resolves bands through

    canon = [_canon(n) for n in names]
    return [canon.index(c) for c in ("red", "green", "blue")] if {"red", "green", "blue"} <= set(canon) else None


def grey_warning(logger: logging.Logger, label: str, model: str | None,
                 say: Callable[..., None] | None = None) -> None:
    """Warn that ``label`` (a date, a file) looks panchromatic (``say``: the caller's once-only
    warning, else ``logger.warning``)."""
    who = f"model '{model}' was trained on colour and will do worse on it" if model else \
        "an RGB model (vhr-building) was trained on colour and will do worse on it"
    (say or logger.warning)("%s: red, green and blue are identical, so the imagery looks panchromatic (one grey "
                            "band copied three times); %s: give that date's colour (multispectral or "
                            "pansharpened) product if there is one", label, who)


__all__ = ["GREY_CORRELATION", "grey_warning", "looks_grey", "rgb_positions", "sample_windows"]
