"""Shipped weights and their model cards.

A model lives in a folder ``<name>/`` holding ``weights.pt`` (a torch ``state_dict``),
``metadata.json`` (the :class:`ModelCard`, machine-readable) and ``MODEL_CARD.md``
(the same for people).  Shipped models are looked for in ``$CHANGEDETECT_MODELS``
(one or more folders separated by ``os.pathsep``), then in the shipped folder: the
package's ``changedetect/models/`` in an installed wheel (pyproject maps the repository's
``models/`` there), else the checkout's ``models/``.  The sha256 of ``weights.pt`` is
checked on every load.

Normalisation is designed for whole scenes: :func:`compute_stats` reads one set of
per-band statistics from a (subsampled) scene, and :meth:`ModelCard.preprocess`
applies it to every window of that scene, so that windows agree at their borders.
Each date is normalised with its own statistics.  Training computes the statistics
the same way on each whole training image, never per crop.

The card and the normalisation live in :mod:`changedetect._model_card` and are re-exported
here; this module finds, loads, checks and saves the folders.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from changedetect._model_card import (
    CLIP_SIGMA,
    TRANSFORMS,
    ModelCard,
    NormStats,
    apply_transform,
    compute_stats,
    render_card,
)
from changedetect.errors import ModelError

if TYPE_CHECKING:
    from torch import nn

log = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.pt"
METADATA_FILE = "metadata.json"
CARD_FILE = "MODEL_CARD.md"


@dataclass
class LoadedModel:
    """A network in ``eval()`` mode with its card and folder."""

    module: nn.Module
    card: ModelCard
    path: Path

    def __repr__(self) -> str:
        """One line: the card's name and version, the folder, the network's size (not its layers)."""
        n = sum(int(p.numel()) for p in self.module.parameters())
        return (f"LoadedModel({self.card.name!r} {self.card.version} from '{self.path}', "
                f"{type(self.module).__name__} of {n:,} parameters, bands {'/'.join(self.card.bands)})")

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


def _installed_dir() -> Path | None:
    """``changedetect/models/`` of an installed package (the wheel carries the repository's
    ``models/`` there); None in a checkout, which has no such folder."""
    import changedetect

    installed = Path(changedetect.__file__).resolve().parent / "models"
    return installed if installed.is_dir() else None


def shipped_dir() -> Path:
    """The shipped models' folder: an installed package's ``changedetect/models/``, else the
    checkout's ``models/`` beside the ``changedetect/`` package.  Never an installed copy's
    ``site-packages/models``, which belongs to whatever other distribution put it there."""
    import changedetect

    return _installed_dir() or Path(changedetect.__file__).resolve().parents[1] / "models"


def _restore(path: Path) -> str:
    """Where a damaged model file comes back from: the wheel, reinstalled, for an installed copy's
    models; git for a checkout's; the user's own training or copy for a folder of their own (one in
    ``$CHANGEDETECT_MODELS``, or given by path), which neither holds."""
    installed = _installed_dir()
    resolved = Path(path).resolve()
    if installed is not None and resolved.is_relative_to(installed):
        return "by reinstalling changedetect (pip install --force-reinstall --no-deps <its wheel>)"
    if resolved.is_relative_to(shipped_dir().resolve()):
        return "from git"
    return ("from where the model came from (it is not a shipped model: its folder is yours, e.g. in "
            "$CHANGEDETECT_MODELS), or train it again into that folder (changedetect train ... --out FOLDER)")


def models_dirs() -> list[Path]:
    """Folders searched for shipped models: ``$CHANGEDETECT_MODELS`` entries, then :func:`shipped_dir`."""
    dirs = [Path(p) for p in os.environ.get("CHANGEDETECT_MODELS", "").split(os.pathsep) if p]
    dirs.append(shipped_dir())
    return dirs


def read_card(folder: Path) -> ModelCard:
    """The :class:`ModelCard` of a model folder."""
    meta = folder / METADATA_FILE
    try:
        data = json.loads(meta.read_text(encoding="utf-8-sig"))  # a BOM: Notepad, PowerShell 5's UTF8
    except FileNotFoundError:
        raise ModelError(f"model folder '{folder}' has no {METADATA_FILE}") from None
    except UnicodeDecodeError as exc:
        raise ModelError(f"'{meta}' is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
                         f"save it as UTF-8 or restore it {_restore(meta)}") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"'{meta}' is not valid JSON ({exc}); restore it {_restore(meta)}") from exc
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
    if p.is_dir() and (p / WEIGHTS_FILE).is_file():  # a model folder that lost its card
        raise ModelError(f"model folder '{p}' has no {METADATA_FILE} (its card: bands, normalisation, sha256), "
                         f"so its {WEIGHTS_FILE} cannot be used; restore the card from where the weights came "
                         "from, or retrain with `changedetect train`")
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
        where = _restore(wpath)
        raise ModelError(f"model '{card.name}': '{wpath}' is missing; restore it {where}"
                         + (" (git lfs pull?)" if where == "from git" else ""))
    digest = sha256_file(wpath)
    if card.sha256 and digest != card.sha256.strip().lower():  # (Get-FileHash prints capitals)
        raise ModelError(f"model '{card.name}': sha256 of '{wpath}' is {digest} but its card says "
                         f"{card.sha256}; the weights are corrupt or were replaced: restore them "
                         f"{_restore(wpath)} or retrain with `changedetect train`")
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


def _write_temp(path: Path, data: bytes) -> Path:
    """Write ``data`` (flushed to disk) to a fresh temporary file beside ``path``; return its path.

    The file gets the usual permissions (0666 less the umask, 0644 by default), not
    mkstemp's 0600, so that another account (a nightly service) can read the model.
    """
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
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _keep_old(path: Path) -> Path | None:
    """A second name (a hard link, else a copy) for the file at ``path`` before it is replaced, to
    put it back should a later rename of the set fail; None when there is no such file."""
    if not path.is_file():
        return None
    while True:
        old = path.parent / f".{path.name}.{secrets.token_hex(4)}.old"
        try:
            os.link(path, old)
            return old
        except FileExistsError:  # pragma: no cover - 32 random bits
            continue
        except OSError:  # a file system without hard links
            shutil.copy2(path, old)
            return old


def _sync_folder(folder: Path) -> None:
    """Make the renames in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _replace_together(folder: Path, files: dict[str, bytes]) -> None:
    """Put ``files`` (name -> bytes) into ``folder`` all together or not at all.

    Every file is first written in full to a temporary name (a full disk stops here, with
    nothing replaced); then each is renamed over its target in the order given, keeping a
    second name of the file it replaces, so that a rename that fails puts back those
    already replaced.  Anything else in ``folder`` is left alone.
    """
    folder.mkdir(parents=True, exist_ok=True)
    temps: list[Path] = []
    olds: dict[str, Path | None] = {}
    done: list[str] = []
    try:
        for name, data in files.items():
            temps.append(_write_temp(folder / name, data))
        for name, tmp in zip(files, temps, strict=True):
            olds[name] = _keep_old(folder / name)
            os.replace(tmp, folder / name)
            done.append(name)
    except BaseException:
        for name in reversed(done):
            old = olds[name]
            try:
                if old is None:
                    (folder / name).unlink(missing_ok=True)
                else:
                    os.replace(old, folder / name)
            except OSError as exc:  # the first error is the one raised; this one is said
                log.error("could not put back the previous '%s' (%s)%s", folder / name, exc,
                          f"; it is kept as '{old}'" if old is not None else "")
                olds[name] = None  # the copy stays, for the user
        raise
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        for maybe in olds.values():
            if maybe is not None:
                maybe.unlink(missing_ok=True)
        _sync_folder(folder)


