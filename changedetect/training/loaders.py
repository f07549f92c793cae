"""Torch datasets of training samples, and the building of the training data from the real sets.

Every sample is drawn from ``numpy.random.default_rng([seed, index])``, so a run is
reproducible whatever the number of workers, and a resumed run sees the same samples.
Each date is normalised with statistics of its whole source image (never of the crop),
as :func:`changedetect.weights.compute_stats` does for a whole scene at inference.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from changedetect.errors import DatasetError
from changedetect.training import datasets as ds
from changedetect.training import generated
from changedetect.training.config import TrainConfig, work_root
from changedetect.training.shade import shade_pair
from changedetect.training.synth import flip_rot, make_pair
from changedetect.weights import CLIP_SIGMA, NormStats, apply_transform, compute_stats

log = logging.getLogger(__name__)
STAT_SAMPLES = 4096


def normalise(x: np.ndarray, stats: NormStats) -> np.ndarray:
    """``(c, h, w)`` -> standardised float32, clipped to +-CLIP_SIGMA (as ModelCard.preprocess)."""
    y = (x - stats.mean[:, None, None]) / stats.std[:, None, None]
    return np.clip(y, -CLIP_SIGMA, CLIP_SIGMA).astype(np.float32)


def synth_normalised(p: Any, stat_px: list[np.ndarray], transform: str) -> tuple[np.ndarray, np.ndarray]:
    """Both dates of a synthesised pair ``p`` transformed and standardised, each with the statistics
    of its whole source image (``stat_px``, seen through the pair's photometry)."""
    sa = compute_stats(p.photometry[0](stat_px[p.sources[0]]), transform=transform)
    sb = compute_stats(p.photometry[1](stat_px[p.sources[1]]), transform=transform)
    return normalise(apply_transform(p.a, transform), sa), normalise(apply_transform(p.b, transform), sb)


def band_index(names: tuple[str, ...], wanted: tuple[str, ...], aliases: dict[str, list[str]]
               ) -> list[int]:
    """Positions of ``wanted`` bands (or their aliases) in ``names``."""
    low = [n.lower() for n in names]
    out = []
    for w in wanted:
        for cand in [w, *aliases.get(w, [])]:
            if cand.lower() in low:
                out.append(low.index(cand.lower()))
                break
        else:
            raise DatasetError(f"bands {list(names)} lack {w!r} (aliases {aliases.get(w, [])})")
    return out


def _stat_sample(image: np.ndarray, valid: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """``(c, STAT_SAMPLES, 1)`` float32 pixels of a whole image in [0, 1] (uint8 input)."""
    c = image.shape[0]
    flat = image.reshape(c, -1)
    idx = np.flatnonzero(valid.ravel()) if valid is not None else np.arange(flat.shape[1])
    pick = rng.choice(idx, size=min(STAT_SAMPLES, idx.size), replace=False)
    return (flat[:, pick].astype(np.float32) / 255.0)[..., None]


class VhrPairs(Dataset[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]):
    """Synthesised (and, where given, real) RGB change pairs, normalised per date.

    Item ``i`` -> ``(a (3, s, s), b (3, s, s), label (1, s, s))`` float32 tensors.
    """

    def __init__(self, images: list[ds.LabelledImage], real: list[ds.ChangePair], cfg: TrainConfig,
                 *, length: int, seed: int) -> None:
        if not images:
            raise DatasetError("no training images: check train_groups against the cache/data")
        self.images, self.real, self.cfg, self.length, self.seed = images, real, cfg, length, seed
        area = np.array([float(im.valid.sum()) if im.valid is not None else im.mask.size
                         for im in images])
        self.weights = area / area.sum()
        rng = np.random.default_rng(seed)
        self.stat_px = [_stat_sample(im.image, im.valid, rng) for im in images]
        self.real_idx = [band_index(p.bands, cfg.bands, cfg.band_aliases) for p in real]
        t = cfg.transform
        self.real_stats = [(compute_stats(p.before[ix].astype(np.float32) / 255, transform=t),
                            compute_stats(p.after[ix].astype(np.float32) / 255, transform=t))
                           for p, ix in zip(real, self.real_idx, strict=True)]

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, i])
        if self.real and rng.random() < self.cfg.p_real:
            a, b, lab = self._real(rng)
        else:
            p = make_pair(self.images, rng, self.cfg.synth, weights=self.weights)
            if self.cfg.synth.p_shade > 0 and rng.random() < self.cfg.synth.p_shade:
                p.a, p.b = shade_pair(p.a, p.b, p.label, rng)
            a, b, lab = (*synth_normalised(p, self.stat_px, self.cfg.transform), p.label)
        if rng.random() < 0.5:
            a, b = b, a
        a, b, lab = flip_rot([a, b, lab[None].astype(np.float32)], rng)
        return torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(lab)

    def _real(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from PIL import Image

        k = int(rng.integers(len(self.real)))
        p, ix = self.real[k], self.real_idx[k]
        size = self.cfg.synth.size
        lo, hi = self.cfg.gsd_range_m
        gsd = max(float(np.exp(rng.uniform(np.log(lo), np.log(hi)))), p.gsd_m)
        h, w = p.label.shape
        win = min(int(round(size * gsd / p.gsd_m)), h, w)
        r, c = int(rng.integers(0, h - win + 1)), int(rng.integers(0, w - win + 1))
        out = []
        for x in (p.before[ix], p.after[ix]):
            crop = np.ascontiguousarray(x[:, r:r + win, c:c + win].transpose(1, 2, 0))
            pil = Image.fromarray(crop.astype(np.uint8))
            out.append(np.asarray(pil.resize((size, size), Image.Resampling.BILINEAR)).transpose(2, 0, 1) / 255.0)
        lab = Image.fromarray(p.label[r:r + win, c:c + win].astype(np.uint8) * 255)
        label = np.asarray(lab.resize((size, size), Image.Resampling.BILINEAR)) > 127
        sa, sb = self.real_stats[k]
        if self.cfg.synth.p_shade > 0 and rng.random() < self.cfg.synth.p_shade:
            out[0], out[1] = shade_pair(out[0].astype(np.float32), out[1].astype(np.float32), label, rng)
        t = self.cfg.transform
        return normalise(apply_transform(out[0], t), sa), normalise(apply_transform(out[1], t), sb), label


class S2Pairs(Dataset[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]):
    """Random crops of labelled Sentinel-2 pairs, half of them centred on change.

    Item ``i`` -> ``(a (c, s, s), b (c, s, s), label (1, s, s))`` float32 tensors.
    """

    def __init__(self, pairs: list[ds.ChangePair], cfg: TrainConfig, *, length: int, seed: int) -> None:
        if not pairs:
            raise DatasetError("no training cities: check train_groups against the cache/data")
        self.cfg, self.length, self.seed = cfg, length, seed
        self.items = []
        for p in pairs:
            ix = band_index(p.bands, cfg.bands, cfg.band_aliases)
            a = apply_transform(p.before[ix].astype(np.float32), cfg.transform)
            b = apply_transform(p.after[ix].astype(np.float32), cfg.transform)
            self.items.append((normalise(a, compute_stats(a)), normalise(b, compute_stats(b)),
                               p.label, np.argwhere(p.label)))
        area = np.array([p.label.size for p in pairs], float)
        self.weights = area / area.sum()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, i])
        a, b, lab, pos = self.items[int(rng.choice(len(self.items), p=self.weights))]
        s = self.cfg.crop
        h, w = lab.shape
        if len(pos) and rng.random() < 0.5:
            cy, cx = pos[int(rng.integers(len(pos)))]
            r = int(np.clip(cy - rng.integers(s // 8, s - s // 8), 0, h - s))
            c = int(np.clip(cx - rng.integers(s // 8, s - s // 8), 0, w - s))
        else:
            r, c = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        xa, xb = a[:, r:r + s, c:c + s].copy(), b[:, r:r + s, c:c + s].copy()
        y = lab[r:r + s, c:c + s].astype(np.float32)[None]
        nb = xa.shape[0]
        for x in (xa, xb):  # per-date residual radiometry, unlabelled
            x *= rng.normal(1, 0.06, (nb, 1, 1)).astype(np.float32)
            x += rng.normal(0, 0.08, (nb, 1, 1)).astype(np.float32)
            if rng.random() < 0.3:
                x += rng.normal(0, 0.05, x.shape).astype(np.float32)
        if rng.random() < 0.5:
            xa, xb = xb, xa
        xa, xb, y = flip_rot([xa, xb, y], rng)
        return torch.from_numpy(xa), torch.from_numpy(xb), torch.from_numpy(y)


# -- building the data -------------------------------------------------------------------
def build_data(cfg: TrainConfig, *, sample_city: Path | None = None
               ) -> tuple[list[ds.LabelledImage], list[ds.ChangePair]]:
    """Read the groups a config names from ``cfg.data_root`` (and the sample city)."""
    root = Path(cfg.data_root)
    if not root.is_dir():
        raise DatasetError(f"data root '{root}' is absent and cache '{cfg.cache}' does not exist; "
                           "point data_root at ../shared/data or carry a cache")
    groups = set(cfg.train_groups) | set(cfg.val_groups)
    images: list[ds.LabelledImage] = []
    pairs: list[ds.ChangePair] = []
    if cfg.task == "s2":
        # data_root holds oscd/, or is an OSCD-style root itself (images/, labels/) of any name
        oscd = root if (root / "images").is_dir() and (root / "labels").is_dir() else root / "oscd"
        have = sorted(p.name for p in (oscd / "labels").iterdir() if p.is_dir()) if (oscd / "labels").is_dir() else []
        missing = sorted(groups - set(have))
        if have and missing:  # (a root of other cities read with the shipped config's: 'label ... is missing')
            raise DatasetError(f"cities {missing} of the config's train_groups/val_groups are not in "
                               f"'{oscd / 'labels'}' (it has {have}): train with a config whose train_groups and "
                               "val_groups name its cities (models/s2-urban/train.toml shows one)")
        for city in sorted(groups):
            p = ds.load_oscd_city(oscd, city, bands=_s2_names(cfg))
            p.before, p.after = _quantise(p.before), _quantise(p.after)
            pairs.append(p)
        return images, pairs
    seeds = sorted({int(g.split("_")[2]) for g in groups if re.fullmatch(r"gen_city_\d+_\d+", g)})
    for g in sorted(groups):
        if g.startswith("gen_city_"):
            if not re.fullmatch(r"gen_city_\d+_\d+", g):
                raise DatasetError(f"VHR data group {g!r}: a generated city is gen_city_<seed>_<pair>")
        elif g.startswith("fair_oam_"):
            images += ds.load_fair_oam_area(root / "buildings" / "fair_oam", int(g.rsplit("_", 1)[1]))
        elif g == "spacenet_rio":
            images += ds.load_spacenet_rio(root / "buildings" / "spacenet_rio")
        elif g == "dubai_hitl":
            images += ds.load_dubai_hitl(root / "buildings" / "dubai_hitl")
        elif g.startswith("sample_city"):
            folder = sample_city or work_root() / "sample_tiles"
            found = [p for p in (ds.load_sample_city(folder) if folder.is_dir() else []) if p.group == g]
            for p in found:  # keep only the model's bands (a smaller cache)
                ix = band_index(p.bands, cfg.bands, cfg.band_aliases)
                p.before, p.after, p.bands = p.before[ix], p.after[ix], tuple(cfg.bands)
            if not found:
                log.warning("%s not found in %s: going on without it", g, folder)
            pairs += found
        else:
            raise DatasetError(f"unknown VHR data group {g!r}; use fair_oam_<1-5>, spacenet_rio, "
                               "dubai_hitl, sample_city_<k> or gen_city_<seed>_<k>")
    if cfg.levir and (root / cfg.levir).is_dir():
        pairs += ds.load_levir(root / cfg.levir)
    if seeds:  # generated training cities, made beside the cache (as `python -m ...training.datasets` does)
        folder = Path(cfg.cache).parent / "gencity"
        log.info("generated training cities %s in %s", seeds, folder)
        pairs += generated.generated_city_pairs(folder, seeds, size=512, bands=cfg.bands)
    return images, pairs


def _s2_names(cfg: TrainConfig) -> tuple[str, ...]:
    out = []
    for b in cfg.bands:
        names = [b, *cfg.band_aliases.get(b, [])]
        out.append(next((n for n in names if n.upper().startswith("B")), b))
    return tuple(out)


def _quantise(x: np.ndarray) -> np.ndarray:
    """uint8 per band between its 0.05 and 99.95 percentiles (standardisation is affine-invariant)."""
    out = np.empty(x.shape, np.uint8)
    for i, band in enumerate(x):
        lo, hi = np.percentile(band, [0.05, 99.95])
        out[i] = np.clip((band - lo) / max(hi - lo, 1e-6) * 255 + 0.5, 0, 255)
    return out


def cache_key(cfg: TrainConfig) -> dict[str, Any]:
    """What a training cache built for ``cfg`` holds: its data root, task, groups and bands."""
    return {"data_root": str(Path(cfg.data_root).resolve()), "task": cfg.task,
            "groups": sorted(set(cfg.train_groups) | set(cfg.val_groups)), "levir": cfg.levir,
            "bands": list(cfg.bands), "band_aliases": {k: list(v) for k, v in sorted(cfg.band_aliases.items())}}


def check_cache(cfg: TrainConfig, cache: Path) -> None:
    """Refuse a cache built for other data than ``cfg`` names (see :func:`cache_key`).

    A cache from another ``data_root`` is refused while the config's data root exists
    (delete the cache to rebuild it from there); when that root is absent (a cache carried
    to another machine) it is used, with a warning naming where it came from.  An older
    cache that records nothing is used with a warning.
    """
    src = ds.cache_source(cache)
    want = cache_key(cfg)
    fix = (f"delete it to rebuild it from '{want['data_root']}', or set `cache` in the config to "
           "another file")
    if src is None:
        why = fix if Path(cfg.data_root).is_dir() else f"data root '{want['data_root']}' is absent"
        log.warning("training cache %s does not record the data it was built from (an older cache); "
                    "using it as it is (%s)", cache, why)
        return
    problems = [f"{k} {src.get(k)!r}, not {want[k]!r}" for k in ("task", "bands", "band_aliases")
                if src.get(k) != want[k]]
    missing = sorted(set(want["groups"]) - set(src.get("groups", [])))
    if missing:
        problems.append(f"no group(s) {', '.join(missing)}")
    if cfg.levir and src.get("levir") != cfg.levir:
        problems.append(f"levir {src.get('levir')!r}, not {cfg.levir!r}")
    if problems:
        raise DatasetError(f"training cache '{cache}' was built for another config ({'; '.join(problems)}): {fix}")
    if src.get("data_root") != want["data_root"]:
        if Path(cfg.data_root).is_dir():
            raise DatasetError(f"training cache '{cache}' was built from data_root '{src.get('data_root')}', "
                               f"not '{want['data_root']}' (the config's): {fix}")
        log.warning("data root %s is absent: training from the cache %s, built from %s",
                    want["data_root"], cache, src.get("data_root"))


def load_data(cfg: TrainConfig) -> tuple[list[ds.LabelledImage], list[ds.ChangePair]]:
    """The cache if present (checked by :func:`check_cache`), else the data read from ``data_root``, then cached."""
    cache = Path(cfg.cache)
    if cache.is_file():
        check_cache(cfg, cache)
        log.info("reading training cache %s", cache)
        return ds.load_cache(cache)
    images, pairs = build_data(cfg)
    ds.save_cache(cache, images=images, pairs=pairs, source=cache_key(cfg))
    log.info("wrote training cache %s (%.1f MB)", cache, cache.stat().st_size / 1e6)
    return images, pairs


def split(cfg: TrainConfig, images: list[ds.LabelledImage], pairs: list[ds.ChangePair]) -> dict[str, list]:
    """Train/validation split by group (area or city), never by tile."""
    tr, va = set(cfg.train_groups), set(cfg.val_groups)
    if tr & va:
        raise DatasetError(f"groups {sorted(tr & va)} are both in train_groups and val_groups")
    return {
        "train_images": [im for im in images if im.group in tr],
        "val_images": [im for im in images if im.group in va],
        "train_pairs": [p for p in pairs if p.group in tr],
        "val_pairs": [p for p in pairs if p.group in va],
        "levir": [p for p in pairs if p.group == "levir"],
    }


__all__ = ["S2Pairs", "VhrPairs", "band_index", "build_data", "cache_key", "check_cache", "load_data", "normalise",
           "split", "synth_normalised"]
