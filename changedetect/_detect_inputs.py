"""What :mod:`changedetect.detect` checks of its inputs before running a model: which of the input's
bands the model reads (by name, through aliases, or in order when unnamed, said once per call), whether
two grids are the same, whether the imagery's pixel size suits the model, and whether its red, green
and blue are one grey image (a colour model on panchromatic imagery)."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from changedetect.errors import ModelError

logger = logging.getLogger("changedetect.detect")

#: the warnings already said in this call (:func:`said_once`); None outside one
_SAID: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar("changedetect_detect_said", default=None)


@contextlib.contextmanager
def said_once() -> Iterator[None]:
    """Within it, each of :func:`warn_once`'s warnings is logged once: a call that detects many
    pairs (``detect_series``, ``evaluate_pairs``) says "BEFORE has unnamed bands" once, not per pair
    and per date.  Nested scopes share the outermost one."""
    if _SAID.get() is not None:
        yield
        return
    token = _SAID.set(set())
    try:
        yield
    finally:
        _SAID.reset(token)


#: the warnings :func:`warn_once` logged within :func:`heard` (None outside one)
_HEARD: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("changedetect_detect_heard", default=None)


@contextlib.contextmanager
def heard() -> Iterator[list[str]]:
    """The text of each warning :func:`warn_once` logs within it, in order, for a command that says them
    where ``-q`` (which drops log lines) does not hide them: ``detect``'s model made for other pixels,
    panchromatic dates, unnamed bands.  Nested scopes share the outermost one."""
    outer = _HEARD.get()
    if outer is not None:
        yield outer
        return
    said: list[str] = []
    token = _HEARD.set(said)
    try:
        yield said
    finally:
        _HEARD.reset(token)


#: the card whose fit to this imagery the caller measured and said (:func:`fit_measured`); None outside one
_FITTED: contextvars.ContextVar[Any] = contextvars.ContextVar("changedetect_detect_fitted", default=None)


@contextlib.contextmanager
def fit_measured(card: Any) -> Iterator[None]:
    """Within it, detection neither measures nor says again what the caller measured and said of
    ``card`` on this imagery (``run``: :func:`changedetect._model_fit.model_fit`, once, on the tiles):
    the pixel size (:func:`check_gsd`), a grey date (:func:`check_colour`, which reads windows of each
    date, per pair and per block) and unnamed bands read in order (:func:`resolve_bands`).  So for any
    card that reads the same bands at the same resolution (the change model's building segmenter);
    another card is checked as before."""
    token = _FITTED.set(card)
    try:
        yield
    finally:
        _FITTED.reset(token)


def _fit_known(bands: Sequence[str], gsd_range: Any = None, *, any_range: bool = False) -> bool:
    """Whether :func:`fit_measured`'s card reads ``bands`` (in that order) and, unless ``any_range``,
    is made for ``gsd_range``."""
    card = _FITTED.get()
    if card is None or [str(b) for b in card.bands] != [str(b) for b in bands]:
        return False
    return any_range or _range(getattr(card, "gsd_range_m", None)) == _range(gsd_range)


def _range(rng: Any) -> tuple[float, ...] | None:
    return tuple(float(v) for v in rng) if rng else None


def warn_once(msg: str, *args: Any, key: str | None = None) -> None:
    """``logger.warning(msg, *args)``, unless the same text (or the same ``key``: a warning whose
    numbers may differ a little from block to block) was said in this :func:`said_once` scope."""
    said = _SAID.get()
    if said is not None:
        text = key if key is not None else (msg % args if args else msg)
        if text in said:
            return
        said.add(text)
    logger.warning(msg, *args)
    if (listening := _HEARD.get()) is not None:
        listening.append(msg % args if args else msg)

#: band names that mean the same band (lower case) -> one canonical name.
_ALIASES: dict[str, str] = {
    "red": "red", "r": "red", "b04": "red",
    "green": "green", "g": "green", "b03": "green",
    "blue": "blue", "b": "blue", "b02": "blue",
    "nir": "nir", "b08": "nir",
}


def _canon(name: str) -> str:
    n = str(name).strip().lower()
    return _ALIASES.get(n, n)


def _anonymous(name: str) -> bool:
    """``""``, ``"3"``, ``"band_3"``, ``"band3"`` or ``"B3"`` (io's name for an undescribed band), of any
    number of digits (a 12-band file's ``B10``..``B12``); not Sentinel-2's zero-padded ``B02``.  One
    name cannot tell io's ``B10`` from Sentinel-2's: a stack's bands are judged by :func:`unnamed`."""
    n = str(name).strip().lower()
    return n in ("", "none") or bool(re.fullmatch(r"band[_ ]?\d+|b[1-9]\d*|\d+", n))


def unnamed(names: Sequence[str]) -> bool:
    """Whether a stack's bands have no names, so that a model takes its first bands in order: each
    :func:`_anonymous`, and Sentinel-2's ``B10``..``B12`` only among io's own ``B1``..``Bn`` (a file
    without band descriptions; :mod:`changedetect.io` never zero-pads them): a Sentinel-2 series of
    B10, B11 and B12 alone is refused as lacking red, green and blue, not read as them."""
    low = [str(n).strip().lower() for n in names]
    if not all(_anonymous(n) for n in low):
        return False
    sentinel2 = any(re.fullmatch(r"b1[0-2]", n) for n in low)
    return not sentinel2 or low == [f"b{i}" for i in range(1, len(low) + 1)]


def resolve_bands(
    available: Sequence[str],
    wanted: Sequence[str],
    *,
    aliases: Mapping[str, Sequence[str]] | None = None,
    source: str = "the input",
) -> list[int]:
    """Indices into ``available`` of the bands ``wanted`` by a model, in its order.

    Names match case-insensitively, through the common aliases (red/green/blue/nir
    and Sentinel-2's B04/B03/B02/B08) and through the card's own ``aliases``.  When
    the input's bands have no names (``1``, ``band_2``, ``B3``...), the first
    ``len(wanted)`` are taken in order.

    Raises
    ------
    ModelError
        Naming the missing bands and the bands the input has.
    """
    canon = [_canon(a) for a in available]
    idx = []
    for w in wanted:
        names = [w, *((aliases or {}).get(w, ()))]
        hit = next((canon.index(_canon(n)) for n in names if _canon(n) in canon), -1)
        idx.append(hit)
    if all(i >= 0 for i in idx):
        return idx
    if unnamed(available) and len(available) >= len(wanted):
        if _fit_known(wanted, any_range=True):  # run's model fit said it (unnamed_bands)
            return list(range(len(wanted)))
        warn_once("%s has unnamed bands: using the first %d as %s; if they are in another order, name "
                       "them (band descriptions in the file, or \"bands\" in the series' manifest.json)", source, len(wanted), list(wanted))
        return list(range(len(wanted)))
    missing = [w for w, i in zip(wanted, idx, strict=True) if i < 0]
    grey = ""
    if len(available) == 1 and {_canon(w) for w in wanted} == {"red", "green", "blue"}:
        # one grey band (a panchromatic image, solaris' 0.5 m tile): what can be done with it, and what it costs
        grey = ("; it has one band (a panchromatic or grey image?), and the model reads colour: to run it anyway, "
                "copy that band into red, green and blue (`gdal_translate -b 1 -b 1 -b 1 -colorinterp "
                "red,green,blue IN.tif OUT.tif`) and expect it to find less (run says so)")
    raise ModelError(
        f"{source} lacks band(s) {missing} that the model needs (it needs {list(wanted)}, "
        f"the input has {list(map(str, available))}); give a stack with these bands or "
        f"choose a model for the bands you have{grey}"
    )


def check_stack_bands(stack: Any, card: Any, source: str) -> None:
    """ModelError naming ``source`` when the stack lacks a band the model needs: checked when tiles
    are opened, before co-registration or detection start on the whole scene.  Unnamed bands pass
    (detection takes the first ones, and says so once)."""
    names = [str(b) for b in stack["band"].values]
    if unnamed(names) and len(names) >= len(card.bands):
        return
    resolve_bands(names, list(card.bands), aliases=dict(getattr(card, "band_aliases", None) or {}), source=source)


def same_transform(a: Any, b: Any, width: int, height: int) -> bool:
    """Whether two affine transforms put a ``width`` x ``height`` grid's corners within a hundredth of
    ``b``'s pixel of each other (``np.allclose`` on the coefficients allows 6 m at a UTM easting of
    600 km, and ``Affine.almost_equals``' 1e-5 is three 0.3 m pixels in degrees)."""
    pixel = float(np.sqrt(abs(b.a * b.e - b.b * b.d)))
    for col, row in ((0, 0), (width, 0), (0, height), (width, height)):
        xa, ya = a @ (col, row)
        xb, yb = b @ (col, row)
        if max(abs(xa - xb), abs(ya - yb)) > 0.01 * pixel:
            return False
    return True


def check_gsd(card: Any, crs: Any, transform: Any, width: int, height: int, source: str) -> None:
    """A warning when the imagery's ground pixel lies well outside the model card's ``gsd_range_m``
    (below half its lower end or above 1.5 times its upper end): a 10 m Sentinel-2 model on 0.5 m
    imagery runs without error and finds nothing useful.  Silent without a CRS (units unknown)."""
    rng = getattr(card, "gsd_range_m", None)
    if crs is None or not rng or _fit_known(card.bands, rng):  # run's model fit said it (resolution)
        return
    from changedetect.io.geo import ground_pixel
    from changedetect.types import Grid

    try:
        gsd = float(np.sqrt(ground_pixel(Grid(crs=crs, transform=transform, width=width, height=height))[0]))
    except Exception:  # an odd CRS: nothing to say
        return
    warn_gsd(card, gsd, source)


def warn_gsd(card: Any, gsd: float, source: str, *, key: str | None = None) -> None:
    """:func:`check_gsd`'s warning for imagery of ``gsd`` metre pixels, once per ``key`` (default: the
    model and ``source``) in a ``said_once`` call."""
    said = gsd_mismatch(card, gsd)
    if said is not None:
        made, hint = said
        # once in a call (a blocked run's blocks, a geographic CRS's pixel a little larger in each)
        warn_once("model '%s' is made for %s pixels, and %s has %.2f m pixels: expect poor results; %s",
                  card.name, made, source, gsd, hint, key=key or f"gsd {card.name} {source}")


def gsd_mismatch(card: Any, gsd: float) -> tuple[str, str] | None:
    """``(made, hint)`` when ``gsd`` metre pixels lie well outside the card's ``gsd_range_m`` (below half
    its lower end or above 1.5 times its upper end): the range it is made for (``"0.3-1 m"``) and what to
    do (a shipped model made for such pixels); None when they fit, or the card says no range."""
    rng = getattr(card, "gsd_range_m", None)
    if not rng or not np.isfinite(gsd) or gsd <= 0:
        return None
    lo, hi = float(rng[0]), float(rng[1])
    if lo / 2 <= gsd <= hi * 1.5:
        return None
    made = f"{lo:g} m" if lo == hi else f"{lo:g}-{hi:g} m"
    fits = _fitting_models(gsd, card.name)
    return made, (f"--model {fits[0]} is made for such pixels" if fits
                  else "`changedetect models` lists the models and their resolutions")


def check_colour(read: Any, shape: tuple[int, int], card: Any, label: str) -> None:
    """A warning, once per ``label`` (a date, a file), when the model reads red, green and blue and
    they are one grey image copied three times (:func:`changedetect._grey.looks_grey`, on a few
    windows read through ``read``: the model's bands in its order, as detection reads them)."""
    from changedetect._grey import grey_warning, looks_grey, rgb_positions, sample_windows

    pos = rgb_positions([str(b) for b in card.bands])
    if _fit_known(card.bands, any_range=True):  # run's model fit read each date's files (panchromatic)
        return
    if pos is not None and looks_grey(sample_windows(read, shape)[pos]):
        grey_warning(logger, label, str(getattr(card, "name", "")) or None, say=warn_once)


def _fitting_models(gsd: float, other_than: str) -> list[str]:
    """Names of the shipped models whose ``gsd_range_m`` takes ``gsd`` metres (as :func:`check_gsd` judges)."""
    from changedetect.weights import list_shipped

    names = []
    for card in list_shipped():
        rng = getattr(card, "gsd_range_m", None)
        if card.name != other_than and rng and float(rng[0]) / 2 <= gsd <= float(rng[1]) * 1.5:
            names.append(card.name)
    return names
