"""The model folder a training run writes: is it new, an interrupted run to resume, or someone else's?

``changedetect train --out DIR`` writes ``weights.pt``, ``metadata.json``, ``MODEL_CARD.md``,
``train_log.jsonl`` and ``checkpoints/last.pt`` into ``DIR``.  :func:`prepare_out` decides,
before any data is read, what to do with ``DIR``:

- absent or empty (empty sub-folders aside), or holding only what a run stopped before its first
  checkpoint leaves (its first log line): a fresh run;
- it holds an interrupted run of the same config (``checkpoints/last.pt`` with the same
  settings; ``workers`` may differ): resume it (the documented default);
- anything else (another config's checkpoint, a finished model, other files): refused with
  :class:`~changedetect.errors.OutputExistsError` unless ``overwrite``, which starts afresh.

So a model card is never rewritten with a seed or a command other than the ones its
weights were trained with.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from changedetect.errors import OutputExistsError
from changedetect.training.config import TrainConfig

#: Config keys a resumed run may change: they do not change the weights.
FREE_KEYS = frozenset({"workers"})
#: Files of a run that a fresh start must not inherit (the model files are replaced at the end).
RUN_STATE = ("checkpoints/last.pt", "checkpoints/last.tmp", "train_log.jsonl")


def config_differences(made: dict[str, Any], config: TrainConfig) -> list[str]:
    """``"key: <checkpoint's> there, <this> here"`` for each setting that changes the weights."""
    now = config.to_dict()
    keys = sorted((set(made) | set(now)) - FREE_KEYS)
    return [f"{k}: {_short(made.get(k))} there, {_short(now.get(k))} here" for k in keys
            if made.get(k) != now.get(k)]


def prepare_out(config: TrainConfig, out: Path, *, overwrite: bool = False, resume: bool = True,
                any_steps: bool = False) -> tuple[int, int] | None:
    """What to do with the model folder ``out`` (see the module docstring).

    Parameters
    ----------
    config
        The run about to start.
    out
        The model folder.
    overwrite
        Start afresh whatever ``out`` holds: its checkpoint and training log are removed
        now, its model files replaced when the run ends; other files are left alone.
    resume
        Continue an interrupted run of the same config (``False``: such a run is refused
        unless ``overwrite``).
    any_steps
        The step count is not fixed yet (``--budget-minutes``): an interrupted run of the
        same config but another step count is resumed with its own.

    Returns
    -------
    tuple of int or None
        ``(step reached, steps of the run)`` of the interrupted run to resume; ``None``
        for a fresh start.

    Raises
    ------
    OutputExistsError
        ``out`` is a file, or holds something other than an interrupted run of this
        config and ``overwrite`` is false.
    """
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"'{out}' is a file; --out takes a model folder")
    if not _has_files(out):
        return None
    if overwrite:  # a fresh start: train() clears the old run's state once its data are loaded
        return None
    last = out / "checkpoints" / "last.pt"
    if not last.is_file() and _stopped_before_its_first_checkpoint(out):
        return None
    if not last.is_file():
        what = "already holds a trained model" if (out / "weights.pt").is_file() else "is not empty"
        raise OutputExistsError(f"'{out}' {what} (no interrupted training run to resume); "
                                "pass --overwrite to replace it, or choose another folder")
    state = _checkpoint(last)
    made, step = dict(state.get("config", {})), int(state.get("step", 0))
    steps = int(made.get("steps", -1))
    diff = config_differences(made, _with_steps(config, steps) if any_steps else config)
    if diff:
        hint = f" (resume it with --steps {steps})" if diff[0].startswith("steps:") and len(diff) == 1 else ""
        raise OutputExistsError(f"'{out}' holds a training run of another config{hint}: {'; '.join(diff)}; "
                                "pass --overwrite to replace it and start afresh, or choose another folder")
    if step >= steps and _card_matches(out, made):
        raise OutputExistsError(f"'{out}' already holds the finished model of this run; "
                                "pass --overwrite to train it again, or choose another folder")
    if not resume:
        raise OutputExistsError(f"'{out}' holds an interrupted run of this config (step {step} of {steps}); "
                                "run without --no-resume to continue it, or pass --overwrite to replace it")
    return step, steps


def run_state_files(out: Path) -> list[Path]:
    """The files of ``out`` that belong to a run's state, not to its model: :data:`RUN_STATE`, and the
    temporary files a killed checkpoint save or log trim left (``.last.tmp-XXXXXXXX.pt``)."""
    from changedetect.io.atomic import is_temp_name

    named = [out / name for name in RUN_STATE if (out / name).is_file()]
    temps = [p for p in (*out.glob(".train_log.tmp-*"), *(out / "checkpoints").glob(".last.tmp-*")) if is_temp_name(p)]
    return named + temps


def _stopped_before_its_first_checkpoint(out: Path) -> bool:
    """Whether ``out`` holds nothing but what a run stopped before its first checkpoint was saved leaves (the
    first log line, the checkpoint's temporary file when the run was killed): nothing to resume, nobody's
    model to keep, so a fresh start (which removes them) rather than a refusal."""
    state = set(run_state_files(out))
    return all(p in state for p in out.rglob("*") if p.is_file() or p.is_symlink())


def _has_files(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() or p.is_symlink() for p in folder.rglob("*"))


def _checkpoint(path: Path) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file: not a run we can resume
        raise OutputExistsError(f"checkpoint '{path}' cannot be read ({type(exc).__name__}); "
                                "pass --overwrite to replace the folder and start afresh") from exc
    if not isinstance(state, dict):
        raise OutputExistsError(f"'{path}' is not a training checkpoint; pass --overwrite to start afresh")
    return state


def _with_steps(config: TrainConfig, steps: int) -> TrainConfig:
    from dataclasses import replace

    return replace(config, steps=steps) if steps >= 1 else config


def _card_matches(out: Path, made: dict[str, Any]) -> bool:
    """Whether ``out/metadata.json`` is the card of the run the checkpoint belongs to."""
    try:
        card = json.loads((out / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    recorded = card.get("training", {}).get("config") if isinstance(card, dict) else None
    if not isinstance(recorded, dict) or not (out / "weights.pt").is_file():
        return False
    skip = FREE_KEYS | {"data_root", "cache"}
    plain = json.loads(json.dumps({k: v for k, v in made.items() if k not in skip}))
    return plain == {k: v for k, v in recorded.items() if k not in skip}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


__all__ = ["config_differences", "prepare_out"]
