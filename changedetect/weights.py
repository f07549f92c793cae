"""Shipped weights and their model cards.

A model lives in a folder ``<name>/`` holding ``weights.pt`` (a torch ``state_dict``),
``metadata.json`` (the :class:`ModelCard`, machine-readable) and ``MODEL_CARD.md``
(the same for people).  Shipped models are looked for in ``$CHANGEDETECT_MODELS``
(one or more folders separated by ``os.pathsep``), then in the repository's
``models/`` folder.  The sha256 of ``weights.pt`` is checked on every load.

Normalisation is designed for whole scenes: :func:`compute_stats` reads one set of
per-band statistics from a (subsampled) scene, and :meth:`ModelCard.preprocess`
applies it to every window of that scene, so that windows agree at their borders.
Each date is normalised with its own statistics.  Training computes the statistics
the same way on each whole training image, never per crop.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from changedetect.errors import ModelError

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.pt"
METADATA_FILE = "metadata.json"
CARD_FILE = "MODEL_CARD.md"
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

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = "metadata") -> ModelCard:
        """Build from a ``metadata.json`` mapping; unknown keys are ignored with a log line."""
        names = {f.name for f in fields(cls)}
        missing = [k for k in ("name", "version", "arch", "bands") if k not in d]
        if missing:
            raise ModelError(f"{source}: model card lacks {', '.join(missing)}; "
                             f"a card needs at least name, version, arch and bands")
        extra = sorted(set(d) - names)
        if extra:
            log.info("%s: ignoring unknown card keys %s", source, extra)
        kw = {k: v for k, v in d.items() if k in names}
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


@dataclass
class LoadedModel:
    """A network in ``eval()`` mode with its card and folder."""

    module: nn.Module
    card: ModelCard
    path: Path

    def predict(self, before: np.ndarray, after: np.ndarray, *, stats_before: NormStats | None = None,
                stats_after: NormStats | None = None) -> np.ndarray:
        """Change probability of one small pair: ``(c, h, w) x 2 -> (h, w)`` float32 in [0, 1].

        For whole scenes use :func:`changedetect.detect.detect_pair`, which windows and blends.
        """
        import torch

        a = self.card.preprocess(before, stats_before)
        b = self.card.preprocess(after, stats_after)
        dev = next(self.module.parameters()).device
        with torch.inference_mode():
            logits = self.module(torch.from_numpy(a)[None].to(dev), torch.from_numpy(b)[None].to(dev))
        return torch.sigmoid(logits)[0, 0].float().cpu().numpy()


# -- files --------------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def models_dirs() -> list[Path]:
    """Folders searched for shipped models: ``$CHANGEDETECT_MODELS`` entries, then the repo's ``models/``."""
    dirs = [Path(p) for p in os.environ.get("CHANGEDETECT_MODELS", "").split(os.pathsep) if p]
    import changedetect

    dirs.append(Path(changedetect.__file__).resolve().parents[1] / "models")
    return dirs


def read_card(folder: Path) -> ModelCard:
    """The :class:`ModelCard` of a model folder."""
    meta = folder / METADATA_FILE
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"model folder '{folder}' has no {METADATA_FILE}") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"'{meta}' is not valid JSON ({exc}); restore it from git") from exc
    return ModelCard.from_dict(data, source=str(meta))


def list_shipped() -> list[ModelCard]:
    """Cards of every model found in :func:`models_dirs` (first folder wins on a name clash)."""
    cards: dict[str, ModelCard] = {}
    for d in models_dirs():
        if not d.is_dir():
            continue
        for meta in sorted(d.glob(f"*/{METADATA_FILE}")):
            try:
                card = read_card(meta.parent)
            except ModelError as exc:
                log.warning("skipping %s: %s", meta.parent, exc)
                continue
            cards.setdefault(card.name, card)
    return [cards[k] for k in sorted(cards)]


def find_model(name_or_path: str | os.PathLike[str]) -> Path:
    """Folder of a model given by shipped name, folder path or ``weights.pt`` path."""
    p = Path(name_or_path)
    if p.is_file() and p.name == WEIGHTS_FILE:
        return p.parent
    if p.is_dir() and (p / METADATA_FILE).is_file():
        return p
    for d in models_dirs():
        cand = d / str(name_or_path)
        if (cand / METADATA_FILE).is_file():
            return cand
    names = [c.name for c in list_shipped()]
    raise ModelError(f"unknown model {str(name_or_path)!r}: not a shipped model name nor a folder with "
                     f"{METADATA_FILE}; available: {', '.join(names) or '(none found in ' + ', '.join(map(str, models_dirs())) + ')'}")


