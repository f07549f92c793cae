"""The engine behind :mod:`changedetect.detect`: configuration, model loading,
scene-wide normalisation statistics, the batched, blended window runner and the
output's attributes and georeferencing (the checks of the inputs, band resolution
among them, are :mod:`changedetect._detect_inputs`).  Private: import the public names
from :mod:`changedetect.detect`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)

from changedetect._detect_inputs import (  # noqa: F401  (re-exported: detect, _detect_file, evaluate import them here)
    check_gsd,
    resolve_bands,
    said_once,
    same_transform,
)
from changedetect.errors import ConfigError, ModelError
from changedetect.tiling import StripAccumulator, Window, iter_blocks, window_rows
from changedetect.types import transform_of

if TYPE_CHECKING:
    import xarray as xr

logger = logging.getLogger("changedetect.detect")


#: spatial sizes are padded to a multiple of this (the networks downsample up to 32x).
_PAD_MULTIPLE = 32


#: pixels drawn (per date) to compute the scene-wide normalisation statistics.
_STATS_PIXELS = 1 << 20

#: the grid of sample windows (_STATS_GRID x _STATS_GRID windows of _STATS_SIDE px) a larger scene's
#: statistics are drawn from, unless fewer than _STATS_MIN_VALID of its pixels hold data.
_STATS_GRID, _STATS_SIDE, _STATS_MIN_VALID = 8, 128, 0.125


#: A blocked run's source of whole-scene normalisation statistics: called with one date of a block
#: (``(band, y, x)``, its ``time`` coordinate naming the date), the band indices and the model card,
#: it returns that date's statistics over the whole scene (None: each call draws its own from the
#: arrays it is given, as ever).  Set by :mod:`changedetect._pipeline_blocks`.
SCENE_STATS: ContextVar[Callable[[Any, list[int], Any], Any] | None] = ContextVar("scene_stats", default=None)


@dataclass(frozen=True)
class DetectConfig:
    """How to run a change-detection model over a scene.

    Parameters
    ----------
    model
        Shipped model name or a path to a model folder (see :mod:`changedetect.weights`).
    window
        Side of the square windows fed to the network, in pixels; ``None``: the
        model card's ``window`` (what it was trained and validated at).
    overlap
        Overlap between neighbouring windows (the length of the blending ramps), less than half
        the window (with the card's window, ``ConfigError`` otherwise; the default 64 becomes a
        quarter of a card's window of 128 px or less).
    batch_size
        Windows per forward pass.
    tta
        Average the predictions over flips and a 90-degree rotation (4x slower).
    threshold
        Probability above which a pixel counts as changed; ``None``: the model card's.
    device
        Torch device (``"cpu"`` or ``"cuda"``).
    num_threads
        Torch intra-op threads; ``None``: every core.
    season_days
        :func:`~changedetect.detect.detect_series` only.  Besides consecutive dates, compare
        each date with the latest date a whole number of years before it whose day of the
        year is within this many days of its own (a same-season, "anniversary" pair), when
        that date is not its predecessor.  Same-season dates share the sun's elevation and
        the vegetation's phase: a structure that the moving shadows of consecutive dates
        hide stands out.  ``None``: consecutive pairs only.
    presence_check
        :func:`~changedetect.detect.detect_series` and ``detect_each_pair`` only, when they are
        given a building ``segmenter``: raise the probability of a same-season pair where the
        network hints at change (0.3) and the segmenter sees a building on one date and none on
        the other (:mod:`changedetect.presence`); of a pair of different seasons, only where two
        same-season dates of the series bracket it and show the same change.  ``False``: the
        network alone.
    presence_across_seasons
        With ``presence_check``: also check pairs of different seasons under the same sun, as
        above (``PresenceCheck.across_seasons``).  ``False``: same-season pairs only (the rule
        until 2026-11-30).
    same_sun_share
        :func:`changedetect.pipeline.run` only, on its default pairs: a footprint first seen on a
        consecutive pair of different seasons is dropped when the network decides change over
        less than this share of it on a same-season pair of the series that spans that pair (a
        moved shadow is no change under the same sun; :mod:`changedetect._same_sun`).  ``None``:
        every footprint is kept.
    rebuilds
        :func:`changedetect.pipeline.run` only, on its default pairs and with a building
        segmenter: a building put up on a lot whose building was demolished earlier in the
        series becomes a footprint of its own, dated and matched on its own
        (:mod:`changedetect._rebuilds`); ``False``: it stays under the demolition's footprint.
    fill_masked_before
        :func:`~changedetect.detect.detect_series` and ``detect_each_pair``: the BEFORE image of
        each pair of consecutive dates of the stack (the series' own or explicit ``pairs``) is
        filled, where it has no data (a cloud its SCL masked), from the latest earlier date of the
        stack with data there, pixel by pixel (the last clear view; :mod:`changedetect._fill_before`),
        so that a building put up under a cloud is seen by the pair after it.  ``False``: a
        pixel without data on BEFORE is no change on that pair.
    fill_dates
        The nightly job only: how many of the area's dates before a pair's BEFORE its run reads to
        fill it from (``docs/nightly.md``); 0 reads none.
    """

    model: str = "vhr-building"
    window: int | None = None
    overlap: int = 64
    batch_size: int = 4
    tta: bool = False
    threshold: float | None = None
    device: str = "cpu"
    num_threads: int | None = None
    season_days: int | None = 45
    presence_check: bool = True
    presence_across_seasons: bool = True
    same_sun_share: float | None = 0.05
    rebuilds: bool = True
    fill_masked_before: bool = True
    fill_dates: int = 2

    def __post_init__(self) -> None:
        if self.fill_dates < 0:
            raise ValueError(f"fill_dates must be 0 or more, got {self.fill_dates}")
        if self.same_sun_share is not None and not 0 < self.same_sun_share <= 1:
            raise ValueError(f"same_sun_share must be in (0, 1] or None, got {self.same_sun_share}")
        if self.season_days is not None and not 0 <= self.season_days <= 91:
            raise ValueError(f"season_days must be in [0, 91] or None, got {self.season_days}")
        if self.window is not None and self.window < 32:
            raise ValueError(f"window must be >= 32 pixels, got {self.window}")
        if self.window is not None and not 0 <= self.overlap < self.window // 2:
            raise ValueError(f"overlap must be in [0, window/2={self.window // 2}), got {self.overlap}: give a "
                             "smaller overlap (--overlap) or a larger window")
        if self.overlap < 0:
            raise ValueError(f"overlap must be >= 0, got {self.overlap}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")


@dataclass(frozen=True)
class DetectSummary:
    """What :func:`detect_to_file` did."""

    path: Path
    height: int
    width: int
    seconds: float
    threshold: float
    share_above: float
    model: str
    #: share of BEFORE's pixels with data on both dates (AFTER may cover less, or have no data)
    valid_share: float = 1.0
    #: what was also logged as a warning about the result (a model made for other pixels, a panchromatic
    #: date, bands without names read in the model's order, little data on both dates)
    warnings: tuple[str, ...] = ()

    @property
    def mpx_per_s(self) -> float:
        """Throughput in megapixels of the scene per second."""
        return self.height * self.width / 1e6 / max(self.seconds, 1e-9)


class ModelLike(Protocol):
    """What ``model=`` and ``segmenter=`` take (:func:`~changedetect.detect.detect_pair`,
    :func:`~changedetect.detect.detect_series`, ...): a network and its card, as
    :func:`changedetect.weights.load_model` and :func:`changedetect.weights.building_segmenter` give
    them (a :class:`~changedetect.weights.LoadedModel`), or any object with those two attributes."""

    #: the network, a ``torch.nn.Module``
    module: Any
    #: its :class:`~changedetect.weights.ModelCard`: bands, normalisation, window, threshold
    card: Any


_Loaded = ModelLike  # its name before it was public


Reader = Callable[[Window], np.ndarray]


# ----------------------------------------------------------------------------- model
def torch_device(name: str) -> Any:
    """``torch.device(name)`` when this machine has it, else one ``ConfigError`` (torch's own is an
    ``AssertionError: Torch not compiled with CUDA enabled`` from deep inside ``Module.to``)."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device {name!r}: torch devices are cpu or cuda (cuda:N for the N-th GPU); "
                          "use device='cpu'") from None
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if (device.type == "cuda" and (device.index or 0) >= count) or (
            device.type == "mps" and not torch.backends.mps.is_available()):
        raise ConfigError(f"device {name!r} is not available here ({count} CUDA GPU(s) usable by this torch "
                          "build); use device='cpu' (--device cpu, device = \"cpu\" in [detect])")
    return device


def _load_model(config: DetectConfig, model: ModelLike | None) -> ModelLike:
    if model is not None:
        return model
    torch_device(config.device)
    try:
        from changedetect.weights import load_model
    except ImportError as exc:  # pragma: no cover - while the weights module is missing
        raise ModelError(f"cannot load model {config.model!r}: changedetect.weights is unavailable ({exc})") from exc
    loaded: ModelLike = load_model(config.model, device=config.device)
    return loaded


def _card_stats(card: Any, sample: np.ndarray) -> Any:
    """Scene-wide normalisation statistics of ``sample`` (c, 1, n), or ``None``."""
    if sample.shape[-1] == 0:
        return None
    fn: Callable[[np.ndarray], Any] | None = getattr(card, "compute_stats", None)
    if fn is None:
        try:
            from changedetect.weights import compute_stats
        except ImportError:
            return None
        fn = compute_stats
    return fn(sample)


class _Runner:
    """Normalises, pads, batches and runs the network; returns probabilities."""

    def __init__(self, loaded: ModelLike, config: DetectConfig) -> None:
        import torch

        self.torch = torch
        self.module = loaded.module.eval()
        self.card = loaded.card
        self.config = config
        self.window = int(config.window or getattr(self.card, "window", None) or 512)
        self.overlap = config.overlap
        if config.window is None and config.overlap >= self.window // 2:  # checked here: the card's window
            if config.overlap != DetectConfig.overlap:
                raise ConfigError(f"an overlap of {config.overlap} px must be less than half the model card's "
                                  f"window ({self.window} px): give a smaller overlap (--overlap) or a window "
                                  "(--window) more than twice as large")
            self.overlap = self.window // 4  # the default overlap, on a small card window
        self.device = torch_device(config.device)
        # channels-last is ~15-20 % faster for these small conv nets on CPU (oneDNN)
        self.module.to(self.device, memory_format=torch.channels_last)
        torch.set_num_threads(config.num_threads or os.cpu_count() or 1)

    def prepare(self, x: np.ndarray, stats: Any) -> np.ndarray:
        pre = getattr(self.card, "preprocess", None)
        y = np.asarray(pre(x, stats) if pre is not None else x, dtype=np.float32)
        return np.nan_to_num(y, nan=0.0, posinf=0.0, neginf=0.0)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``a, b`` (n, c, h, w) normalised -> probabilities (n, h, w) float32."""
        torch = self.torch
        n, _, h, w = a.shape
        ph, pw = -h % _PAD_MULTIPLE, -w % _PAD_MULTIPLE
        if ph or pw:
            pad = ((0, 0), (0, 0), (0, ph), (0, pw))
            a, b = np.pad(a, pad, mode="symmetric"), np.pad(b, pad, mode="symmetric")
        cl = torch.channels_last
        ta = torch.from_numpy(np.ascontiguousarray(a)).to(self.device).contiguous(memory_format=cl)
        tb = torch.from_numpy(np.ascontiguousarray(b)).to(self.device).contiguous(memory_format=cl)
        with torch.inference_mode():
            prob = torch.sigmoid(self.module(ta, tb).float())
            if self.config.tta:
                for f, inv in _tta_ops(torch):
                    prob += inv(torch.sigmoid(self.module(f(ta), f(tb)).float()))
                prob /= 4.0
        return prob[:, 0, :h, :w].cpu().numpy().astype(np.float32, copy=False)


def _tta_ops(torch: Any) -> list[tuple[Callable[[Any], Any], Callable[[Any], Any]]]:
    return [
        (lambda t: torch.flip(t, dims=(-1,)), lambda t: torch.flip(t, dims=(-1,))),
        (lambda t: torch.flip(t, dims=(-2,)), lambda t: torch.flip(t, dims=(-2,))),
        (lambda t: torch.rot90(t, 1, dims=(-2, -1)), lambda t: torch.rot90(t, -1, dims=(-2, -1))),
    ]


# ----------------------------------------------------------------------------- engine
def _run(
    read_a: Reader,
    read_b: Reader,
    shape: tuple[int, int],
    runner: _Runner,
    stats: tuple[Any, Any],
    sink: Callable[[int, np.ndarray], None],
    *,
    progress: bool = False,
) -> None:
    """Stream the windows of a scene through ``runner`` and hand finished rows to ``sink``."""
    if progress:  # tqdm.auto warns in a notebook without ipywidgets, bar or not
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm

    cfg = runner.config
    acc = StripAccumulator(shape, runner.overlap)
    total = sum(len(r) for r in window_rows(shape, runner.window, runner.overlap))
    with tqdm(total=total, disable=not progress, unit="win", desc="detect") as bar:
        for row, next_row in iter_blocks(shape, runner.window, runner.overlap):
            for i in range(0, len(row), cfg.batch_size):
                _run_batch(row[i : i + cfg.batch_size], read_a, read_b, runner, stats, acc)
                bar.update(len(row[i : i + cfg.batch_size]))
            top, rows = acc.flush(next_row)
            if rows.shape[0]:
                sink(top, rows)


def _run_batch(
    batch: list[Window], read_a: Reader, read_b: Reader, runner: _Runner,
    stats: tuple[Any, Any], acc: StripAccumulator,
) -> None:
    xs_a, xs_b, valids, keep = [], [], [], []
    for win in batch:
        a, b = read_a(win), read_b(win)
        valid = np.asarray(np.isfinite(a).all(axis=0) & np.isfinite(b).all(axis=0), dtype=bool)
        if not valid.any():
            continue
        xs_a.append(runner.prepare(a, stats[0]))
        xs_b.append(runner.prepare(b, stats[1]))
        valids.append(valid)
        keep.append(win)
    if not keep:
        return
    probs = runner(np.stack(xs_a), np.stack(xs_b))
    for win, prob, valid in zip(keep, probs, valids, strict=True):
        acc.add(win, prob, valid)


def _sample_stats(card: Any, sample: np.ndarray) -> Any:
    """Statistics from a (c, h, w) subsample, NaN pixels left out."""
    flat = sample.reshape(sample.shape[0], -1)
    flat = flat[:, np.isfinite(flat).all(axis=0)]
    return _card_stats(card, flat[:, None, :])


def _scene_stats(read: Reader, shape: tuple[int, int], card: Any) -> Any:
    """One date's normalisation statistics, drawn through ``read`` alike for a file
    (:func:`~changedetect.detect.detect_to_file`) and an array (:func:`~changedetect.detect.detect_pair`),
    so that the two give the same probabilities.

    A scene of up to ``_STATS_PIXELS`` is read whole.  A larger one is sampled on a grid of 8 x 8
    windows of 128 px spread over it (about 1 Mpx, fast whatever the file's layout: a decimated read
    decompresses every block); when fewer than an eighth of those pixels hold data (a mostly-nodata
    scene, whose data may lie between the windows: its statistics were None and each window was then
    normalised on its own) the whole scene is read strip by strip, keeping a regular subsample.
    """
    h, w = shape
    if h * w <= _STATS_PIXELS:
        return _sample_stats(card, read(Window(0, 0, h, w)))
    side_h, side_w = min(_STATS_SIDE, h), min(_STATS_SIDE, w)
    rows = np.linspace(0, h - side_h, _STATS_GRID).astype(int)
    cols = np.linspace(0, w - side_w, _STATS_GRID).astype(int)
    parts = [read(Window(int(r), int(c), side_h, side_w)) for r in rows for c in cols]
    grid = np.concatenate([p.reshape(p.shape[0], -1) for p in parts], axis=1)
    if np.isfinite(grid).all(axis=0).mean() >= _STATS_MIN_VALID:
        return _sample_stats(card, grid[:, None, :])
    step = int(np.ceil(np.sqrt(h * w / _STATS_PIXELS)))
    strip = step * max(1, (_STATS_PIXELS * 4) // (w * step))  # rows per read: a multiple of the step
    sub = [read(Window(top, 0, min(strip, h - top), w))[:, ::step, ::step] for top in range(0, h, strip)]
    return _sample_stats(card, np.concatenate(sub, axis=1))


def _threshold(config: DetectConfig, card: Any) -> float:
    if config.threshold is not None:
        return config.threshold
    return float(getattr(card, "threshold", None) or 0.5)


def _attrs(card: Any, config: DetectConfig, before: str, after: str) -> dict[str, Any]:
    return {
        "model": str(getattr(card, "name", config.model)),
        "model_sha256": str(getattr(card, "sha256", "")),
        "model_version": str(getattr(card, "version", "")),
        "threshold": _threshold(config, card),
        "before": before,
        "after": after,
    }


def _with_georef(prob: xr.DataArray, like: xr.DataArray) -> xr.DataArray:
    try:
        crs = like.rio.crs
        if crs is not None:
            prob = prob.rio.write_crs(crs)
            prob = prob.rio.write_transform(transform_of(like))
    except Exception:  # not georeferenced: keep pixel coordinates
        logger.debug("BEFORE has no georeferencing; the probability has none either")
    return prob
