"""``changedetect train``: train a change-detection model (seeded, checkpointed, resumable)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from changedetect.cli.options import (
    check_device,
    check_writable,
    out_path_opt,
    overwrite_opt,
    quiet,
)

if TYPE_CHECKING:
    from changedetect.training.config import TrainConfig


@click.command(name="train")
@click.argument("config_or_data", type=click.Path(path_type=Path, exists=True))
@out_path_opt(help="Model folder to write (weights.pt, metadata.json, MODEL_CARD.md, checkpoints/).")
@click.option("--steps", type=click.IntRange(1), help="Training steps (default: the config's).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where to train (auto: CUDA when available).")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Continue an interrupted run of the same config from OUT/checkpoints/last.pt. "
                   "OUT holding anything else (another config's run, a finished model, other files) "
                   "is refused unless --overwrite, which starts afresh.")
@click.option("--workers", type=click.IntRange(0),
              help="Data-loader worker processes (default: the config's; capped at the CPU cores).")
@click.option("--seed", type=int, help="Random seed (default: the config's).")
@click.option("--batch-size", type=click.IntRange(1), help="Samples per step (default: the config's).")
@click.option("--budget-minutes", type=click.FloatRange(0.5),
              help="Measure the data pipeline for 20 s, then choose --steps to fit this many minutes.")
@overwrite_opt
@click.pass_context
def command(ctx: click.Context, config_or_data: Path, out: Path, steps: int | None, device: str,
            resume: bool, workers: int | None, seed: int | None, batch_size: int | None,
            budget_minutes: float | None, overwrite: bool) -> None:
    """Train a model from a TOML config (or a data folder, with the shipped model's config).

    CONFIG_OR_DATA is a training config such as models/vhr-building/train.toml, or a
    data folder: ../shared/data/oscd trains an s2-urban-like model, any other folder
    (holding buildings/) a vhr-building-like one.  A run is seeded; checkpoints go to
    OUT/checkpoints every few hundred steps and an interrupted run resumes from them
    when the same command is run again.  A non-empty OUT that is not an interrupted
    run of this config is refused unless --overwrite (which starts afresh).

    \b
    Examples:
      changedetect train models/vhr-building/train.toml --out runs/vhr --steps 1500 --workers 2
      changedetect train models/s2-urban/train.toml --out runs/s2 --device cuda
      changedetect train ../shared/data/oscd --out runs/s2-default --steps 500
    """
    from dataclasses import replace

    from changedetect.training.outdir import prepare_out
    from changedetect.training.train import measure_throughput, train

    if device != "auto":
        check_device(device)  # before any data is read
    check_writable(out, folder=True)
    config = _config(config_or_data, out)
    overrides: dict[str, Any] = {k: v for k, v in {"steps": steps, "workers": workers, "seed": seed,
                                   "batch_size": batch_size}.items() if v is not None}
    config = replace(config, **overrides)
    resuming = prepare_out(config, out, overwrite=overwrite, resume=resume,
                           any_steps=budget_minutes is not None)
    if resuming is not None:
        reached, total = resuming
        config = replace(config, steps=total)
        if not quiet(ctx):
            click.echo(f"resuming the interrupted run in {out} at step {reached} of {total} "
                       "(--overwrite starts afresh)", err=True)
    elif budget_minutes is not None:
        rate = measure_throughput(config)
        n = max(1, int(budget_minutes * 60 * rate / config.batch_size))
        click.echo(f"data pipeline: {rate:.1f} samples/s -> {n} steps of {config.batch_size} "
                   f"in {budget_minutes} min")
        config = replace(config, steps=n)
    argv = ["changedetect", "train", str(config_or_data), "--out", str(out), "--steps", str(config.steps),
            "--seed", str(config.seed), "--batch-size", str(config.batch_size), "--device", device]
    card = train(config, out=out, resume=resuming is not None,
                 progress=not quiet(ctx), device=device, command=shlex.join(argv))
    if card is None:
        click.echo(f"stopped early; continue with the same command (checkpoint in {out / 'checkpoints'})")
        return
    click.echo(f"wrote {out} ({card.name} {card.version}, sha256 {card.sha256[:12]}...)")
    for name, m in card.metrics.items():
        if isinstance(m, dict) and "f1" in m:
            click.echo(f"  {name}: F1 {m['f1']:.3f} (P {m['precision']:.3f}, R {m['recall']:.3f}; "
                       f"'everything changed' floor {m['floor_f1']:.3f}; {m['n_images']} images)")


def _config(path: Path, out: Path) -> TrainConfig:
    from dataclasses import replace

    from changedetect.errors import ConfigError
    from changedetect.training.config import TrainConfig

    if path.is_file():
        return TrainConfig.from_toml(path)
    is_oscd = (path / "images").is_dir() and (path / "labels").is_dir()
    if not (is_oscd or path.name == "buildings" or (path / "buildings").is_dir() or (path / "oscd").is_dir()):
        tomls = sorted(path.glob("*.toml"))
        hint = f"; did you mean {', '.join(map(str, tomls))}?" if tomls else ""
        raise ConfigError(f"'{path}' is neither a training config (a .toml file) nor a data folder (one holding "
                          f"buildings/ or oscd/, or an OSCD-style root with images/ and labels/){hint}")
    name = "s2-urban" if is_oscd or (path / "oscd").is_dir() and not (path / "buildings").is_dir() \
        else "vhr-building"
    from changedetect.training.config import cache_dir
    from changedetect.weights import shipped_dir

    shipped = shipped_dir() / name / "train.toml"
    cfg = TrainConfig.from_toml(shipped) if shipped.is_file() else TrainConfig(name=name)
    import hashlib

    # the folder that holds oscd/ (or buildings/); an OSCD-style root of another name is read as it is
    root = (path.parent if (is_oscd and path.name == "oscd") or path.name == "buildings" else path).resolve()
    # the cache holds licensed data: keep it in the git-ignored .cache_train/, never beside the model
    key = hashlib.sha1(str(root).encode()).hexdigest()[:8]
    cache = cache_dir() / f"{name}-{key}.npz"
    return replace(cfg, data_root=str(root), cache=str(cache))
