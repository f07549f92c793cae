"""Export a change model to ONNX with its pre- and post-processing, for deployment elsewhere.

A bare network export is not deployable: the caller must also know the bands and their order,
normalise each date as the model was trained, pad, and turn logits into probabilities.  The
graph written here takes the **raw** pixel values of the two dates and each date's per-band
scene statistics, and returns the change probability:

* inputs ``before``, ``after``: ``(n, c, h, w)`` float32, the card's bands in its order, raw
  values (NaN = no data); ``h`` and ``w`` multiples of 32;
* inputs ``mean_before``, ``std_before``, ``mean_after``, ``std_after``: ``(n, c)`` float32,
  each date's statistics over its **whole scene**
  (:func:`changedetect.weights.compute_stats`, whose recipe ``export.json`` spells out), so that
  every window of a scene is normalised alike;
* output ``probability``: ``(n, 1, h, w)`` float32 in [0, 1]; change where it reaches the
  card's threshold.

Inside: ``(x - mean) / std``, NaN to 0, clipped to ±8 standard deviations (as
:meth:`changedetect.weights.ModelCard.preprocess`), the network (BatchNorm folded), a sigmoid.
Windowing, blending and writing GeoTIFFs stay with the caller (or with ``changedetect detect``).
Needs the ``onnx`` extra (``pip install -e '.[onnx]'`` in the checkout: onnx and onnxruntime).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from changedetect.errors import ModelError, OutputExistsError
from changedetect.weights import CARD_FILE, CLIP_SIGMA, LoadedModel, load_model, sha256_file

__all__ = ["ExportSummary", "INPUTS", "SIZE_MULTIPLE", "export_onnx"]

#: the graph's input names, in order
INPUTS = ("before", "after", "mean_before", "std_before", "mean_after", "std_after")
#: ``h`` and ``w`` must be multiples of this (the network downsamples 32x)
SIZE_MULTIPLE = 32
ONNX_FILE = "model.onnx"
EXPORT_FILE = "export.json"


@dataclass(frozen=True)
class ExportSummary:
    """What :func:`export_onnx` wrote and how closely onnxruntime reproduces torch."""

    folder: Path
    onnx_sha256: str
    max_abs_diff: float | None  #: against torch on a seeded random pair; None when not checked
    #: export.json's content (left out of the repr: it is the whole file)
    metadata: dict[str, Any] = field(repr=False)


def _deployable(loaded: LoadedModel) -> Any:
    """The network wrapped with its normalisation and sigmoid (a ``torch.nn.Module``)."""
    import torch

    class Deployable(torch.nn.Module):
        def __init__(self, net: torch.nn.Module, transform: str) -> None:
            super().__init__()
            self.net = net
            self.sqrt = transform == "sqrt"

        def _standardise(self, x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
            if self.sqrt:  # the card's pixel transform (changedetect.weights.apply_transform)
                x = torch.sqrt(torch.clamp(x, min=0.0))
            y = (x - mean[:, :, None, None]) / std[:, :, None, None]
            y = torch.where(torch.isnan(y), torch.zeros_like(y), y)
            return torch.clamp(y, -CLIP_SIGMA, CLIP_SIGMA)

        def forward(self, before: torch.Tensor, after: torch.Tensor, mean_before: torch.Tensor,
                    std_before: torch.Tensor, mean_after: torch.Tensor, std_after: torch.Tensor) -> torch.Tensor:
            a = self._standardise(before, mean_before, std_before)
            b = self._standardise(after, mean_after, std_after)
            return torch.sigmoid(self.net(a, b))

    net = copy.deepcopy(loaded.module).to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]  # the caller's stays as it is
    return Deployable(net, loaded.card.transform).eval()


def _example(c: int, size: int, seed: int = 0, card: Any = None) -> tuple[np.ndarray, ...]:
    """A seeded random pair (with some no data) and its statistics (``card``'s, when given), in the
    graph's input order."""
    from changedetect.weights import compute_stats

    stats = card.compute_stats if card is not None else compute_stats
    rng = np.random.default_rng(seed)
    before = (rng.random((1, c, size, size)) * 255).astype(np.float32)
    after = before.copy()
    after[:, :, size // 4: size // 2, size // 4: size // 2] = 255 - after[:, :, size // 4: size // 2, size // 4: size // 2]
    after[:, :, :8] = np.nan
    sb, sa = stats(before[0]), stats(after[0])
    return before, after, sb.mean[None], sb.std[None], sa.mean[None], sa.std[None]


def _metadata(loaded: LoadedModel, opset: int) -> dict[str, Any]:
    from changedetect import __version__

    card = loaded.card
    bands = list(card.bands)
    return {
        "format": "onnx", "opset": opset, "file": ONNX_FILE, "changedetect_version": __version__,
        "model": card.name, "version": card.version, "weights_sha256": card.sha256,
        "bands": bands, "threshold": card.threshold, "window": card.window, "size_multiple": SIZE_MULTIPLE,
        "inputs": {
            "before": f"(n, {len(bands)}, h, w) float32: raw values of the earlier date, bands {bands} in this "
                      f"order, NaN = no data; h and w multiples of {SIZE_MULTIPLE}",
            "after": "the same for the later date, on the same grid",
            "mean_before": f"(n, {len(bands)}) float32: per-band mean of the earlier date's whole scene "
                           "(below; of the transformed values when the normalization names a transform)",
            "std_before": f"(n, {len(bands)}) float32: its per-band standard deviation",
            "mean_after": "the same for the later date", "std_after": "the same for the later date",
        },
        "outputs": {"probability": "(n, 1, h, w) float32 in [0, 1]: change where it reaches `threshold`"},
        "normalization": dict(card.normalization),
        "statistics": ("per date and band, over the whole scene (not per window): take a regular subsample of at "
                       "most 2**20 pixels (every k-th row and column, k = ceil(sqrt(h*w / 2**20))), apply the "
                       "normalization's transform if it names one (sqrt: of max(x, 0)), drop NaN, "
                       "clip to the normalization's clip_percentiles, then mean and standard deviation (a "
                       "standard deviation below 1e-6 * max(1, |mean|) counts as 1): "
                       "changedetect.weights.compute_stats"),
        "inside": f"the transform (if any), (x - mean) / std, NaN -> 0, clipped to +-{CLIP_SIGMA:g} std; the network; a sigmoid",
        "windows": (f"feed windows of `window` px (any multiple of {SIZE_MULTIPLE} works) overlapping by 64 px "
                    "and blend them, as changedetect detect does, for scenes larger than one window"),
    }


def export_onnx(model: str | os.PathLike[str] | LoadedModel, out: str | os.PathLike[str], *, opset: int = 17,
                overwrite: bool = False, check: bool = True) -> ExportSummary:
    """Write ``OUT/model.onnx`` (normalisation, network and sigmoid in one graph), ``OUT/export.json``
    (its inputs, outputs, bands, threshold and the statistics recipe) and the model's card.

    Parameters
    ----------
    model
        Shipped model name, model folder, or a loaded model.
    out
        Folder to create; written next to it first, then moved into place.
    opset
        ONNX opset version.
    overwrite
        Write into an existing, non-empty ``out``, replacing an earlier export's files there (the
        folder's other files are kept).
    check
        Run the exported graph with onnxruntime on a seeded random 64 px pair and record the
        largest difference from torch (``max_abs_diff``, also in ``export.json``).

    Raises
    ------
    OutputExistsError
        ``out`` exists and ``overwrite`` is False.
    ModelError
        Unknown model, or the ``onnx`` extra is not installed.
    """
    out = Path(out)
    if out.exists() and not overwrite and (out.is_file() or any(out.iterdir())):
        raise OutputExistsError(f"output '{out}' already exists; pass --overwrite to replace it")
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
        if check:
            import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise ModelError(f"exporting to ONNX needs the onnx extra ({exc.name} is missing): "
                         "pip install -e '.[onnx]' in the changedetect checkout, or pip install onnx onnxruntime"
                         ) from exc
    import torch

    loaded = model if isinstance(model, LoadedModel) else load_model(model, channels_last=False)
    wrapper = _deployable(loaded)
    example = _example(len(loaded.card.bands), 64, card=loaded.card)
    dynamic = {name: {0: "n", 2: "h", 3: "w"} if name in ("before", "after") else {0: "n"} for name in INPUTS}
    dynamic["probability"] = {0: "n", 2: "h", 3: "w"}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp's folder is private; the export is not
    try:
        with warnings.catch_warnings():  # the TorchScript exporter is deprecated (the new one needs onnxscript)
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, tuple(torch.from_numpy(x) for x in example), str(tmp / ONNX_FILE),
                              input_names=list(INPUTS), output_names=["probability"], dynamic_axes=dynamic,
                              opset_version=opset, dynamo=False)
        meta = _metadata(loaded, opset)
        meta["onnx_sha256"] = sha256_file(tmp / ONNX_FILE)
        diff = _check(tmp / ONNX_FILE, wrapper, example) if check else None
        meta["checked"] = None if diff is None else {"max_abs_diff_vs_torch": diff, "on": "a seeded random 64 px pair"}
        (tmp / EXPORT_FILE).write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        if (loaded.path / CARD_FILE).is_file():
            shutil.copy2(loaded.path / CARD_FILE, tmp / CARD_FILE)
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportSummary(folder=out, onnx_sha256=meta["onnx_sha256"], max_abs_diff=diff, metadata=meta)


def _publish(tmp: Path, out: Path) -> None:
    """Move the export staged in ``tmp`` to ``out``: the folder itself when ``out`` is new, else file by file
    (export.json last), replacing an earlier export's files and keeping every other file of ``out`` (an
    existing folder may be the current one, or hold the user's work: it is never removed)."""
    if out.exists() and not out.is_dir():
        out.unlink()
    if not out.exists():
        tmp.rename(out)
        return
    written = {p.name for p in tmp.iterdir()}
    for name in sorted(written - {EXPORT_FILE}) + [EXPORT_FILE]:
        os.replace(tmp / name, out / name)
    if CARD_FILE not in written:  # an earlier export's card is not this model's
        (out / CARD_FILE).unlink(missing_ok=True)
    tmp.rmdir()


def _check(path: Path, wrapper: Any, example: tuple[np.ndarray, ...]) -> float:
    """Largest absolute difference between onnxruntime's and torch's probabilities on ``example``."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, dict(zip(INPUTS, example, strict=True)))[0]
    with torch.inference_mode():
        want = wrapper(*(torch.from_numpy(x) for x in example)).numpy()
    if got.shape != want.shape:
        raise ModelError(f"the exported graph gives shape {got.shape}, torch {want.shape}")
    return float(np.nanmax(np.abs(got - want)))
