"""The output of :func:`changedetect.match.match` (private): one row per footprint with its status,
the evidence and a ``violation_id`` stable across runs, in the footprints' CRS and order."""

from __future__ import annotations

import hashlib
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from changedetect._match_rules import Evidence


def frame(footprints: gpd.GeoDataFrame, ev: Evidence, status: np.ndarray, reason: np.ndarray) -> gpd.GeoDataFrame:
    n = len(footprints)
    fids = (_strings(footprints["footprint_id"]) if "footprint_id" in footprints
            else np.array([f"F{i:06d}" for i in range(n)], dtype=object))
    data = {
        "violation_id": _violation_ids(fids, status),
        "footprint_id": fids,
        "status": status,
        "reason": reason,
        "permit_ids": ev.permit_ids,
        "overlap_ratio": np.round(ev.overlap_ratio, 4),
        "excess_area_m2": np.round(ev.excess_area_m2, 2),
        "area_m2": np.round(ev.area_m2, 2),
        "first_seen": (_column(footprints["first_seen"]) if "first_seen" in footprints
                       else np.full(n, None, dtype=object)),
        "change_type": (_column(footprints["change_type"]) if "change_type" in footprints
                        else np.full(n, "new", dtype=object)),
        "confidence": (pd.to_numeric(footprints["prob_mean"], errors="coerce").to_numpy()
                       if "prob_mean" in footprints else np.full(n, np.nan)),
    }
    text = ("violation_id", "footprint_id", "status", "reason", "permit_ids")  # object columns, as before
    for c in footprints.columns:
        if c not in data and c != footprints.geometry.name:
            data[c] = _column(footprints[c])
    frame = pd.DataFrame({k: pd.Series(v, dtype=object) if k in text else v for k, v in data.items()})
    frame.index = footprints.index  # the footprints' rows: a caller joins the statuses back on it
    return gpd.GeoDataFrame(frame, geometry=footprints.geometry.values, crs=footprints.crs)


def _column(values: pd.Series) -> Any:
    """A footprint column as it goes into the output: numpy or extension arrays keep their type,
    object arrays are inferred again (strings become ``str``) as a new frame would."""
    return values.to_numpy() if values.dtype == object else values.array


def _strings(values: pd.Series) -> np.ndarray:
    """``values`` as an object array of ``str``."""
    out = values.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(out, skipna=False) not in ("string", "empty"):
        out = np.array([str(v) for v in out.tolist()], dtype=object)
    return out


def _violation_ids(footprint_ids: np.ndarray, status: np.ndarray) -> np.ndarray:
    """``V-`` + 12 hex digits of SHA-1(footprint_id|status) per row: stable across runs."""
    sha1 = hashlib.sha1
    keys = [f"{f}|{s}".encode() for f, s in zip(footprint_ids.tolist(), status.tolist(), strict=True)]
    return np.array(["V-" + sha1(k).hexdigest()[:12] for k in keys], dtype=object)


__all__ = ["frame"]
