"""The inspectors' decisions (private; :mod:`changedetect.nightly`, ``--decisions``).

After an inspector has visited a site the city records a decision on the violation, by its ``violation_id``:
``confirmed`` (a real violation: it stays open), ``false_alarm`` (dismissed: nothing unlawful there) or
``resolved`` (dealt with: fined and demolished, or legalised).  Each night (:func:`bound`):

- a ``false_alarm`` or ``resolved`` violation leaves the open register and is listed in the night's
  withdrawn list, as the other withdrawals are, with the reason :data:`KINDS` names (``dismissed by the
  inspector as a false alarm: on 2025-02-03 by Nguyễn Văn A (bóng cây)``);
- a ``confirmed`` one stays open, and the register gains :data:`COLUMNS` (``decision``, ``decided_on``,
  ``inspector``; empty for the rows without one) once any decision exists; its ``same_sun``, when ``pending``,
  becomes :data:`INSPECTED` (no image check withdraws it: it awaits none);
- a violation the night withdraws for another reason (a permit entered since, an image check) carries its
  decision on its withdrawn row (:func:`marked`);
- a violation closed so is **not opened again**: a night's candidate that the merge would take for it
  (:func:`changedetect._merge._same`: IoU >= 0.5, or the footprint id carried over and touching) and whose
  ``first_seen`` is not after the decision's date is kept out (:meth:`Decided.keep_out`), and so is the
  demolition of a ``resolved`` one (the enforcement); one first seen after it (rebuilt after a demolition) is a
  new violation;
- a ``confirmed`` violation that tonight's image checks would withdraw (:data:`OVERRULED`: a moved shadow, a
  late cloud mask) stays open: an inspector saw it on the ground.  The closed outlines are those of the withdrawn table
  kept in the state, so this holds on every later night, with or without ``--decisions``.

The file is read and checked before the lock (:func:`read_decisions`: one error naming the file, the row and
the column); a decision dated after the night waits for its night; an id the state does not know is a warning.
Everything but :func:`read_decisions` is a pure function of frames.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from changedetect._nightly_decisions_read import NEEDED, OPTIONAL, WHAT, WORDS, read_decisions

if TYPE_CHECKING:
    import geopandas as gpd

log = logging.getLogger("changedetect._merge")

#: ``withdrawn_reason`` of a violation an inspector closed starts with its decision's kind
KINDS = {"false_alarm": "dismissed by the inspector as a false alarm", "resolved": "resolved per the inspector"}
#: the image checks' withdrawals a ``confirmed`` decision overrules (an inspector saw it on the ground); not
#: ``now covered by a permit in the register``: a permit entered since legalises it
OVERRULED = ("not seen under the same sun", "under a cloud a late SCL masks")
#: the columns a decision gives the register (once any decision exists)
COLUMNS = ("decision", "decided_on", "inspector")
#: ``same_sun`` of a ``confirmed`` violation no same-season pair has seen (``pending``, or withdrawn by one and
#: reopened): the inspector's decision stands for the check, which never withdraws it (:data:`OVERRULED`), so it
#: no longer awaits one (:func:`inspected`)
INSPECTED = "confirmed by an inspector"


def checksum(decisions: pd.DataFrame | None) -> str | None:
    """What the night depends on of the file: its decisions' content (None without a file)."""
    if decisions is None:
        return None
    text = decisions.drop(columns="row").to_csv(index=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def due(nights: dict[str, dict[str, Any]], night: str, key: str | None) -> bool:
    """Whether ``night``, already committed (``nights``: the state's records), must be done again: it was
    committed without these decisions (``key``, :func:`checksum`; None: no file given tonight) and no later
    night was committed since (:func:`later_nights`)."""
    return key is not None and (nights.get(night) or {}).get("decisions") != key and not later_nights(nights, night)


def later_nights(nights: dict[str, dict[str, Any]], night: str) -> list[str]:
    """The nights committed after ``night`` (by date).  An earlier night is not done again for new decisions:
    its lists would be written again from today's register (the rows withdrawn since gone from its
    ``violations-<night>``) and its decisions dated as of then; they apply on the next night processed."""
    return sorted(n for n in nights if n > night)


def waiting(night: str, nights: dict[str, dict[str, Any]]) -> str:
    """The warning for an earlier night run again with other decisions: only restored (:func:`due`)."""
    later = later_nights(nights, night)
    return (f"night {night} was committed before {', '.join(later)}: it is not done again for the decisions, "
            f"which are applied on the next night processed (run the job for {later[-1]} or later)")


def committed_ids(current: Any, state_dir: Path, night: str) -> set[str]:
    """The ids of the committed register's rows of ``night`` (none unless the night is done again, for
    :func:`due` decisions): matched against the register, and given the parcels, of their first commit, they
    are matched again (:mod:`changedetect._nightly_rematch`, :mod:`changedetect._nightly_parcels`)."""
    if night not in current.nights or not current.generation:
        return set()
    rows = pd.read_parquet(current.violations_path(state_dir), columns=["violation_id", "night"])
    return set(rows.loc[rows["night"].astype(str) == night, "violation_id"].astype(str))


@dataclass
class Decided:
    """Tonight's decisions, bound to the night and the outlines closed before it (:func:`bound`)."""

    night: str
    #: the decisions in force tonight (dated on or before the night), one per id
    decisions: pd.DataFrame
    #: the violations closed by a decision (outlines, ``decision``, ``decided_on``): the kept-out ones
    closed: gpd.GeoDataFrame | None
    #: closed violation id -> how many of tonight's candidates it kept out (:meth:`keep_out`)
    suppressed: dict[str, int] = field(default_factory=dict)
    #: violations an image check withdrew on an earlier night that tonight's decisions confirm (:func:`reopened`):
    #: back in the register, which the merge takes them into
    reopened: gpd.GeoDataFrame | None = None

    def keep_out(self, cand: gpd.GeoDataFrame, carried: np.ndarray) -> np.ndarray:
        """Per candidate of tonight (the merge's, with ``carried`` its carried footprint ids, '' for none):
        whether it is a structure closed by a decision dated on or after its ``first_seen``, or a demolition of
        a ``resolved`` one (its enforcement)."""
        from changedetect._merge import _ids, _same

        out = np.zeros(len(cand), dtype=bool)
        if self.closed is None or not len(self.closed) or not len(cand):
            return out
        closed = self.closed.to_crs(cand.crs)
        fids, seen = _ids(closed), _first_seen(cand)
        razed = (cand["change_type"].astype(str) == "demolished").to_numpy() if "change_type" in cand else \
            np.zeros(len(cand), dtype=bool)
        resolved = (closed["decision"] == "resolved").to_numpy()
        self.suppressed.clear()  # (the merge may run twice: the last counts)
        areas, days, tree = closed["area"].to_numpy(), closed["decided_on"].astype(str).to_numpy(), closed.sindex
        for i, (area, geom) in enumerate(zip(cand["area"], cand.geometry, strict=True)):
            near = np.sort(tree.query(geom))  # (the same building overlaps it)
            # a demolition over a resolved one is its enforcement, whenever it is seen
            mine = near[(areas[near] == area) & ((days[near] >= seen[i]) | (resolved[near] & razed[i]))]
            hit = [k for k in mine if _same(geom, carried[i], closed.geometry.iloc[k], fids[k])]
            if hit:
                out[i] = True
                vid = str(closed["violation_id"].iloc[hit[0]])
                self.suppressed[vid] = self.suppressed.get(vid, 0) + 1
        return out

    def overrule(self, kept: gpd.GeoDataFrame, withdrawn: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame,
                                                                                     gpd.GeoDataFrame]:
        """``(kept, withdrawn)`` with the ``confirmed`` violations that tonight's image checks withdrew
        (:data:`OVERRULED`: an inspector saw it on the ground) back in the register: confirmed by tonight's
        decisions, or by an earlier night's (the register's own ``decision`` column, which a night without
        ``--decisions`` still honours) unless tonight's decide otherwise.  Before the register is matched
        again (:mod:`changedetect._nightly_rematch`), so that a confirmed violation follows the permit register
        as every open one does."""
        return _overruled(kept, withdrawn, self.decisions)

    def close(self, kept: gpd.GeoDataFrame, withdrawn: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame,
                                                                                  gpd.GeoDataFrame]:
        """The closed ones withdrawn too, the confirmed ones marked (:func:`decide`)."""
        import geopandas as gpd

        kept, closed = decide(kept, self.decisions, self.night)
        withdrawn = marked(withdrawn, self.decisions, force=bool(len(closed)))
        both = [w for w in (withdrawn, closed) if len(w)]
        if len(both) < 2:
            return kept, both[0] if both else withdrawn
        return kept, gpd.GeoDataFrame(pd.concat(both, ignore_index=True), geometry="geometry", crs=kept.crs)

    def apply(self, kept: gpd.GeoDataFrame, withdrawn: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame,
                                                                                  gpd.GeoDataFrame]:
        """The register after the automatic withdrawals (``kept``, ``withdrawn``): :meth:`overrule`, then
        :meth:`close`."""
        return self.close(*self.overrule(kept, withdrawn))


def _overruled(kept: gpd.GeoDataFrame, withdrawn: gpd.GeoDataFrame,
               decisions: pd.DataFrame) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """``kept`` with the ``confirmed`` violations that tonight's image checks withdrew (:data:`OVERRULED`) put
    back (at its end), ``withdrawn`` without them: confirmed by ``decisions`` or, where these say nothing of
    it, by the row's own ``decision`` (an earlier night's)."""
    if not len(withdrawn):
        return kept, withdrawn
    said = dict(zip(decisions["violation_id"].astype(str), decisions["decision"].astype(str), strict=True))
    ids = withdrawn["violation_id"].astype(str)
    own = (withdrawn["decision"].fillna("").astype(str) if "decision" in withdrawn
           else pd.Series("", index=withdrawn.index))
    now = [said.get(v, d) for v, d in zip(ids, own, strict=True)]
    kinds = withdrawn["withdrawn_reason"].fillna("").astype(str).str.split(":").str[0]
    back = (pd.Series(now, index=withdrawn.index) == "confirmed").to_numpy() & kinds.isin(OVERRULED).to_numpy()
    if not back.any():
        return kept, withdrawn
    import geopandas as gpd

    rows = withdrawn[back].drop(columns=["withdrawn", "withdrawn_reason"]).to_crs(kept.crs)
    log.info("confirmed by the inspectors, kept open against tonight's image checks: %s",
             ", ".join(rows["violation_id"].astype(str)))
    kept = gpd.GeoDataFrame(pd.concat([kept, rows], ignore_index=True), geometry=kept.geometry.name, crs=kept.crs)
    return kept, withdrawn[~back].reset_index(drop=True)


def _first_seen(cand: pd.DataFrame) -> np.ndarray:
    """Each candidate's ``first_seen`` as ``YYYY-MM-DD`` (its pair's ``after`` where it has none)."""
    after = cand["after"].astype(str).str[:10]
    if "first_seen" not in cand:
        return after.to_numpy(dtype=object)
    seen = cand["first_seen"].astype(object).where(cand["first_seen"].notna(), "").astype(str).str[:10]
    return seen.where(seen != "", after).to_numpy(dtype=object)


def bound(decisions: pd.DataFrame | None, night: str, withdrawn_before: gpd.GeoDataFrame | None,
          open_before: gpd.GeoDataFrame | None) -> Decided:
    """Tonight's :class:`Decided`: the decisions dated on or before ``night``; the closed outlines are the
    withdrawn table's rows closed by a decision (``withdrawn_before``, the state's) and the open rows that
    tonight's decisions close (``open_before``: the committed register), which the merge must not take a
    candidate of tonight for once they are gone."""
    now = _in_force(decisions, night)
    frames = []
    if withdrawn_before is not None and len(withdrawn_before) and "decision" in withdrawn_before:
        frames.append(withdrawn_before[withdrawn_before["decision"].isin(list(KINDS))])
    if open_before is not None and len(open_before) and len(now):
        closing = now[now["decision"].isin(list(KINDS))].set_index("violation_id")
        mine = open_before[open_before["violation_id"].astype(str).isin(closing.index)]
        ids = mine["violation_id"].astype(str)
        frames.append(mine.assign(decision=ids.map(closing["decision"]).to_numpy(),
                                  decided_on=ids.map(closing["decided_on"]).to_numpy()))
    keep = ["violation_id", "area", "footprint_id", "decision", "decided_on", "geometry"]
    frames = [f.to_crs(frames[0].crs).assign(footprint_id=f.get("footprint_id", ""))[keep]
              for f in frames]
    back = reopened(withdrawn_before, now)
    if not frames:
        return Decided(night, now, None, reopened=back)
    import geopandas as gpd

    closed = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=frames[0].crs)
    return Decided(night, now, closed.drop_duplicates("violation_id", keep="last").reset_index(drop=True),
                   reopened=back)


