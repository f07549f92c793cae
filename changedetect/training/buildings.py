"""A single-date building segmenter, the stage between ``stage1`` and ``vhr-building`` 0.3.0.

The change network is fed one date twice (``model(x, x)``: the fusion sees ``|a - b| = 0``
and ``a + b = 2a``) and trained to outline the buildings of that date: the 444 dates of the
generated training cities (:mod:`changedetect.samplecity` seeds 101-248, 512 px, put on their
reference grid, with the generator's building masks) and the training areas' real mosaics
(fAIr/OpenAerialMap areas 1, 4, 5 and SpaceNet Rio from the ``.npz`` cache; never the
held-out areas 2 and 3, never LEVIR).  Learning what a roof looks like on one date, whatever
its colour, is what the change fine-tune then starts from (``finetune.toml``'s
``init_from``): the same fine-tune from ``stage1`` gave LEVIR F1 0.569, from this stage 0.637
(docs/models.md, runs 10 and 13).

One command (2-core CPU: about 6 minutes, plus about 1 minute to read the cities)::

    python -m changedetect.training.buildings --out models/vhr-building/buildings

Seeded; the samples and their order depend only on ``--seed``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from changedetect.errors import DatasetError
from changedetect.training.datasets import load_cache
from changedetect.training.generated import _to_reference, ensure_city
from changedetect.training.shade import shade_image

log = logging.getLogger(__name__)

TRAIN_GROUPS = ("fair_oam_1", "fair_oam_4", "fair_oam_5", "spacenet_rio")
BANDS = ("red", "green", "blue")


@dataclass(frozen=True)
class BuildingConfig:
    """How the segmenter is trained (defaults: the shipped run)."""

    init_from: str = "models/vhr-building/stage1"
    cities: str = ".cache_train/gencity"
    seeds: tuple[int, int] = (101, 248)
    size: int = 512
    cache: str = ".cache_train/vhr.npz"
    steps: int = 1500
    batch_size: int = 8
    chip: int = 256
    lr: float = 1e-3
    p_real: float = 0.3
    seed: int = 0
    threads: int = 2
    #: pixel transform before standardisation (:data:`changedetect.weights.TRANSFORMS`)
    transform: str = "none"
    #: share of chips given a deep shadow (:func:`changedetect.training.shade.shade_image`);
    #: 0 draws nothing, so the shipped run reproduces
    p_shade: float = 0.0


def dates_on_reference(tiles: Path) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """``(tag, image (3, h, w) uint8, buildings (h, w) bool)`` for each date of a generated city,
    the image put on the truth's reference grid with the generator's known misregistration."""
    import rasterio

    reg = json.loads((tiles / "truth" / "registration.json").read_text())
    for d in reg["dates"]:
        tag = d["path"].rsplit("_", 1)[-1][:8]
        with rasterio.open(tiles / f"district12_{tag}.tif") as src:
            names = [n.lower() if n else "" for n in src.descriptions]
            x = src.read([names.index(b) + 1 for b in BANDS])
        with rasterio.open(tiles / "truth" / f"buildings_{tag}.tif") as src:
            mask = src.read(1) > 0
        yield tag, _to_reference(x, d.get("misregistration")), mask


def city_dates(folder: Path, seeds: range, size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Every date of the generated cities ``seeds`` on its reference grid, and its building mask.

    Returns ``images (n, 3, h, w) uint8`` and ``masks (n, h, w) bool``; cities missing from
    ``folder`` are generated (``size`` px; 512: a few seconds each).
    """
    images, masks = [], []
    for seed in seeds:
        for _, x, mask in dates_on_reference(ensure_city(folder, seed, size)):
            images.append(x)
            masks.append(mask)
    return np.stack(images), np.stack(masks)


