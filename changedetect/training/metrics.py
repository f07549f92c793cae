"""Pixel metrics of the change class, pooled over a set (as LEVIR-CD papers report).

Add the :class:`Counts` of every image, then call :func:`scores` once::

    total = sum((confusion_counts(p, y) for p, y in pairs), Counts())
    scores(total)  # {"precision": ..., "recall": ..., "f1": ..., "iou": ...}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Counts:
    """Confusion counts of the change class: true/false positives/negatives (pixels)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn)

    @property
    def total(self) -> int:
        return self.tp + self.fp + self.fn + self.tn

    def to_dict(self) -> dict[str, int]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}


def confusion_counts(pred: np.ndarray, label: np.ndarray, *, valid: np.ndarray | None = None) -> Counts:
    """Counts of one image.

    Parameters
    ----------
    pred, label
        Boolean (or 0/1) arrays of the same shape: predicted and true change.
    valid
        Optional boolean mask; pixels where it is False are not counted.
    """
    pred = np.asarray(pred).astype(bool)
    label = np.asarray(label).astype(bool)
    if pred.shape != label.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from label shape {label.shape}")
    if valid is not None:
        valid = np.asarray(valid, bool)
        pred, label = pred[valid], label[valid]
    tp = int(np.count_nonzero(pred & label))
    fp = int(np.count_nonzero(pred & ~label))
    fn = int(np.count_nonzero(~pred & label))
    return Counts(tp=tp, fp=fp, fn=fn, tn=int(pred.size) - tp - fp - fn)


def scores(counts: Counts) -> dict[str, float]:
    """Precision, recall, F1 and IoU of the change class from pooled counts (0 where undefined)."""
    tp, fp, fn = counts.tp, counts.fp, counts.fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    iou = tp / (tp + fp + fn) if tp else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "iou": iou}


def floor_scores(counts: Counts) -> dict[str, float]:
    """Scores of predicting "everything changed" on the same pixels: the floor any model must beat."""
    pos = counts.tp + counts.fn
    return scores(Counts(tp=pos, fp=counts.fp + counts.tn, fn=0, tn=0))


__all__ = ["Counts", "confusion_counts", "floor_scores", "scores"]
