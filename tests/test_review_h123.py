"""Review of this session's commits (H123): a ``config=`` dict that holds a stage's dataclass is read
(H120's dict acceptance refused ``{"detect": DetectConfig(...)}`` as "must be a table"), and a JPEG
label with no change at all is not warned of as a 0/1 label (H118's warning)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pytest
from _fakes import DiffPredictor as _Diff
from PIL import Image

from changedetect._config_toml import stage_config
from changedetect._run_config import RunConfig
from changedetect.config import PipelineConfig
from changedetect.detect import DetectConfig
from changedetect.errors import ConfigError
from changedetect.evaluate import evaluate_detailed


def test_a_config_dict_may_hold_a_stage_s_dataclass() -> None:
    config = stage_config({"detect": DetectConfig(window=256, tta=True), "run": {"block_px": 512}},
                          PipelineConfig, call="run", table="")
    assert config.detect == DetectConfig(window=256, tta=True)
    assert config.run.block_px == 512 and config.run.halo_px == RunConfig().halo_px


def test_a_dataclass_of_another_stage_is_still_refused_naming_its_table() -> None:
    with pytest.raises(ConfigError, match=r"\[detect\]"):
        stage_config({"detect": RunConfig()}, PipelineConfig, call="run", table="")



def test_a_jpeg_label_without_change_is_not_said_to_be_a_0_1_label(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "l"
    for sub in ("A", "B", "label"):
        (root / sub).mkdir(parents=True)
    a = np.full((32, 32, 3), 60, np.uint8)
    Image.fromarray(a).save(root / "A" / "p.png")
    Image.fromarray(a).save(root / "B" / "p.png")
    buf = io.BytesIO()
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(buf, format="JPEG", quality=75)  # a 0/255 label, no change
    (root / "label" / "p.jpg").write_bytes(buf.getvalue())
    with caplog.at_level(logging.WARNING):
        result = evaluate_detailed(root, model=_Diff())
    assert result.tp + result.fn == 0
    assert not [r for r in caplog.records if "JPEG of 0/1 values" in r.getMessage()]
