"""Permits whose drawn outline is a lot, not the permitted building (private; for
:func:`changedetect.match.match`).

A register digitised from the cadastre draws each permit as its lot (thửa đất); the building it
permits covers only part of it, and ``permitted_area_m2`` says how much.  Judged on its outline
alone, such a permit tolerates any building that stays on the lot: a 235 m² house under a permit
for 113 m² on a 226 m² lot came out ``permitted`` (audit D, fair_oam Kampala, P-19).

:func:`lot_outlines` picks these permits (``MatchConfig.lot_ratio``); :func:`judge` compares the
building's area with their permitted area, as for a point permit, on top of the outline rule (the
larger excess counts, so the rule never turns a violation into ``permitted``); :func:`note` is the
clause the reason gains and :func:`warning` the one record ``match`` returns about them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from changedetect._match_edge import beyond_edge

if TYPE_CHECKING:
    from changedetect._match_rules import Evidence, Permits
    from changedetect.match import MatchConfig


def lot_outlines(outline_m2: np.ndarray, permitted_m2: np.ndarray, point: np.ndarray,
                 config: MatchConfig) -> np.ndarray:
    """Which permits are drawn as a lot rather than as the permitted building: polygons whose
    outline is more than ``config.lot_ratio`` times the permitted area and larger than it by more
    than ``tolerance_m2`` (a permit without a permitted area: never)."""
    if config.lot_ratio is None:
        return np.zeros(len(outline_m2), bool)
    with np.errstate(invalid="ignore"):
        known = np.isfinite(permitted_m2) & (permitted_m2 > 0)
        return (~point & known & (outline_m2 > config.lot_ratio * permitted_m2)
                & (outline_m2 - permitted_m2 > config.tolerance_m2))


@dataclass
class Lots:
    """Per footprint: how the lot rule judged it."""

    shown: np.ndarray  # its excess is the area rule's: the reason says "over the permitted area"
    quoted: np.ndarray  # its valid lot permit of largest overlap (index of the candidate permits), -1 if none


def judge(fpg: np.ndarray, pmg: np.ndarray, pm: Permits, ev: Evidence, excess: np.ndarray, over: np.ndarray,
          permitted: np.ndarray, pt_area: np.ndarray, config: MatchConfig) -> tuple[np.ndarray, np.ndarray, Lots]:
    """``excess`` and ``over`` (the outline rule's, per footprint) with the lot rule: a footprint under
    a valid lot permit is also over when what lies outside its other valid outlines exceeds the
    permitted area of its lots (and of its point permits) by both tolerances, what lies outside
    ordinary outlines measured beyond the edge tolerance as for those outlines.  Its excess is then
    the area rule's, else the outline rule's when that one is over, else the larger of the two."""
    n, fi, pi = len(excess), ev.fi, ev.pi
    none = Lots(np.zeros(n, bool), np.full(n, -1, np.intp))
    if ev.lot is None or ev.off_outlines is None or not ev.lot.any():
        return excess, over, none
    lot_pair = ev.valid & ev.lot[pi]
    if not lot_pair.any():
        return excess, over, none
    has_lot = np.bincount(fi[lot_pair], minlength=n) > 0
    allowance = np.bincount(fi[lot_pair], weights=pm.permitted_area_m2[pi[lot_pair]], minlength=n) + pt_area
    by_area = np.where(has_lot, np.maximum(ev.off_outlines - allowance, 0.0), 0.0)
    over_area = has_lot & (by_area > config.tolerance_m2) & (by_area > config.tolerance_pct / 100.0 * permitted)
    ordinary = ev.valid & ~ev.point[pi] & ~ev.lot[pi]
    has_ordinary = np.bincount(fi[ordinary], minlength=n) > 0
    over_area &= beyond_edge(fpg, pmg, fi, pi, ordinary, by_area, has_ordinary & over_area, permitted, config,
                             allowance=allowance)
    shown = has_lot & (over_area | (~over & (by_area >= excess)))
    idx = np.flatnonzero(lot_pair)  # pairs are sorted by footprint, then by decreasing overlap
    first = np.r_[True, fi[idx][1:] != fi[idx][:-1]]
    quoted = np.full(n, -1, np.intp)
    quoted[fi[idx][first]] = pi[idx][first]
    return np.where(shown, by_area, excess), over | over_area, Lots(shown, quoted)


def note(lots: Lots, rows: np.ndarray, pm: Permits, outline_m2: np.ndarray) -> list[str]:
    """The clause the reason of each of ``rows`` ends with (before a note on dates) where a valid lot
    permit covers it, else ``""``: which permit is a lot, how much larger than its permitted area."""
    from changedetect._match_reasons import fmt0

    show = lots.quoted[rows] >= 0
    if not show.any():
        return [""] * len(rows)
    q = np.where(show, lots.quoted[rows], 0)
    outline, allowed = outline_m2[q], pm.permitted_area_m2[q]
    ratio = [f"{r:.1f}" for r in (outline / np.where(allowed > 0, allowed, np.nan)).tolist()]
    return [f"; permit {p}'s outline ({o} m²) is {r} times its permitted area ({a} m²): a lot rather than a "
            "building, so the building's area is compared with the permitted area" if s else ""
            for p, o, r, a, s in zip(pm.permit_id[q].tolist(), fmt0(outline), ratio, fmt0(allowed),
                                     show.tolist(), strict=True)]


def warning(pm: Permits, ev: Evidence, config: MatchConfig) -> list[dict[str, str]]:
    """One record (``kind`` ``lot_outlines``) when permits covering a footprint are drawn as lots: how
    many, and the first by ``permit_id`` as an example; ``[]`` when none."""
    if ev.lot is None or ev.outline_m2 is None:
        return []
    lots = np.unique(ev.pi[ev.counted & ev.lot[ev.pi]])
    if not len(lots):
        return []
    ids = pm.permit_id[lots].astype(str)
    k = lots[np.argsort(ids, kind="stable")[0]]
    outline, allowed = float(ev.outline_m2[k]), float(pm.permitted_area_m2[k])
    one = len(lots) == 1
    many = "1 permit covering a footprint" if one else f"{len(lots)} permits covering footprints"
    message = (f"{many} ({'' if one else 'e.g. '}{pm.permit_id[k]}: outline {outline:.0f} m², permitted area "
               f"{allowed:.0f} m²) {'is' if one else 'are'} drawn more than {config.lot_ratio:g} times "
               f"{'its' if one else 'their'} permitted area: {'a lot' if one else 'lots'} (thửa đất) rather than "
               f"the permitted building{'' if one else 's'}. The buildings on {'it' if one else 'them'} are "
               "judged on their area against the permitted area, and on the lot's outline; check that the "
               "register's polygons are what it permits (match --lot-ratio RATIO, or [match] lot_ratio in run's "
               "--config file, sets the ratio; 'off', false in the file, turns the rule off)")
    return [{"kind": "lot_outlines", "message": message, "permits": str(len(lots)), "example": str(pm.permit_id[k]),
             "outline_m2": f"{outline:.0f}", "permitted_m2": f"{allowed:.0f}", "lot_ratio": f"{config.lot_ratio:g}",
             "lot_pct": f"{100 * (config.lot_ratio or 0):.0f}"}]


__all__ = ["Lots", "judge", "lot_outlines", "note", "warning"]
