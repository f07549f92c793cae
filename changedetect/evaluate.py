"""Precision, recall, F1 and IoU of the change class on labelled image pairs.

Two layouts are understood:

LEVIR-style
    ``A/`` (before), ``B/`` (after) and ``label/`` with matching file names
    (PNG, JPEG or GeoTIFF; labels 0/255 or 0/1, anything > 0 is change; a JPEG label is cut at 128).
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
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import xarray as xr

from changedetect._detect_engine import said_once
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

_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
#: Sentinel-2 file suffix of the common band names.
_S2_NAME = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08"}
#: bands CVA reads from a Sentinel-2 (OSCD) pair: the 10 m bands.
_CVA_S2_BANDS = ("B02", "B03", "B04", "B08")


class Predictor(Protocol):
    """Anything that maps a pair to a change probability ``(h, w)``."""

    name: str
    bands: Sequence[str] | None  # bands to read; None: every band of the images
    threshold: float

    def __call__(self, before: xr.DataArray, after: xr.DataArray) -> np.ndarray: ...


@dataclass
class Pair:
    """One labelled pair: ``before``/``after`` ``(band, y, x)``, ``label`` (h, w) bool."""

    name: str
    before: xr.DataArray
    after: xr.DataArray
    label: np.ndarray
    source: str = ""  # the files it was read from, for messages


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


# ----------------------------------------------------------------------------- reading
def _read_image(path: Path, *, kind: str) -> tuple[np.ndarray, list[str]]:
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                # a PNG's alpha band is a mask, not a colour: it is left out (not a GeoTIFF's: GDAL calls
                # the fourth band of any 4-band uint8 GeoTIFF alpha, a near-infrared band too)
                png = path.suffix.lower() not in {".tif", ".tiff"}
                keep = [i for i in range(src.count)
                        if not (png and src.count > 1 and src.colorinterp[i].name == "alpha")]
                data = src.read([i + 1 for i in keep])
                names = [(src.descriptions[i] or "").strip() or
                         (src.colorinterp[i].name if src.colorinterp[i].name in {"red", "green", "blue"}
                          else str(i + 1)) for i in keep]
    except RasterioIOError as exc:
        raise DatasetError(f"cannot read {kind} '{path}': {exc}") from exc
    _check_complete(path, kind)
    return data, names


def _check_complete(path: Path, kind: str) -> None:
    """DatasetError for a truncated file: GDAL reads a PNG's or JPEG's missing rows as zeros, and
    a cut label would be scored as "no change" without a word."""
    from changedetect.errors import TileReadError
    from changedetect.io._inspect import inspect_raster

    if path.suffix.lower() in {".png", ".jpg", ".jpeg"}:
        from PIL import Image

        try:
            with Image.open(path) as im:
                im.load()
        except (OSError, SyntaxError) as exc:  # PIL: "image file is truncated", broken chunks
            raise DatasetError(f"{kind} '{path}' is truncated or corrupt ({exc}); copy it again or "
                               "remove the pair") from exc
        return
    try:
        inspect_raster(path)
    except TileReadError as exc:
        raise DatasetError(f"{kind}: {exc}") from exc


def _as_da(data: np.ndarray, names: list[str]) -> xr.DataArray:
    return xr.DataArray(data.astype(np.float32), dims=("band", "y", "x"), coords={"band": names})


def _is_image(p: Path) -> bool:
    """An image file by its name; hidden files (macOS's '._name.png' beside each file on a USB drive) are not."""
    return p.suffix.lower() in _IMAGE_EXT and not p.name.startswith(".")


def _find(folder: Path, stem: str) -> Path | None:
    for ext in _IMAGE_EXT:
        for cand in (folder / f"{stem}{ext}", folder / f"{stem}{ext.upper()}"):
            if cand.is_file():
                return cand
    return None


def _levir_pairs(root: Path) -> Iterator[Pair]:
    for sub in ("A", "B", "label"):
        if not (root / sub).is_dir():
            raise DatasetError(f"LEVIR-style folder '{root}' has no '{sub}/' folder (expected A/, B/, label/)")
    labels = sorted(p for p in (root / "label").iterdir() if _is_image(p))
    if not labels:
        raise DatasetError(f"'{root / 'label'}' holds no PNG/JPEG/GeoTIFF label")
    stems = [p.stem for p in labels]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:  # one A/B pair would be scored against each of them
        raise DatasetError(f"'{root / 'label'}' holds several labels named {twice} (different extensions); "
                           "keep one per pair")
    for sub in ("A", "B"):  # a pair without its label would be left out of the scores without a word
        unlabelled = sorted(p.name for p in (root / sub).iterdir()
                            if _is_image(p) and p.stem not in set(stems))
        if unlabelled:
            shown = ", ".join(repr(n) for n in unlabelled[:5]) + (" ..." if len(unlabelled) > 5 else "")
            raise DatasetError(f"{len(unlabelled)} image(s) in '{root / sub}' ({shown}) have no label in "
                               f"'{root / 'label'}': add their labels, or move the pairs out of '{root}'")
    for lab in labels:
        paths = {sub: _find(root / sub, lab.stem) for sub in ("A", "B")}
        for sub, p in paths.items():
            if p is None:
                raise DatasetError(f"label '{lab.name}' has no matching image in '{root / sub}'")
        a, names_a = _read_image(paths["A"], kind="image")  # type: ignore[arg-type]
        b, names_b = _read_image(paths["B"], kind="image")  # type: ignore[arg-type]
        y, _ = _read_image(lab, kind="label")
        if a.shape[1:] != y.shape[1:] or b.shape[1:] != y.shape[1:]:
            raise DatasetError(f"pair '{lab.stem}': sizes differ (A {a.shape[1:]}, B {b.shape[1:]}, label {y.shape[1:]})")
        # a JPEG's 0/255 label rings (1..14, 240..254) around its edges: halfway decides there
        lossy = lab.suffix.lower() in {".jpg", ".jpeg"} and y.max() > 1
        yield Pair(lab.stem, _as_da(a, names_a), _as_da(b, names_b), y[0] > (127 if lossy else 0),
                   source=f"{paths['A']}, {paths['B']}")


def _s2_band(folder: Path, band: str, shape: tuple[int, int]) -> np.ndarray:
    import rasterio
    from rasterio.enums import Resampling

    suffix = _S2_NAME.get(band.lower(), band.upper())
    hits = sorted(folder.glob(f"*_{suffix}.tif")) or sorted(folder.glob(f"{suffix}.tif"))
    if not hits:
        raise DatasetError(f"'{folder}' has no file for band {band} (expected '*_{suffix}.tif')")
    try:
        with rasterio.open(hits[0]) as src:
            return src.read(1, out_shape=shape, resampling=Resampling.bilinear).astype(np.float32)
    except rasterio.errors.RasterioIOError as exc:
        raise DatasetError(f"cannot read band {band} '{hits[0]}': {exc}") from exc


def _count_pairs(root: Path, oscd: bool, cities: Sequence[str] | None) -> int | None:
    """How many pairs :func:`iter_pairs` will give (labels or cities), or None when unknown."""
    folder = root / ("labels" if oscd else "label")
    if not folder.is_dir():
        return None
    if oscd:
        names = [p.name for p in folder.iterdir() if p.is_dir()]
        return len([c for c in names if not cities or c in set(cities)])
    return sum(1 for p in folder.iterdir() if _is_image(p))


def _oscd_pairs(root: Path, bands: Sequence[str], cities: Sequence[str] | None) -> Iterator[Pair]:
    images, labels = root / "images", root / "labels"
    for sub in (images, labels):
        if not sub.is_dir():
            raise DatasetError(f"OSCD-style root '{root}' has no '{sub.name}/' folder (expected images/ and labels/)")
    names = sorted(p.name for p in labels.iterdir() if p.is_dir())
    if cities:
        unknown = sorted(set(cities) - set(names))
        if unknown:
            raise DatasetError(f"cities {unknown} are not in '{labels}' (it has {names})")
        names = [c for c in names if c in set(cities)]
    for city in names:
        cm = labels / city / "cm" / f"{city}-cm.tif"
        if not cm.is_file():
            raise DatasetError(f"city '{city}' has no change map '{cm}'")
        y, _ = _read_image(cm, kind="label")
        found = sorted(int(v) for v in np.unique(y[0]))
        if not set(found) <= {1, 2}:  # a 0/1 or 0/255 map would score every change as a miss
            raise DatasetError(f"change map '{cm}' holds values {found[:10]}; an OSCD-style map has 1 = no change, "
                               "2 = change: convert it (e.g. 0/1 -> 1/2), or give the pair as a LEVIR-style "
                               "folder (A/, B/, label/ with 0/255 or 0/1 labels)")
        shape = y.shape[1:]
        dates = []
        for d in ("imgs_1", "imgs_2"):
            folder = images / city / d
            if not folder.is_dir():
                raise DatasetError(f"city '{city}' has no image folder '{folder}'")
            dates.append(_as_da(np.stack([_s2_band(folder, b, shape) for b in bands]), list(bands)))
        yield Pair(city, dates[0], dates[1], y[0] == 2)


def _is_oscd(root: Path) -> bool:
    return (root / "images").is_dir() or (root / "labels").is_dir()


def iter_pairs(path: str | Path, *, bands: Sequence[str] | None = None,
               cities: Sequence[str] | None = None) -> Iterator[Pair]:
    """The labelled pairs of a LEVIR-style folder or an OSCD-style root.

    ``bands`` (needed for OSCD) are the band names to read; ``cities`` restricts OSCD.
    """
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"evaluation data '{root}' is not a folder (expected A/, B/, label/ or images/, labels/)")
    if _is_oscd(root):
        yield from _oscd_pairs(root, tuple(bands or _CVA_S2_BANDS), cities)
    else:
        if cities:
            raise DatasetError(f"'{root}' is a LEVIR-style folder (A/, B/, label/): --cities / cities= choose "
                               "cities of an OSCD-style root (images/<city>/, labels/<city>/); drop it")
        yield from _levir_pairs(root)


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
        from changedetect.detect import detect_pair

        return detect_pair(before, after, config=self.config, model=self.loaded).values


def make_predictor(model: str | Path, *, threshold: float | None = None, oscd: bool = False,
                   config: Any = None) -> Any:
    """A :class:`Predictor` for ``"cva"`` or a shipped model name / model folder."""
    if str(model).lower() == "cva":
        return _CvaPredictor(bands=_CVA_S2_BANDS if oscd else None, threshold=threshold or 0.5)
    from dataclasses import replace

    from changedetect.detect import DetectConfig
    from changedetect.weights import load_model

    cfg = replace(config or DetectConfig(), model=str(model), threshold=threshold)
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

    Raises
    ------
    DatasetError
        Naming the missing folder or file when the layout is not understood.
    """
    return evaluate_detailed(path, model=model, threshold=threshold, cities=cities,
                             progress=progress).scores()
