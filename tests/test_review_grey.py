"""Grey imagery: a panchromatic image copied into red, green and blue, fed to a colour model, is
said once per date by `detect`, `run` (through detection) and `info`."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from changedetect.cli import cli
from changedetect.testing import make_model, make_stack, write_stack


def _grey(stack):  # noqa: ANN001, ANN202
    """``stack`` with its red band copied into green and blue (a panchromatic image as RGB)."""
    return stack.copy(data=np.repeat(stack.isel(band=[0]).values, stack.sizes["band"], axis=1))


def _warnings(caplog: pytest.LogCaptureFixture, word: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and word in r.getMessage()]


# ------------------------------------------------------------------------------------------ grey
def test_looks_grey_on_copied_bands_not_on_colour_nor_on_flat() -> None:
    from changedetect._grey import looks_grey

    rng = np.random.default_rng(0)
    red = rng.normal(100, 20, (64, 64))
    assert looks_grey(np.stack([red, red, red]))
    assert looks_grey(np.stack([red, red + rng.normal(0, 0.2, red.shape), red]))  # JPEG noise: still one band
    colour = np.stack([red, 0.9 * red + rng.normal(0, 6, red.shape), 0.7 * red + 10])  # correlated, not equal
    assert not looks_grey(colour)
    assert not looks_grey(np.full((3, 64, 64), 100.0))  # flat: nothing to judge
    with_nodata = np.stack([red, red, red])
    with_nodata[:, :32] = np.nan
    assert looks_grey(with_nodata)


def test_detect_series_warns_once_per_grey_date(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from changedetect.detect import DetectConfig, detect_series

    stack = make_stack(n_dates=3, size=64, seed=1)
    stack[1] = _grey(stack)[1]  # only the second date is grey
    config = DetectConfig(model=str(make_model(tmp_path / "m")), window=64, overlap=8, presence_check=False)
    with caplog.at_level(logging.WARNING):
        detect_series(stack, config=config)
    said = _warnings(caplog, "panchromatic")
    assert len(said) == 1, said
    assert "2024-03-15" in said[0] and "red, green and blue" in said[0] and "trained on colour" in said[0]


def test_detect_to_file_warns_on_a_grey_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from changedetect.detect import DetectConfig, detect_to_file

    stack = make_stack(n_dates=2, size=64, seed=2)
    before, after = write_stack(_grey(stack), tmp_path / "tiles")
    config = DetectConfig(model=str(make_model(tmp_path / "m")), window=64, overlap=8)
    with caplog.at_level(logging.WARNING):
        detect_to_file(before, after, tmp_path / "p.tif", config=config)
    said = _warnings(caplog, "panchromatic")
    assert len(said) == 2 and f"'{before}'" in said[0] and f"'{after}'" in said[1], said


def test_colour_imagery_is_not_called_grey(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from changedetect.detect import DetectConfig, detect_to_file

    before, after = write_stack(make_stack(n_dates=2, size=64, seed=2), tmp_path / "tiles")
    config = DetectConfig(model=str(make_model(tmp_path / "m")), window=64, overlap=8)
    with caplog.at_level(logging.WARNING):
        detect_to_file(before, after, tmp_path / "p.tif", config=config)
    assert not _warnings(caplog, "panchromatic")


def test_info_says_which_date_is_grey(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    stack = make_stack(n_dates=2, size=300, seed=4)
    stack[0] = _grey(stack)[0]
    write_stack(stack, tmp_path / "tiles")
    with caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(cli, ["info", "--json", str(tmp_path / "tiles")])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert [sc["panchromatic"] for sc in info["scenes"]] == [True, False]
    said = _warnings(caplog, "panchromatic")
    assert len(said) == 1 and "2024-01-15 ('tile_20240115.tif')" in said[0] and "vhr-building" in said[0], said