def save_model(module: nn.Module, card: ModelCard, folder: Path, *, card_markdown: str | None = None
               ) -> ModelCard:
    """Write ``weights.pt``, ``metadata.json`` (with the sha256 filled in) and ``MODEL_CARD.md``.

    The three files are replaced together or not at all: all are made in memory, then
    written in full to temporary names in ``folder``, then renamed (a failed rename puts
    back the files already replaced), so that an error (a card that is not JSON, a full
    disk) leaves the previous model as it was.  ``metadata.json`` is renamed first: should
    the process die between two renames, the new card's sha256 refuses the old weights
    rather than an old card describing new weights.  Whatever else ``folder`` holds (a
    ``buildings/`` stage, a training config) is left alone.  Returns the card with its
    ``sha256`` set.
    """
    import io
    from dataclasses import replace

    import torch

    buf = io.BytesIO()
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    torch.save(state, buf)
    data = buf.getvalue()
    card = replace(card, sha256=hashlib.sha256(data).hexdigest())
    meta = json.dumps(card.to_dict(), indent=2, ensure_ascii=False) + "\n"
    md = card_markdown if card_markdown is not None else render_card(card)
    _replace_together(Path(folder), {METADATA_FILE: meta.encode("utf-8"), WEIGHTS_FILE: data,
                                     CARD_FILE: md.encode("utf-8")})
    return card


__all__ = ["CLIP_SIGMA", "TRANSFORMS", "LoadedModel", "ModelCard", "NormStats", "apply_transform", "building_segmenter", "compute_stats", "find_model",
           "list_shipped", "load_model", "models_dirs", "read_card", "render_card", "save_model", "sha256_file",
           "shipped_dir"]
