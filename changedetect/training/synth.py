"""Change pairs synthesised from single-date images with building masks.

Single-temporal supervision (Zheng et al. 2021, "Change is Everywhere"), as the
project's first experiment found it works best (``../shared/notes``): a mix of

* **tile pairing** -- two crops of different places, label = XOR of their building masks;
* **copy-paste / removal** -- one crop seen twice; building instances from other crops are
  pasted (with a cast shadow and a feathered edge) into one date, and buildings of the crop
  are removed from one date (in-painted with ground from elsewhere); label = the footprints
  that differ;
* **extensions** (``max_extend`` > 0) -- a building of the crop grows by 2.5-8 m along one
  of its axes in one date, its roof continued (or, one time in three, another material),
  with a shadow; label = the grown part only (:func:`extend_instance`);

plus strong **unlabelled nuisance changes** applied to each date independently, so that
the network learns that they are not change: photometry (gain, offset, gamma, saturation,
colour temperature), haze, low-frequency shading, vegetation recolouring, shadows in a
different sun direction, building lean, blur/sharpen, noise, JPEG artefacts, ground texture
swapped in from elsewhere, 1-3 px misregistration with a small local warp, and (``p_reroof``)
repainted roofs -- in the sample city's truth re-roofing is not a construction change.

Images here are float32 ``(3, h, w)`` in ``[0, 1]``; masks ``(h, w)`` bool.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from numpy.random import Generator
from scipy import ndimage as ndi

from changedetect.training.datasets import LabelledImage
from changedetect.training.instances import (
    _cast_shadow,
    _shift_int,
    extend_instance,
    paste_instance,
    remove_instance,
    reroof,
)


@dataclass(frozen=True)
class SynthConfig:
    """Knobs of the pair synthesis (see the module docstring)."""

    size: int = 256
    gsd_range_m: tuple[float, float] = (0.3, 1.0)
    p_pairing: float = 0.35
    max_paste: int = 5
    max_remove: int = 4
    nuisance: float = 1.0
    misreg_px: float = 3.0
    p_jpeg: float = 0.4
    p_ground_swap: float = 0.5
    max_extend: int = 0
    p_reroof: float = 0.0
    #: share of training samples (synthesised and real pairs) given a deep shadow
    #: (:func:`changedetect.training.shade.shade_pair`); 0 draws nothing, so older runs are unchanged
    p_shade: float = 0.0


@dataclass
class Photometry:
    """A global per-date colour transform; applied alike to crops and to statistics samples."""

    gain: np.ndarray = field(default_factory=lambda: np.ones(3, np.float32))
    offset: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    gamma: float = 1.0
    saturation: float = 1.0

    @classmethod
    def random(cls, rng: Generator, strength: float = 1.0) -> Photometry:
        s = strength
        gain = np.exp(rng.normal(0, 0.2 * s) + rng.normal(0, 0.07 * s, 3)).astype(np.float32)
        temp = rng.normal(0, 0.06 * s)  # colour temperature: red up, blue down or the reverse
        gain *= np.array([1 + temp, 1.0, 1 - temp], np.float32)
        offset = (rng.normal(0, 0.04 * s) + rng.normal(0, 0.015 * s, 3)).astype(np.float32)
        return cls(gain, offset, float(np.exp(rng.normal(0, 0.18 * s))),
                   float(np.clip(rng.normal(1, 0.2 * s), 0.4, 1.6)))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``(3, ...)`` in [0, 1] -> same shape."""
        shape = (3,) + (1,) * (x.ndim - 1)
        y = np.clip(x, 0, 1) ** self.gamma
        grey = y.mean(axis=0, keepdims=True)
        y = grey + self.saturation * (y - grey)
        y = y * self.gain.reshape(shape) + self.offset.reshape(shape)
        return np.clip(y, 0, 1).astype(np.float32)


# -- crops ----------------------------------------------------------------------------------
def random_crop(im: LabelledImage, size: int, gsd_m: float, rng: Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """A ``size``² crop of ``im`` resampled to ``gsd_m`` (never finer than the source).

    Returns ``(image (3, size, size) float32 in [0, 1], mask (size, size) bool)``.
    """
    from PIL import Image

    h, w = im.mask.shape
    scale = max(gsd_m, im.gsd_m) / im.gsd_m
    win = min(int(round(size * scale)), h, w)
    assert im.valid is not None
    for _ in range(10):
        r, c = int(rng.integers(0, h - win + 1)), int(rng.integers(0, w - win + 1))
        if im.valid[r:r + win, c:c + win].mean() > 0.97:
            break
    img = im.image[:, r:r + win, c:c + win]
    mask = im.mask[r:r + win, c:c + win]
    if win != size:
        pil = Image.fromarray(np.ascontiguousarray(img.transpose(1, 2, 0)))
        img = np.asarray(pil.resize((size, size), Image.Resampling.BILINEAR)).transpose(2, 0, 1)
        m = Image.fromarray(mask.astype(np.uint8) * 255).resize((size, size), Image.Resampling.BILINEAR)
        mask = np.asarray(m) > 127
    return img.astype(np.float32) / 255.0, mask.copy()


def _smooth_field(shape: tuple[int, int], rng: Generator, *, cells: int = 4) -> np.ndarray:
    """Smooth random field in [0, 1] of ``shape`` (bilinear upsampling of a coarse grid)."""
    from PIL import Image

    coarse = rng.random((cells + 1, cells + 1)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, mode="F").resize((shape[1], shape[0]), Image.Resampling.BILINEAR))