def train_buildings(config: BuildingConfig, out: Path, *, progress: bool = True,
                    command: str = "python -m changedetect.training.buildings --out models/vhr-building/buildings",
                    ) -> dict[str, Any]:
    """Train the segmenter and write ``out/{weights.pt, metadata.json, MODEL_CARD.md}``."""
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    from changedetect.weights import load_model, save_model

    if not Path(config.cache).is_file():
        raise DatasetError(f"training cache '{config.cache}' does not exist: it holds the real mosaics and is "
                           "written by stage 1's run (changedetect train models/vhr-building/train.toml ...)")
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    start = load_model(config.init_from, fold_bn=False, channels_last=False)
    card = replace(start.card, normalization={**start.card.normalization, "transform": config.transform})
    card.transform  # noqa: B018 (an unknown transform fails here, before the data is read)
    model = start.module.train().to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    t0 = time.time()
    gi, gm = city_dates(Path(config.cities), range(config.seeds[0], config.seeds[1] + 1), config.size)
    gstats = [card.compute_stats(x) for x in gi]
    real = [r for r in load_cache(Path(config.cache))[0]
            if r.group in TRAIN_GROUPS and min(r.image.shape[-2:]) >= config.chip]
    rstats = [card.compute_stats(r.image) for r in real]
    log.info("%d generated dates, %d real mosaics (%.0f s)", len(gi), len(real), time.time() - t0)
    rng = np.random.default_rng(config.seed)
    c = config.chip

    def sample() -> tuple[np.ndarray, np.ndarray]:
        if rng.random() < config.p_real:
            k = rng.integers(len(real))
            x, m, st = real[k].image, real[k].mask, rstats[k]
        else:
            k = rng.integers(len(gi))
            x, m, st = gi[k], gm[k], gstats[k]
        h, w = m.shape
        r0, c0 = rng.integers(0, h - c + 1), rng.integers(0, w - c + 1)
        xc, mc = x[:, r0:r0 + c, c0:c0 + c], m[r0:r0 + c, c0:c0 + c]
        if config.p_shade > 0 and rng.random() < config.p_shade:
            xc = shade_image(xc, mc, rng)
        xc, mc = card.preprocess(xc, st), mc.astype(np.float32)
        turns = int(rng.integers(4))
        xc, mc = np.rot90(xc, turns, (1, 2)), np.rot90(mc, turns)
        if rng.random() < 0.5:
            xc, mc = xc[:, :, ::-1], mc[:, ::-1]
        xc = xc * rng.uniform(0.85, 1.15, (3, 1, 1)) + rng.normal(0, 0.1, (3, 1, 1))
        return np.ascontiguousarray(xc, dtype=np.float32), np.ascontiguousarray(mc)

    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=config.steps, pct_start=0.15)
    bar = tqdm(range(config.steps), disable=not progress, desc="train buildings")
    for _ in bar:
        xs, ms = zip(*[sample() for _ in range(config.batch_size)], strict=True)
        x = torch.from_numpy(np.stack(xs)).to(memory_format=torch.channels_last)
        y = torch.from_numpy(np.stack(ms))[:, None]
        logits = model(x, x)
        p = torch.sigmoid(logits)
        loss = F.binary_cross_entropy_with_logits(logits, y) + 1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
    seconds = time.time() - t0
    training = {"command": command,
                "config": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(config).items()},
                "seconds": round(seconds, 1), "device": "cpu",
                "data": "444 dates of generated cities (seeds 101-248) with their building masks; fAIr/OpenAerialMap "
                        "areas 1, 4, 5 and SpaceNet Rio mosaics (OpenStreetMap labels, ODbL; CC BY-SA 4.0)"}
    seg_card = replace(card, name="vhr-building-buildings", version="0.3.0-buildings",
                       description="Single-date building segmenter (feed one date as both inputs): the stage "
                                   "vhr-building 0.3.0 is fine-tuned from. Not a change detector.",
                       metrics={}, training=training)
    out.mkdir(parents=True, exist_ok=True)
    save_model(model.eval(), seg_card, out)
    return {"seconds": seconds, "generated_dates": len(gi), "real_mosaics": len(real)}


def evaluate_buildings(model: str | Path, *, cache: str | Path = BuildingConfig.cache,
                       sample_tiles: str | Path = "sample_tiles") -> dict[str, dict[str, float]]:
    """Building IoU (threshold 0.5, pixels pooled per set, beside the "everything is a building"
    floor) of a segmenter on data it never saw:
    the held-out real areas (fAIr/OpenAerialMap 2 and 3, from the cache) and each date of the
    committed sample city (seed 12; each date put on the truth's grid with its known
    misregistration).  Sets whose data is absent are left out."""
    import torch

    from changedetect.weights import load_model

    seg = load_model(model, fold_bn=False, channels_last=False)
    net, card = seg.module.eval(), seg.card

    def predict(x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(card.preprocess(x, card.compute_stats(x)))[None]
        with torch.no_grad():
            return torch.sigmoid(net(t, t))[0, 0].numpy() >= 0.5

    sets: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    if Path(cache).is_file():
        for r in load_cache(Path(cache))[0]:
            if r.group in ("fair_oam_2", "fair_oam_3"):
                sets.setdefault("heldout_fair_oam_2+fair_oam_3", []).append((r.image, r.mask & r.valid))
    tiles = Path(sample_tiles)
    if (tiles / "truth" / "registration.json").is_file():
        for tag, x, mask in dates_on_reference(tiles):
            sets[f"sample_city_{tag}"] = [(x, mask)]
    out = {}
    for name, items in sets.items():
        inter = union = built = pixels = 0
        for x, truth in items:
            pred = predict(x)
            inter += int((pred & truth).sum())
            union += int((pred | truth).sum())
            built, pixels = built + int(truth.sum()), pixels + truth.size
        # floor: "everything is a building", whose IoU is the share of building pixels
        out[name] = {"iou": round(inter / max(union, 1), 4), "floor_iou": round(built / max(pixels, 1), 4),
                     "n_images": len(items)}
    return out


def _main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m changedetect.training.buildings", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="model folder to write")
    ap.add_argument("--evaluate", type=Path, metavar="MODEL_DIR",
                    help="print the building IoU of a trained segmenter on held-out data instead of training")
    ap.add_argument("--init-from", default=BuildingConfig.init_from)
    ap.add_argument("--cities", default=BuildingConfig.cities, help="folder of generated cities (seed_<n>/)")
    ap.add_argument("--cache", default=BuildingConfig.cache, help="training cache with the real mosaics")
    ap.add_argument("--steps", type=int, default=BuildingConfig.steps)
    ap.add_argument("--seed", type=int, default=BuildingConfig.seed)
    ap.add_argument("--transform", default=BuildingConfig.transform, choices=["none", "sqrt"],
                    help="pixel transform before standardisation (default: %(default)s)")
    ap.add_argument("--p-shade", type=float, default=BuildingConfig.p_shade,
                    help="share of chips given a deep shadow (default: %(default)s)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.evaluate is not None:
        print(json.dumps(evaluate_buildings(args.evaluate, cache=args.cache), indent=1))
        return
    if args.out is None:
        ap.error("--out is required to train")
    cfg = BuildingConfig(init_from=args.init_from, cities=args.cities, cache=args.cache, steps=args.steps,
                         seed=args.seed, transform=args.transform,
                         p_shade=args.p_shade)
    import sys

    command = " ".join(["python -m changedetect.training.buildings", *(argv if argv is not None else sys.argv[1:])])
    print(json.dumps(train_buildings(cfg, args.out, command=command)))


if __name__ == "__main__":
    _main()
