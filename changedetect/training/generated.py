"""Generated training cities: change pairs from the procedural city generator.

:func:`generated_city_pairs` generates training cities (``changedetect.samplecity``, seeds
101-299 and 1001-1200, never the committed sample city's 12) and cuts change-centred chips of their date
pairs, put back on the truth's reference grid so that the labels are exact;
:func:`add_pairs_to_cache` adds them to a training cache (:mod:`changedetect.training.datasets`).
``python -m changedetect.training.datasets BASE OUT --seeds 101-124`` (or ``-m
changedetect.training.generated``) does both.  :mod:`changedetect.training.datasets` re-exports
every public name here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from changedetect.errors import DatasetError
from changedetect.training.datasets import (
    ChangePair,
    cache_source,
    load_cache,
    load_sample_city,
    save_cache,
)

if TYPE_CHECKING:
    from changedetect.samplecity.spec import CityConfig

log = logging.getLogger("changedetect.training.datasets")

# -- generated training cities -------------------------------------------------------------
#: The committed sample city's seed: its second date pair is held out, so it is never
#: generated here for training.
HELD_OUT_CITY_SEED = 12
#: Training cities whose house demolitions are drawn from houses a taller neighbour's winter
#: shadow half covers (``CityConfig.shaded_demolitions``): the hard case of a house pulled down
#: in shade, rare among ordinary cities' demolitions. 251-299 since run 18; 1001-1200 added for
#: run 20 (never the evaluation cities: 12, 301-420, 701-740).
SHADED_SEEDS: frozenset[int] = frozenset({*range(251, 300), *range(1001, 1201)})


def city_config(seed: int, size: int = 512) -> CityConfig:
    """The generator's config of training city ``seed`` (``SHADED_SEEDS`` with shaded demolitions)."""
    from changedetect.samplecity.spec import CityConfig

    return CityConfig(seed=seed, size=size, shaded_demolitions=1.0 if seed in SHADED_SEEDS else 0.0)


def ensure_city(folder: str | Path, seed: int, size: int = 512) -> Path:
    """``folder/seed_<seed>/tiles``, generating that city there first when it is missing."""
    from changedetect.samplecity import generate

    tiles = Path(folder) / f"seed_{seed}" / "tiles"
    if not (tiles / "manifest.json").is_file():
        log.info("generating training city seed %d (%d px) into %s", seed, size, tiles)
        generate(tiles, tiles.parent / "permits", config=city_config(seed, size), overwrite=True)
    return tiles


def generated_city_pairs(folder: Path, seeds: Sequence[int], *, size: int = 512,
                         bands: Sequence[str] = ("red", "green", "blue"), chip: int = 256,
                         random_chips: int = 2, first_last: bool = False) -> list[ChangePair]:
    """Change-centred chips of procedurally generated cities (``changedetect.samplecity``).

    Each seed's city is generated into ``folder/seed_<seed>/`` unless already there
    (about 6-10 s for ``size`` 512) and read with :func:`load_sample_city`: consecutive
    date pairs with their truth change masks (new buildings, extensions, demolitions) and
    the generator's realistic nuisances (sun and shadows, seasons, trees, traffic, haze).
    Both dates are put back on the truth's reference grid with the generator's known
    misregistration (``truth/registration.json``), so that the labels are exact; then one
    ``chip``² chip is cut around every changed structure (randomly offset) plus
    ``random_chips`` chips anywhere. Chips of pair ``k`` of seed ``s`` get group
    ``gen_city_<s>_<k>``; with ``first_last``, the first and last dates (January -> January: the
    same sun) are a pair too, group ``gen_city_<s>_13``, and only its chips are returned.

    Raises
    ------
    DatasetError
        For seed 12 (the committed sample city, whose second pair is held out).
    """
    if HELD_OUT_CITY_SEED in seeds:
        raise DatasetError(f"seed {HELD_OUT_CITY_SEED} is the committed sample city (its pair 2 is "
                           "held out): choose other seeds for training cities")
    out: list[ChangePair] = []
    for seed in seeds:
        tiles = ensure_city(folder, seed, size)
        reg = json.loads((tiles / "truth" / "registration.json").read_text())
        maps = {d["path"].rsplit("_", 1)[-1][:8]: d.get("misregistration") for d in reg["dates"]}
        rng = np.random.default_rng([seed, 7, 13] if first_last else [seed, 7])
        for p in load_sample_city(tiles, first_last=first_last):
            if first_last and p.group != "sample_city_13":
                continue
            low = [b.lower() for b in p.bands]
            ix = [low.index(b) for b in bands]
            d1, d2 = p.name.split("_")[1:3]
            a, b = (_to_reference(x[ix], maps.get(d)) for x, d in ((p.before, d1), (p.after, d2)))
            out += _cut_chips(seed, size, p.name, p.group, a, b, p.label, rng, tuple(bands), p.gsd_m,
                              chip=chip, random_chips=random_chips)
    return out


