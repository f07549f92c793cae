"""Training configuration: a frozen dataclass and its one-to-one TOML file.

Example (``models/vhr-building/train.toml``)::

    name = "vhr-building"
    task = "vhr"
    arch = "siamese_unet"
    steps = 3000

    [synth]
    size = 256
    p_pairing = 0.35

Paths in the file are relative to the file's folder (``init_from`` may also be a shipped
model's name); without ``data_root`` the repository's ``../shared/data`` is read, without ``cache``
the cache is the repository's ``.cache_train/<name>.npz``.  An unknown key raises
:class:`~changedetect.errors.ConfigError` naming it and the allowed ones; a value of the
wrong type one naming the key, the expected type and the value.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from changedetect.errors import ConfigError
from changedetect.training.synth import SynthConfig
from changedetect.weights import TRANSFORMS

Task = Literal["vhr", "s2"]
#: The checkout's root (the folder holding ``models/`` and the git-ignored ``.cache_train/``).
REPO = Path(__file__).resolve().parents[2]


def work_root() -> Path:
    """Where a config's default ``data_root`` (``../shared/data``) and ``sample_tiles/`` are found:
    the checkout, or for an installed copy (no ``pyproject.toml`` beside the package, which then
    sits in ``site-packages``) the working directory."""
    return REPO if (REPO / "pyproject.toml").is_file() else Path.cwd()


def _in_installed_package(folder: Path) -> bool:
    """Whether ``folder`` is inside an installed copy's own ``changedetect/models/``."""
    from changedetect.weights import _installed_dir

    installed = _installed_dir()
    return installed is not None and folder.resolve().is_relative_to(installed.resolve())


