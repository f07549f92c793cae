"""The configuration of :func:`changedetect.vectorize.vectorize`: thresholds, clean-up,
regularisation, strips, id carry-over and the presence filter, checked when made.  Private: import
:class:`VectorizeConfig` from :mod:`changedetect.vectorize`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import xarray as xr

from changedetect._vectorize_shapes import CARRY_MIN_COVER, CARRY_MIN_IOU


@dataclass(frozen=True)
class VectorizeConfig:
    """How a probability raster becomes footprints.

    Parameters
    ----------
    threshold
        A building must contain a pixel at or above this probability.  ``None`` (the default): the
        probability's own decision threshold, ``attrs["threshold"]``, which detection sets from
        ``DetectConfig.threshold`` or the model card (0.5 when it has none), so that footprints are
        traced where change was decided (first-seen dates, the presence check's raised objects).
    low_threshold
        Pixels at or above this join a building they touch (hysteresis); ``None``: = ``threshold``;
        never above ``threshold``.
    min_area_m2
        Smaller footprints are dropped.
    opening_px, closing_px
        Radius (pixels) of the morphological opening (removes specks, cuts
        one-pixel bridges) and closing (fills notches); 0 to skip.
    max_hole_m2
        Holes smaller than this are filled (courtyards larger are kept).
    simplify_m
        Douglas-Peucker tolerance, in metres (converted to the CRS's units).
    regularize
        Square the outlines (see :mod:`changedetect.vectorize`).
    rectangularity
        Minimum area / minimum-rotated-rectangle area to become a rectangle.
    regularize_min_iou
        A squared shape is kept only if its IoU with the traced outline is at
        least this; otherwise the outline is just simplified.
    strip_rows, strip_overlap
        Rows per processing strip and overlap between strips.
    carry_min_iou, carry_min_cover
        With the previous run's footprints (``vectorize(..., previous=...)``), a
        footprint takes a previous one's ``footprint_id`` when their IoU is at
        least ``carry_min_iou`` or their intersection covers at least
        ``carry_min_cover`` of the smaller (see :func:`~changedetect._vectorize_shapes.carry_ids`).
    min_presence
        With ``presence`` (a building segmenter's before/after probabilities): a footprint
        whose mean building probability is below this on both dates is dropped, since no
        building stands there before or after (a vehicle, a lawn, a moving shadow).
        ``None``: keep every footprint.
    change_type_model
        For :func:`changedetect.pipeline.run`: the single-date building segmenter whose
        before/after building probabilities decide ``change_type`` (the ``presence``
        argument of :func:`vectorize`). ``"auto"``: the change model's ``buildings/`` stage
        when it has one (vhr-building does); a model name or folder; ``""``: the images'
        brightness-contrast heuristic.
    """

    threshold: float | None = None
    low_threshold: float | None = 0.3
    min_area_m2: float = 10.0
    opening_px: int = 1
    closing_px: int = 1
    max_hole_m2: float = 10.0
    simplify_m: float = 0.5
    regularize: bool = True
    rectangularity: float = 0.8
    regularize_min_iou: float = 0.9
    change_type_model: str = "auto"
    min_presence: float | None = 0.3
    strip_rows: int = 2048
    strip_overlap: int = 64
    carry_min_iou: float = CARRY_MIN_IOU
    carry_min_cover: float = CARRY_MIN_COVER

    def __post_init__(self) -> None:
        if self.threshold is not None:
            low = self.threshold if self.low_threshold is None else self.low_threshold
            if not 0 < low <= self.threshold <= 1:
                raise ValueError(f"need 0 < low_threshold <= threshold <= 1, got {low} and {self.threshold}")
        elif self.low_threshold is not None and not 0 < self.low_threshold <= 1:
            raise ValueError(f"need 0 < low_threshold <= 1, got {self.low_threshold}")
        if self.min_presence is not None and not 0 <= self.min_presence <= 1:
            raise ValueError(f"min_presence must be in [0, 1] or None, got {self.min_presence}")
        if self.strip_rows < 16 or self.strip_overlap < 0:
            raise ValueError(f"strip_rows must be >= 16 and strip_overlap >= 0, got {self.strip_rows} and "
                             f"{self.strip_overlap}")
        if not (0 < self.carry_min_iou <= 1 and 0 < self.carry_min_cover <= 1):
            raise ValueError(f"carry_min_iou and carry_min_cover must be in (0, 1], got {self.carry_min_iou} "
                             f"and {self.carry_min_cover}")

    def for_probability(self, prob: xr.DataArray) -> VectorizeConfig:
        """This configuration with ``threshold`` decided for ``prob`` (its ``attrs["threshold"]``
        when None, else 0.5) and ``low_threshold`` no higher."""
        if self.threshold is not None:
            return self
        threshold = float(prob.attrs.get("threshold", 0.5))
        if not 0 < threshold <= 1:
            from changedetect.errors import ConfigError

            raise ConfigError(f"the change probability's 'threshold' attribute (tag) is {threshold}, not in "
                              "(0, 1]: give the threshold yourself (VectorizeConfig(threshold=...), --threshold)")
        low = threshold if self.low_threshold is None else min(self.low_threshold, threshold)
        return replace(self, threshold=threshold, low_threshold=low)


__all__ = ["VectorizeConfig"]
