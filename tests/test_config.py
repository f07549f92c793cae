"""PipelineConfig: TOML maps one-to-one onto the frozen dataclasses."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from changedetect.config import OutputConfig, PipelineConfig, ReportConfig
from changedetect.errors import ConfigError

if TYPE_CHECKING:
    from decimal import Decimal  # for type checkers only: typing.get_type_hints cannot resolve it


@dataclasses.dataclass(frozen=True)
class _Inner:
    sigma: float = 1.0
    enabled: bool = True


@dataclasses.dataclass(frozen=True)
class _Stage:
    model: str = "m"
    window: int = 256
    bands: tuple[str, ...] = ("red", "green")
    inner: _Inner = dataclasses.field(default_factory=_Inner)
    limit: float | None = None


def _config() -> PipelineConfig:
    """A PipelineConfig with stand-in stage configs (the mechanism under test is generic)."""
    return PipelineConfig(coregister=_Stage(), detect=_Stage(), vectorize=_Stage(), match=_Stage())


def _from(data: dict, base: PipelineConfig | None = None) -> PipelineConfig:
    from changedetect._config_toml import _build

    return _build(base or _config(), data, where="test.toml", path="")


def test_values_are_coerced_and_nested() -> None:
    cfg = _from({"detect": {"window": 128, "bands": ["nir"], "inner": {"sigma": 2}, "limit": 0.5},
                 "report": {"chip_px": 99, "title": "Quận 1"}})
    assert cfg.detect.window == 128
    assert cfg.detect.bands == ("nir",)
    assert cfg.detect.inner.sigma == 2.0 and isinstance(cfg.detect.inner.sigma, float)
    assert cfg.detect.limit == 0.5
    assert cfg.report.chip_px == 99 and cfg.report.title == "Quận 1"
    assert cfg.coregister == _Stage()


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"detekt": {}}, "unknown key 'detekt'"),
        ({"detect": {"windw": 3}}, "unknown key 'detect.windw'"),
        ({"detect": {"inner": {"sgma": 3}}}, "unknown key 'detect.inner.sgma'"),
        ({"report": {"chip_px": "big"}}, "'report.chip_px' must be int"),
        ({"output": {"csv": 1}}, "'output.csv' must be true or false"),
        ({"detect": 3}, "must be a table"),
    ],
)
def test_bad_keys_and_values_name_the_key(data: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match="test.toml") as info:
        _from(data)
    assert needle in str(info.value)


def test_unknown_key_lists_allowed_keys() -> None:
    with pytest.raises(ConfigError) as info:
        _from({"report": {"colour": "red"}})
    for name in (f.name for f in dataclasses.fields(ReportConfig)):
        assert name in str(info.value)


def test_toml_round_trip_and_json(tmp_path: Path) -> None:
    cfg = _from({"detect": {"window": 64, "inner": {"enabled": False}}, "output": {"first_seen": False}})
    path = tmp_path / "run.toml"
    path.write_text(cfg.to_toml(), encoding="utf-8")
    back = _from(_toml(path))
    assert back == cfg
    json.dumps(cfg.to_dict())  # JSON-ready
    assert cfg.to_dict()["output"] == dataclasses.asdict(OutputConfig(first_seen=False))


def _toml(path: Path) -> dict:
    import tomllib

    return tomllib.loads(path.read_text(encoding="utf-8"))


def test_from_toml_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        PipelineConfig.from_toml(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[detect\nmodel = 1", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        PipelineConfig.from_toml(bad)


def test_real_stage_configs_round_trip(tmp_path: Path) -> None:
    cfg = PipelineConfig().with_model("some-model")
    assert cfg.detect.model == "some-model"
    path = tmp_path / "all.toml"
    path.write_text(cfg.to_toml(), encoding="utf-8")
    assert PipelineConfig.from_toml(path) == cfg
    with pytest.raises(ConfigError, match="unknown key 'match.nope'"):
        PipelineConfig.from_dict({"match": {"nope": 1}})


def test_false_turns_an_optional_setting_off_and_none_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "off.toml"
    path.write_text("[detect]\nseason_days = false\n[vectorize]\nmin_presence = false\n"
                    "low_threshold = false\n", encoding="utf-8")
    cfg = PipelineConfig.from_toml(path)
    assert cfg.detect.season_days is None and cfg.vectorize.min_presence is None
    assert cfg.vectorize.low_threshold is None
    assert cfg.detect.tta is False and cfg.vectorize.min_area_m2 == 10.0  # the others keep their defaults
    assert cfg.vectorize.threshold is None  # by default: the probability's own decision threshold
    again = tmp_path / "again.toml"
    again.write_text(cfg.to_toml(), encoding="utf-8")
    assert PipelineConfig.from_toml(again) == cfg  # None written as false, read back as None
    path.write_text("[detect]\ntta = false\nbatch_size = false\n", encoding="utf-8")  # not optional: an error
    with pytest.raises(ConfigError, match="batch_size"):
        PipelineConfig.from_toml(path)


@dataclasses.dataclass(frozen=True)
class _Unresolvable:
    precise: Decimal | None = None  # makes typing.get_type_hints fail for the whole class
    count: int | None = 5
    flag: bool | None = True


def test_false_is_none_for_an_optional_field_whose_annotations_cannot_be_resolved() -> None:
    """Before: `count = false` became False (0) without a word, since a bool is an int."""
    from changedetect._config_toml import _build

    assert _build(_Unresolvable(), {"count": False}, where="t.toml", path="s").count is None
    assert _build(_Unresolvable(), {"flag": False}, where="t.toml", path="s").flag is False
    assert _build(_Unresolvable(), {"count": 7}, where="t.toml", path="s").count == 7
    with pytest.raises(ConfigError, match="'s.precise' does not take true"):
        _build(_Unresolvable(), {"precise": True}, where="t.toml", path="s")


@pytest.mark.parametrize("value", [True, False])
def test_a_bool_for_an_int_setting_is_an_error(value: bool) -> None:
    """TOML's true / false are not numbers: `window = true` was taken as window = 1."""
    with pytest.raises(ConfigError, match="'detect.window' must be int"):
        _from({"detect": {"window": value}})
    with pytest.raises(ConfigError, match="'detect.season_days' must be int"):  # was season_days = 1
        PipelineConfig.from_dict({"detect": {"season_days": True}})