def load_model(name_or_path: str | os.PathLike[str], *, device: str = "cpu",
               fold_bn: bool = True, channels_last: bool = True) -> LoadedModel:
    """Load a model by shipped name or folder, checking the sha256 of its weights.

    Parameters
    ----------
    name_or_path
        ``"vhr-building"``, a model folder, or the path of its ``weights.pt``.
    device
        Torch device for the module.
    fold_bn
        Fold BatchNorm into the convolutions (faster inference; same outputs).
    channels_last
        Keep the weights in channels-last memory format: about 3x less CPU time per window
        with oneDNN's convolutions; inputs may be in either format, outputs are the same.

    Raises
    ------
    ModelError
        Unknown name (the message lists the available models), missing files, or
        weights whose sha256 differs from the card's.
    """
    import torch

    from changedetect.nn import get_model
    from changedetect.nn.blocks import fold_batchnorm

    folder = find_model(name_or_path)
    card = read_card(folder)
    wpath = folder / WEIGHTS_FILE
    if not wpath.is_file():
        raise ModelError(f"model '{card.name}': '{wpath}' is missing; restore it from git (git lfs pull?)")
    digest = sha256_file(wpath)
    if card.sha256 and digest != card.sha256:
        raise ModelError(f"model '{card.name}': sha256 of '{wpath}' is {digest} but its card says "
                         f"{card.sha256}; the weights are corrupt or were replaced: restore them "
                         "from git or retrain with `changedetect train`")
    if not card.sha256:
        log.warning("model '%s' has no sha256 in its card; weights not verified", card.name)
    module = get_model(card.arch, in_channels=len(card.bands), **dict(card.arch_kwargs))
    try:
        state = torch.load(wpath, map_location="cpu", weights_only=True)
        module.load_state_dict(state)
    except Exception as exc:  # torch raises RuntimeError/UnpicklingError/KeyError
        raise ModelError(f"model '{card.name}': cannot load '{wpath}' into {card.arch}: {exc}") from exc
    module.eval()
    if fold_bn:
        fold_batchnorm(module)
    module = module.to(device)
    if channels_last:
        module = module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return LoadedModel(module=module, card=card, path=folder)


def building_segmenter(model: LoadedModel | str | os.PathLike[str], *, device: str = "cpu") -> LoadedModel | None:
    """A change model's single-date building segmenter (its ``buildings/`` stage), loaded; None
    when it has none.  Used for the presence check of :func:`changedetect.detect.detect_series`
    and for footprints' ``change_type``.

    >>> building_segmenter("vhr-building").card.name  # doctest: +SKIP
    'vhr-building-buildings'
    """
    folder = model.path if isinstance(model, LoadedModel) else find_model(model)
    stage = Path(folder) / "buildings"
    return load_model(stage, device=device) if (stage / METADATA_FILE).is_file() else None


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it.

    The file gets the usual permissions (0666 less the umask, 0644 by default), not
    mkstemp's 0600, so that another account (a nightly service) can read the model.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:  # pragma: no cover - 32 random bits
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model(module: nn.Module, card: ModelCard, folder: Path, *, card_markdown: str | None = None
               ) -> ModelCard:
    """Write ``weights.pt``, ``metadata.json`` (with the sha256 filled in) and ``MODEL_CARD.md``.

    Each file is written to a temporary name in ``folder`` and renamed.  Returns the card
    with its ``sha256`` set.
    """
    import io
    from dataclasses import replace

    import torch

    buf = io.BytesIO()
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    torch.save(state, buf)
    data = buf.getvalue()
    card = replace(card, sha256=hashlib.sha256(data).hexdigest())
    _atomic_write_bytes(folder / WEIGHTS_FILE, data)
    meta = json.dumps(card.to_dict(), indent=2, ensure_ascii=False) + "\n"
    _atomic_write_bytes(folder / METADATA_FILE, meta.encode("utf-8"))
    md = card_markdown if card_markdown is not None else render_card(card)
    _atomic_write_bytes(folder / CARD_FILE, md.encode("utf-8"))
    return card


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


__all__ = ["TRANSFORMS", "LoadedModel", "ModelCard", "NormStats", "apply_transform", "building_segmenter", "compute_stats", "find_model",
           "list_shipped", "load_model", "models_dirs", "read_card", "render_card", "save_model", "sha256_file"]