def city_chips(seed: int, *, size: int = 512, bands: Sequence[str] = ("red", "green", "blue"),
               chip: int = 256, random_chips: int = 2, first_last: bool = False) -> list[ChangePair]:
    """The chips :func:`generated_city_pairs` cuts from city ``seed``, rendered in memory.

    No file is written or read, and neither rasterio nor geopandas is needed (the lent GPU
    machine renders the training cities on its own cores, ``scripts/gpu_finetune.py``).  The
    consecutive pairs' chips come first; with ``first_last``, then those of the first -> last
    pair: equal, chip for chip, to ``generated_city_pairs(folder, [seed])`` followed by
    ``generated_city_pairs(folder, [seed], first_last=True)`` (the tests compare them).
    """
    from changedetect.samplecity import truth
    from changedetect.samplecity.render import city_and_changes, render_dates
    from changedetect.samplecity.spec import BANDS

    if seed == HELD_OUT_CITY_SEED:
        raise DatasetError(f"seed {HELD_OUT_CITY_SEED} is the committed sample city (its pair 2 is "
                           "held out): choose other seeds for training cities")
    config = city_config(seed, size)
    n = len(config.acquisitions)
    city, changes = city_and_changes(config)
    ix = [list(BANDS).index(b) for b in bands]
    # each date on the reference grid, as generate() writes it and the file path reads it back
    dates = [(d.acquisition.tag, _to_reference(d.image[ix], d.misregistration.to_dict(config.size)))
             for d in render_dates(config, city, changes)]
    todo = [(k, k + 1, f"sample_city_{k + 1}", [seed, 7]) for k in range(n - 1)]
    if first_last and n > 2:
        todo.append((0, n - 1, f"sample_city_1{n}", [seed, 7, 13]))
    out: list[ChangePair] = []
    rngs: dict[tuple[int, ...], np.random.Generator] = {}
    for ia, ib, group, key in todo:
        rng = rngs.setdefault(tuple(key), np.random.default_rng(key))
        label = truth.change_mask(config, changes, ia, ib) > 0
        name = f"sample_{dates[ia][0]}_{dates[ib][0]}"
        out += _cut_chips(seed, size, name, group, dates[ia][1], dates[ib][1], label, rng, tuple(bands),
                          float(config.resolution), chip=chip, random_chips=random_chips)
    return out


def _cut_chips(seed: int, size: int, name: str, group: str, a: np.ndarray, b: np.ndarray, label: np.ndarray,
               rng: np.random.Generator, bands: tuple[str, ...], gsd_m: float, *, chip: int,
               random_chips: int) -> list[ChangePair]:
    """One ``chip``² chip around every changed structure (randomly offset) plus ``random_chips`` anywhere."""
    from scipy import ndimage as ndi

    h, w = label.shape
    lab, _ = ndi.label(label)
    centres = [((s0.start + s0.stop) // 2, (s1.start + s1.stop) // 2) for s0, s1 in ndi.find_objects(lab)]
    centres += [(int(rng.integers(h)), int(rng.integers(w))) for _ in range(random_chips)]
    out = []
    for j, (cy, cx) in enumerate(centres):
        r = int(np.clip(cy - rng.integers(chip // 6, chip - chip // 6), 0, h - chip))
        c = int(np.clip(cx - rng.integers(chip // 6, chip - chip // 6), 0, w - chip))
        sl = (slice(r, r + chip), slice(c, c + chip))
        out.append(ChangePair(f"gen{seed}_{name}_{j}", np.ascontiguousarray(a[:, sl[0], sl[1]]),
                              np.ascontiguousarray(b[:, sl[0], sl[1]]), label[sl].copy(), bands, gsd_m,
                              f"gen_city_{seed}_{group.rsplit('_', 1)[1]}", {"seed": str(seed), "size": str(size)}))
    return out


def _to_reference(x: np.ndarray, misregistration: dict[str, Any] | None) -> np.ndarray:
    """A generated date ``(c, n, n)`` uint8 resampled onto the reference grid (bilinear)."""
    from scipy import ndimage as ndi

    from changedetect.samplecity.registration import Misregistration, inverse_map

    if not misregistration:
        return x
    cols, rows = inverse_map(Misregistration.from_dict(misregistration), x.shape[-1])
    return np.stack([np.clip(ndi.map_coordinates(band.astype(np.float32), [rows, cols], order=1,
                                                 mode="nearest") + 0.5, 0, 255).astype(np.uint8)
                     for band in x])


def add_pairs_to_cache(base: Path, out: Path, pairs: Sequence[ChangePair]) -> Path:
    """Write ``out``: everything in the cache ``base`` plus ``pairs`` (e.g. generated cities)."""
    images, old = load_cache(base)
    names = {p.name for p in old}
    source = cache_source(base)
    if source is not None:  # the new cache also holds the added pairs' groups
        source["groups"] = sorted({*source.get("groups", []), *(p.group for p in pairs)})
    return save_cache(out, images=images, pairs=[*old, *(p for p in pairs if p.name not in names)],
                      source=source)


def _main(argv: list[str] | None = None) -> None:
    """``python -m changedetect.training.datasets BASE OUT --seeds 101-124 [--size 512]``."""
    import argparse

    ap = argparse.ArgumentParser(description="Add generated training cities to a VHR cache.")
    ap.add_argument("base", type=Path, help="existing cache (.npz), e.g. .cache_train/vhr.npz")
    ap.add_argument("out", type=Path, help="new cache, e.g. .cache_train/vhr_gencity.npz")
    ap.add_argument("--seeds", default="101-124", help="first-last (never 12)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--cities", type=Path, default=None,
                    help="folder of the generated cities (default: BASE's folder/gencity)")
    ap.add_argument("--first-last", action="store_true",
                    help="add only the first -> last date pair of each city (group gen_city_<seed>_13)")
    args = ap.parse_args(argv)
    lo, _, hi = args.seeds.partition("-")
    seeds = list(range(int(lo), int(hi or lo) + 1))
    logging.basicConfig(level=logging.INFO)
    pairs = generated_city_pairs(args.cities or args.base.parent / "gencity", seeds, size=args.size,
                                 first_last=args.first_last)
    add_pairs_to_cache(args.base, args.out, pairs)
    log.info("wrote %s with %d generated pairs", args.out, len(pairs))


__all__ = ["HELD_OUT_CITY_SEED", "SHADED_SEEDS", "add_pairs_to_cache", "city_chips", "city_config", "ensure_city",
           "generated_city_pairs"]


if __name__ == "__main__":
    _main()
