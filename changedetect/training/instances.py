"""Building-instance edits for pair synthesis: paste, remove, extend, re-roof.

Used by :func:`changedetect.training.synth.make_pair`.  Images are float32
``(3, h, w)`` in ``[0, 1]``; masks ``(h, w)`` bool.
"""

from __future__ import annotations

import numpy as np
from numpy.random import Generator
from scipy import ndimage as ndi


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

