"""Training of the change-detection networks: datasets, pair synthesis, loop, metrics.

Heavy modules (torch) are imported by :mod:`changedetect.training.train` only;
:mod:`changedetect.training.metrics` needs nothing but numpy.
"""

from __future__ import annotations

from changedetect.training.metrics import Counts, confusion_counts, floor_scores, scores

__all__ = ["Counts", "confusion_counts", "floor_scores", "scores"]
