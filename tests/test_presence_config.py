"""``DatePresence(stack, segmenter)`` needs no DetectConfig, and takes a dict of its fields as the
TOML's ``[detect]`` (H120's leftover: a config was required, and a dict failed on attribute access)."""

from __future__ import annotations

import pytest

from changedetect.errors import ConfigError
from changedetect.presence import DatePresence, PresenceCheck
from changedetect.testing import make_stack


def _segmenter(before: object, after: object) -> object:  # never called: nothing is segmented here
    raise AssertionError("not called")


def test_the_defaults_without_a_config() -> None:
    dp = DatePresence(make_stack(2), _segmenter)
    assert dp.check.season_days == PresenceCheck.season_days and dp.config.model == "vhr-building"


def test_a_dict_of_detect_fields() -> None:
    dp = DatePresence(make_stack(2), _segmenter, {"season_days": 30, "window": 256})
    assert dp.check.season_days == 30 and dp.config.window == 256


def test_an_unknown_key_is_one_config_error() -> None:
    with pytest.raises(ConfigError, match=r"DatePresence's config: unknown key 'detect.season'"):
        DatePresence(make_stack(2), _segmenter, {"season": 30})
