"""The open register follows the permit register (private; :mod:`changedetect.nightly`, through
:func:`changedetect._merge.merge_and_withdraw`).

A city's register lags its streets: a permit is entered weeks after the work began, an expired one is
renewed, a smaller one is entered for a building reported as unlicensed.  So on a night whose register
(or match settings: :func:`stamp`) differs from the one the open register was last matched against, every
open violation of an earlier night is matched again against tonight's register by the match stage the
pairs use (:func:`changedetect.match.match` with the run's :class:`~changedetect.match.MatchConfig`, the
edge tolerance its area's pairs used: :func:`tolerances`), its own outline, ``first_seen``,
``before_date`` and ``change_type`` as its footprint (:func:`rematch`):

- now ``permitted``: it is **withdrawn**, as the same-sun and late-SCL withdrawals are, with the reason
  :data:`KIND` naming the permit(s) (``withdrawn-<night>``);
- another violation status (an ``unlicensed`` building for which a smaller permit was entered is now
  ``exceeds_permit``): its ``status``, ``reason``, ``permit_ids``, ``overlap_ratio``, ``excess_area_m2``
  and ``address`` are tonight's, its ``violation_id`` is kept, and :data:`STATUS_COLUMNS` say that it
  changed: ``status_since`` (the night its current status was given: its ``night`` until it changes) and
  ``previous_status`` (the status it had before, ``''`` for none).  The two columns appear once a status
  has changed (every row then has them);
- the same status: nothing changes (the figures of a match in another CRS may differ in the last digit;
  they are the night's that reported it).

A night with the register and settings of the last commit matches nothing again, so it costs nothing and
changes nothing.  Everything here is a pure function of GeoDataFrames and the committed ``nights`` records.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Collection
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import geopandas as gpd

    from changedetect.match import MatchConfig

log = logging.getLogger("changedetect._merge")

#: ``withdrawn_reason`` of a violation a permit of tonight's register covers starts with this
KIND = "now covered by a permit in the register"
#: the columns that say a row's status changed since it was reported (added once one has)
STATUS_COLUMNS = ("status_since", "previous_status")
#: the match's columns a changed status replaces (those the row has, ``address`` when the register gives one)
UPDATED = ("status", "reason", "permit_ids", "overlap_ratio", "excess_area_m2", "address")
#: what the match reads of a footprint, besides its geometry
_FOOTPRINT = ("footprint_id", "first_seen", "before_date", "change_type")


def stamp(register_key: str, config: MatchConfig) -> str:
    """What the open register is matched against: the register's content (``sha256_frame``) and the
    match settings (tolerances, overlap ratio, working CRS), as one checksum."""
    text = json.dumps({"register": register_key, "match": asdict(config)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def last_record(nights: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The ``nights`` record of the last commit that kept one (:func:`record`; ``{}`` for none: a state
    written before, whose open register is matched again once)."""
    kept = [r for r in nights.values() if isinstance(r, dict) and isinstance(r.get("generation"), int)]
    return max(kept, key=lambda r: r["generation"]) if kept else {}


def due(nights: dict[str, dict[str, Any]], tonight: str) -> bool:
    """Whether the open register must be matched again: tonight's :func:`stamp` is not the last commit's."""
    return last_record(nights).get("register") != tonight


def again(nights: dict[str, dict[str, Any]], night: str, tonight: str) -> bool:
    """Whether the committed ``night``, run again with nothing new, must be done again for the register: it was
    matched against another register or settings than ``tonight`` (:func:`stamp`; a state written before keeps no
    such record: no) and no later night was committed since (an earlier night is not done again:
    :func:`waiting`)."""
    mine = (nights.get(night) or {}).get("register")
    return mine is not None and mine != tonight and not any(n > night for n in nights)


def waiting(nights: dict[str, dict[str, Any]], night: str, tonight: str) -> list[str]:
    """The warning for an earlier night run again with another register or settings (``tonight``, :func:`stamp`,
    not the last commit's): restored only; the next night processed matches the open register against it."""
    later = sorted(n for n in nights if n > night)
    if not later or not due(nights, tonight):
        return []
    return [f"night {night} was committed before {', '.join(later)}: it is not matched again against this permit "
            f"register (or [match] settings), which the next night processed matches the open violations against "
            f"(run the job for {later[-1]} or later)"]