def reopened(withdrawn_before: gpd.GeoDataFrame | None, now: pd.DataFrame) -> gpd.GeoDataFrame | None:
    """The violations an image check withdrew on an earlier night (:data:`OVERRULED`: a moved shadow, a late
    cloud mask) that the decisions in force (``now``) confirm: an inspector, working from an earlier list, saw
    them on the ground.  They go back into the register under their ids (without ``withdrawn`` and
    ``withdrawn_reason``), as a confirmed violation tonight's checks withdraw stays; None for none."""
    if withdrawn_before is None or not len(withdrawn_before) or not len(now):
        return None
    confirmed = set(now.loc[now["decision"] == "confirmed", "violation_id"].astype(str))
    kinds = withdrawn_before["withdrawn_reason"].fillna("").astype(str).str.split(":").str[0]
    back = withdrawn_before["violation_id"].astype(str).isin(confirmed) & kinds.isin(OVERRULED)
    if not back.any():
        return None
    rows = withdrawn_before[back.to_numpy()].drop(columns=["withdrawn", "withdrawn_reason"])
    log.info("confirmed by the inspectors after an image check withdrew them, back in the register: %s",
             ", ".join(rows["violation_id"].astype(str)))
    return rows.reset_index(drop=True)


def _in_force(decisions: pd.DataFrame | None, night: str) -> pd.DataFrame:
    """The decisions dated on or before ``night`` (a later one waits for its night)."""
    if decisions is None:
        return pd.DataFrame(columns=[*NEEDED, *OPTIONAL, "row"])
    later = decisions["decided_on"] > night
    if later.any():
        log.info("night %s: %d decision(s) dated after the night wait for their night: %s", night,
                 int(later.sum()), ", ".join(decisions.loc[later, "violation_id"]))
    return decisions[~later].reset_index(drop=True)


