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


def _shift_int(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Shift the last two axes by whole pixels, filling with zeros."""
    out = np.zeros_like(x)
    h, w = x.shape[-2:]
    if abs(dy) >= h or abs(dx) >= w:
        return out
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[..., yd, xd] = x[..., ys, xs]
    return out


Instance = tuple[tuple[slice, slice], int, np.ndarray]


def _instances(mask: np.ndarray, *, min_px: int = 16, max_frac: float = 0.2) -> list[Instance]:
    """Connected building instances: ``(bounding slices, label value, label image)``."""
    lab, _ = ndi.label(mask)
    out: list[Instance] = []
    for i, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None:
            continue
        area = int((lab[sl] == i).sum())
        if min_px <= area <= max_frac * mask.size:
            out.append(((sl[0], sl[1]), i, lab))
    return out


def _cast_shadow(img: np.ndarray, mask: np.ndarray, rng: Generator, *, length: float,
                 angle: float, darkness: float) -> np.ndarray:
    """Darken the ground behind ``mask`` along ``angle`` (the building itself stays)."""
    m = mask.astype(np.float32)
    shadow = np.zeros_like(m)
    for f in (0.35, 0.7, 1.0):
        shadow = np.maximum(shadow, _shift_int(m, int(round(f * length * np.sin(angle))),
                                               int(round(f * length * np.cos(angle)))))
    shadow = ndi.gaussian_filter(shadow, 0.8) * (1 - m)
    return img * (1 - darkness * shadow)[None]


# -- the two ways of making a pair -------------------------------------------------------------
def paste_instance(dst: np.ndarray, dst_mask: np.ndarray, src: np.ndarray, src_mask: np.ndarray,
                   rng: Generator) -> tuple[np.ndarray, np.ndarray]:
    """Paste one building of ``src`` into ``dst`` at a free place, with a shadow and soft edges.

    Returns ``(new image, footprint of the pasted building (bool))``; the footprint is
    empty when no free place was found.
    """
    inst = _instances(src_mask)
    size = dst_mask.shape[0]
    foot = np.zeros_like(dst_mask)
    if not inst:
        return dst, foot
    sl, i, lab = inst[int(rng.integers(len(inst)))]
    m = lab[sl] == i
    patch = src[:, sl[0], sl[1]]
    k = int(rng.integers(4))
    m, patch = np.rot90(m, k), np.rot90(patch, k, axes=(1, 2))
    ph, pw = m.shape
    if ph >= size - 4 or pw >= size - 4:
        return dst, foot
    busy = ndi.binary_dilation(dst_mask, iterations=3)
    for _ in range(8):
        r, c = int(rng.integers(0, size - ph)), int(rng.integers(0, size - pw))
        if (busy[r:r + ph, c:c + pw] & m).mean() < 0.02:
            break
    else:
        return dst, foot
    foot[r:r + ph, c:c + pw] = m
    out = _cast_shadow(dst, foot, rng, length=float(rng.uniform(1, 8)),
                       angle=float(rng.uniform(0, 2 * np.pi)), darkness=float(rng.uniform(0.3, 0.6)))
    alpha = ndi.gaussian_filter(foot.astype(np.float32), float(rng.uniform(0.4, 0.9)))
    alpha = np.maximum(alpha, foot * 0.9)
    canvas = np.zeros_like(dst)
    canvas[:, r:r + ph, c:c + pw] = patch
    # pull the pasted roof part of the way towards the target's brightness
    local = dst[:, foot].mean(axis=1) if foot.any() else dst.mean(axis=(1, 2))
    canvas[:, foot] += 0.3 * (local[:, None] - canvas[:, foot].mean(axis=1, keepdims=True))
    out = out * (1 - alpha)[None] + canvas * alpha[None]
    return np.clip(out, 0, 1), foot


def remove_instance(img: np.ndarray, mask: np.ndarray, ground: np.ndarray, ground_mask: np.ndarray,
                    rng: Generator) -> tuple[np.ndarray, np.ndarray]:
    """Remove one building of ``img`` (and its surroundings) by pasting ground from ``ground``.

    Returns ``(new image, footprint of the removed building (bool))``.
    """
    inst = _instances(mask)
    foot = np.zeros_like(mask)
    if not inst:
        return img, foot
    sl, i, lab = inst[int(rng.integers(len(inst)))]
    foot = lab == i
    region = ndi.binary_dilation(foot, iterations=int(rng.integers(2, 5)))
    # ground: the same-shaped region shifted onto a building-free part of `ground`
    size = mask.shape[0]
    free = ~ndi.binary_dilation(ground_mask, iterations=2)
    for _ in range(10):
        dy, dx = int(rng.integers(-size // 2, size // 2)), int(rng.integers(-size // 2, size // 2))
        moved = np.roll(region, (dy, dx), axis=(0, 1))
        if (moved & ~free).sum() < 0.02 * moved.sum():
            break
    else:
        return img, np.zeros_like(mask)
    fill = np.roll(ground, (-dy, -dx), axis=(1, 2))
    alpha = ndi.gaussian_filter(region.astype(np.float32), 1.5)
    alpha = np.maximum(alpha, foot.astype(np.float32))
    return img * (1 - alpha)[None] + fill * alpha[None], foot


def _axis(foot: np.ndarray, rng: Generator) -> tuple[float, float]:
    """A unit vector ``(dy, dx)`` along one of the principal axes of ``foot``, either way."""
    yx = np.argwhere(foot).astype(np.float64)
    yx -= yx.mean(axis=0)
    _, vecs = np.linalg.eigh(yx.T @ yx + 1e-6 * np.eye(2))
    v = vecs[:, int(rng.integers(2))] * (1 if rng.random() < 0.5 else -1)
    return float(v[0]), float(v[1])


def _step(k: int, u: tuple[float, float]) -> tuple[int, int]:
    """``k`` pixels along the unit vector ``u``, rounded to whole pixels."""
    return int(round(k * u[0])), int(round(k * u[1]))


def extend_instance(img: np.ndarray, mask: np.ndarray, rng: Generator, *, gsd_m: float,
                    busy: np.ndarray | None = None, donor: np.ndarray | None = None,
                    donor_mask: np.ndarray | None = None, grow_m: tuple[float, float] = (2.5, 8.0)
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Grow one building of ``img`` by a few metres along one side (an extension over its yard).

    The grown strip is the building's footprint swept ``grow_m`` metres outwards; its roof
    continues the building's own roof (its pixels copied outwards, with a small brightness
    change and sometimes a seam), or, one time in three, takes the colour of a roof of
    ``donor`` (a new roof part of another material); it casts a shadow on the ground.

    Parameters
    ----------
    img, mask
        The date to change ``(3, s, s)`` in [0, 1] and its buildings; only buildings of
        ``mask`` grow.
    gsd_m
        Metres per pixel of the crop.
    busy
        Pixels the extension must keep clear of (other buildings, earlier changes);
        default ``mask``.
    donor, donor_mask
        Another crop and its buildings, for a roof of another colour.

    Returns
    -------
    (new image, grown part (bool))
        The grown part only (never the existing building); empty when nothing could grow.
    """
    part = np.zeros_like(mask)
    inst = _instances(mask)
    if not inst:
        return img, part
    busy = mask if busy is None else busy
    for _ in range(12):
        sl, i, lab = inst[int(rng.integers(len(inst)))]
        foot = lab == i
        d = max(2, int(round(float(rng.uniform(*grow_m)) / gsd_m)))
        u = _axis(foot, rng)  # along one of the building's own axes
        swept = foot.copy()
        for s in range(1, d + 1):
            swept |= _shift_int(foot, *_step(s, u))
        cand = swept & ~foot
        blocked = ndi.binary_dilation(busy & ~foot, iterations=2)
        free = cand & ~blocked  # stop short of the neighbours (a yard is rarely empty)
        if free.sum() >= max(8, 0.6 * cand.sum()):
            lab_free, n_free = ndi.label(free)
            if n_free > 1:  # keep the largest piece: one extension, one blob
                free = lab_free == 1 + int(np.argmax(ndi.sum(free, lab_free, range(1, n_free + 1))))
            part = free
            break
    else:
        return img, part
    # roof texture: the building's own roof copied outwards (the farthest copy first)
    tex = np.zeros_like(img)
    todo = part.copy()
    for k in [*range(d, 3 * d + 1), *range(d - 1, 0, -1)]:
        hit = _shift_int(foot, *_step(k, u)) & todo
        if hit.any():
            tex[:, hit] = _shift_int(img, *_step(k, u))[:, hit]
            todo &= ~hit
        if not todo.any():
            break
    mean = tex[:, part].mean(axis=1)
    if donor is not None and donor_mask is not None and donor_mask.any() and rng.random() < 1 / 3:
        target = donor[:, donor_mask].mean(axis=1)  # a roof part of another material
        tex = tex + (target - mean)[:, None, None] * part[None]
    else:
        tex = tex * float(np.exp(rng.normal(0, 0.08)))
    if rng.random() < 0.5:  # a seam between the old roof and the new part
        seam = part & ndi.binary_dilation(foot)
        tex[:, seam] *= float(rng.uniform(0.7, 0.9))
    out = _cast_shadow(img, part, rng, length=float(rng.uniform(1, 6)),
                       angle=float(rng.uniform(0, 2 * np.pi)), darkness=float(rng.uniform(0.3, 0.6)))
    out = np.where(foot[None], img, out)  # the shadow falls on the ground, not on the old roof
    alpha = np.maximum(ndi.gaussian_filter(part.astype(np.float32), float(rng.uniform(0.3, 0.7))),
                       part * 0.95)
    alpha[foot] = 0.0
    out = out * (1 - alpha)[None] + np.clip(tex, 0, 1) * alpha[None]
    return np.clip(out, 0, 1).astype(np.float32), part


def reroof(img: np.ndarray, mask: np.ndarray, rng: Generator, *, keep: np.ndarray,
           n: int = 2) -> np.ndarray:
    """Repaint the roofs of up to ``n`` buildings (new colour or brightness); NOT a change.

    In the sample city's truth a re-roofed or sunlit-differently roof is no construction
    change, so this is an unlabelled nuisance; buildings touching ``keep`` (the labelled
    changes) are left alone.
    """
    inst = _instances(mask, max_frac=0.5)
    near = ndi.binary_dilation(keep, iterations=2)
    inst = [t for t in inst if not (t[2][t[0]] == t[1])[near[t[0]]].any()]
    out = img
    for k in rng.permutation(len(inst))[:n]:
        sl, i, lab = inst[int(k)]
        foot = (lab == i).astype(np.float32)
        if rng.random() < 0.5:  # another material: a new mean colour, the texture kept
            mean = img[:, lab == i].mean(axis=1)
            target = rng.uniform(0.15, 0.85, 3).astype(np.float32)
            new = out + (target - mean)[:, None, None]
        else:  # the same roof, brighter or darker (paint, dirt, another sun on a pitch)
            new = out * float(np.exp(rng.normal(0, 0.25)))
        wgt = ndi.gaussian_filter(foot, 0.5)[None]
        out = out * (1 - wgt) + np.clip(new, 0, 1) * wgt
    return out.astype(np.float32)


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