# -- the two ways of making a pair -------------------------------------------------------------


# -- nuisances (unlabelled) ---------------------------------------------------------------
def _warp(x: np.ndarray, dy: float, dx: float, field_y: np.ndarray | None,
          field_x: np.ndarray | None) -> np.ndarray:
    """Sample ``x (c, h, w)`` at ``(row + dy + field_y, col + dx + field_x)`` (bilinear, border)."""
    import torch
    from torch.nn import functional as F

    h, w = x.shape[-2:]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy += dy
    xx += dx
    if field_y is not None and field_x is not None:
        yy += field_y
        xx += field_x
    grid = np.stack([xx / (w - 1) * 2 - 1, yy / (h - 1) * 2 - 1], axis=-1)[None]
    out = F.grid_sample(torch.from_numpy(np.ascontiguousarray(x, np.float32))[None],
                        torch.from_numpy(grid), mode="bilinear", padding_mode="border",
                        align_corners=True)
    return out[0].numpy()


def misregister(a: np.ndarray, b: np.ndarray, rng: Generator, *, max_px: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Shift A and B by half a random offset each in opposite directions (label stays between),
    plus a small smooth local warp of B."""
    if max_px <= 0:
        return a, b
    r = float(rng.uniform(0, max_px))
    t = float(rng.uniform(0, 2 * np.pi))
    dy, dx = r * np.sin(t), r * np.cos(t)
    shape = a.shape[-2:]
    amp = float(rng.uniform(0, min(1.5, max_px / 2)))
    fy = (_smooth_field(shape, rng, cells=3) - 0.5) * 2 * amp
    fx = (_smooth_field(shape, rng, cells=3) - 0.5) * 2 * amp
    return _warp(a, -dy / 2, -dx / 2, None, None), _warp(b, dy / 2, dx / 2, fy, fx)


def nuisance(x: np.ndarray, mask: np.ndarray, rng: Generator, cfg: SynthConfig,
             other: np.ndarray | None = None) -> np.ndarray:
    """Unlabelled per-date changes applied to one date (``mask`` = its buildings)."""
    s = cfg.nuisance
    shape = mask.shape
    if rng.random() < 0.5 * s:  # vegetation recolouring (season)
        veg = (x[1] > 1.04 * x[0]) & (x[1] > 1.04 * x[2]) & ~mask
        if veg.any():
            dry = float(rng.uniform(-0.15, 0.45)) * s  # > 0: yellower / browner, < 0: lusher
            tint = float(rng.uniform(0.75, 1.25)) * np.array([1 + dry, 1 - 0.2 * dry, 1 - 0.5 * dry],
                                                             np.float32)
            wgt = ndi.gaussian_filter(veg.astype(np.float32), 1.0)[None]
            x = x * (1 - wgt) + np.clip(x * tint[:, None, None], 0, 1) * wgt
    if rng.random() < 0.5 * s and mask.any():  # shadows under another sun
        x = _cast_shadow(x, mask, rng, length=float(rng.uniform(1, 7)),
                         angle=float(rng.uniform(0, 2 * np.pi)), darkness=float(rng.uniform(0.15, 0.5)))
    if rng.random() < 0.3 * s and mask.any():  # building lean (another viewing angle)
        dy, dx = (int(v) for v in rng.integers(-3, 4, 2))
        moved = _shift_int(mask, dy, dx)
        x = np.where(moved[None], _shift_int(x, dy, dx), x)
    if other is not None and rng.random() < cfg.p_ground_swap * s:  # ground swapped in
        blob = _smooth_field(shape, rng, cells=int(rng.integers(3, 7))) > rng.uniform(0.7, 0.85)
        blob &= ~ndi.binary_dilation(mask, iterations=3)
        wgt = ndi.gaussian_filter(blob.astype(np.float32), 2.0)[None]
        x = x * (1 - wgt) + other * wgt
    if rng.random() < 0.4 * s:  # low-frequency shading
        x = x * np.exp((_smooth_field(shape, rng) - 0.5) * 0.4 * s)[None]
    if rng.random() < 0.3 * s:  # haze
        t = _smooth_field(shape, rng, cells=2) * rng.uniform(0, 0.35 * s)
        air = np.array([0.75, 0.78, 0.85], np.float32)[:, None, None] * rng.uniform(0.8, 1.1)
        x = x * (1 - t)[None] + air * t[None]
    u = rng.random() / max(s, 1e-6)  # blur, sharpen and noise fade out with the strength
    if u < 0.3:
        x = np.stack([ndi.gaussian_filter(c, rng.uniform(0.3, 1.3)) for c in x])
    elif u < 0.45:
        blur = np.stack([ndi.gaussian_filter(c, 1.0) for c in x])
        x = x + rng.uniform(0.3, 1.0) * (x - blur)
    if rng.random() < 0.5 * s:
        x = x + rng.normal(0, rng.uniform(0.003, 0.003 + 0.022 * s), x.shape).astype(np.float32)
    x = np.clip(x, 0, 1).astype(np.float32)
    if rng.random() < cfg.p_jpeg:
        x = _jpeg(x, int(rng.integers(25, 90)))
    return x


def _jpeg(x: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((x.transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)).save(buf, "JPEG",
                                                                             quality=quality)
    return np.asarray(Image.open(buf)).transpose(2, 0, 1).astype(np.float32) / 255.0


# -- one training pair --------------------------------------------------------------------
@dataclass
class SynthPair:
    """A synthesised pair: ``a``, ``b`` float32 ``(3, s, s)`` in [0, 1] (before normalisation),
    ``label`` bool ``(s, s)``, each date's global :class:`Photometry`, the source image
    index of each date (for its statistics), and the footprints pasted/removed."""

    a: np.ndarray
    b: np.ndarray
    label: np.ndarray
    photometry: tuple[Photometry, Photometry]
    sources: tuple[int, int]
    mode: str
    changed: list[np.ndarray] = field(default_factory=list)


def make_pair(images: list[LabelledImage], rng: Generator, cfg: SynthConfig = SynthConfig(),
              *, weights: np.ndarray | None = None) -> SynthPair:
    """Synthesise one change pair from single-date ``images`` (see the module docstring)."""
    n = len(images)
    pick = lambda: int(rng.choice(n, p=weights))  # noqa: E731
    lo, hi = cfg.gsd_range_m
    gsd = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    i = pick()
    xa, ma = random_crop(images[i], cfg.size, gsd, rng)
    j = pick() if n > 1 else i
    xo, mo = random_crop(images[j], cfg.size, gsd, rng)  # another place: donor and ground
    changed: list[np.ndarray] = []
    if rng.random() < cfg.p_pairing and n > 1:
        mode, xb, mb, src = "pairing", xo, mo, (i, j)
        label = ma ^ mb
    else:
        mode, xb, mb, src = "copy_paste", xa.copy(), ma.copy(), (i, i)
        label = np.zeros_like(ma)
        for _ in range(int(rng.integers(0, cfg.max_paste + 1))):
            into_b = rng.random() < 0.6
            tgt, tgt_m = (xb, mb) if into_b else (xa, ma)
            new, foot = paste_instance(tgt, tgt_m | label, xo, mo, rng)
            if foot.any():
                if into_b:
                    xb, mb = new, mb | foot
                else:
                    xa, ma = new, ma | foot
                label |= foot
                changed.append(foot)
        for _ in range(int(rng.integers(0, cfg.max_remove + 1))):
            from_b = rng.random() < 0.5
            tgt, tgt_m = (xb, mb) if from_b else (xa, ma)
            new, foot = remove_instance(tgt, tgt_m & ~label, xo, mo, rng)
            if foot.any():
                if from_b:
                    xb, mb = new, mb & ~foot
                else:
                    xa, ma = new, ma & ~foot
                label |= foot
                changed.append(foot)
        if cfg.max_extend > 0:  # extensions: a building grows; only the grown part is change
            for _ in range(int(rng.integers(0, cfg.max_extend + 1))):
                into_b = rng.random() < 0.6
                tgt, tgt_m = (xb, mb) if into_b else (xa, ma)
                new, part = extend_instance(tgt, tgt_m & ~label, rng, gsd_m=gsd, busy=tgt_m | label,
                                            donor=xo, donor_mask=mo)
                if part.any():
                    if into_b:
                        xb, mb = new, mb | part
                    else:
                        xa, ma = new, ma | part
                    label |= part
                    changed.append(part)
    if cfg.p_reroof > 0 and rng.random() < cfg.p_reroof:  # unlabelled: not construction
        if rng.random() < 0.5:
            xb = reroof(xb, mb, rng, keep=label)
        else:
            xa = reroof(xa, ma, rng, keep=label)
    pa, pb = Photometry.random(rng, cfg.nuisance), Photometry.random(rng, cfg.nuisance)
    xa = nuisance(pa(xa), ma, rng, cfg, other=pa(xo))
    xb = nuisance(pb(xb), mb, rng, cfg, other=pb(xo))
    xa, xb = misregister(xa, xb, rng, max_px=cfg.misreg_px)
    return SynthPair(xa, xb, label, (pa, pb), src, mode, changed)


def flip_rot(arrays: list[np.ndarray], rng: Generator) -> list[np.ndarray]:
    """The same random flip / 90° rotation of every ``(..., h, w)`` array."""
    k = int(rng.integers(4))
    flip = rng.random() < 0.5
    out = []
    for x in arrays:
        y = np.rot90(x, k, axes=(-2, -1))
        if flip:
            y = y[..., ::-1]
        out.append(np.ascontiguousarray(y))
    return out


__all__ = ["Photometry", "SynthConfig", "SynthPair", "extend_instance", "flip_rot", "make_pair",
           "misregister", "nuisance", "paste_instance", "random_crop", "remove_instance", "reroof"]
