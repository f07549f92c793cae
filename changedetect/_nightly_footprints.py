"""The nightly job's memory of footprints: each area's latest footprints, for carrying ids over.

``STATE/footprints-<generation>.parquet`` (GeoParquet, EPSG:4326) holds, for every area,
the footprints of the latest pair that ran for it (columns ``area``, ``after``,
``footprint_id``, ``change_type``, ``geometry``; states written before 2026-11-30 have no
``change_type``, which then counts as unknown), rows sorted by area and id.  The kind keeps
a demolition's id from passing to the building later put up on its lot
(:func:`changedetect._vectorize_shapes.carry_ids`).  It is written with the
night's generation of the violations, before the state is committed, and read back
the next night as ``previous`` (:func:`changedetect.pipeline.run`) by each pair of the
area whose first date is on or after their ``after`` date, unless a pair of that night
ending in between is more recent (``changedetect._nightly_plan.plan_night``).  Like the violations, it is a deterministic
function of the committed state and the night's pair runs, so a rerun after a crash
writes the same file; an area that failed keeps its committed rows.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    import geopandas as gpd

log = logging.getLogger(__name__)

COLUMNS = ["area", "after", "footprint_id", "change_type"]
CRS = "EPSG:4326"


def path(state_dir: Path, generation: int) -> Path:
    """The footprints file of a generation."""
    return state_dir / f"footprints-{generation:06d}.parquet"


def load(state_dir: Path, generation: int) -> gpd.GeoDataFrame | None:
    """The committed footprints (None before the first commit, or from a state written before they were kept)."""
    import geopandas as gpd

    file = path(state_dir, generation)
    if not generation or not file.is_file():
        if generation:
            log.info("no footprints kept for generation %d: ids start afresh this night", generation)
        return None
    return gpd.read_parquet(file)


def of_area(table: gpd.GeoDataFrame | None, area: str) -> gpd.GeoDataFrame | None:
    """The committed footprints of one area (None when it has none)."""
    if table is None:
        return None
    rows = table[table["area"] == area]
    return rows.reset_index(drop=True) if len(rows) else None


def checksum(frame: gpd.GeoDataFrame | None) -> str:
    """sha256 of ids and geometries (WKB), to name the work folders that used them."""
    if frame is None:
        return "none"
    h = hashlib.sha256()
    kinds = frame["change_type"].fillna("").astype(str) if "change_type" in frame else [""] * len(frame)
    for fid, kind, wkb in zip(frame["footprint_id"].astype(str), kinds, frame.geometry.to_wkb(), strict=True):
        h.update(fid.encode())
        h.update(kind.encode())
        h.update(bytes(wkb))
    return h.hexdigest()


def next_table(committed: gpd.GeoDataFrame | None, results: list[dict[str, Any]]) -> gpd.GeoDataFrame:
    """The committed footprints with each successful area's rows replaced by its latest pair's.

    A pair dated before the area's committed footprints (an acquisition that arrived late)
    does not replace them: the next night continues from the latest date.
    """
    import geopandas as gpd

    frames = []
    replaced = set()
    latest = {} if committed is None else committed.groupby("area")["after"].max().to_dict()
    for r in results:
        if r["error"] or not r["runs"]:
            continue
        pair = max(r["runs"], key=lambda p: p["after"])
        if pair["after"] < latest.get(r["area"], ""):
            continue
        fp = gpd.read_file(Path(pair["run_dir"]) / "footprints.gpkg")
        if "change_type" not in fp:
            fp["change_type"] = None
        fp = fp[["footprint_id", "change_type", "geometry"]].to_crs(CRS)
        fp.insert(0, "area", r["area"])
        fp.insert(1, "after", pair["after"])
        frames.append(fp)
        replaced.add(r["area"])
    if committed is not None:
        frames.insert(0, committed[~committed["area"].isin(replaced)])
    if not frames:
        return gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in COLUMNS},
                                geometry=gpd.GeoSeries([], crs=CRS), crs=CRS)
    table = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=CRS)
    table["footprint_id"] = table["footprint_id"].astype(str)
    return table.sort_values(["area", "footprint_id"], kind="stable").reset_index(drop=True)


def save(table: gpd.GeoDataFrame, state_dir: Path, generation: int) -> None:
    """Write the table of a generation (atomic)."""
    from changedetect.io.vectors import write_vector

    write_vector(table, path(state_dir, generation), overwrite=True)


__all__ = ["checksum", "load", "next_table", "of_area", "path", "save"]
