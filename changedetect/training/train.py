"""The training loop: seeded, checkpointed, resumable; writes a model folder with its card.

``train(config, out=...)`` reads the data (or its cache), trains with AdamW and a
one-cycle schedule on ``BCE(pos_weight) + Dice``, saves a checkpoint every
``checkpoint_every`` steps to ``out/checkpoints/last.pt`` (a later call resumes from it),
evaluates on the held-out sets every checkpoint (logged to ``out/train_log.jsonl``), and
at the end writes ``weights.pt``, ``metadata.json`` and ``MODEL_CARD.md`` into ``out``
with the held-out metrics and the "everything changed" floor.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

from changedetect.errors import ConfigError
from changedetect.nn import count_parameters, get_model
from changedetect.training import datasets as ds
from changedetect.training.config import TrainConfig
from changedetect.training.loaders import (
    S2Pairs,
    VhrPairs,
    load_data,
    normalise,
    split,
    synth_normalised,
)
from changedetect.training.metrics import Counts, confusion_counts, floor_scores, scores
from changedetect.training.outdir import config_differences, run_state_files
from changedetect.training.synth import make_pair
from changedetect.weights import ModelCard, apply_transform, compute_stats, save_model

log = logging.getLogger(__name__)


def resolve_device(device: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def loss_fn(logits: torch.Tensor, target: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """``BCE(pos_weight) + dice_weight * (1 - soft Dice)`` over the batch.

    With ``cfg.hard_pos_boost > 0`` each changed pixel's BCE term is weighted
    ``1 + hard_pos_boost * (1 - p)**2`` (``p`` detached): missed positives count more.
    """
    pw = torch.tensor(cfg.pos_weight, device=logits.device)
    p = torch.sigmoid(logits.float())
    weight = None
    if cfg.hard_pos_boost > 0:
        weight = 1 + cfg.hard_pos_boost * target * (1 - p.detach()) ** 2
    bce = F.binary_cross_entropy_with_logits(logits.float(), target, weight=weight, pos_weight=pw)
    dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
    return bce + cfg.dice_weight * dice


def data_workers(asked: int) -> int:
    """``asked`` data-loader workers, capped at the CPU cores this process may use.

    More workers than cores only slow the run down (torch warns "will create N worker
    processes ... suggested max number of worker in current system is M"); the cap is
    logged once.  Samples do not depend on the number of workers.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if asked > cores:
        log.info("using %d data-loader workers, not %d: this machine has %d CPU cores", cores, asked, cores)
        return cores
    return asked


# -- evaluation ---------------------------------------------------------------------------
def _predict(module: torch.nn.Module, a: np.ndarray, b: np.ndarray, device: torch.device) -> np.ndarray:
    with torch.inference_mode():
        ta = torch.from_numpy(a)[None].to(device)
        tb = torch.from_numpy(b)[None].to(device)
        return torch.sigmoid(module(ta, tb))[0, 0].float().cpu().numpy()


def validation_sets(cfg: TrainConfig, parts: dict[str, list]) -> dict[str, list[tuple[np.ndarray, ...]]]:
    """Normalised held-out pairs ``(a, b, label)`` per set name (fixed, seeded)."""
    from changedetect.training.loaders import band_index

    sets: dict[str, list[tuple[np.ndarray, ...]]] = {}
    if cfg.task == "vhr" and parts["val_images"]:
        vd = VhrPairs(parts["val_images"], [], cfg, length=cfg.val_pairs, seed=10_000 + 0)
        items: list[tuple[np.ndarray, ...]] = []
        for k in range(cfg.val_pairs):
            rng = np.random.default_rng([99_991, k])
            p = make_pair(vd.images, rng, cfg.synth, weights=vd.weights)
            items.append((*synth_normalised(p, vd.stat_px, cfg.transform), p.label))
        sets["heldout_synth_" + "+".join(sorted({im.group for im in parts["val_images"]}))] = items
    named: dict[str, list[ds.ChangePair]] = {}
    for vp in parts["val_pairs"]:
        named.setdefault(vp.group if cfg.task == "vhr" else "heldout_cities", []).append(vp)
    if parts["levir"]:
        named["levir_samples"] = parts["levir"]
    for name, pairs in named.items():
        real: list[tuple[np.ndarray, ...]] = []
        for pair in pairs:
            ix = band_index(pair.bands, cfg.bands, cfg.band_aliases)
            a = apply_transform(pair.before[ix].astype(np.float32), cfg.transform)
            b = apply_transform(pair.after[ix].astype(np.float32), cfg.transform)
            real.append((normalise(a, compute_stats(a)), normalise(b, compute_stats(b)), pair.label))
        sets[name] = real
    return sets


def evaluate_sets(module: torch.nn.Module, sets: dict[str, list[tuple[np.ndarray, ...]]],
                  device: torch.device, threshold: float) -> dict[str, dict[str, Any]]:
    """Pooled scores and the floor of every set."""
    was_training = module.training
    module.eval()
    out: dict[str, dict[str, Any]] = {}
    for name, items in sets.items():
        total = Counts()
        for a, b, lab in items:
            total = total + confusion_counts(_predict(module, a, b, device) >= threshold, lab)
        s = scores(total)
        s["floor_f1"] = floor_scores(total)["f1"]
        s["changed_fraction"] = (total.tp + total.fn) / max(total.total, 1)
        s["n_images"] = len(items)
        out[name] = {k: round(v, 4) if isinstance(v, float) else v for k, v in s.items()}
    module.train(was_training)
    return out


# -- the loop -----------------------------------------------------------------------------
def train(config: TrainConfig, *, out: str | os.PathLike[str], resume: bool = True, progress: bool = True,
          device: Literal["auto", "cpu", "cuda"] | str = "auto", command: str = "",
          stop_after: int | None = None) -> ModelCard | None:
    """Train a model and write ``out/{weights.pt, metadata.json, MODEL_CARD.md}``.

    Parameters
    ----------
    config
        The run (:class:`~changedetect.training.config.TrainConfig`).
    out
        Model folder; ``out/checkpoints/`` holds the resumable state.
    resume
        Continue from ``out/checkpoints/last.pt`` when it exists.
    progress
        Show a tqdm bar.
    device
        ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
    command
        The command line that started the run, recorded in the card.
    stop_after
        Stop at this step (after saving a checkpoint) without writing the model, to
        continue later with ``resume=True``; ``None`` trains to ``config.steps``.

    Returns
    -------
    ModelCard or None
        The card written to ``out/metadata.json``; ``None`` when stopped early.

    Raises
    ------
    ConfigError
        When resuming from a checkpoint made with another config (another number of
        steps, seed, ...; ``workers`` may differ).  The card then always records the
        seed and the command that started the run (a resuming command is listed under
        ``resumed_with``), never those of a later call.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    ckdir = out / "checkpoints"
    if config.task == "vhr" and len(config.bands) != 3:  # (the network would fail on the first batch)
        raise ConfigError(f"task 'vhr' trains on RGB images: 'bands' must name 3 bands (e.g. "
                          f"[\"red\", \"green\", \"blue\"]), got {list(config.bands)}")
    dev = resolve_device(device)
    _check_model(config)
    torch.manual_seed(config.seed)
    images, pairs = load_data(config)
    parts = split(config, images, pairs)
    sets = validation_sets(config, parts)
    if not resume:  # a fresh start (--overwrite): an older run's checkpoint and log go only now, once the
        # data are loaded, so that a start that fails keeps them
        for stale in run_state_files(out):
            stale.unlink(missing_ok=True)
    bs = config.batch_size
    if config.task == "vhr":
        data: torch.utils.data.Dataset = VhrPairs(parts["train_images"], parts["train_pairs"], config,
                                                  length=config.steps * bs, seed=config.seed)
    else:
        data = S2Pairs(parts["train_pairs"], config, length=config.steps * bs, seed=config.seed)
    model = get_model(config.arch, in_channels=len(config.bands), **config.arch_kwargs).to(dev)
    if dev.type == "cpu":  # oneDNN convolutions are several times faster in channels-last
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=config.steps,
                                                pct_start=0.15)
    step, history, commands, spent, resumed_loss = 0, [], [command] if command else [], 0.0, 0.0
    last = ckdir / "last.pt"
    if config.init_from and not (resume and last.is_file()):
        from changedetect.weights import load_model

        start = load_model(config.init_from, fold_bn=False, channels_last=False)
        model.load_state_dict(start.module.state_dict())
        log.info("starting from the weights of %s (sha256 %s)", config.init_from, start.card.sha256)
    if resume and last.is_file():
        state = torch.load(last, map_location=dev, weights_only=False)
        made_for = state.get("config", {}).get("steps")
        if made_for != config.steps:
            raise ConfigError(f"checkpoint '{last}' belongs to a run of {made_for} steps, not "
                              f"{config.steps}: resume with --steps {made_for}, or start afresh "
                              "with --overwrite")
        diff = config_differences(state.get("config", {}), config)
        if diff:
            raise ConfigError(f"checkpoint '{last}' was made with another config ({'; '.join(diff)}): "
                              "resume with the same settings, or start afresh with --overwrite")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        step, history = int(state["step"]), list(state.get("history", []))
        made_by = list(state.get("commands", []))
        commands = made_by + [c for c in commands if c not in made_by]
        spent = float(state.get("seconds", 0.0))
        resumed_loss = float(state.get("run_loss", 0.0))  # the running loss goes on, not from 0
        log.info("resuming from step %d", step)
    sampler = range(step * bs, config.steps * bs)
    workers = data_workers(config.workers)
    loader = DataLoader(data, batch_size=bs, sampler=sampler, num_workers=workers,
                        pin_memory=dev.type == "cuda", drop_last=False,
                        persistent_workers=workers > 0,
                        prefetch_factor=4 if workers > 0 else None)
    amp = dev.type == "cuda"
    ckdir.mkdir(parents=True, exist_ok=True)
    kept = () if step == 0 else (last, out / "train_log.jsonl")  # a fresh run: no log lines of an earlier one
    for stale in run_state_files(out):  # nor what a killed run left (a half-written checkpoint's temporary file)
        if stale not in kept:
            stale.unlink(missing_ok=True)
    if step > 0:  # a run stopped between a log line and its checkpoint: the steps redone are logged again
        _trim_log(out / "train_log.jsonl", step)
    model.train()
    t0, run_loss = time.time() - spent, resumed_loss
    bar = tqdm(total=config.steps, initial=step, disable=not progress, desc=f"train {config.name}")
    batches = iter(loader)
    try:  # the bar closed before an interruption is said (Ctrl-C: its line came after "Interrupted.")
        for a, b, y in batches:
            a, b, y = (t.to(dev, non_blocking=True) for t in (a, b, y))
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(a, b)
            loss = loss_fn(logits, y, config)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            step += 1
            value = float(loss.detach())
            run_loss = 0.98 * run_loss + 0.02 * value if step > 1 else value
            bar.update(1)
            bar.set_postfix(loss=f"{run_loss:.3f}")
            if step % config.checkpoint_every == 0 or step == config.steps:
                rec = {"step": step, "loss": round(run_loss, 4), "seconds": round(time.time() - t0, 1),
                       "eval": evaluate_sets(model, sets, dev, config.threshold)}
                history.append(rec)
                _append_log(out / "train_log.jsonl", rec)
                _save_checkpoint(last, model, opt, sched, step, history, config, commands, time.time() - t0,
                                 run_loss)
                log.info("step %d: %s", step, json.dumps(rec["eval"]))
            if stop_after is not None and step >= stop_after:
                if step % config.checkpoint_every:
                    _save_checkpoint(last, model, opt, sched, step, history, config, commands, time.time() - t0,
                                     run_loss)
                bar.close()
                log.info("stopped at step %d; resume to continue", step)
                return None
    finally:
        bar.close()
        _stop_workers(batches)
    model.eval()
    final = evaluate_sets(model, sets, dev, config.threshold)
    card = _card(config, final, history, dev, commands, count_parameters(model), time.time() - t0)
    card = save_model(model, card, out)
    log.info("wrote %s (sha256 %s)", out, card.sha256)
    return card


def _stop_workers(batches: Any) -> None:
    """Shut the data loader's worker processes down now rather than in its ``__del__`` at exit: when the
    SIGTERM of ``systemctl stop`` or ``timeout`` (sent to the whole process group) had killed them too, torch's
    SIGCHLD handler raised 'DataLoader worker (pid N) is killed by signal: Terminated.' there, which Python
    printed with its traceback ('Exception ignored in ...') after the CLI's 'Terminated.'."""
    shutdown = getattr(batches, "_shutdown_workers", None)  # (none without workers)
    if shutdown is not None:
        with contextlib.suppress(Exception):  # that RuntimeError: the workers' pids are forgotten all the same
            shutdown()


def measure_throughput(config: TrainConfig, *, seconds: float = 20.0) -> float:
    """Training samples per second the data pipeline delivers with ``config.workers`` workers."""
    images, pairs = load_data(config)
    parts = split(config, images, pairs)
    n = 10_000
    if config.task == "vhr":
        data: torch.utils.data.Dataset = VhrPairs(parts["train_images"], parts["train_pairs"], config,
                                                  length=n, seed=config.seed + 7)
    else:
        data = S2Pairs(parts["train_pairs"], config, length=n, seed=config.seed + 7)
    workers = data_workers(config.workers)
    loader = DataLoader(data, batch_size=config.batch_size, num_workers=workers,
                        prefetch_factor=2 if workers > 0 else None)
    count, t0, t_first = 0, time.time(), None
    for a, _, _ in loader:
        if t_first is None:  # skip worker start-up
            t_first, count = time.time(), 0
            continue
        count += a.shape[0]
        if time.time() - t_first > seconds:
            break
    return count / max(time.time() - (t_first or t0), 1e-6)


def _check_model(config: TrainConfig) -> None:
    """An unknown ``arch`` / ``arch_kwargs`` or ``init_from`` named before the data are read (a first run
    builds its cache from ``data_root`` first); the global random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        get_model(config.arch, in_channels=len(config.bands), **config.arch_kwargs)
    if config.init_from:
        from changedetect.weights import find_model

        find_model(config.init_from)


def _save_checkpoint(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any,
                     step: int, history: list[dict[str, Any]], config: TrainConfig, commands: list[str],
                     seconds: float, run_loss: float) -> None:
    from changedetect.io.atomic import atomic_path

    # a temporary file removed again when the save is interrupted (Ctrl-C, SIGTERM) or fails (a full disk):
    # before, a half-written checkpoints/last.tmp stayed, and one left by the first save made the folder
    # 'not empty' to the next run
    with atomic_path(path, overwrite=True) as tmp:
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "step": step, "history": history, "config": config.to_dict(), "commands": commands,
                    "seconds": seconds, "run_loss": run_loss}, tmp)


def _trim_log(path: Path, step: int) -> None:
    """Keep the log lines of steps up to ``step`` (the checkpoint's), written to a temporary file and renamed."""
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [ln for ln in lines if _log_step(ln) <= step]
    if kept != lines:
        from changedetect.io.atomic import atomic_path

        with atomic_path(path, overwrite=True) as tmp:
            tmp.write_text("".join(kept), encoding="utf-8")


def _log_step(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (ValueError, AttributeError, TypeError):
        return 1 << 62  # a line cut by the interruption: dropped


def _append_log(path: Path, rec: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")


def _card(cfg: TrainConfig, final: dict[str, Any], history: list[dict[str, Any]], dev: torch.device,
          commands: list[str], n_params: int, seconds: float) -> ModelCard:
    # checkpoint noise: the spread of each set's F1 over the last three evaluations
    noise = {}
    for name in final:
        f1s = [h["eval"][name]["f1"] for h in history[-3:] if name in h.get("eval", {})]
        if len(f1s) > 1:
            noise[name] = {"f1_last_checkpoints": f1s, "f1_mean": round(float(np.mean(f1s)), 4),
                           "f1_std": round(float(np.std(f1s)), 4)}
    devname = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu"
    training = {"data": cfg.training_data, "train_groups": list(cfg.train_groups),
                "val_groups": list(cfg.val_groups), "command": commands[0] if commands else "",
                "seed": cfg.seed,
                "steps": cfg.steps, "batch_size": cfg.batch_size, "device": f"{dev.type}: {devname}",
                "torch": torch.__version__, "seconds": round(seconds, 1), "parameters": n_params,
                "config": {k: v for k, v in cfg.to_dict().items() if k not in ("data_root", "cache")}}
    if len(commands) > 1:
        training["resumed_with"] = commands[1:]
    metrics = dict(final)
    if noise:
        metrics["checkpoint_noise"] = noise
    return ModelCard(name=cfg.name, version=cfg.version, arch=cfg.arch, bands=tuple(cfg.bands),
                     arch_kwargs=dict(cfg.arch_kwargs), band_aliases=dict(cfg.band_aliases),
                     normalization={"kind": "per_image_standardize", "clip_percentiles": [1.0, 99.0],
                                    **({"transform": cfg.transform} if cfg.transform != "none" else {}),
                                    "note": "each date on robust statistics of its whole scene"},
                     gsd_range_m=(float(cfg.gsd_range_m[0]), float(cfg.gsd_range_m[1])), window=cfg.window, threshold=cfg.threshold,
                     metrics=metrics, training=training, licence=cfg.licence,
                     description=cfg.description)


__all__ = ["data_workers", "evaluate_sets", "loss_fn", "measure_throughput", "resolve_device", "train",
           "validation_sets"]
