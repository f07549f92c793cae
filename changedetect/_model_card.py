"""Model cards and the normalisation they define.

:class:`ModelCard` mirrors a model folder's ``metadata.json``: its architecture, the bands it reads
and in which order, how each date is normalised (:func:`compute_stats` on the whole scene,
:meth:`ModelCard.preprocess` on every window of it, so that windows agree at their borders), the
ground-sample-distance range it is made for, its threshold, training and metrics.
:func:`render_card` writes the plain ``MODEL_CARD.md`` training starts from.  Loading and saving
the folders is :mod:`changedetect.weights`' job; it re-exports everything here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from changedetect.errors import ModelError

log = logging.getLogger("changedetect.weights")

#: Values beyond this many standard deviations are clipped after normalisation.
CLIP_SIGMA = 8.0
#: Pixel transforms a card's ``normalization["transform"]`` may name (applied before the statistics).
TRANSFORMS = ("none", "sqrt")


def apply_transform(x: np.ndarray, kind: str | None) -> np.ndarray:
    """The card's pixel transform, applied before standardisation (float32; NaN stays NaN).

    ``"none"`` (or None) leaves the values as they are.  ``"sqrt"`` takes the square root of
    the (non-negative part of the) values: the variance-stabilising transform of photon-limited
    imagery, which also shrinks a shadow's factor (21-40 % of the light) to its square root, so
    that what lies in shadow keeps more of its contrast.  Both are free of the data's scale
    (``sqrt(k x) = sqrt(k) sqrt(x)``, and standardisation removes ``sqrt(k)``), so DN, reflectance
    and 0-1 floats give the same network input.
    """
    kind = kind or "none"
    if kind == "none":
        return np.asarray(x, np.float32)
    if kind == "sqrt":
        return np.sqrt(np.maximum(np.asarray(x, np.float32), np.float32(0.0)))
    raise ModelError(f"unknown normalization transform {kind!r} (expected one of {list(TRANSFORMS)})")


@dataclass(frozen=True)
class NormStats:
    """Per-band statistics of one scene (one date): ``mean`` and ``std``, each ``(c,)`` float32."""

    mean: np.ndarray
    std: np.ndarray

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}


def compute_stats(x: np.ndarray, *, max_pixels: int = 1 << 20, clip_percentiles: tuple[float, float]
                  = (1.0, 99.0), transform: str | None = None) -> NormStats:
    """Robust per-band mean and standard deviation of a scene.

    Parameters
    ----------
    x
        ``(c, h, w)`` array (any real dtype; NaN = nodata).  Pass the whole scene, or a
        decimated view of it: the array is subsampled on a regular grid of at most
        ``max_pixels`` pixels, so the result is deterministic.
    max_pixels
        Most pixels read per band.
    clip_percentiles
        Values outside these percentiles are clipped before the mean and std are taken,
        so that clouds, glints and nodata borders barely move the statistics.
    transform
        A pixel transform (:func:`apply_transform`) applied to the subsample first: the
        statistics are then those of the transformed scene.

    Returns
    -------
    NormStats
        ``mean`` and ``std`` of shape ``(c,)``; a constant band gets ``std = 1``.
    """
    if x.ndim != 3:
        raise ValueError(f"compute_stats expects a (band, y, x) array, got shape {x.shape}")
    c, h, w = x.shape
    step = max(1, int(np.ceil(np.sqrt(h * w / max_pixels))))
    sub = x[:, ::step, ::step]
    if transform not in (None, "none"):  # (without one, the values are read as they are, as always)
        sub = apply_transform(sub, transform)
    sub = np.asarray(sub, dtype=np.float64).reshape(c, -1)
    mean = np.zeros(c, np.float32)
    std = np.ones(c, np.float32)
    for i in range(c):
        v = sub[i][np.isfinite(sub[i])]
        if v.size == 0:
            continue
        lo, hi = np.percentile(v, clip_percentiles)
        v = np.clip(v, lo, hi)
        mean[i] = v.mean()
        s = v.std()
        std[i] = s if s > 1e-6 * max(1.0, abs(float(mean[i]))) else 1.0
    return NormStats(mean=mean, std=std)


@dataclass(frozen=True)
class ModelCard:
    """Everything needed to use a set of weights correctly; mirrors ``metadata.json``.

    Attributes
    ----------
    name, version
        Model name (the folder's name) and version string.
    arch, arch_kwargs
        Registry name (:func:`changedetect.nn.get_model`) and its keyword arguments.
    bands
        Band names the model reads, in order (e.g. ``["red", "green", "blue"]``).
    band_aliases
        Other names accepted for each band (e.g. ``{"red": ["B04", "r"]}``).
    normalization
        ``{"kind": "per_image_standardize", ...}`` (robust per-band scene statistics,
        each date on its own) or ``{"kind": "fixed", "mean": [...], "std": [...]}``;
        an optional ``"transform"`` (:data:`TRANSFORMS`, default ``"none"``) is applied to the
        pixels first (:func:`apply_transform`), the statistics being those of the transformed scene.
    gsd_range_m
        Ground sample distances (metres) the model was trained for.
    window
        Window size (pixels) the model was trained and validated at.
    threshold
        Probability threshold for a binary change map.
    sha256
        Checksum of ``weights.pt``.
    metrics
        Measured scores per evaluation set (with the "everything changed" floor).
    training
        Data, licences, exact command, seed, steps, device.
    licence
        Licence of the weights and any caveat inherited from the training data.
    """

    name: str
    version: str
    arch: str
    bands: tuple[str, ...]
    arch_kwargs: Mapping[str, Any] = field(default_factory=dict)
    band_aliases: Mapping[str, Sequence[str]] = field(default_factory=dict)
    normalization: Mapping[str, Any] = field(
        default_factory=lambda: {"kind": "per_image_standardize", "clip_percentiles": [1.0, 99.0]})
    gsd_range_m: tuple[float, float] = (0.3, 1.0)
    window: int = 512
    threshold: float = 0.5
    sha256: str = ""
    metrics: Mapping[str, Any] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    licence: str = ""
    description: str = ""

    def __repr__(self) -> str:
        """One line (every field: :meth:`to_dict` or ``MODEL_CARD.md``)."""
        lo, hi = self.gsd_range_m
        gsd = f"{lo:g} m" if lo == hi else f"{lo:g}-{hi:g} m"
        sha = f", sha256 {self.sha256[:12]}" if self.sha256 else ""
        return (f"ModelCard({self.name!r} {self.version}, {self.arch}, bands {'/'.join(self.bands)}, GSD {gsd}, "
                f"window {self.window}, threshold {self.threshold:g}{sha})")

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "metadata") -> ModelCard:
        """Build from a ``metadata.json`` mapping; unknown keys are ignored with a log line."""
        if not isinstance(d, Mapping):
            raise ModelError(f"{source}: a model card is a JSON object, got {type(d).__name__}; "
                             "restore it from git or retrain")
        names = {f.name for f in fields(cls)}
        missing = [k for k in ("name", "version", "arch", "bands") if k not in d]
        if missing:
            raise ModelError(f"{source}: model card lacks {', '.join(missing)}; "
                             f"a card needs at least name, version, arch and bands")
        extra = sorted(set(d) - names)
        if extra:
            log.info("%s: ignoring unknown card keys %s", source, extra)
        kw = {k: v for k, v in d.items() if k in names}
        _check_types(kw, source)
        kw["bands"] = tuple(kw["bands"])
        if "gsd_range_m" in kw:
            lo, hi = kw["gsd_range_m"]
            kw["gsd_range_m"] = (float(lo), float(hi))
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (what ``metadata.json`` holds)."""
        d = asdict(self)
        d["bands"] = list(self.bands)
        d["gsd_range_m"] = list(self.gsd_range_m)
        return json.loads(json.dumps(d))

    # -- bands ------------------------------------------------------------------------
    def band_indices(self, available: Sequence[str]) -> list[int]:
        """Positions in ``available`` of the model's bands, in the model's order.

        Names match case-insensitively, directly or through :attr:`band_aliases`.

        Raises
        ------
        ModelError
            Naming the bands that could not be found and the names that were given.
        """
        lookup = {str(n).lower(): i for i, n in enumerate(available)}
        out: list[int] = []
        missing: list[str] = []
        for band in self.bands:
            names = [band, *self.band_aliases.get(band, ())]
            idx = next((lookup[n.lower()] for n in names if n.lower() in lookup), None)
            if idx is None:
                missing.append(f"{band} (or {', '.join(names[1:])})" if names[1:] else band)
            else:
                out.append(idx)
        if missing:
            raise ModelError(f"model '{self.name}' needs bands {list(self.bands)} but "
                             f"{', '.join(missing)} not among the input's bands {list(available)}; "
                             "name the bands of the input or pick a model for them")
        return out

    # -- normalisation ----------------------------------------------------------------
    @property
    def transform(self) -> str:
        """The pixel transform applied before standardisation (``"none"`` or ``"sqrt"``)."""
        kind = str(self.normalization.get("transform") or "none")
        if kind not in TRANSFORMS:
            raise ModelError(f"model '{self.name}': unknown normalization transform {kind!r} "
                             f"(expected one of {list(TRANSFORMS)})")
        return kind

    def compute_stats(self, x: np.ndarray) -> NormStats:
        """Scene statistics for :meth:`preprocess`; ``x`` is ``(c, h, w)`` in the card's band order
        (raw pixels: the card's transform is applied here)."""
        kind = self.normalization.get("kind")
        if kind == "fixed":
            return NormStats(np.asarray(self.normalization["mean"], np.float32),
                             np.asarray(self.normalization["std"], np.float32))
        if kind == "per_image_standardize":
            p = self.normalization.get("clip_percentiles", (1.0, 99.0))
            return compute_stats(x, clip_percentiles=(float(p[0]), float(p[1])), transform=self.transform)
        raise ModelError(f"model '{self.name}': unknown normalization kind {kind!r} "
                         "(expected 'per_image_standardize' or 'fixed')")

    def preprocess(self, x: np.ndarray, stats: NormStats | None = None) -> np.ndarray:
        """Normalise one date: ``(c, h, w)`` -> ``(c, h, w)`` float32, NaN -> 0.

        ``stats`` should come from :meth:`compute_stats` on the whole scene of that date
        (so that every window of it is normalised alike); without it they are computed
        on ``x`` itself.
        """
        if x.ndim != 3 or x.shape[0] != len(self.bands):
            raise ModelError(f"model '{self.name}' expects ({len(self.bands)}, h, w) arrays with bands "
                             f"{list(self.bands)}, got shape {x.shape}")
        stats = stats if stats is not None else self.compute_stats(x)
        y = (apply_transform(x, self.transform) - stats.mean[:, None, None]) / stats.std[:, None, None]
        np.nan_to_num(y, copy=False, nan=0.0, posinf=CLIP_SIGMA, neginf=-CLIP_SIGMA)
        return np.clip(y, -CLIP_SIGMA, CLIP_SIGMA, out=y)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


#: What each card field must hold: a test and how to say it.
_CARD_TYPES: dict[str, tuple[Any, str]] = {
    "name": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "version": (lambda v: isinstance(v, str), "a string"),
    "arch": (lambda v: isinstance(v, str), "a string"),
    "bands": (lambda v: isinstance(v, list | tuple) and bool(v) and all(isinstance(b, str) for b in v),
              "an array of strings"),
    "arch_kwargs": (lambda v: isinstance(v, Mapping), "an object"),
    "band_aliases": (lambda v: isinstance(v, Mapping) and all(
        isinstance(a, list | tuple) and all(isinstance(x, str) for x in a) for a in v.values()),
        "an object of arrays of strings"),
    "normalization": (lambda v: isinstance(v, Mapping), "an object"),
    "gsd_range_m": (lambda v: isinstance(v, list | tuple) and len(v) == 2 and all(_is_number(x) for x in v),
                    "an array of 2 numbers"),
    "window": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0, "a positive integer"),
    "threshold": (_is_number, "a number"),
    "sha256": (lambda v: isinstance(v, str), "a string"),
    "metrics": (lambda v: isinstance(v, Mapping), "an object"),
    "training": (lambda v: isinstance(v, Mapping), "an object"),
    "licence": (lambda v: isinstance(v, str), "a string"),
    "description": (lambda v: isinstance(v, str), "a string"),
}


