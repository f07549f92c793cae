"""Stand-ins shared by several test modules (imported as ``from _fakes import ...``: pytest puts
``tests/`` on ``sys.path``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr


@dataclass
class DiffPredictor:
    """A :class:`changedetect.evaluate.Predictor` whose probability is the mean absolute difference
    of the two dates / 255: deterministic and checkable by hand."""

    name: str = "diff"
    bands: tuple[str, ...] | None = None
    threshold: float = 0.5

    def __call__(self, before: xr.DataArray, after: xr.DataArray) -> np.ndarray:
        return np.abs(after.values - before.values).mean(axis=0) / 255.0


def textured_scene(y: np.ndarray, x: np.ndarray, band: int) -> np.ndarray:
    """A textured scene (roofs in three colours, streets, noise) at integer coordinates ``y``, ``x``:
    band 0, 1 or 2 of it, float32 (the co-registration tests read it shifted)."""
    cells = (np.floor(x / 17) * 7 + np.floor(y / 13) * 13) % 5
    noise = np.modf(np.sin(y * 12.9898 + x * 78.233) * 43758.5453)[0]
    value = 100 + 40 * np.sin(x / 5.3) * np.cos(y / 7.1) + 30 * cells + 10 * np.abs(noise)
    colour = ((np.floor(x / 23) + np.floor(y / 19)) % 3) * 20
    return (value + colour if band == 0 else value if band == 1 else 0.8 * value - colour).astype(np.float32)


def run_quietly(root: Path, stack: xr.DataArray, tiles: Path, *, window: int, overlap: int = 16) -> tuple[Path, str]:
    """``changedetect -q run`` of the tiles written from ``stack`` into ``tiles`` with a one-permit
    register and a random model under ``root`` (``window``, ``overlap``: its detection windows): the
    output folder and what the command printed; the run must succeed."""
    import dataclasses

    from click.testing import CliRunner

    from changedetect.cli import cli
    from changedetect.config import PipelineConfig
    from changedetect.testing import make_footprints, make_model, make_permits

    make_permits(make_footprints(stack).iloc[:1]).to_file(root / "permits.gpkg")
    config = PipelineConfig().with_model(str(make_model(root / "tiny-model")))
    config = dataclasses.replace(config, detect=dataclasses.replace(config.detect, window=window, overlap=overlap))
    (root / "run.toml").write_text(config.to_toml(), encoding="utf-8")
    out = root / "out"
    result = CliRunner().invoke(cli, ["-q", "run", str(tiles), "--permits", str(root / "permits.gpkg"),
                                      "--config", str(root / "run.toml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.stdout