def decide(violations: gpd.GeoDataFrame, decisions: pd.DataFrame, night: str) -> tuple[gpd.GeoDataFrame,
                                                                                       gpd.GeoDataFrame]:
    """``(kept, withdrawn)``: ``violations`` without those ``decisions`` close (``false_alarm``,
    ``resolved``), which are ``withdrawn`` with the night and the reason (:data:`KINDS`), and with the
    ``confirmed`` ones' :data:`COLUMNS` filled (and their ``same_sun`` :data:`INSPECTED` where it was ``pending``:
    :func:`inspected`).  The columns are added once any decision exists (every row
    then has them, ``''`` where none); a register without them and with no decision is returned as it is."""
    none = violations.iloc[:0].assign(withdrawn=pd.Series(dtype=object), withdrawn_reason=pd.Series(dtype=object))
    if not len(decisions) and not has_columns(violations):
        return violations, none
    out = with_columns(violations)
    by_id = decisions.set_index("violation_id")
    ids = out["violation_id"].astype(str)
    hit = ids.isin(by_id.index).to_numpy()
    if hit.any():
        mine = by_id.loc[ids[hit]]
        for col in COLUMNS:
            values = out[col].to_numpy(dtype=object).copy()
            values[hit] = mine[col].to_numpy(dtype=object)
            out[col] = values
    out = inspected(out)
    closing = hit & out["decision"].isin(list(KINDS)).to_numpy()
    reasons = [_reason(d, day, who, note) for d, day, who, note in zip(
        out["decision"][closing], out["decided_on"][closing], out["inspector"][closing],
        by_id.loc[ids[closing], "note"] if closing.any() else [], strict=True)]
    withdrawn = out[closing].assign(withdrawn=night, withdrawn_reason=reasons)
    if closing.any():
        log.info("night %s: %d violation(s) closed by the inspectors' decisions: %s", night, int(closing.sum()),
                 ", ".join(withdrawn["violation_id"].astype(str)))
    return out[~closing].reset_index(drop=True), withdrawn.reset_index(drop=True)