def _check_types(kw: Mapping[str, Any], source: str) -> None:
    """ModelError naming the first card field whose value is of the wrong kind (a hand-edited card)."""
    for key, value in kw.items():
        ok, expected = _CARD_TYPES.get(key, (lambda v: True, ""))
        if not ok(value):
            raise ModelError(f"{source}: '{key}' must be {expected}, got {json.dumps(value)[:60]}; "
                             "restore the card from git or retrain")


def render_card(card: ModelCard) -> str:
    """A plain ``MODEL_CARD.md`` generated from the card (training writes this; people may extend it)."""
    lines = [f"# {card.name} {card.version}", "", card.description or "", "",
             "| field | value |", "|---|---|",
             f"| architecture | `{card.arch}` {json.dumps(dict(card.arch_kwargs))} |",
             f"| bands (in order) | {', '.join(card.bands)} |",
             f"| band aliases | {json.dumps({k: list(v) for k, v in card.band_aliases.items()})} |",
             f"| normalisation | {json.dumps(dict(card.normalization))} |",
             f"| GSD range (m) | {card.gsd_range_m[0]}–{card.gsd_range_m[1]} |",
             f"| window | {card.window} |", f"| threshold | {card.threshold} |",
             f"| sha256 (weights.pt) | `{card.sha256}` |", f"| licence | {card.licence} |", "",
             "## Training", "", "```json", json.dumps(dict(card.training), indent=2), "```", "",
             "## Metrics (held-out data; pixel counts pooled over each set)", "",
             "```json", json.dumps(dict(card.metrics), indent=2), "```", ""]
    return "\n".join(lines)


__all__ = ["CLIP_SIGMA", "TRANSFORMS", "ModelCard", "NormStats", "apply_transform", "compute_stats", "render_card"]
