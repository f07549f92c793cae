"""The nightly job's bookkeeping of violations: merge a night's runs, stable ids, withdrawals.

Everything here is a deterministic function of the committed state and the
night's pair runs, so a rerun after a crash produces the very same table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from changedetect._state import State

if TYPE_CHECKING:
    import geopandas as gpd

    from changedetect._nightly_decisions import Decided

log = logging.getLogger(__name__)

#: Leading columns of the cumulative register (then whatever match gives).
LEAD = ["violation_id", "area", "night", "before", "after", "run_violation_id"]
SAME_BUILDING_IOU = 0.5
#: the open register -> ``(kept, withdrawn)`` (:func:`changedetect._nightly_rematch.rematch`, bound to tonight's register)
Rematch = Callable[["gpd.GeoDataFrame"], tuple["gpd.GeoDataFrame", "gpd.GeoDataFrame"]]
#: tonight's candidates and their carried footprint ids -> which to keep out (closed by an inspector's decision)
KeepOut = Callable[["gpd.GeoDataFrame", np.ndarray], np.ndarray]


def _empty(crs: Any) -> gpd.GeoDataFrame:
    import geopandas as gpd

    cols = [*LEAD, "footprint_id", "status", "reason", "permit_ids", "overlap_ratio", "excess_area_m2",
            "area_m2", "first_seen", "change_type", "confidence"]
    return gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in cols},
                            geometry=gpd.GeoSeries([], crs=crs), crs=crs)


def _register_crs(permits: str) -> Any:
    try:
        import pyogrio

        return pyogrio.read_info(permits)["crs"] or "EPSG:4326"
    except Exception:  # noqa: BLE001 - a database URL or an unreadable file: fall back
        return "EPSG:4326"


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Dates as ISO strings, lists as ';'-joined text (stable through GeoPackage and Parquet)."""
    out = frame.copy()
    geom = getattr(frame, "_geometry_column_name", None)
    for col in out.columns:
        if col == geom:
            continue
        s = out[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            out[col] = s.dt.strftime("%Y-%m-%d").where(s.notna(), None)
        elif s.dtype == object:
            out[col] = s.map(lambda v: ";".join(map(str, v)) if isinstance(v, list | tuple | np.ndarray)
                             else (v.isoformat() if hasattr(v, "isoformat") else v))
    return out


def _night_candidates(results: list[dict[str, Any]], crs: Any) -> gpd.GeoDataFrame:
    import geopandas as gpd

    frames = []
    for r in results:
        if r["error"]:
            continue
        for pair in r["runs"]:
            gdf = gpd.read_file(Path(pair["run_dir"]) / "violations.gpkg", layer="violations")
            gdf = gdf[gdf["status"] != "permitted"].to_crs(crs)
            if gdf.empty:
                continue
            gdf = gdf.rename(columns={"violation_id": "run_violation_id"})
            gdf.insert(0, "area", r["area"])
            gdf.insert(1, "before", pair["before"])
            gdf.insert(2, "after", pair["after"])
            gdf = _plain(gdf)
            ids = _ids(gdf)
            carried = set(pair.get("carried") or [])  # ids this pair took from its previous footprints
            gdf["_carried"] = np.isin(ids, list(carried)) & (ids != "")
            frames.append(gdf)
    if not frames:
        return _empty(crs).drop(columns=["violation_id", "night"]).assign(_carried=pd.Series(dtype=bool))
    cand = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=crs)
    import shapely

    # a sort key only: shapely's planar centroid, without geopandas' warning in a geographic CRS
    c = shapely.centroid(np.asarray(cand.geometry.values))
    cand["_cy"], cand["_cx"] = -np.round(shapely.get_y(c), 3), np.round(shapely.get_x(c), 3)
    cand = cand.sort_values(["area", "after", "before", "_cy", "_cx", "run_violation_id"], kind="stable")
    return cand.drop(columns=["_cy", "_cx"]).reset_index(drop=True)


def _iou(a: Any, b: Any) -> float:
    inter = a.intersection(b).area
    union = a.union(b).area
    return float(inter / union) if union > 0 else 0.0


def _ids(frame: pd.DataFrame) -> np.ndarray:
    """The ``footprint_id`` of each row ('' when absent)."""
    if "footprint_id" not in frame:
        return np.full(len(frame), "", dtype=object)
    return frame["footprint_id"].fillna("").astype(str).to_numpy()


