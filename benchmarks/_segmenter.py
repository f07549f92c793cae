"""The building segmenter's probability on whole small scenes, as the per-structure benchmarks read it.

``sample_city_structures.py`` and ``shadow_completion_probe.py`` run the segmenter (the change
network fed one date twice) on each 512 px date whole, not through ``detect_pair``'s windows, so
their figures do not depend on window blending.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def segmenter_days(seg: Any, days: list[Any]) -> list[np.ndarray]:
    """``(y, x)`` building probability of each ``(band, y, x)`` date in ``days`` (DataArrays)."""
    import torch

    built = []
    for day in days:
        x = day.values.astype(np.float32)
        t = torch.from_numpy(seg.card.preprocess(x, seg.card.compute_stats(x)))[None]
        with torch.inference_mode():
            built.append(torch.sigmoid(seg.module.eval()(t, t))[0, 0].numpy())
    return built
