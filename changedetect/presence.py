"""Change the network hints at, confirmed by a building segmenter (post-classification comparison).

The change network misses some structures whose change is plain to a single-date building
segmenter: a new roof the colour of the ground it replaced, a house demolished inside a tall
neighbour's winter shadow.  There the network's probability only *hints* (it reaches 0.3
somewhere in the structure, not 0.5), while the segmenter sees a building on one date and
none on the other.  Comparing the two dates' building maps alone (classic post-classification
comparison) flags every roof whose shading changed; requiring both signals, on dates of the
same season, keeps the finds and not the noise.  Measured with the whole chain on generated
cities no model trained on (``docs/detection.md``, *The presence check*): on the 20 the
thresholds were chosen on, 2 more of 177 planted violations found with the right status; on 60
generated afterwards, 3 more of 548, with no more permitted structures flagged or false blobs.
A pair of different seasons is checked only against two same-season dates that bracket it, which
must show the same change (``same_sun``): on those 80 cities one more violation and one more
false blob; on the sample city, the unlicensed house the network misses.

:func:`confirmed_change` is the pure rule on arrays; :class:`DatePresence` runs the segmenter
on the dates of a stack (once each, when a pair needs them) and applies the rule to a pair of
them.  :func:`changedetect.detect.detect_each_pair` uses it when it is given a segmenter and
``DetectConfig.presence_check`` is on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

if TYPE_CHECKING:
    import xarray as xr

    from changedetect._detect_engine import DetectConfig, ModelLike

__all__ = ["DatePresence", "PresenceCheck", "building_presence", "confirmed_change", "same_season"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PresenceCheck:
    """The thresholds of :func:`confirmed_change`.

    Parameters
    ----------
    presence
        The segmenter's mean building probability over the object on the date it stands.
    delta
        How much higher that mean is than on the date it does not stand.
    support
        The change network's probability must reach this somewhere in the object (its hint).
    min_area_m2
        Smaller objects are ignored (ground square metres).
    decided
        An object the network already outlines over at least this share (its probability at
        the threshold) is the network's: its outlines are tighter than the segmenter's.
    season_days
        Two dates are of the same season when their days of the year are within this many
        days: the same sun, the same shadows.  :class:`DatePresence` checks such a pair on its
        own; across seasons the segmenter takes a winter shadow for a building and flags the
        ground it falls on (on 20 fresh generated cities, checking every pair on its own
        flagged 2 more permitted structures and 1 more false blob), so a pair of different
        seasons is checked only against two same-season dates (``across_seasons``).
        :func:`changedetect.detect.detect_each_pair` uses ``DetectConfig.season_days`` (45
        when that is None).
    across_seasons
        Check a pair of dates of different seasons too when the stack has a date that brackets
        it under the same sun (a later date of BEFORE's season, or an earlier one of AFTER's):
        an object is then confirmed only if the segmenter sees the same change between those
        two same-season dates (``same_sun`` of :func:`confirmed_change`).
        ``DetectConfig.presence_across_seasons``.
    """

    presence: float = 0.85
    delta: float = 0.45
    support: float = 0.3
    min_area_m2: float = 15.0
    decided: float = 0.25
    season_days: int = 45
    across_seasons: bool = True

    def __post_init__(self) -> None:
        for name in ("presence", "delta", "support", "decided"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"PresenceCheck.{name} must be in (0, 1], got {value}")
        if not 0 <= self.season_days <= 91:
            raise ValueError(f"PresenceCheck.season_days must be in [0, 91], got {self.season_days}")
        if self.min_area_m2 < 0:
            raise ValueError(f"PresenceCheck.min_area_m2 must be >= 0, got {self.min_area_m2}")

    def appeared(self, gone: Any, stands: Any) -> Any:
        """Whether mean building probabilities ``gone`` -> ``stands`` (floats or arrays) show a
        building come: ``stands`` reaches ``presence`` and exceeds ``gone`` by ``delta`` (NaN: no).
        A building went where ``appeared(stands, gone)``."""
        with np.errstate(invalid="ignore"):
            return (np.asarray(stands) >= self.presence) & (np.asarray(stands) - np.asarray(gone) >= self.delta)


def _rough(gone: np.ndarray, stands: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Where a building stands in ``stands`` by 0.3 more than in ``gone`` (valid pixels): opened, the
    objects the check examines (and :func:`changedetect._block_reach.object_bounds` bounds)."""
    return np.asarray(valid & (stands >= 0.5) & (stands - gone >= 0.3), dtype=bool)