def tolerances(nights: dict[str, dict[str, Any]], tonight: dict[str, float]) -> dict[str, float]:
    """Area -> the edge tolerance (m) its pairs matched with: tonight's (``tonight``,
    :func:`changedetect._nightly_parcels.edge_tolerances`), else the last one kept (:func:`record`)."""
    kept = last_record(nights).get("edge_tolerance_m") or {}
    return {**{str(a): float(v) for a, v in kept.items()}, **tonight}


def record(nights: dict[str, dict[str, Any]], tonight_stamp: str, tonight: dict[str, float],
           generation: int) -> dict[str, Any]:
    """What tonight's ``nights`` record keeps for the next night: the :func:`stamp`, each area's edge
    tolerance (:func:`tolerances`) and the generation committed (which record is the last)."""
    return {"register": tonight_stamp, "edge_tolerance_m": dict(sorted(tolerances(nights, tonight).items())),
            "generation": generation}


def bound(nights: dict[str, dict[str, Any]], register: gpd.GeoDataFrame, night: str, config: MatchConfig,
          register_key: str, tonight: dict[str, float], committed: Collection[str] = ()
          ) -> Callable[[gpd.GeoDataFrame], tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]]:
    """Tonight's pass over the open register (:func:`changedetect._merge.merge_and_withdraw`'s ``rematch``):
    :func:`rematch` against ``register`` when it (or ``config``) is not what the last commit matched against
    (:func:`due`), else only :func:`status_columns` (nothing withdrawn, nothing changed).  ``committed``: the
    ids of the committed register, matched again whatever their night (a night committed before, done again
    for the inspectors' decisions, holds its own rows matched against the register it had then)."""
    if not due(nights, stamp(register_key, config)):
        return lambda frame: (status_columns(frame, night), frame.iloc[:0])
    edges = tolerances(nights, tonight)
    return lambda frame: rematch(frame, register, night, config=config, tolerances=edges, committed=committed)


