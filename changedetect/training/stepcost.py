"""CPU cost of one training step of each shipped recipe on this machine.

``python -m changedetect.training.stepcost [CONFIG ...]`` prints, per config, the CPU time
to synthesise/crop one training sample and the wall and CPU time of a few optimisation
steps of one batch (torch with 2 threads).  Divide the CPU time by the number of cores
to estimate the wall time of a training run on an idle machine.  Needs the training
cache or ``../shared/data``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from changedetect.nn import get_model
from changedetect.training.config import TrainConfig
from changedetect.training.loaders import S2Pairs, VhrPairs, load_data, split
from changedetect.training.train import loss_fn

DEFAULT = ["models/s2-urban/train.toml", "models/vhr-building/train.toml"]


def step_cost(path: Path, *, steps: int = 3) -> dict[str, float]:
    """``{"data_cpu_ms_per_sample", "step_cpu_s", "step_wall_s", "batch"}`` of one config."""
    cfg = TrainConfig.from_toml(path)
    parts = split(cfg, *load_data(cfg))
    if cfg.task == "s2":
        ds: torch.utils.data.Dataset = S2Pairs(parts["train_pairs"], cfg, length=10**6, seed=0)
    else:
        ds = VhrPairs(parts["train_images"], parts["train_pairs"], cfg, length=10**6, seed=0)
    t = time.process_time()
    batch = [ds[i] for i in range(cfg.batch_size)]
    data_ms = (time.process_time() - t) / cfg.batch_size * 1000
    a, b, y = (torch.stack(x) for x in zip(*batch, strict=True))
    model = get_model(cfg.arch, in_channels=len(cfg.bands), **cfg.arch_kwargs)
    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    walls, cpus = [], []
    for _ in range(steps):
        w, c = time.time(), time.process_time()
        loss = loss_fn(model(a, b), y, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        walls.append(time.time() - w)
        cpus.append(time.process_time() - c)
    return {"batch": cfg.batch_size, "data_cpu_ms_per_sample": round(data_ms, 1),
            "step_cpu_s": round(min(cpus), 2), "step_wall_s": round(min(walls), 2)}


def main(argv: list[str] | None = None) -> None:
    torch.set_num_threads(2)
    for p in (argv if argv is not None else sys.argv[1:]) or DEFAULT:
        print(p, step_cost(Path(p)))


if __name__ == "__main__":
    main()