def _appeared(gone: np.ndarray, stands: np.ndarray, prob: np.ndarray, valid: np.ndarray, min_px: int,
              check: PresenceCheck, threshold: float,
              same_sun: tuple[np.ndarray, np.ndarray] | None = None,
              decided: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Labels of the objects standing in ``stands`` and not in ``gone`` (valid pixels only: no
    data is neither a building nor its absence), and which of them are confirmed; with
    ``same_sun`` (``(gone, stands)`` of a same-season pair), only those that pass the presence
    thresholds there too."""
    # (the opening treats the scene's edge as background: an object there loses its outer ring)
    rough = _rough(gone, stands, valid)
    candidate = ndimage.binary_opening(rough)
    labels, n = ndimage.label(candidate)
    if n == 0:
        return labels, np.zeros(1, dtype=bool)
    idx = np.arange(1, n + 1)
    size = ndimage.sum(candidate, labels, idx)
    mean_gone = ndimage.mean(gone, labels, idx)
    mean_stands = ndimage.mean(stands, labels, idx)
    hint = ndimage.maximum(prob, labels, idx)
    net = prob >= threshold if decided is None else (prob >= threshold) | decided
    share = ndimage.mean(net, labels, idx)  # the share the network outlines itself (on any pair)
    ok = ((size >= min_px) & check.appeared(mean_gone, mean_stands)
          & (hint >= check.support) & (share < check.decided))
    if same_sun is not None:  # the same change under the same sun: not a shadow
        # over the object's pixels with data on both same-sun dates (NaN: none; an object with
        # none at all is not confirmed)
        seen = np.where(np.isfinite(same_sun[0]) & np.isfinite(same_sun[1]), labels, 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            sun_gone, sun_stands = (ndimage.mean(np.nan_to_num(x), seen, idx) for x in same_sun)
        ok &= check.appeared(sun_gone, sun_stands)
    # an object within 2 px of a detection the network decided outside it is left alone: raised,
    # it would merge with that detection and bloat its outline (a permitted house `exceeds_permit`).
    # Outside it: outside its own region of `rough` (another building the segmenter sees counts)
    region, _ = ndimage.label(rough)
    near = ndimage.iterate_structure(ndimage.generate_binary_structure(2, 1), 2)  # within 2 px
    hi = ndimage.maximum_filter(np.where(net, region, -1), footprint=near, mode="constant", cval=-1)
    lo = ndimage.minimum_filter(np.where(net, region, region.max() + 1), footprint=near, mode="constant",
                                cval=region.max() + 1)
    ok &= ~ndimage.maximum((hi > region) | (lo < region), labels, idx).astype(bool)
    confirmed = np.zeros(n + 1, dtype=bool)
    confirmed[idx[ok]] = True
    labels = np.where(stands - gone >= 0.5, labels, 0)  # the object's core: its fringe is uncertain
    return labels, confirmed


def confirmed_change(before: np.ndarray, after: np.ndarray, prob: np.ndarray, *, pixel_m2: float,
                     threshold: float = 0.5, check: PresenceCheck = PresenceCheck(),
                     same_sun: tuple[np.ndarray, np.ndarray] | None = None,
                     decided: np.ndarray | None = None) -> np.ndarray:
    """Change probability raised where the segmenter confirms what the network hints at.

    Parameters
    ----------
    before, after
        ``(y, x)`` building probability of the two dates (:func:`building_presence`); NaN = no data.
    prob
        ``(y, x)`` the network's change probability between them; NaN = no data.
    pixel_m2
        A pixel's ground area in square metres.
    threshold
        The network's decision threshold (``check.support`` must be below it).
    check
        The presence check's thresholds (:class:`PresenceCheck`: how much the building probability must
        rise or fall, the network's least support, the smallest object).
    same_sun
        For dates of different seasons: ``(before, after)`` building probability of two dates
        of the same season that bracket the pair (BEFORE and a later date of its season, or an
        earlier date of AFTER's season and AFTER).  An object is then confirmed only when the
        segmenter sees the same change between them too (the presence thresholds on its means
        there): a winter shadow taken for a roof on one date is not one on the other.
    decided
        ``(y, x)`` bool: where the network decided change by itself on another pair of the
        series (:func:`changedetect.detect.detect_each_pair` passes every pair's).  Such an
        object is the network's, as on this pair (``check.decided``), and an object beside
        one is left alone: raised, it would join that detection when the pairs are combined
        and bloat its outline (on the sample city, a permitted house the network outlines
        on the January pair took a confirmed yard beside it from the July one, and came out
        ``exceeds_permit``).

    Returns
    -------
    numpy.ndarray
        ``(y, x)`` float32: ``prob``, raised inside each confirmed object (a building on one
        date and none on the other, by the thresholds of ``check``, over the pixels valid on
        both dates) to just above ``threshold`` (``threshold + (1 - threshold) / 20``, 0.525
        at 0.5): the object becomes a footprint, but its probability says that the network
        alone did not decide it.  NaN stays NaN.

    >>> b = np.zeros((20, 20), np.float32); a = b.copy(); a[5:15, 5:15] = 0.95
    >>> p = np.zeros_like(a); p[9, 9] = 0.35
    >>> round(float(confirmed_change(b, a, p, pixel_m2=0.25)[10, 10]), 3)
    0.525
    >>> float(confirmed_change(b, a, np.zeros_like(a), pixel_m2=0.25)[10, 10])  # no hint
    0.0
    """
    if not before.shape == after.shape == prob.shape:
        raise ValueError(f"confirmed_change: shapes differ: {before.shape}, {after.shape}, {prob.shape}")
    if not check.support < threshold < 1:
        raise ValueError(f"confirmed_change: the hint ({check.support}) must be below the threshold "
                         f"({threshold}), and the threshold below 1")
    sun = () if same_sun is None else tuple(same_sun)
    if decided is not None and decided.shape != prob.shape:
        raise ValueError(f"confirmed_change: decided's shape {decided.shape} differs from {prob.shape}")
    if any(x.shape != prob.shape for x in sun):
        raise ValueError(f"confirmed_change: same_sun's shapes {[x.shape for x in sun]} "
                         f"differ from {prob.shape}")
    b, a, p = (np.asarray(x, dtype=np.float32) for x in (before, after, prob))
    valid = np.isfinite(b) & np.isfinite(a) & np.isfinite(p)  # the pair's own: objects are traced on it
    b, a, p = (np.where(valid, x, np.float32(0)) for x in (b, a, p))
    # the same-sun dates' no data is left out of their means only (NaN)
    sun = tuple(np.where(valid, np.asarray(x, dtype=np.float32), np.float32(np.nan)) for x in sun)
    min_px = int(np.ceil(check.min_area_m2 / pixel_m2)) if pixel_m2 > 0 else 0
    raise_to = np.float32(threshold + (1.0 - threshold) / 20.0)
    hit = np.zeros(b.shape, dtype=bool)
    for flip in (False, True):  # new buildings, then demolitions
        gone, stands = (a, b) if flip else (b, a)
        bracket = (sun[1], sun[0]) if flip and sun else (sun[0], sun[1]) if sun else None
        # (another pair's decisions count where this pair has no data too: combined, they join)
        labels, confirmed = _appeared(gone, stands, p, valid, min_px, check, threshold, bracket,
                                      None if decided is None else np.asarray(decided, dtype=bool))
        hit |= confirmed[labels]
    out = np.asarray(prob, dtype=np.float32).copy()
    out[hit] = np.fmax(out[hit], raise_to)
    return out


def same_season(a: np.datetime64, b: np.datetime64, season_days: int = 45) -> bool:
    """Whether the days of the year of dates ``a`` and ``b`` are within ``season_days`` (across
    the new year too).

    >>> same_season(np.datetime64("2024-01-15"), np.datetime64("2025-01-20"))
    True
    >>> same_season(np.datetime64("2024-12-20"), np.datetime64("2026-01-10"))
    True
    >>> same_season(np.datetime64("2024-01-15"), np.datetime64("2024-07-12"))
    False
    """
    doy = [int((d - d.astype("datetime64[Y]")).astype(int)) for d in np.array([a, b], dtype="datetime64[D]")]
    shift = abs(doy[0] - doy[1])
    return min(shift, 365 - shift) <= season_days


def building_presence(date: xr.DataArray, segmenter: ModelLike, config: DetectConfig,
                      progress: bool = False) -> xr.DataArray:
    """The segmenter's ``(y, x)`` building probability of one ``(band, y, x)`` date (the
    segmenter is the change network fed the same date twice, ``model(x, x)``)."""
    from changedetect.detect import detect_pair

    return detect_pair(date, date, config=config, progress=progress, model=segmenter)


class DatePresence:
    """The building probability of each date of ``stack``, computed once (when a pair first needs
    it), and :func:`confirmed_change` on a pair of its dates when they are of the same season, or
    when two same-season dates of the stack bracket them (:meth:`same_sun`).

    Give one to :func:`changedetect.detect.detect_series` as ``segmenter`` to keep its rasters
    afterwards (``changedetect run`` reuses the first and last dates' to type footprints).  Given
    ``filled``, the dict :func:`changedetect.detect.detect_each_pair` fills with each consecutive
    pair's last clear view, a pair's BEFORE is checked as the network compared it (:meth:`before`).
    """

    def __init__(self, stack: xr.DataArray, segmenter: ModelLike,
                 config: DetectConfig | Mapping[str, Any] | None = None, progress: bool = False,
                 check: PresenceCheck | None = None,
                 filled: dict[tuple[int, int], np.ndarray | None] | None = None) -> None:
        from changedetect._config_toml import stage_config
        from changedetect._detect_engine import DetectConfig
        from changedetect.io.geo import ground_pixel
        from changedetect.types import Grid

        # how the segmenter is run (window, overlap, device) and the season rule: a DetectConfig, a dict
        # of its fields as the TOML's [detect], or None for the defaults
        config = DetectConfig() if config is None else stage_config(config, DetectConfig, call="DatePresence",
                                                                    table="detect")

        self.stack, self.segmenter, self.config, self.progress = stack, segmenter, config, progress
        #: each consecutive pair's BEFORE pixels filled from earlier dates, as the network compared
        #: them (``(y, x)`` int16 date index, -1 not filled; :func:`changedetect.detect.detect_each_pair`'s
        #: ``filled``): the same dict, which detection fills before the pairs are checked
        self.filled: dict[tuple[int, int], np.ndarray | None] = {} if filled is None else filled
        #: a mask pair's AFTER filled as a compared pair's BEFORE (the nightly's ``(partner, previous)``,
        #: whose AFTER is the image ``(previous, new)`` starts from), keyed by the mask pair: :meth:`after`
        self.filled_after: dict[tuple[int, int], np.ndarray | None] = {}
        days = config.season_days if config.season_days is not None else PresenceCheck.season_days
        self.check = check if check is not None else PresenceCheck(
            season_days=days, across_seasons=config.presence_across_seasons)
        self.rasters: dict[int, xr.DataArray] = {}
        try:
            grid = Grid.of(stack)
        except Exception as exc:  # rioxarray: no transform / no CRS
            _logger.warning("the stack is not georeferenced (%s): the presence check takes a pixel as "
                            "1 m² for its minimum area", exc)
            self.pixel_m2 = 1.0
        else:
            self.pixel_m2 = ground_pixel(grid)[0]  # ground m² whatever the CRS; grid units² without one

    def raster(self, i: int) -> xr.DataArray:
        """Date ``i``'s building probability, ``(y, x)`` on the stack's grid."""
        i = range(self.stack.sizes["time"])[i]  # -1 is the last date
        if i not in self.rasters:
            _logger.info("building presence: %s", str(self.stack["time"].values[i])[:10])
            self.rasters[i] = building_presence(self.stack.isel(time=i), self.segmenter, self.config,
                                                self.progress)
        return self.rasters[i]

    def before(self, i: int, j: int) -> np.ndarray:
        """Date ``i``'s building probability as the pair ``(i, j)`` compared it (``(y, x)``): where
        the network's BEFORE was filled from an earlier date ``s`` (the last clear view,
        :attr:`filled`), ``s``'s probability, computed once as any date's, when ``s`` is of ``i``'s
        season (``check.season_days``): it then stands in for BEFORE under BEFORE's sun, and the
        pair's season rules hold there.  A clear view of another season stays date ``i``'s own (no
        data under its cloud): across seasons the segmenter takes a shadow for a roof."""
        i, j = (range(self.stack.sizes["time"])[x] for x in (i, j))  # -1 is the last date
        return self._as_compared(i, self.filled.get((i, j)))

    def after(self, i: int, j: int) -> np.ndarray:
        """Date ``j``'s building probability as the pair ``(i, j)`` compared it: a mask pair's AFTER
        filled from the last clear view (:attr:`filled_after`) is read pixel by pixel from the date it
        came from, under the season rule of :meth:`before`; else date ``j``'s own."""
        i, j = (range(self.stack.sizes["time"])[x] for x in (i, j))  # -1 is the last date
        return self._as_compared(j, self.filled_after.get((i, j)))

    def _as_compared(self, d: int, source: np.ndarray | None) -> np.ndarray:
        """Date ``d``'s building probability with each pixel of ``source`` (date index, -1: not
        filled) taken from the date it came from, where that date is of ``d``'s season."""
        own = self.raster(d).values
        if source is None:
            return own
        times = self.stack["time"].values
        out = None
        for s in np.unique(source[source >= 0]).tolist():
            if not same_season(times[s], times[d], self.check.season_days):
                continue
            take = source == s
            out = own.copy() if out is None else out  # the cached raster stays date d's own
            out[take] = self.raster(s).values[take]
        return own if out is None else out

    def same_sun_rasters(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The building probability of :meth:`same_sun`'s two dates for the pair ``(i, j)`` (None
        without them); BEFORE ``i`` and AFTER ``j`` as the pair compared them (:meth:`before`,
        :meth:`after`) when they are one of them."""
        sun = self.same_sun(i, j)
        if sun is None:
            return None
        i, j = (range(self.stack.sizes["time"])[x] for x in (i, j))  # -1 is the last date
        first = self.before(i, j) if sun[0] == i else self.raster(sun[0]).values
        return first, self.after(i, j) if sun[1] == j else self.raster(sun[1]).values

    def same_sun(self, i: int, j: int) -> tuple[int, int] | None:
        """For dates ``i`` -> ``j`` of different seasons, two dates of the same season that
        bracket them: ``(i, k)``, the first later date ``k > j`` of ``i``'s season, else
        ``(h, j)``, the last earlier date ``h < i`` of ``j``'s season; None when there is none,
        ``check.across_seasons`` is off, or ``i`` and ``j`` share a season.  The nearest such
        dates: the further the bracket reaches, the more can change in between (a change seen
        between ``i`` and ``k`` is dated on ``j`` by the pair)."""
        times = self.stack["time"].values
        i, j = (range(len(times))[x] for x in (i, j))  # -1 is the last date
        days = self.check.season_days
        if not self.check.across_seasons or same_season(times[i], times[j], days):
            return None
        k = next((k for k in range(j + 1, len(times)) if same_season(times[i], times[k], days)), None)
        if k is not None:
            return i, k
        h = next((h for h in range(i - 1, -1, -1) if same_season(times[h], times[j], days)), None)
        return None if h is None else (h, j)

    def applies(self, i: int, j: int) -> bool:
        """Whether dates ``i`` and ``j`` are checked: they are of the same season
        (``check.season_days``), or two dates of the stack bracket them under the same sun
        (:meth:`same_sun`)."""
        times = self.stack["time"].values
        return same_season(times[i], times[j], self.check.season_days) or self.same_sun(i, j) is not None

    def confirm(self, i: int, j: int, prob: np.ndarray, threshold: float = 0.5, *,
                any_season: bool = False, decided: np.ndarray | None = None) -> np.ndarray:
        """``prob`` of dates ``i`` -> ``j`` with the check applied when :meth:`applies`, across
        seasons with :meth:`same_sun`'s dates (``any_season``: checked whatever the seasons, with
        the pair's two dates alone: the nightly's mask pair, which must cover all that an earlier
        night may have found, so that nothing is reported twice); else ``prob`` as it is.
        ``decided``: where the network decided change on the series' other pairs
        (:func:`confirmed_change`).  BEFORE and AFTER are read as the pair compared them (:meth:`before`,
        :meth:`after`)."""
        times = self.stack["time"].values
        sun = None if any_season else self.same_sun(i, j)
        if not (any_season or sun is not None or same_season(times[i], times[j], self.check.season_days)):
            return prob
        bracket = None if sun is None else self.same_sun_rasters(i, j)
        # on pixels whose BEFORE (a mask pair's AFTER) the network saw filled from a clear view, that view's
        return confirmed_change(self.before(i, j), self.after(i, j), prob, pixel_m2=self.pixel_m2,
                                threshold=threshold, check=self.check, same_sun=bracket, decided=decided)

    def label(self) -> str:
        """The segmenter's name, version and sha256 (``attrs["presence_check"]``)."""
        card = self.segmenter.card
        return f"{card.name} {card.version} sha256:{card.sha256}"
