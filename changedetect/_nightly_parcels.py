"""The open register's parcels (private; :mod:`changedetect.nightly`): on a night run with a cadastral parcel
layer, the violations of earlier nights get the parcel it gives them, where they have none (opened before the
job had ``--parcels``) or the layer now gives another, so that every open row carries the current layer's
parcel (:func:`with_current_parcels`).  Tonight's rows are their pair runs' (:mod:`changedetect._pipeline_chain`,
the same overlay: :func:`changedetect.parcels.with_parcels`)."""

from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import geopandas as gpd

#: the parcel columns, in the order :func:`changedetect.parcels.with_parcels` gives them
PARCEL_COLUMNS = ("parcel_id", "parcel_address", "parcel_sheet", "parcel_no", "parcel_land_use", "parcel_share",
                  "parcels_crossed")
#: an earlier night's parcel share that the current layer measures further off than this is remeasured (a lot
#: redrawn); closer, it is the same lot measured in another CRS, and keeps the value its night gave it
SHARE_MOVED = 0.01


def with_current_parcels(violations: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame, night: str, *,
                         tolerances: dict[str, float] | None = None, default_m: float = 0.0,
                         committed: Collection[str] = ()) -> gpd.GeoDataFrame:
    """The open register with the parcel layer of tonight (``parcels``) given to the earlier nights' rows
    that have no parcel columns filled (opened before the job was given a layer) or whose parcel the layer
    now gives otherwise (another parcel, address, sheet, number or land use; a share more than
    :data:`SHARE_MOVED` off): every open row carries the current layer's parcel, as
    :func:`changedetect.parcels.with_parcels` gives it.

    Tonight's rows are their runs' (the layer is part of their work folders' key), but for those ``committed``
    names (the ids of the committed register: a night done again holds its rows of an earlier commit).  A row whose parcel is
    unchanged keeps the share and crossing count its night measured (its run's, in the imagery's CRS and
    with its pixel as the edge tolerance), so a night with the same layer changes no value.  ``tolerances``:
    area -> the edge tolerance (m) its pairs used tonight (:func:`edge_tolerances`), else ``default_m``.  The
    parcel columns stand before ``same_sun`` (or the geometry), where a register kept with the layer has them.
    """
    import geopandas as gpd

    from changedetect.parcels import with_parcels

    earlier = ((violations["night"].astype(str) != night)
               | violations["violation_id"].astype(str).isin(set(committed))).to_numpy()
    rows = violations[earlier]
    if not len(rows):
        return _parcels_placed(violations)
    fresh = pd.concat([with_parcels(rows[rows["area"] == area], parcels,
                                    edge_tolerance_m=(tolerances or {}).get(area, default_m))
                       for area in sorted(set(rows["area"].astype(str)))]).loc[rows.index]
    redo = np.zeros(len(violations), dtype=bool)
    redo[np.flatnonzero(earlier)] = _parcel_changed(rows, fresh)
    out = violations.copy()
    for col in [c for c in PARCEL_COLUMNS if c in fresh or c in out]:
        empty: Any = np.nan if col in ("parcel_share", "parcels_crossed") else None
        old = out[col].to_numpy(dtype=object) if col in out else np.full(len(out), empty, dtype=object)
        new = np.full(len(out), "" if empty is None else empty, dtype=object)
        new[earlier] = fresh[col].to_numpy(dtype=object) if col in fresh else ""
        values = np.where(redo, new, old)
        out[col] = (values.astype(np.int64) if col == "parcels_crossed" and not pd.isna(values).any()
                    else values.astype(float) if empty is not None else values)
    return gpd.GeoDataFrame(_parcels_placed(out), geometry=violations.geometry.name, crs=violations.crs)


def _parcel_changed(rows: pd.DataFrame, fresh: pd.DataFrame) -> np.ndarray:
    """Per row: no parcel columns filled yet, or the parcel ``fresh`` gives is another (see
    :func:`with_current_parcels`)."""
    if "parcel_share" not in rows:
        return np.ones(len(rows), dtype=bool)
    share = rows["parcel_share"].to_numpy(dtype=float)
    changed = np.isnan(share) | (np.abs(share - fresh["parcel_share"].to_numpy(dtype=float)) > SHARE_MOVED)
    for col in [c for c in PARCEL_COLUMNS if c not in ("parcel_share", "parcels_crossed")]:
        old = rows[col].fillna("").astype(str).to_numpy() if col in rows else np.full(len(rows), "")
        now = fresh[col].fillna("").astype(str).to_numpy() if col in fresh else np.full(len(rows), "")
        changed |= old != now
    return changed


def _parcels_placed(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` with its parcel columns together, in their order, before ``same_sun`` or the geometry,
    whichever comes first (a register kept with the layer from its first night has them there)."""
    mine = [c for c in PARCEL_COLUMNS if c in frame]
    rest = [c for c in frame.columns if c not in mine]
    at = min((rest.index(c) for c in ("same_sun", frame.geometry.name) if c in rest), default=len(rest))
    return frame[[*rest[:at], *mine, *rest[at:]]]


def edge_tolerances(results: list[dict[str, Any]]) -> dict[str, float]:
    """Area -> the edge tolerance (m) its pairs' runs used tonight (their ``run.json``'s
    ``effective["match.edge_tolerance_m"]``: the pixel size, unless ``[match]`` sets it)."""
    out: dict[str, float] = {}
    for r in results:
        for pair in [] if r["error"] else r["runs"]:
            try:
                value = json.loads((Path(pair["run_dir"]) / "run.json").read_text(encoding="utf-8"))[
                    "effective"]["match.edge_tolerance_m"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if value is not None:
                out[r["area"]] = float(value)
    return out


__all__ = ["PARCEL_COLUMNS", "SHARE_MOVED", "edge_tolerances", "with_current_parcels"]
