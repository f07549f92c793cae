"""Fine-tune ``vhr-building`` variants side by side on the lent GPU machine, in one call.

The device (``device`` tool; 16 cores, one GPU, no rasterio/geopandas, a tree of at most 64 MiB
carried over, one command of at most 10 minutes) cannot read ``../shared/data`` and cannot hold
a cache of hundreds of generated cities.  So this script (1) reads a small *base* cache made here
(the real areas, the sample city and LEVIR: about 33 MB), (2) renders the configs' generated
training cities in memory on every core (``changedetect.training.generated.city_chips``: the
chips the written cities give), and (3) trains each config in its own process on the one GPU,
each with its own data-loader workers, until it ends or the deadline comes; then it tars each
model folder (a run stopped by the deadline: its last checkpoint too) into ``--out``.

Here, once (the base cache and the three wheels the device lacks go to a git-ignored folder)::

    .venv/bin/python scripts/gpu_finetune.py --make-base .devrun/vhr_base.npz models/vhr-building/train.toml
    .venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \\
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \\
        -d .devrun/whl shapely==2.2.0 pyproj==3.7.2 affine==3.0.1

then the device call (``carry: [".devrun"]``, ``timeout_s`` 595)::

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .devrun/whl/*.whl &&
    PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 python3 scripts/gpu_finetune.py scripts/gpu/run20b.toml \\
        --base .devrun/vhr_base.npz --out $OUT --deadline 548

A run the deadline stopped goes on from its checkpoint (here, on the CPU, or in a later call)::

    mkdir -p runs/w/run20b && tar -xf run20b_partial.tar -C runs/w/run20b
    .venv/bin/python scripts/gpu_finetune.py scripts/gpu/run20b.toml --base .devrun/vhr_base.npz \
        --work runs/w --out runs/gpu --device cpu --procs 2 --deadline 1e9

Run 20 (``docs/models.md``) measured about 10 steps of 16 per second per config with three
configs side by side (4 workers each) after 118 s of rendering 297 cities on 15 cores.
The configs are ordinary training configs: ``changedetect train`` runs them too once their cache
holds the cities' chips (the ``python -m changedetect.training.datasets`` commands in
``models/vhr-building/finetune.toml``, with these seeds), but its chips come in another order,
so its weights are not these. Here the order is the base cache's, then every city's consecutive
pairs by seed, then the first -> last pairs by seed.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

T0 = time.time()


def say(*msg: object) -> None:
    print(f"[{time.time() - T0:6.1f} s]", *msg, flush=True)


def city_seeds(configs: list[Any]) -> list[tuple[int, bool]]:
    """``(seed, first_last)`` of every generated city the configs' groups name, by seed."""
    groups = {g for c in configs for g in (*c.train_groups, *c.val_groups)}
    found = [re.fullmatch(r"gen_city_(\d+)_(\d+)", g) for g in groups]
    seeds = sorted({int(m[1]) for m in found if m})
    return [(s, f"gen_city_{s}_13" in groups) for s in seeds]


def _render(task: tuple[int, bool]) -> tuple[int, list[Any]]:
    from changedetect.training.generated import city_chips

    return task[0], city_chips(task[0], first_last=task[1])


def render(tasks: list[tuple[int, bool]], procs: int) -> list[Any]:
    got: dict[int, list[Any]] = {}
    with mp.get_context("fork").Pool(procs) as pool:
        for seed, chips in pool.imap_unordered(_render, tasks, chunksize=1):
            got[seed] = chips
            if len(got) % 25 == 0 or len(got) == len(tasks):
                say(f"{len(got)}/{len(tasks)} cities rendered")
    consecutive = [p for s, _ in tasks for p in got[s] if not p.group.endswith("_13")]
    return consecutive + [p for s, _ in tasks for p in got[s] if p.group.endswith("_13")]


def _train(path: str, folder: str, images: list[Any], pairs: list[Any], device: str) -> None:
    import logging

    import torch

    import changedetect.training.train as tr
    from changedetect.training.config import TrainConfig

    # a forked child must not enter the OpenMP pool of a parent that ran torch (it hangs there): one
    # intra-op thread (on the GPU the trainer's own CPU work is small; the loader has its workers)
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, filename=f"{folder}.log")
    cfg = TrainConfig.from_toml(Path(path))
    tr.load_data = lambda cfg: (images, pairs)  # the data rendered above, shared by fork
    tr.train(cfg, out=folder, resume=True, progress=False, device=device,
             command=f"python3 scripts/gpu_finetune.py {path} (cities rendered in memory; {os.cpu_count()} cores)")


