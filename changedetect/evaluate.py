"""Precision, recall, F1 and IoU of the change class on labelled image pairs.

Two layouts are understood:

LEVIR-style
    ``A/`` (before), ``B/`` (after) and ``label/`` with matching file names
    (PNG, JPEG or GeoTIFF; labels 0/255 or 0/1, a grey label saved as RGB read from its grey; other
    values or colours are refused; a JPEG label is cut halfway up its scale).
OSCD-style
    ``images/<city>/imgs_1/*_B02.tif ...``, ``images/<city>/imgs_2/...``
    (one file per Sentinel-2 band) and ``labels/<city>/cm/<city>-cm.tif``
    (1 = no change, 2 = change).  Every band is read onto the label's grid
    (the 10 m grid; 20 m and 60 m bands are resampled bilinearly).

The model's card decides which bands are read.  Scores are computed from
pixel counts pooled over the whole set, the way LEVIR-CD papers report them.
``model="cva"`` selects the change-vector-analysis + Otsu baseline
(:mod:`changedetect.baselines`) in the same harness; any object with
``name``, ``bands``, ``threshold`` and ``__call__(before, after) -> prob``
(a :class:`Predictor`) can be evaluated too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import xarray as xr

from changedetect._detect_engine import said_once
from changedetect._evaluate_data import (  # noqa: F401  (Pair, iter_pairs: public here; _count_pairs for the CLI)
    _CVA_S2_BANDS,
    Pair,
    _count_pairs,
    _is_oscd,
    iter_pairs,
)
from changedetect.errors import ChangeDetectError, DatasetError

logger = logging.getLogger(__name__)

__all__ = [
    "Evaluation",
    "Pair",
    "Predictor",
    "evaluate",
    "evaluate_detailed",
    "evaluate_pairs",
    "iter_pairs",
    "make_predictor",
]



class Predictor(Protocol):
    """Anything that maps a pair to a change probability ``(h, w)``."""

    name: str
    bands: Sequence[str] | None  # bands to read; None: every band of the images
    threshold: float

    def __call__(self, before: xr.DataArray, after: xr.DataArray) -> np.ndarray: ...


@dataclass
class Evaluation:
    """Pooled confusion counts of a set, with per-image counts."""

    model: str
    threshold: float
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    per_image: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def n_images(self) -> int:
        return len(self.per_image)

    def scores(self) -> dict[str, float | int]:
        """``precision, recall, f1, iou`` of the change class and ``n_images``."""
        out: dict[str, float | int] = dict(_scores(self.tp, self.fp, self.fn, self.tn))
        out["n_images"] = self.n_images
        return out

    def floor(self) -> dict[str, float]:
        """Scores of predicting "everything changed" on the same set."""
        pos, total = self.tp + self.fn, self.tp + self.fp + self.fn + self.tn
        return _scores(pos, total - pos, 0, 0)


def _scores(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    try:
        from changedetect.training.metrics import Counts, scores

        return {k: float(v) for k, v in scores(Counts(tp=tp, fp=fp, fn=fn, tn=tn)).items()}
    except ImportError:
        pass

    def ratio(a: int, b: int) -> float:
        return a / b if b else 0.0

    return {"precision": ratio(tp, tp + fp), "recall": ratio(tp, tp + fn),
            "f1": ratio(2 * tp, 2 * tp + fp + fn), "iou": ratio(tp, tp + fp + fn)}


# ----------------------------------------------------------------------------- predictors
@dataclass
class _CvaPredictor:
    bands: Sequence[str] | None = None
    threshold: float = 0.5
    name: str = "cva"

    def __call__(self, before: xr.DataArray, after: xr.DataArray) -> np.ndarray:
        from changedetect.baselines import cva_probability

        if before.shape[0] != after.shape[0]:
            raise DatasetError(f"the dates have {before.shape[0]} band(s) {list(map(str, before.band.values))} "
                               f"and {after.shape[0]} {list(map(str, after.band.values))}; CVA compares the "
                               "same bands: save both dates with the same bands")
        return cva_probability(before.values, after.values)[0]


class _ModelPredictor:
    def __init__(self, loaded: Any, config: Any) -> None:
        self.loaded, self.config = loaded, config
        self.name = str(getattr(loaded.card, "name", config.model))
        self.bands = list(loaded.card.bands)
        self.threshold = float(config.threshold or getattr(loaded.card, "threshold", None) or 0.5)

    def __call__(self, before: xr.DataArray, after: xr.DataArray) -> np.ndarray:
        from changedetect._detect_inputs import warn_gsd
        from changedetect.detect import detect_pair

        gsd = before.attrs.get("gsd_m")
        if gsd is not None:  # said once per evaluation, for the first pair of such pixels
            warn_gsd(self.loaded.card, float(gsd), str(before.attrs.get("gsd_of", "the pair")),
                     key=f"gsd {self.name} evaluate")
        return detect_pair(before, after, config=self.config, model=self.loaded).values


def make_predictor(model: str | Path, *, threshold: float | None = None, oscd: bool = False,
                   config: Any = None) -> Any:
    """A :class:`Predictor` for ``"cva"`` or a shipped model name / model folder.

    ``config``: how the model is run (window, overlap, TTA, device, ...), a
    :class:`~changedetect.detect.DetectConfig` or a dict of its fields as the TOML file's ``[detect]``
    (``{"tta": True}``); its ``model`` and ``threshold`` are this call's."""
    if str(model).lower() == "cva":
        return _CvaPredictor(bands=_CVA_S2_BANDS if oscd else None, threshold=threshold or 0.5)
    from dataclasses import replace

    from changedetect._config_toml import stage_config
    from changedetect.detect import DetectConfig
    from changedetect.weights import load_model

    base = DetectConfig() if config is None else stage_config(config, DetectConfig, call="make_predictor",
                                                              table="detect")
    cfg = replace(base, model=str(model), threshold=threshold)
    return _ModelPredictor(load_model(str(model), device=cfg.device), cfg)