def rematch(violations: gpd.GeoDataFrame, register: gpd.GeoDataFrame, night: str, *, config: MatchConfig,
            tolerances: dict[str, float] | None = None, committed: Collection[str] = ()
            ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """``(kept, withdrawn)``: the open register with its earlier nights' violations matched again against
    ``register`` (see the module docstring); ``withdrawn`` (with ``withdrawn`` and ``withdrawn_reason``)
    those now ``permitted``.  ``tolerances``: area -> the edge tolerance (m) to match with, where
    ``config.edge_tolerance_m`` is None (else 0).  Tonight's rows (``night``) were matched by their pairs
    against the same register and are left as they are, unless ``committed`` names them (the rows of an earlier
    commit of the same night, done again: matched against the register of then)."""
    from changedetect._merge import _plain
    from changedetect._pipeline_steps import with_addresses
    from changedetect.match import match

    earlier = np.flatnonzero(((violations["night"].astype(str) != night)
                              | violations["violation_id"].astype(str).isin(set(committed))).to_numpy())
    none = violations.iloc[:0].assign(withdrawn=pd.Series(dtype=object), withdrawn_reason=pd.Series(dtype=object))
    if not len(earlier):
        return status_columns(violations, night), none
    rows = violations.iloc[earlier]
    fresh = []
    for area in sorted(set(rows["area"].astype(str))):
        mine = rows[(rows["area"].astype(str) == area).to_numpy()]
        fp = mine[[c for c in _FOOTPRINT if c in mine] + [mine.geometry.name]]
        edge = config.edge_tolerance_m if config.edge_tolerance_m is not None else (tolerances or {}).get(area, 0.0)
        fresh.append(_plain(with_addresses(match(fp, register, config=replace(config, edge_tolerance_m=edge)),
                                           register)))
    now = pd.concat(fresh).loc[rows.index]
    old_status = rows["status"].astype(str).to_numpy()
    new_status = now["status"].astype(str).to_numpy()
    permitted = new_status == "permitted"
    changed = (new_status != old_status) & ~permitted
    out = violations.copy()
    if changed.any():
        out = _with_status_columns(out)
        at = earlier[changed]
        for col in [c for c in UPDATED if c in now and c in out]:
            values = np.array(out[col], dtype=object)
            values[at] = now[col].to_numpy(dtype=object)[changed]
            out[col] = pd.Series(values, index=out.index).infer_objects()
        prev = np.array(out["previous_status"], dtype=object)
        since = np.array(out["status_since"], dtype=object)
        prev[at], since[at] = old_status[changed], night
        out["previous_status"], out["status_since"] = prev, since
        log.info("night %s: %d earlier violation(s) changed status under tonight's permit register: %s", night,
                 int(changed.sum()), ", ".join(f"{v} ({a} -> {b})" for v, a, b in zip(
                     out["violation_id"].to_numpy()[at], old_status[changed], new_status[changed], strict=True)))
    drop = np.zeros(len(out), dtype=bool)
    drop[earlier[permitted]] = True
    reasons = [_reason(p, s, n, r) for p, s, n, r in zip(now["permit_ids"].to_numpy()[permitted], old_status[permitted],
                                                        rows["night"].astype(str).to_numpy()[permitted],
                                                        now["reason"].to_numpy()[permitted], strict=True)]
    withdrawn = out[drop].assign(withdrawn=night, withdrawn_reason=reasons)
    if drop.any():
        log.info("night %s: %d earlier violation(s) withdrawn, %s: %s", night, int(drop.sum()), KIND,
                 ", ".join(withdrawn["violation_id"].astype(str)))
    return status_columns(out[~drop].reset_index(drop=True), night), withdrawn.reset_index(drop=True)


def _reason(permit_ids: Any, status: str, night: str, why: Any) -> str:
    ids = [i.strip() for i in str(permit_ids or "").replace(",", ";").split(";") if i.strip()]
    which = f"permit {ids[0]}" if len(ids) == 1 else f"permits {', '.join(ids)}"
    return (f"{KIND}: {which} (entered in the register or changed since it was reported {status} on {night}) "
            f"covers it" + (f" ({why})" if why and str(why) != "nan" else ""))


def _with_status_columns(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` with :data:`STATUS_COLUMNS` (empty when new), right after ``status``."""
    out = frame.copy()
    for k, col in enumerate(STATUS_COLUMNS):
        if col not in out:
            out.insert(int(out.columns.get_loc("status")) + 1 + k, col, pd.Series("", index=out.index, dtype=object))
    return out


def status_columns(frame: gpd.GeoDataFrame, night: str) -> gpd.GeoDataFrame:
    """A register that has :data:`STATUS_COLUMNS` with them filled for the rows that have none (tonight's new
    ones, merged beside them): ``status_since`` its ``night``, ``previous_status`` ``''``.  Unchanged
    otherwise.  A row's night is its ``night`` column's, ``night`` where the frame has none."""
    if "status_since" not in frame:
        return frame
    out = frame.copy()
    since = out["status_since"].astype(object)
    nights = out["night"].astype(str) if "night" in out else night
    out["status_since"] = since.where(since.notna() & (since.astype(str) != ""), nights)
    out["previous_status"] = out["previous_status"].astype(object).where(out["previous_status"].notna(), "")
    return out


def changed_tonight(violations: gpd.GeoDataFrame, night: str) -> list[str]:
    """The ids of the rows whose status changed tonight (``status_since`` tonight, a ``previous_status``)."""
    if "status_since" not in violations:
        return []
    hit = (violations["status_since"].astype(str) == night) & (violations["previous_status"].fillna("") != "")
    return violations.loc[hit, "violation_id"].astype(str).tolist()


__all__ = ["KIND", "STATUS_COLUMNS", "again", "bound", "changed_tonight", "due", "last_record", "record", "rematch", "stamp",
           "status_columns", "tolerances", "waiting"]
