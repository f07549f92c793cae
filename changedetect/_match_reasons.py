"""The one-line reason of each footprint's status (private; :func:`changedetect._match_rules.classify`
calls :func:`reasons`): built per status from columns taken once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from changedetect._match_lots import Lots
    from changedetect._match_rules import Footprints, Permits
    from changedetect.match import MatchConfig

_KIND_WORD = {"new": "new building", "altered": "altered building", "demolished": "demolition"}


def _maybe_in_time(text: list[str], fp: Footprints, pm: Permits, rows: np.ndarray, q: np.ndarray) -> list[str]:
    """``text`` with a note where the quoted permit ran out between the last date without the
    change and its first-seen date: it counts, since the work may have been done in time."""
    until, seen = pm.valid_until[q], fp.first_seen[rows]
    absent = fp.before[rows] if fp.before is not None else np.full(len(rows), np.datetime64("NaT"), "datetime64[ns]")
    late = ~np.isnat(absent) & (absent < seen) & (absent < until) & (seen > until)
    if not late.any():
        return text
    b, s = _iso(absent), _iso(seen)
    return [f"{t}; it expired between {b[k]} (not built) and {s[k]} (built): it may have been built in time"
            if late[k] else t for k, t in enumerate(text)]


def reasons(fp: Footprints, pm: Permits, code: np.ndarray, quoted: np.ndarray, area: np.ndarray,
             excess: np.ndarray, permitted: np.ndarray, config: MatchConfig, lots: Lots | None = None,
             outline_m2: np.ndarray | None = None, by_points: np.ndarray | None = None) -> np.ndarray:
    """One line per footprint: the strings are built per status, from columns taken once.  ``lots``
    (:func:`changedetect._match_lots.judge`): where a permit drawn as a lot had the building's area
    compared with its permitted area, the excess is "over the permitted area"; under a lot permit a
    clause says so.  ``by_points``: the footprints judged on point permits alone, whose excess is
    "over the permitted area" too (a point has no footprint to lie outside)."""
    from changedetect._match_lots import note

    out = np.empty(len(code), dtype=object)
    kinds, seen_all = fp.kind, fp.first_seen
    tol = f"({config.tolerance_m2:g} m² or {config.tolerance_pct:g}%)"
    for c in np.unique(code).tolist():
        rows = np.flatnonzero(code == c)
        q = quoted[rows]
        has = q >= 0
        q = np.where(has, q, 0)
        a0 = fmt0(area[rows])
        what = describe(kinds[rows], area[rows])
        pid = pm.permit_id[q].tolist() if len(pm) else [""] * len(rows)
        if c == 0:  # unlicensed
            text = [f"{w}: only a revoked permit ({p}) covers it" if h else f"{w}: no permit covers it"
                    for w, p, h in zip(what, pid, has.tolist(), strict=True)]
        elif c == 1:  # type_mismatch
            ptype = pm.type_names[pm.type_code[q]].tolist()
            need = [_needs(k) for k in kinds[rows].tolist()]
            text = [f"{w} under {_a(t)} permit ({p}); it needs {_a(d)} permit"
                    for w, t, p, d in zip(what, ptype, pid, need, strict=True)]
        elif c in (2, 3):  # before_permit, permit_expired
            seen = _iso(seen_all[rows])
            if c == 2:
                text = [f"{w} first seen {s}, before permit {p} was issued on {d}"
                        for w, s, p, d in zip(what, seen, pid, _iso(pm.issued_on[q]), strict=True)]
            else:
                text = [f"{w} first seen {s}, after permit {p} expired on {d}"
                        for w, s, p, d in zip(what, seen, pid, _iso(pm.valid_until[q]), strict=True)]
        elif c == 4:  # exceeds_permit
            ex, pa = excess[rows], permitted[rows]
            pct = np.full(len(rows), np.inf)
            np.divide(100.0 * ex, pa, out=pct, where=pa > 0)
            where = _where(lots, by_points, rows, "over the permitted area", "outside the permitted footprint")
            text = [f"built {a} m² against a permit for {b} m² ({p}): {e} m² ({r}%) {w}"
                    for a, b, p, e, r, w in zip(a0, fmt0(pa), pid, fmt0(ex), fmt0(pct), where, strict=True)]
        else:  # permitted
            ptype = pm.type_names[pm.type_code[q]].tolist()
            issued, until = _iso(pm.issued_on[q]), _iso(pm.valid_until[q])
            # over the area tolerances as drawn, a footprint passed on the edge tolerance (a pixel
            # of 10 m imagery is a wide band): say which one let it through
            edge = excess[rows] > np.maximum(config.tolerance_m2, config.tolerance_pct / 100.0 * permitted[rows])
            near = f"within {config.edge_tolerance_m or 0.0:g} m of its outline (edge tolerance)"
            where = _where(lots, by_points, rows, "over the permitted area", "outside")
            text = [f"{w} within permit {p} ({t}, valid {i} to {u}); {e} m² {o}, "
                    f"{near if g else 'within tolerance ' + tol}"
                    for w, p, t, i, u, e, o, g in zip(what, pid, ptype, issued, until, fmt0(excess[rows]), where,
                                                      edge.tolist(), strict=True)]
        if c in (4, 5) and lots is not None and outline_m2 is not None and (lots.quoted[rows] >= 0).any():
            text = [t + n for t, n in zip(text, note(lots, rows, pm, outline_m2), strict=True)]
        if c == 5:
            text = _maybe_in_time(text, fp, pm, rows, q)
        out[rows] = text
    return out




def _where(lots: Lots | None, by_points: np.ndarray | None, rows: np.ndarray, by_area: str,
           by_outline: str) -> list[str]:
    """``by_area`` for the ``rows`` judged on their area (by the lot rule, or on point permits alone),
    else ``by_outline``."""
    shown = np.zeros(len(rows), dtype=bool)
    if lots is not None:
        shown |= lots.shown[rows]
    if by_points is not None:
        shown |= by_points[rows]
    return [by_area if s else by_outline for s in shown.tolist()]


def _needs(kind: str) -> str:
    from changedetect._match_rules import ALLOWED_TYPES  # the rules import this module

    return " or ".join(ALLOWED_TYPES[kind])


def _a(word: str) -> str:
    """``word`` with its indefinite article: 'an extension', 'a renovation'."""
    return f"{'an' if word[:1] in ('a', 'e', 'i', 'o', 'u') else 'a'} {word}"


def describe(kinds: np.ndarray, area: np.ndarray) -> list[str]:
    """``"new building of 120 m²"``: each distinct (kind, rounded area) is formatted once."""
    codes, distinct = pd.factorize(kinds)
    rounded = np.rint(area)
    if not (len(area) and np.isfinite(rounded).all() and (area >= 0).all() and rounded.max() < 1e12):
        return [f"{_KIND_WORD[k]} of {a:.0f} m²" for k, a in zip(kinds.tolist(), area.tolist(), strict=True)]
    span = int(rounded.max()) + 1
    uniq, inverse = np.unique(codes.astype(np.int64) * span + rounded.astype(np.int64), return_inverse=True)
    words = [_KIND_WORD[k] for k in distinct.tolist()]
    text = np.array([f"{words[u // span]} of {u % span} m²" for u in uniq.tolist()], dtype=object)
    return text[inverse].tolist()


def fmt0(values: np.ndarray) -> list[str]:
    """``f"{v:.0f}"`` of each value; the usual case (finite, >= 0) formats each distinct rounded
    value once (``rint`` rounds half to even on the binary value, as the format does)."""
    v = np.asarray(values, dtype=float)
    out = np.empty(len(v), dtype=object)
    fast = np.isfinite(v) & (v >= 0) & (v < 1e15)
    ints, inverse = np.unique(np.rint(v[fast]).astype(np.int64), return_inverse=True)
    out[fast] = np.array([str(i) for i in ints.tolist()], dtype=object)[inverse]
    slow = np.flatnonzero(~fast)
    if len(slow):
        out[slow] = [f"{x:.0f}" for x in v[slow].tolist()]
    return out.tolist()


def _iso(values: np.ndarray) -> list[str]:
    """``YYYY-MM-DD`` ("" where unknown) of datetime64 values."""
    days = np.asarray(values).astype("datetime64[D]").astype(str)
    days[days == "NaT"] = ""
    return days.tolist()


__all__ = ["describe", "fmt0", "reasons"]