# ----------------------------------------------------------------------------- harness
@said_once()
def evaluate_pairs(
    pairs: Iterable[Pair],
    *,
    model: Predictor,
    threshold: float | None = None,
    progress: bool = False,
    total: int | None = None,
) -> Evaluation:
    """Pooled confusion counts of ``model`` over in-memory :class:`Pair` s (``total``: how many,
    for the progress bar, when ``pairs`` is an iterator).

    ``Pair.before`` / ``Pair.after`` are ``(band, y, x)`` DataArrays with band
    names; ``Pair.label`` is ``(h, w)`` bool.  NaN probabilities count as no change.
    """
    if progress:  # tqdm.auto warns in a notebook without ipywidgets, bar or not
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm

    thr = threshold if threshold is not None else model.threshold
    result = Evaluation(model=model.name, threshold=thr)
    for pair in tqdm(pairs, disable=not progress, unit="pair", total=total):
        try:
            prob = model(pair.before, pair.after)
        except ChangeDetectError as exc:  # say which pair (and files) the model could not read
            where = f"pair '{pair.name}'" + (f" ({pair.source})" if pair.source else "")
            raise type(exc)(f"{where}: {exc}") from exc
        if np.shape(prob) != np.shape(pair.label):
            raise DatasetError(f"pair '{pair.name}': {model.name} gave a probability of shape {np.shape(prob)} "
                               f"for a label of shape {np.shape(pair.label)}")
        p = np.nan_to_num(prob, nan=0.0) >= thr
        y = pair.label
        counts = {"tp": int((p & y).sum()), "fp": int((p & ~y).sum()),
                  "fn": int((~p & y).sum()), "tn": int((~p & ~y).sum())}
        for k, v in counts.items():
            setattr(result, k, getattr(result, k) + v)
        result.per_image[pair.name] = {**counts, **_scores(**counts)}
        logger.info("%s: f1 %.3f", pair.name, result.per_image[pair.name]["f1"])
    return result


def evaluate_detailed(
    path: str | Path,
    *,
    model: str | Path | Predictor,
    threshold: float | None = None,
    cities: Sequence[str] | None = None,
    progress: bool = False,
) -> Evaluation:
    """Pooled confusion counts of ``model`` over every pair under ``path``."""
    root = Path(path)
    oscd = root.is_dir() and _is_oscd(root)
    pred = model if not isinstance(model, str | Path) else make_predictor(model, threshold=threshold, oscd=oscd)
    result = evaluate_pairs(iter_pairs(root, bands=pred.bands, cities=cities), model=pred,
                            threshold=threshold, progress=progress, total=_count_pairs(root, oscd, cities))
    if not result.per_image:
        raise DatasetError(f"no labelled pair found under '{root}'")
    return result


def evaluate(
    path: str | Path,
    *,
    model: str | Path | Predictor,
    threshold: float | None = None,
    cities: Sequence[str] | None = None,
    progress: bool = False,
) -> dict[str, float | int]:
    """``precision, recall, f1, iou`` (change class, pixel counts pooled) and ``n_images``.

    Parameters
    ----------
    path
        A LEVIR-style folder or an OSCD-style root.
    model
        ``"cva"``, a shipped model name, a model folder, or a :class:`Predictor`.
    threshold
        Probability threshold; ``None``: the model card's (0.5 for CVA = Otsu's).
    cities
        OSCD only: evaluate these cities.
    progress
        Show a progress bar over the images.

    Raises
    ------
    DatasetError
        Naming the missing folder or file when the layout is not understood.
    """
    return evaluate_detailed(path, model=model, threshold=threshold, cities=cities,
                             progress=progress).scores()