def cache_dir() -> Path:
    """Where training caches go (they hold licensed data: never beside a model): the checkout's
    git-ignored ``.cache_train/``, or for an installed copy ``$XDG_CACHE_HOME/changedetect/train``
    (``~/.cache/changedetect/train``), never inside ``site-packages``."""
    if (REPO / "pyproject.toml").is_file():
        return REPO / ".cache_train"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "changedetect" / "train"


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (with the seed, it fixes the weights).

    Parameters
    ----------
    name, version, description
        The model's name (its folder under ``models/``), version and one-line description.
    task
        ``"vhr"``: RGB building change by pair synthesis from single-date building masks
        (+ real labelled pairs when given); ``"s2"``: Sentinel-2 pairs with change labels (OSCD).
    arch, arch_kwargs
        Registry name and keyword arguments of the network.
    bands, band_aliases
        The bands the model reads, in order, and other accepted names.
    data_root
        The real data (``../shared/data``); read only when ``cache`` is missing.
    cache
        Compact training cache (``.npz``); built from ``data_root`` when absent.
    train_groups, val_groups
        VHR: source groups (e.g. ``fair_oam_1``, ``spacenet_rio``, ``sample_city``) for
        training and held-out validation (split by area, never by tile).  S2: city names.
    steps, batch_size, lr, weight_decay, seed
        Optimisation (AdamW, one-cycle schedule peaking at ``lr``).
    crop
        Training crop size for the S2 task (VHR: ``synth.size``).
    pos_weight, dice_weight
        Loss: ``BCE(pos_weight) + dice_weight * Dice``.
    hard_pos_boost
        Extra BCE weight on changed pixels the model still misses: each positive pixel is
        weighted ``1 + hard_pos_boost * (1 - p)**2`` (``p`` its current probability, not
        differentiated), so faint changes the model suppresses count more; 0 = plain BCE.
    p_real
        VHR: share of samples taken from real labelled pairs (the sample city) when any.
    checkpoint_every, workers
        Checkpoint period (steps) and data-loader worker processes (0 = in the main process).
    threshold, gsd_range_m, window
        Written into the model card.
    val_pairs
        VHR: number of seeded synthetic pairs made from the held-out groups for validation.
    levir
        Path (relative to ``data_root``) of the LEVIR samples, evaluation only ("" = skip).
    init_from
        A model folder (in a file: relative to it) or a shipped model's name whose weights start
        the run (fine-tuning); "" = random initialisation.
    transform
        Pixel transform applied before each date's standardisation, written into the card
        (``"none"`` or ``"sqrt"``: :func:`changedetect.weights.apply_transform`).
    synth
        Pair-synthesis knobs (:class:`~changedetect.training.synth.SynthConfig`).
    """

    name: str = "vhr-building"
    version: str = "0.1.0"
    description: str = ""
    task: Task = "vhr"
    arch: str = "siamese_unet"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    bands: tuple[str, ...] = ("red", "green", "blue")
    band_aliases: dict[str, list[str]] = field(default_factory=dict)
    data_root: str = "../shared/data"
    cache: str = ".cache_train/vhr.npz"
    train_groups: tuple[str, ...] = ("fair_oam_1", "fair_oam_4", "fair_oam_5", "spacenet_rio",
                                     "sample_city_1")
    val_groups: tuple[str, ...] = ("fair_oam_2", "fair_oam_3", "sample_city_2")
    steps: int = 3000
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    crop: int = 128
    pos_weight: float = 1.0
    dice_weight: float = 1.0
    hard_pos_boost: float = 0.0
    p_real: float = 0.1
    checkpoint_every: int = 250
    workers: int = 0
    threshold: float = 0.5
    gsd_range_m: tuple[float, float] = (0.3, 1.0)
    window: int = 512
    val_pairs: int = 64
    levir: str = "levir_samples"
    licence: str = ""
    training_data: str = ""
    init_from: str = ""
    transform: str = "none"
    synth: SynthConfig = field(default_factory=SynthConfig)

    def __post_init__(self) -> None:
        if self.task not in ("vhr", "s2"):
            raise ConfigError(f"task must be 'vhr' or 's2', got {self.task!r}")
        for k in ("steps", "batch_size", "checkpoint_every"):
            if getattr(self, k) < 1:
                raise ConfigError(f"{k} must be >= 1, got {getattr(self, k)}")
        if self.transform not in TRANSFORMS:
            raise ConfigError(f"transform must be one of {list(TRANSFORMS)}, got {self.transform!r}")
        if not math.isfinite(self.hard_pos_boost) or self.hard_pos_boost < 0:
            raise ConfigError(f"hard_pos_boost must be a finite number >= 0, got {self.hard_pos_boost}")
        # caught here, not by the optimiser or the card after the data are read (an 'Internal error', or
        # a model whose threshold no probability reaches)
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"'lr' must be a number > 0, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"'weight_decay' must be a number >= 0, got {self.weight_decay}")
        if not 0 < self.threshold < 1:
            raise ConfigError(f"'threshold' must be between 0 and 1 (a probability), got {self.threshold}")
        if not 0 <= self.p_real <= 1:
            raise ConfigError(f"'p_real' must be between 0 and 1 (a share of the samples), got {self.p_real}")
        both = sorted(set(self.train_groups) & set(self.val_groups))
        if both:  # a held-out score of what was trained on
            raise ConfigError(f"groups {both} are both in train_groups and val_groups; hold each out or train on it")
        lo, hi = self.gsd_range_m
        if not (0 < lo <= hi and math.isfinite(hi)):
            raise ConfigError(f"'gsd_range_m' must be two ground sample distances 0 < low <= high (metres), "
                              f"got {list(self.gsd_range_m)}")

    @classmethod
    def from_toml(cls, path: str | Path) -> TrainConfig:
        """Read a TOML file; relative ``data_root`` / ``cache`` are taken from the file's folder."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # (a BOM, as Notepad writes, skipped)
        except FileNotFoundError:
            raise ConfigError(f"training config '{path}' does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"training config '{path}' is not valid TOML: {exc}") from exc
        cfg = cls.from_dict(data, source=str(path))
        base = path.resolve().parent
        # what the file does not give is the repository's: ../shared/data beside it, and a cache of the
        # model's own in its git-ignored .cache_train/ (never beside a config in models/<name>/); a shipped
        # config read from an installed copy's package keeps nothing of its paths, which lead into site-packages
        own = ("data_root" in data or "cache" in data) and not _in_installed_package(base)
        data_root = _rel(base, cfg.data_root) if own and "data_root" in data else _rel(work_root(), cfg.data_root)
        cache = _rel(base, cfg.cache) if own and "cache" in data else cache_dir() / f"{cfg.name}.npz"
        return replace(cfg, data_root=str(data_root), cache=str(cache), init_from=_init_from(base, cfg.init_from))

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> TrainConfig:
        """Build from a mapping (a parsed TOML file)."""
        data = dict(data)
        synth = data.pop("synth", {})
        if not isinstance(synth, dict):
            raise ConfigError(f"{source}: 'synth' must be a table ([synth]), got {_shown(synth)}")
        _check_keys(cls, data, source)
        _check_keys(SynthConfig, synth, f"{source} [synth]")
        hints, synth_hints = typing.get_type_hints(cls), typing.get_type_hints(SynthConfig)
        kw = {k: _typed(hints[k], v, where=source, key=k) for k, v in data.items()}
        syn = {k: _typed(synth_hints[k], v, where=f"{source} [synth]", key=k) for k, v in synth.items()}
        try:
            return cls(**kw, synth=SynthConfig(**syn))
        except (TypeError, ConfigError) as exc:  # the file's name with what is wrong in it
            raise ConfigError(f"{source}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping (JSON/TOML-ready)."""
        return dataclasses.asdict(self)


def _rel(base: Path, p: str) -> Path:
    q = Path(p)
    return q if q.is_absolute() else (base / q).resolve()


def _init_from(base: Path, value: str) -> str:
    """``init_from`` of a file in ``base``: a path (``stage1``, ``../m``) relative to the file, or a
    shipped model's name (``vhr-building``) when no such folder is there and it is a bare name."""
    if not value:
        return ""
    q = Path(value)
    if q.is_absolute() or (base / q).exists() or len(q.parts) > 1 or value.startswith("."):
        return str(_rel(base, value))
    return value


def _shown(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array",
            dict: "table"}.get(type(value), type(value).__name__)
    return f"{kind} {str(value).lower() if isinstance(value, bool) else repr(value)}"


def _typed(hint: Any, value: Any, *, where: str, key: str) -> Any:
    """``value`` (parsed TOML) checked against the field's type ``hint``; lists become tuples.

    Raises :class:`ConfigError` naming the key, the expected type and the value.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{where}: '{key}' must be {expected}, got {_shown(value)}")

    if hint is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad("a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if origin is Literal:
        if value not in args:
            raise bad("one of " + ", ".join(repr(a) for a in args))
        return value
    if origin is tuple:
        if args and args[-1] is Ellipsis:
            if not isinstance(value, list | tuple) or not all(_fits(args[0], v) for v in value):
                raise bad(f"an array of {_name(args[0])}s")
            return tuple(float(v) if args[0] is float else v for v in value)
        if not isinstance(value, list | tuple) or len(value) != len(args) \
                or not all(_fits(a, v) for a, v in zip(args, value, strict=True)):
            raise bad(f"an array of {len(args)} {_name(args[0])}s")
        return tuple(float(v) if a is float else v for a, v in zip(args, value, strict=True))
    if origin is dict:
        if not isinstance(value, dict):
            raise bad("a table")
        inner = args[1] if args else Any
        if typing.get_origin(inner) is list:
            elem = typing.get_args(inner)[0]
            for k, v in value.items():
                if not isinstance(v, list) or not all(_fits(elem, x) for x in v):
                    raise ConfigError(f"{where}: '{key}.{k}' must be an array of {_name(elem)}s, "
                                      f"got {_shown(v)}")
        return value
    return value


def _fits(hint: Any, value: Any) -> bool:
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _name(hint: Any) -> str:
    return {float: "number", int: "integer", str: "string"}.get(hint, getattr(hint, "__name__", str(hint)))


def _check_keys(cls: type, data: dict[str, Any], source: str) -> None:
    allowed = {f.name for f in fields(cls)}
    bad = sorted(set(data) - allowed)
    if bad:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(bad)}; allowed: {', '.join(sorted(allowed))}")


__all__ = ["Task", "TrainConfig"]
