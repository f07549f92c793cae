"""Each pair of a series, orchestrated for :func:`changedetect.detect.detect_each_pair`: the BEFOREs
filled from the last clear view (:mod:`changedetect._fill_before`), the mask pairs' union, and the
presence check (:class:`changedetect.presence.DatePresence`) on a pair's raster."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import xarray as xr

from changedetect._detect_engine import DetectConfig, ModelLike, _threshold
from changedetect._fill_before import Filled, fill_before
from changedetect.presence import DatePresence

logger = logging.getLogger("changedetect.detect")


def _pair_probability(stack: xr.DataArray, i: int, j: int, config: DetectConfig, loaded: ModelLike,
                      progress: bool, presence: DatePresence | None, *, mask: bool = False,
                      before: xr.DataArray | None = None, after: xr.DataArray | None = None) -> xr.DataArray:
    """The network's probability between dates ``i`` and ``j`` (``before``, ``after``: the date as
    filled by :func:`~changedetect._fill_before.fill_before`), with the presence check applied
    when there is a segmenter (``presence``) and ``mask`` (a mask pair, checked whatever the
    seasons).  A checked pair's raster says so in ``attrs["presence_check"]``."""
    from changedetect.detect import detect_pair

    before = stack.isel(time=i) if before is None else before
    after = stack.isel(time=j) if after is None else after
    prob = detect_pair(before, after, config=config, progress=progress, model=loaded)
    if presence is not None and mask:
        _confirm(prob, i, j, presence, _threshold(config, loaded.card), mask=True)
    return prob


def _confirm(prob: xr.DataArray, i: int, j: int, presence: DatePresence, threshold: float, *,
             mask: bool = False, decided: np.ndarray | None = None) -> None:
    """The presence check on pair ``(i, j)``'s raster, in place (``decided``: where the network
    decided change on any pair of the series)."""
    if mask or presence.applies(i, j):
        prob.values = presence.confirm(i, j, prob.values, threshold, any_season=mask, decided=decided)
        prob.attrs["presence_check"] = presence.label()


def _fills(stack: xr.DataArray, pairs: list[tuple[int, int]], fill_from: Sequence[int] | None) -> dict[int, Filled]:
    """Each consecutive pair's BEFORE (``(i, i + 1)``, ``i > 0``) filled from the dates before it
    (``fill_from`` of them when given), by ``i``; once per date, each date's data mask read once."""
    out = {}
    masks: dict[int, np.ndarray] = {}  # each date's data mask, read once for all the pairs
    for i in sorted({i for i, j in pairs if j == i + 1 and i > 0}):
        if fill_from is not None and not any(k < i for k in fill_from):
            continue
        out[i] = done = fill_before(stack, i, fill_from, masks)
        if done.source is not None:
            logger.info("detect: %s's no data filled from earlier dates over %.2f %% of the scene",
                        str(stack["time"].values[i])[:10], 100 * done.share())
    return out


def _date_presence(stack: xr.DataArray, segmenter: ModelLike | DatePresence | None, config: DetectConfig,
                   progress: bool) -> DatePresence | None:
    """The presence check's per-date rasters for ``stack`` (None: no segmenter, or switched off)."""
    if segmenter is None or not config.presence_check:
        return None
    if not isinstance(segmenter, DatePresence):
        return DatePresence(stack, segmenter, config, progress)
    theirs = segmenter.stack
    if theirs.sizes != stack.sizes or not np.array_equal(theirs["time"].values, stack["time"].values):
        raise ValueError("the DatePresence given as segmenter was made for another stack "
                         f"({dict(theirs.sizes)} vs {dict(stack.sizes)}): make it on this one")
    return segmenter


def _masked(stack: xr.DataArray, mask_pairs: list[tuple[int, int]], thr: float, config: DetectConfig,
            loaded: ModelLike, progress: bool, presence: DatePresence | None,
            fills: dict[int, Filled]) -> np.ndarray | None:
    """Pixels (grown by two) where a pair of ``mask_pairs`` reaches ``thr``, or None.  A mask pair's
    AFTER that a compared pair fills as its BEFORE (``fills``, by date) is that filled image: the mask
    is what changed up to the view the compared pair starts from, and the presence check reads that
    AFTER as the network compared it (``presence.filled_after``: :meth:`DatePresence.after`)."""
    from scipy import ndimage

    masked = None
    for i, j in mask_pairs:
        logger.info("detect (mask): %s -> %s", str(stack["time"].values[i])[:10], str(stack["time"].values[j])[:10])
        after = fills[j].image if j in fills else None
        if after is not None and presence is not None:
            presence.filled_after[(i, j)] = fills[j].source
        p = _pair_probability(stack, i, j, config, loaded, progress, presence, mask=True, after=after).values
        hit = np.nan_to_num(p) >= thr
        masked = hit if masked is None else masked | hit
    return None if masked is None else ndimage.binary_dilation(masked, iterations=2)
