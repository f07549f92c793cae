"""Pooled pixel metrics, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from changedetect.training.metrics import Counts, confusion_counts, floor_scores, scores


def test_counts_of_one_image() -> None:
    pred = np.array([[1, 1, 0], [0, 0, 1]], bool)
    label = np.array([[1, 0, 0], [1, 0, 1]], bool)
    assert confusion_counts(pred, label) == Counts(tp=2, fp=1, fn=1, tn=2)


def test_scores_are_pooled_not_averaged() -> None:
    # image 1: tp=1, fp=0, fn=0 (F1 1.0); image 2: tp=1, fp=3, fn=4 (F1 2/9)
    c1 = confusion_counts(np.array([1, 0]), np.array([1, 0]))
    c2 = confusion_counts(np.array([1, 1, 1, 1, 0, 0, 0, 0, 0]), np.array([1, 0, 0, 0, 1, 1, 1, 1, 0]))
    assert c2 == Counts(tp=1, fp=3, fn=4, tn=1)
    s = scores(c1 + c2)
    # pooled: tp=2, fp=3, fn=4 -> P=2/5, R=2/6, F1=4/11, IoU=2/9
    assert s["precision"] == pytest.approx(2 / 5)
    assert s["recall"] == pytest.approx(1 / 3)
    assert s["f1"] == pytest.approx(4 / 11)
    assert s["iou"] == pytest.approx(2 / 9)
    assert s["f1"] != pytest.approx((1.0 + 2 / 9) / 2)


def test_valid_mask_excludes_pixels() -> None:
    pred = np.array([1, 1, 0, 0])
    label = np.array([1, 0, 0, 1])
    assert confusion_counts(pred, label, valid=np.array([1, 0, 1, 0], bool)) == Counts(1, 0, 0, 1)


def test_empty_is_zero_not_nan() -> None:
    assert scores(Counts()) == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "iou": 0.0}


def test_floor_is_everything_changed() -> None:
    c = Counts(tp=10, fp=5, fn=10, tn=75)  # 20 % changed
    f = floor_scores(c)
    assert f["recall"] == 1.0
    assert f["precision"] == pytest.approx(0.2)
    assert f["f1"] == pytest.approx(2 * 0.2 / 1.2)


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="differs"):
        confusion_counts(np.zeros((2, 2)), np.zeros((3, 2)))