def inspected(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` with ``same_sun`` :data:`INSPECTED` where it was ``pending`` and the row is ``confirmed`` (by
    tonight's decisions or an earlier night's: the register's ``decision``); ``confirmed`` (a same-season pair saw
    it) and ``not needed`` stay.  Unchanged without either column."""
    if "same_sun" not in frame or "decision" not in frame:
        return frame
    hit = ((frame["decision"].astype(str) == "confirmed") & (frame["same_sun"].astype(str) == "pending")).to_numpy()
    if not hit.any():
        return frame
    out = frame.copy()
    values = out["same_sun"].to_numpy(dtype=object).copy()
    values[hit] = INSPECTED
    out["same_sun"] = values
    return out


def marked(withdrawn: gpd.GeoDataFrame, decisions: pd.DataFrame, *, force: bool = False) -> gpd.GeoDataFrame:
    """``withdrawn`` (tonight's other withdrawals: a permit entered since, an image check) with :data:`COLUMNS`
    filled from ``decisions`` for the rows they decide: a ``false_alarm`` on a violation a permit withdraws the
    same night is on its withdrawn row.  The columns are added when one of its rows is decided, ``force``
    (tonight's lists hold decided rows) or ``withdrawn`` has them; else it is returned as it is."""
    ids = withdrawn["violation_id"].astype(str) if len(withdrawn) else pd.Series(dtype=str)
    hit = ids.isin(set(decisions["violation_id"].astype(str))).to_numpy()
    if not (hit.any() or force or has_columns(withdrawn)):
        return withdrawn
    out = with_columns(withdrawn)
    if hit.any():
        mine = decisions.set_index("violation_id").loc[ids[hit]]
        for col in COLUMNS:
            values = out[col].to_numpy(dtype=object).copy()
            values[hit] = mine[col].to_numpy(dtype=object)
            out[col] = values
    return out


def _reason(decision: str, day: str, inspector: str, note: str) -> str:
    who = f" by {inspector}" if inspector else ""
    return f"{KINDS[decision]}: on {day}{who}" + (f" ({note})" if note else "")


def has_columns(frame: pd.DataFrame) -> bool:
    """Whether ``frame`` has the decisions' :data:`COLUMNS`."""
    return all(c in frame for c in COLUMNS)


def with_columns(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` with :data:`COLUMNS` (``''`` where empty: tonight's new rows beside decided ones), before its
    geometry."""
    out = frame.copy()
    for col in COLUMNS:
        out[col] = out[col].astype(object).where(out[col].notna(), "") if col in out else ""
    geom = out.geometry.name
    return out[[c for c in out.columns if c != geom] + [geom]]


def unknown(decisions: pd.DataFrame, known: set[str], name: str) -> list[str]:
    """A warning for each decision whose id the state does not know (open or withdrawn): a typo, or an id
    of another city's state.  Not an error: the other decisions are applied."""
    return [f"{WHAT} '{name}', row {r}: violation_id {v!r} is neither open nor withdrawn in this state; its "
            f"decision ({d}) is left out: check the id (a typo, or an id of another state?)"
            for v, d, r in zip(decisions["violation_id"], decisions["decision"], decisions["row"], strict=True)
            if v not in known]


def summarised(decided: Decided, violations: pd.DataFrame, everything: pd.DataFrame,
               source: str | None) -> tuple[list[str], list[str]]:
    """The night's ``(suppressed, warnings)``: the closed violations found again and kept closed, and a
    warning for each decision on an id neither open (``violations``) nor withdrawn (``everything``)."""
    known = {str(v) for frame in (violations, everything) if len(frame) for v in frame["violation_id"]}
    return sorted(decided.suppressed), unknown(decided.decisions, known, str(source))


def load(decisions: pd.DataFrame | None, night: str, current: Any, state_dir: Path) -> Decided:
    """:func:`bound` with the committed state's withdrawn table and open register (``current``: a
    :class:`changedetect._state.State`)."""
    import geopandas as gpd

    gone = current.withdrawn_path(state_dir)
    withdrawn = gpd.read_parquet(gone) if gone.is_file() else None
    opened = gpd.read_parquet(current.violations_path(state_dir)) if current.generation and len(
        _in_force(decisions, night)) else None
    return bound(decisions, night, withdrawn, opened)


__all__ = ["COLUMNS", "INSPECTED", "KINDS", "OVERRULED", "WORDS", "Decided", "bound", "checksum", "committed_ids",
           "decide", "due", "has_columns", "inspected", "later_nights", "load", "marked", "read_decisions", "reopened",
           "summarised", "unknown", "waiting", "with_columns"]
