"""``make_predictor(config=...)`` takes a dict of DetectConfig's fields, as detect_pair, detect_series
and vectorize do (H120's leftover): it was read as a DetectConfig and failed inside dataclasses.replace."""

from __future__ import annotations

import pytest

from changedetect.errors import ConfigError
from changedetect.evaluate import make_predictor


def test_a_dict_configures_the_model_run() -> None:
    pred = make_predictor("vhr-building", config={"tta": True, "window": 128, "overlap": 16})
    assert (pred.config.tta, pred.config.window, pred.config.overlap) == (True, 128, 16)
    assert pred.config.model == "vhr-building"


def test_an_unknown_key_is_one_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"make_predictor's config: unknown key 'detect.windw' \(did you mean "
                                          r"'window'\?\)"):
        make_predictor("vhr-building", config={"windw": 128})


def test_anything_else_is_a_type_error_saying_what_it_takes() -> None:
    with pytest.raises(TypeError, match="make_predictor's config must be a DetectConfig or a dict of its fields"):
        make_predictor("vhr-building", config=[("tta", True)])