def pack(folder: Path, dest: Path, partial: bool) -> Path:
    tar_path = dest / f"{folder.name}{'_partial' if partial else ''}.tar"
    with tarfile.open(tar_path, "w") as tar:
        for name in ("weights.pt", "metadata.json", "MODEL_CARD.md", "train_log.jsonl", "checkpoints/last.pt"):
            if (folder / name).is_file() and (partial or not name.startswith("checkpoints")):
                tar.add(folder / name, arcname=name)
        log = folder.with_suffix(".log")
        if log.is_file():
            tar.add(log, arcname="train.log")
    return tar_path


def make_base(out: Path, config: Path) -> None:
    """The base cache: the real and sample-city groups of ``config`` and LEVIR, read from its data root."""
    from changedetect.training import datasets as ds
    from changedetect.training import loaders
    from changedetect.training.config import TrainConfig

    cfg = TrainConfig.from_toml(config)
    images, pairs = loaders.build_data(cfg)
    ds.save_cache(out, images=images, pairs=pairs, source=loaders.cache_key(cfg))
    say(f"wrote {out}: {len(images)} images, {len(pairs)} pairs, {out.stat().st_size / 1e6:.1f} MB")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("configs", nargs="*", type=Path, help="training configs (TOML), trained side by side")
    ap.add_argument("--base", type=Path, help="base cache (.npz) made by --make-base")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "runs/gpu")))
    ap.add_argument("--deadline", type=float, default=548.0, help="seconds from the start; runs still going are stopped")
    ap.add_argument("--procs", type=int, default=max(1, (os.cpu_count() or 2) - 1), help="processes rendering cities")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--work", type=Path, default=None,
                    help="folder of the model folders (default: a new temporary one); a config whose folder "
                         "holds a checkpoint (a tar of a stopped run, unpacked into WORK/<config name>) resumes it")
    ap.add_argument("--make-base", nargs=2, type=Path, metavar=("CACHE", "CONFIG"))
    args = ap.parse_args(argv)
    if args.make_base:
        make_base(*args.make_base)
        return 0
    if not args.configs or args.base is None:
        ap.error("give the configs to train and --base CACHE (or --make-base CACHE CONFIG)")
    if not args.base.is_file():
        ap.error(f"base cache '{args.base}' not found: make it here with --make-base {args.base} "
                 "models/vhr-building/train.toml and carry it")
    from changedetect.errors import ChangeDetectError
    from changedetect.training import datasets as ds
    from changedetect.training.config import TrainConfig

    try:
        configs = [TrainConfig.from_toml(p) for p in args.configs]
    except (ChangeDetectError, OSError) as exc:
        ap.error(str(exc))
    images, pairs = ds.load_cache(args.base)
    say(f"base cache {args.base}: {len(images)} images, {len(pairs)} pairs")
    pairs = pairs + render(city_seeds(configs), args.procs)
    say(f"{len(pairs)} pairs in all")
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu_finetune_"))  # model folders; only tars go to --out
    work.mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("fork")  # the parent never touches CUDA: each child starts its own
    runs = {p: ctx.Process(target=_train, args=(str(p), str(work / p.stem), images, pairs, args.device))
            for p in args.configs}
    for proc in runs.values():
        proc.start()
    seen: dict[Path, int] = {}
    while any(p.is_alive() for p in runs.values()) and time.time() - T0 < args.deadline:
        time.sleep(5)
        for p in runs:
            log = work / p.stem / "train_log.jsonl"
            lines = log.read_text().splitlines() if log.is_file() else []
            if len(lines) > seen.get(p, 0):
                seen[p] = len(lines)
                say(p.stem, lines[-1][:400])
    failed = 0
    for p, proc in runs.items():
        partial = proc.is_alive()
        if partial:
            proc.kill()
        failed += not partial and proc.exitcode != 0
        tar = pack(work / p.stem, args.out, partial)
        say(p.stem, "stopped at the deadline" if partial else f"ended (exit {proc.exitcode})", "->", tar)
    return 1 if failed else 0  # a run the deadline stopped is not a failure: its checkpoint resumes it


if __name__ == "__main__":
    raise SystemExit(main())