def test_a_wrong_type_for_an_optional_setting_names_the_key_and_the_type() -> None:
    """`window = "big"` (default None) reached DetectConfig's checks: "'<' not supported ..."."""
    with pytest.raises(ConfigError, match=r"'detect.window' must be int, got str 'big'"):
        PipelineConfig.from_dict({"detect": {"window": "big"}})
    with pytest.raises(ConfigError, match=r"'detect.threshold' must be float, got str '0.6'"):
        PipelineConfig.from_dict({"detect": {"threshold": "0.6"}})
    assert PipelineConfig.from_dict({"detect": {"window": 256, "threshold": 0.6}}).detect.window == 256
    default = PipelineConfig()
    assert PipelineConfig.from_dict(default.to_dict()) == default  # None round-trips (the nightly's path)


def test_true_for_an_optional_setting_that_is_not_a_bool_is_an_error() -> None:
    """`threshold = true` was threshold = True (1.0: nothing detected), `reference = true` the index 1."""
    with pytest.raises(ConfigError, match="'detect.threshold' does not take true"):
        PipelineConfig.from_dict({"detect": {"threshold": True}})
    with pytest.raises(ConfigError, match="'coregister.reference' does not take true"):
        PipelineConfig.from_dict({"coregister": {"reference": True}})
    assert PipelineConfig.from_dict({"detect": {"threshold": 0.4}}).detect.threshold == 0.4


def test_to_toml_writes_a_setting_unset_by_default_as_a_comment_not_as_false(tmp_path: Path) -> None:
    """`threshold = false` read as "threshold off" to users printing the template; a setting that is
    None as its default is a commented line (a missing key is its default), and one turned off
    against a default (season_days) stays `false`."""
    cfg = PipelineConfig()
    cfg = dataclasses.replace(cfg, detect=dataclasses.replace(cfg.detect, season_days=None))
    text = cfg.to_toml()
    lines = text.splitlines()
    assert "# threshold = (unset: its default applies)" in lines and "threshold = false" not in lines
    assert "season_days = false" in lines  # None against a default of 45: off
    assert "tta = false" in lines  # a boolean stays a boolean
    path = tmp_path / "template.toml"
    path.write_text(text, encoding="utf-8")
    assert PipelineConfig.from_toml(path) == cfg
