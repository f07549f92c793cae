"""A blocked run normalises a consecutive pair's BEFORE as a whole-scene run does, in every block.

A whole-scene run whose BEFORE date has a cloud normalises the filled image with the filled scene's
statistics; a blocked run draws them from the scene through ``SceneStats`` when the block's image says
it may be filled (``FILLED_ATTR``).  A block the cloud does not reach had nothing to fill, so its image
was the cloudy date's own and was normalised with the cloudy date's statistics: the blocks of one
scene differed from each other and from the whole-scene run."""

from __future__ import annotations

import numpy as np
from test_review_fill_before import Card, _series

from changedetect._detect_engine import _scene_stats
from changedetect._fill_before import FILLED_ATTR, fill_before
from changedetect._pipeline_blocks import SceneStats


def _whole(image: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(_scene_stats(lambda w: np.asarray(image[:, w.slices[0], w.slices[1]]), image.shape[1:], Card()))


def test_a_block_without_cloud_takes_the_filled_scenes_statistics() -> None:
    stack = _series()  # the middle date has no data on rows 24-48
    whole = _whole(fill_before(stack, 1).image.values)
    clear = fill_before(stack.isel(y=slice(0, 20)), 1)  # a block above the cloud: nothing to fill there
    assert clear.source is None
    assert clear.image.attrs[FILLED_ATTR] == ("2024-01-15",)  # what it may be filled from, as the scene
    got = SceneStats(stack)(clear.image, [0, 1, 2, 3], Card())
    cloudy = _whole(stack.values[1])
    assert not np.array_equal(whole[0], cloudy[0])  # the two differ on this scene
    for a, b in zip(whole, got, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_date_with_nothing_to_fill_from_is_not_marked() -> None:
    stack = _series()
    assert FILLED_ATTR not in fill_before(stack, 0).image.attrs  # no earlier date
    assert FILLED_ATTR not in fill_before(stack, 1, sources=[2]).image.attrs  # only a later one allowed