def _same(geom: Any, fid: str, other: Any, other_fid: str) -> bool:
    """The same building: IoU >= 0.5, or the same footprint id and touching.

    ``fid`` is '' unless the id was carried over (not merely the same cell hash).
    """
    if fid and fid == other_fid and geom.intersects(other):
        return True
    return _iou(geom, other) >= SAME_BUILDING_IOU


def merge_and_withdraw(current: State, state_dir: Path, results: list[dict[str, Any]], night: str, *,
                       permits: str, share: float | None, season_days: int | None,
                       rematch: Rematch | None = None, decided: Decided | None = None,
                       committed: set[str] | frozenset[str] = frozenset(),
                       ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """:func:`merge_night`, then the withdrawals (:mod:`changedetect._withdraw_masked`'s, of a rerun
    pair's violations under a late SCL's mask, :func:`withdraw_unconfirmed`'s, then ``rematch``'s: the
    earlier nights' violations matched again against tonight's register, :func:`changedetect._nightly_rematch.rematch`,
    which also gives a changed status, then ``decided``'s: the inspectors' decisions,
    :mod:`changedetect._nightly_decisions`, whose closed violations the merge does not open again):
    ``(register, withdrawn)``.  ``committed``: the ids of the night's own rows committed before, when it is
    done again (a rerun pair may withdraw those too: :func:`changedetect._withdraw_masked._pair_rows`).

    When violations are withdrawn, the night is merged again without them: a violation of
    tonight that was taken for one of them (an outline that grew from a withdrawn blob, say) is
    tonight's own structure, and must not leave the register with the blob.
    """
    from changedetect._withdraw_masked import withdraw_all

    def _withdraw(merged: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
        kept, withdrawn = withdraw_all(merged, results, night, share=share, season_days=season_days,
                                       committed=committed)
        if decided is not None:  # a confirmed one stays open, and is matched again with the others
            kept, withdrawn = decided.overrule(kept, withdrawn)
        if rematch is not None:
            kept, permitted = rematch(kept)
            if len(permitted):
                import geopandas as gpd

                both = [w for w in (withdrawn, permitted) if len(w)]
                withdrawn = gpd.GeoDataFrame(pd.concat(both, ignore_index=True), geometry="geometry",
                                             crs=merged.crs)
        return (kept, withdrawn) if decided is None else decided.close(kept, withdrawn)

    keep_out = None if decided is None else decided.keep_out
    back = None if decided is None else decided.reopened  # confirmed since an image check withdrew them
    merged = merge_night(current, state_dir, results, night, permits=permits, keep_out=keep_out, reopened=back)
    kept, withdrawn = _withdraw(merged)
    if len(withdrawn):
        gone = set(withdrawn["violation_id"].astype(str))
        merged = merge_night(current, state_dir, results, night, permits=permits, without=gone, keep_out=keep_out,
                             reopened=back)
        kept, _ = _withdraw(merged)
    return kept, withdrawn


def merge_night(current: State, state_dir: Path, results: list[dict[str, Any]], night: str, *,
                permits: str, without: set[str] | frozenset[str] = frozenset(),
                keep_out: KeepOut | None = None, reopened: gpd.GeoDataFrame | None = None) -> gpd.GeoDataFrame:
    """The cumulative violations after this night: the committed ones plus the night's new ones.

    A night's violation that overlaps an open violation of the same area (or an
    earlier one of the same night) with IoU >= 0.5, or whose ``footprint_id`` its
    pair carried over from its previous footprints (``pair["carried"]``) and that
    has that id and touches it (the same structure, whose outline may have grown),
    is the same building and is not added again.  An id that was not carried over
    (a fresh cell hash, which may equal an open violation's by chance) counts for
    nothing: such a violation is matched by IoU only.  New ids are ``<area>-<YYYYMMDD>-<nnn>``,
    numbered in a fixed order (area, dates, north to south, west to east).  ``without``: ids of
    committed violations to leave out (withdrawn tonight, :func:`merge_and_withdraw`).  ``keep_out``: which
    candidates not to open (structures an inspector's decision closed:
    :meth:`changedetect._nightly_decisions.Decided.keep_out`).  ``reopened``: withdrawn violations back in the
    committed register (confirmed by an inspector since: :func:`changedetect._nightly_decisions.reopened`).
    """
    import geopandas as gpd

    previous = (gpd.read_parquet(current.violations_path(state_dir)) if current.generation
                else _empty(_register_crs(permits)))
    # every id ever given, withdrawn ones too: a new id never repeats one (a night run again)
    used = set(previous["violation_id"].astype(str)) | set(without)
    if current.withdrawn_path(state_dir).is_file():
        used |= set(pd.read_parquet(current.withdrawn_path(state_dir), columns=["violation_id"])["violation_id"]
                    .astype(str))
    if reopened is not None and len(reopened):
        back = reopened[~reopened["violation_id"].astype(str).isin(set(previous["violation_id"].astype(str)))]
        previous = _stacked(previous, back.to_crs(previous.crs))
    if without:
        previous = previous[~previous["violation_id"].astype(str).isin(without)].reset_index(drop=True)
    cand = _night_candidates(results, previous.crs)
    keep: list[int] = []
    ids: list[str] = []
    counters: dict[str, int] = {}
    stamp = night.replace("-", "")
    prev_ids = _ids(previous)
    cand_ids = np.where(cand["_carried"].to_numpy(dtype=bool), _ids(cand), "")  # the carried ids only
    kept_ids = _ids(cand)
    out = keep_out(cand, cand_ids) if keep_out is not None else np.zeros(len(cand), dtype=bool)
    for i, row in cand.iterrows():
        if out[i]:
            continue
        area = row["area"]
        mine = previous["area"] == area
        same_area = list(zip(previous.geometry[mine], prev_ids[mine.to_numpy()], strict=True)) + [
            (cand.geometry[j], kept_ids[j]) for j in keep if cand["area"][j] == area]
        if any(_same(row.geometry, cand_ids[i], g, fid) for g, fid in same_area):
            continue
        if area not in counters:
            prefix = f"{area}-{stamp}-"
            counters[area] = max((int(v[len(prefix):]) for v in used
                                  if v.startswith(prefix) and v[len(prefix):].isdigit()), default=0)
        counters[area] += 1
        keep.append(i)
        ids.append(f"{area}-{stamp}-{counters[area]:03d}")
    new = cand.loc[keep].drop(columns="_carried")
    new.insert(0, "violation_id", ids)
    new.insert(2, "night", night)
    merged = _stacked(previous, new)
    order = [c for c in LEAD if c in merged] + [c for c in merged.columns if c not in LEAD]
    order.remove("geometry")
    log.info("night %s: %d candidate(s), %d new violation(s)", night, len(cand), len(new))
    return merged[[*order, "geometry"]].reset_index(drop=True)


def _stacked(previous: gpd.GeoDataFrame, new: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``previous``'s rows then ``new``'s, with the union of their columns (``previous``'s order first).

    Only the sides with rows are concatenated: an empty side (a night with nothing new, a register
    with nothing open) adds only its own columns, missing on the other's rows (with its dtypes where they
    hold a missing value: a ``bool`` column becomes ``object``, an ``int64`` one ``float64``), and keeps the
    other's dtypes as they are.
    pandas would type each column after the empty side's too: the register's ``float32`` ``confidence``
    after an empty ``object`` column (no candidate) became ``object``, after an empty ``float64`` one (the
    night's candidates all matched) ``float64``, and an ``int64`` column the night lacks ``float64``."""
    import geopandas as gpd

    columns = [*previous.columns, *(c for c in new.columns if c not in previous.columns)]
    full = [f for f in (previous, new) if len(f)]
    if len(full) == 2:
        rows = pd.concat(full, ignore_index=True)
    else:
        one, empty = (new, previous) if full and full[0] is new else (previous, new)
        rows = one.reset_index(drop=True)
        # missing on every row, as pd.concat would make it: a bool column object, an int64 one float64 (a
        # pd.Series(index=..., dtype=bool) is all True)
        rows = rows.assign(**{c: empty[c].reset_index(drop=True).reindex(rows.index) for c in columns
                              if c not in rows})
    return gpd.GeoDataFrame(rows[columns], geometry=previous.geometry.name, crs=previous.crs)


def withdraw_unconfirmed(violations: gpd.GeoDataFrame, results: list[dict[str, Any]], night: str, *,
                         share: float | None, season_days: int | None) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Take out of the register the earlier nights' violations that tonight's same-season pair does
    not confirm: ``(kept, withdrawn)``.

    A pair run with a same-season partner writes that pair's decisions
    (``same_season_change.tif``, :func:`changedetect._pipeline_steps.same_season_decisions`).
    An open violation of the pair's area, reported on an earlier night from a pair of two seasons
    that lies within the partner pair, over less than ``share`` of which that pair decides change,
    was most likely a shadow that moved between the seasons (:mod:`changedetect._same_sun`): it
    is withdrawn, with the night (``withdrawn``) and the reason (``withdrawn_reason``).  ``share``
    None (``DetectConfig.same_sun_share``) withdraws nothing and adds no column; otherwise every row
    gets the column ``same_sun`` (:func:`_same_sun_column`): ``pending`` marks a violation seen across seasons that
    no same-season pair has checked yet, the likeliest to be withdrawn later.
    """
    import rasterio

    from changedetect._same_sun import judged
    from changedetect.pipeline import OUTPUTS

    drop = np.zeros(len(violations), dtype=bool)
    confirmed = np.zeros(len(violations), dtype=bool)
    blind = np.zeros(len(violations), dtype=bool)  # tonight's, where the partner pair has no data
    reason = np.full(len(violations), "", dtype=object)
    if share is not None and len(violations):
        days = season_days if season_days is not None else 45
        from changedetect._nightly_decisions import INSPECTED

        done = (violations["same_sun"].isin(["confirmed", INSPECTED]).to_numpy()  # judged once, or by an inspector
                if "same_sun" in violations else np.zeros(len(violations), dtype=bool))
        tonight = (violations["night"] == night).to_numpy()
        pair_of = list(zip(violations["area"], violations["before"].astype(str), violations["after"].astype(str),
                           strict=True))
        dates = (violations["before"].astype(str).to_numpy(dtype="datetime64[D]"),
                 violations["after"].astype(str).to_numpy(dtype="datetime64[D]"))
        rasters = []  # (area's rows, this pair's own rows of tonight, file, span, rows the span judges)
        for r in results:
            if r["error"]:
                continue
            for pair in r["runs"]:
                file = Path(pair["run_dir"]) / OUTPUTS["same_season"]
                if not file.is_file():
                    continue
                with rasterio.open(file) as src:
                    span = src.tags()["PAIR"].split("/")
                mine = tonight & np.array([key == (r["area"], str(pair.get("before")), str(pair.get("after")))
                                           for key in pair_of], dtype=bool)
                inside = judged(*dates, (np.datetime64(span[0]), np.datetime64(span[1])), days)
                rasters.append(((violations["area"] == r["area"]).to_numpy(), mine, file, span, inside))
        for _, mine, file, _, inside in rasters:  # tonight's own were checked by their run, which keeps
            own = np.flatnonzero(mine & inside)  # what the pair has no data over unjudged: still pending
            with rasterio.open(file) as src:
                own_shares = _decided_shares(src, violations.geometry.iloc[own].to_crs(src.crs).values)
            blind[own[np.isnan(own_shares)]] = True
        # tonight's rows of a pair whose own run had a partner were judged by it, as an earlier night's
        # 'confirmed' are (a catch-up night's later pair must not judge them again), except where that
        # partner had no data: those a later pair judges, as the next night would
        partnered = {(r["area"], str(p.get("before")), str(p.get("after"))) for r in results if not r["error"]
                     for p in r["runs"] if p.get("partner")}
        done = done | (tonight & np.array([key in partnered for key in pair_of], dtype=bool) & ~blind)
        for area, mine, file, span, inside in rasters:
            # this pair's own rows were checked by its run; every other row of the area, an earlier
            # night's or tonight's from an earlier pair (a night that caught up on several dates), is
            # judged here, as it would have been had its dates come on nights of their own
            idx = np.flatnonzero(area & ~mine & ~done & inside)
            with rasterio.open(file) as src:
                shares = _decided_shares(src, violations.geometry.iloc[idx].to_crs(src.crs).values)
            seen, unseen = shares >= share, shares < share  # NaN (no data there): neither, not judged
            confirmed[idx[seen]] = True
            drop[idx[unseen]] = True
            reason[idx[unseen]] = (f"not seen under the same sun: {span[0]} -> {span[1]} decides change "
                                  f"on less than {share:.0%} of it (a shadow that moved between the seasons)")
        drop &= ~confirmed  # two pairs of the night may judge a row: one that sees it keeps it
        violations = violations.assign(same_sun=_same_sun_column(violations, results, night, confirmed, days,
                                                                 blind))
    withdrawn = violations[drop].assign(withdrawn=night, withdrawn_reason=list(reason[drop]))
    if drop.any():
        log.info("night %s: %d earlier violation(s) withdrawn, not seen under the same sun: %s", night,
                 int(drop.sum()), ", ".join(withdrawn["violation_id"].astype(str)))
    return violations[~drop].reset_index(drop=True), withdrawn.reset_index(drop=True)


def _decided_shares(src: Any, geoms: np.ndarray) -> np.ndarray:
    """Share of each geometry (in ``src``'s CRS) that ``same_season_change.tif`` (open as ``src``)
    marks as change, read window by window (the area's raster is never read whole); NaN where it
    covers no pixel with data."""
    from rasterio.windows import Window

    from changedetect._change_presence import presence_means
    from changedetect._change_types import window as _window

    out = np.full(len(geoms), np.nan)
    for k, geom in enumerate(geoms):
        box = _window(geom.bounds, src.transform, (src.height, src.width))  # presence_means's own window
        if box is None:  # off the raster: nothing to judge
            continue
        win = Window.from_slices(*box)
        raw = src.read(1, window=win)
        decided = np.where(raw == 255, np.nan, raw == 1).astype(np.float32)  # 255: no data
        out[k] = presence_means(np.array([geom], dtype=object), decided, src.window_transform(win))[0]
    return out


def _same_sun_column(violations: gpd.GeoDataFrame, results: list[dict[str, Any]], night: str,
                     confirmed: np.ndarray, season_days: int, blind: np.ndarray | None = None) -> list[str]:
    """Each row's ``same_sun``: ``not needed`` (its pair lies within one season), ``confirmed by an
    inspector`` (kept as it is: :data:`changedetect._nightly_decisions.INSPECTED`), ``confirmed``
    (its pair spans two seasons and a same-season pair saw it: tonight's with a partner, whose run
    dropped what that pair did not see, or an earlier night's judged tonight), ``pending`` (not
    checked yet: no same-season date of its AFTER's season a year before, or, ``blind``, tonight's
    partner pair has no data over it), or '' (unknown: a row from before the column)."""
    blind = np.zeros(len(violations), dtype=bool) if blind is None else blind
    from changedetect.presence import same_season

    old = violations["same_sun"].fillna("").astype(str).to_numpy() if "same_sun" in violations else \
        np.full(len(violations), "", dtype=object)
    partnered = {(r["area"], str(p.get("before")), str(p.get("after"))): bool(p.get("partner"))
                 for r in results if not r["error"] for p in r["runs"]}
    out = []
    for k, (area, tonight, before, after) in enumerate(zip(violations["area"], violations["night"] == night,
                                                           violations["before"].astype(str),
                                                           violations["after"].astype(str), strict=True)):
        if confirmed[k]:
            out.append("confirmed")
        elif not tonight or (old[k] and (area, before, after) not in partnered):  # an earlier run's row
            out.append(old[k])
        elif same_season(np.datetime64(before), np.datetime64(after), season_days):
            out.append("not needed")
        else:
            out.append("confirmed" if partnered.get((area, before, after)) and not blind[k] else "pending")
    return out


def withdrawn_table(current: State, state_dir: Path, withdrawn: gpd.GeoDataFrame,
                    open_ids: set[str] | frozenset[str] = frozenset()) -> gpd.GeoDataFrame:
    """Every violation withdrawn so far: the committed table (``State.withdrawn_path``) plus
    tonight's, once each (a rerun of the night withdraws the same rows again), but for those open again
    (``open_ids``: the register's; confirmed by an inspector since, :func:`changedetect._nightly_decisions.reopened`)."""
    import geopandas as gpd

    path = current.withdrawn_path(state_dir)
    if not path.is_file():
        return withdrawn.reset_index(drop=True)
    earlier = gpd.read_parquet(path)
    earlier = earlier[~earlier["violation_id"].astype(str).isin(set(open_ids))]
    if not len(withdrawn):
        return earlier
    earlier = earlier[~earlier["violation_id"].isin(withdrawn["violation_id"])].to_crs(withdrawn.crs)
    both = gpd.GeoDataFrame(pd.concat([earlier, withdrawn], ignore_index=True), geometry="geometry",
                            crs=withdrawn.crs)
    from changedetect._nightly_decisions import has_columns, with_columns

    # rows withdrawn before any decision existed: '' as tonight's undecided ones, not NULL beside them
    return with_columns(both) if has_columns(withdrawn) else both


def write_generation(violations: gpd.GeoDataFrame, path: Path) -> None:
    """The cumulative table as GeoParquet in the state directory (atomic)."""
    from changedetect.io.vectors import write_vector

    write_vector(violations, path, overwrite=True)


__all__ = ["merge_and_withdraw", "merge_night", "withdraw_unconfirmed", "withdrawn_table", "write_generation"]
