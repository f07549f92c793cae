"""Training cities rendered in memory give the chips the written-and-read cities give."""

from __future__ import annotations

import numpy as np
import pytest

from changedetect.errors import DatasetError
from changedetect.training.generated import (
    SHADED_SEEDS,
    city_chips,
    city_config,
    generated_city_pairs,
)


def test_city_chips_equal_the_chips_of_the_written_city(tmp_path) -> None:
    seed = 1003  # a shaded-demolition city: both consecutive pairs and the first -> last pair
    mem = city_chips(seed, size=256, chip=96, first_last=True)
    files = (generated_city_pairs(tmp_path, [seed], size=256, chip=96)
             + generated_city_pairs(tmp_path, [seed], size=256, chip=96, first_last=True))
    assert [p.name for p in mem] == [p.name for p in files]
    assert [p.group for p in mem] == [p.group for p in files]
    assert {p.group for p in mem} == {f"gen_city_{seed}_{k}" for k in (1, 2, 13)}
    for m, f in zip(mem, files, strict=True):
        np.testing.assert_array_equal(m.before, f.before)
        np.testing.assert_array_equal(m.after, f.after)
        np.testing.assert_array_equal(m.label, f.label)
        assert (m.bands, m.gsd_m, m.meta) == (f.bands, f.gsd_m, f.meta)
    assert any(p.label.any() for p in mem)
    # without first_last: the consecutive pairs' chips alone, the same ones
    assert [p.name for p in city_chips(seed, size=256, chip=96)] == [p.name for p in files if not p.group.endswith("_13")]


def test_city_chips_refuse_the_held_out_seed_and_shade_the_new_training_seeds() -> None:
    with pytest.raises(DatasetError, match="seed 12"):
        city_chips(12)
    assert {251, 299, 1001, 1200} <= SHADED_SEEDS and not {12, 300, 301, 420, 701, 740} & SHADED_SEEDS
    assert city_config(1001).shaded_demolitions == 1.0 and city_config(101).shaded_demolitions == 0.0
