"""Match building footprints against a permit register: the violations.

:func:`match` reads as five named steps, as geopandas' ``sjoin`` does::

    _harmonise_crs -> _candidate_pairs -> _overlap_evidence -> _classify -> _frame

1. **CRS.**  Work in the footprints' CRS when it is projected in metres and of
   true scale there, within 2 % in area (else their UTM zone: a geographic CRS,
   feet, or Web Mercator, whose areas are 1/cos²(latitude) too large).  The
   register is reprojected with pyproj's best available transformation for its
   area, datum shift included: between VN-2000
   (EPSG:9210, Ho Chi Minh City's cadastral maps) and WGS 84 / UTM 48N
   (EPSG:32648) that shift is about 230 m, larger than a city block.
2. **Candidates** from a spatial index (``STRtree``): every (footprint, permit)
   pair whose geometries intersect.
3. **Evidence** per pair: overlap area, whether the permit type fits the
   change, whether the first-seen date falls inside the permit's validity.
   A pair counts (*the permit covers the footprint*) when the overlap is at
   least ``min_overlap_ratio`` of the smaller of the two areas, so that a
   neighbour's permit touching a wall is not taken for this building's.
   Revoked permits never count.  Point permits (a register of locations)
   cover the footprint they fall in; their ``permitted_area_m2`` stands in
   for the footprint.
4. **One status per footprint**, the first that applies (precedence):

   ``unlicensed``
       no permit covers it (a change touching the outline of a valid
       ``extension`` permit is measured against that permit instead:
       ``MatchConfig.attach_to_extensions``);
   ``type_mismatch``
       permits cover it but none of a type that allows the change: a new
       building needs ``new_construction`` or ``extension``; an altered one
       (built before and after) ``new_construction``, ``extension``,
       ``renovation`` or ``demolition`` (a partial demolition); a demolition
       needs ``demolition``;
   ``before_permit``
       it was first seen before the fitting permit(s) were issued;
   ``permit_expired``
       it was first seen after the fitting permit(s) expired (``valid_until``);
   ``exceeds_permit``
       the built area outside the valid permits' footprints exceeds both
       ``tolerance_m2`` and ``tolerance_pct`` % of the permitted area;
   ``permitted``
       otherwise.

   Without a first-seen date the two date checks are skipped.
5. **Frame**: one row per footprint with the evidence (``permit_ids``,
   ``overlap_ratio``, ``excess_area_m2``, ``reason``) and a stable
   ``violation_id`` (a hash of ``footprint_id`` and status), in the footprints' CRS.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Proj, Transformer

from changedetect._match_rules import Evidence, Footprints, Permits, reproject
from changedetect._match_rules import classify as _classify
from changedetect._match_rules import overlap_evidence as _overlap_evidence
from changedetect._match_truth import agreement
from changedetect.errors import ConfigError, GeoreferenceError, PermitSchemaError
from changedetect.io.geo import metres_per_unit

log = logging.getLogger(__name__)

#: a working CRS may draw ground areas at most 2 % too large or small where the footprints are
#: (1 % in length, as :func:`changedetect.io.geo.pixel_size_m`); UTM within its zone: 0.2 %
MAX_AREA_DISTORTION = 0.02

STATUSES: tuple[str, ...] = (
    "unlicensed", "type_mismatch", "before_permit", "permit_expired", "exceeds_permit", "permitted",
)
#: Output columns, in order (footprint columns not listed here follow before ``geometry``).
COLUMNS: tuple[str, ...] = (
    "violation_id", "footprint_id", "status", "reason", "permit_ids", "overlap_ratio", "excess_area_m2",
    "area_m2", "first_seen", "change_type", "confidence",
)


@dataclass(frozen=True)
class MatchConfig:
    """How footprints are matched to permits.

    Parameters
    ----------
    tolerance_m2
        Built area outside the permitted footprint tolerated, in m² (both
        tolerances must be exceeded for ``exceeds_permit``).
    tolerance_pct
        The same, in % of the permitted area.
    edge_tolerance_m
        Positional tolerance of an outline, in metres: for ``exceeds_permit`` the
        built area is measured outside the permitted footprint grown by this much.
        A footprint traced from imagery is uncertain by about a pixel along its
        whole outline (0.5 m at 0.5 m GSD: 10-15 m² on a 60-100 m² house), and a
        register's drawings carry their own error.  ``None`` (the default): 0 here,
        outlines taken as exact; :func:`changedetect.pipeline.run` sets it to the
        pixel size of the imagery the footprints were traced from.
        ``excess_area_m2`` stays the area outside the permit as drawn.
    min_overlap_ratio
        A permit covers a footprint when their overlap is at least this
        fraction of the smaller of the two areas.
    attach_to_extensions
        A new or altered change that no permit covers but that touches the outline of
        ``extension`` permits valid when it was first seen (within ``edge_tolerance_m``)
        is read as that extension built beyond its permit: ``exceeds_permit`` with those
        permits as evidence when what lies outside them exceeds both tolerances and is at
        most half their permitted area; otherwise it stays ``unlicensed`` (the rule never
        makes a change ``permitted``).  Imagery often shows only the part of an extension
        outside the drawn outline.  ``False``: such changes stay ``unlicensed``.
    working_crs
        CRS to measure areas in; it must be projected, in metres and of true scale
        where the footprints are (within 2 % in area; else :func:`match` raises
        ``ConfigError``).  Default: the footprints' CRS when it is (UTM, VN-2000),
        else the footprints' UTM zone (a geographic CRS, a state plane in feet,
        whose areas would be ft², or Web Mercator).
    """

    tolerance_m2: float = 10.0
    tolerance_pct: float = 10.0
    edge_tolerance_m: float | None = None
    min_overlap_ratio: float = 0.1
    attach_to_extensions: bool = True
    working_crs: str | None = None

    def __post_init__(self) -> None:
        if self.tolerance_m2 < 0 or self.tolerance_pct < 0 or (self.edge_tolerance_m or 0.0) < 0:
            raise ValueError("tolerances must be >= 0")
        if not 0 < self.min_overlap_ratio <= 1:
            raise ValueError(f"min_overlap_ratio must be in (0, 1], got {self.min_overlap_ratio}")
        if self.working_crs:
            try:
                crs = CRS.from_user_input(self.working_crs)
            except Exception as exc:
                raise ConfigError(f"working_crs {self.working_crs!r} is not a CRS pyproj knows: {exc}") from exc
            if not _in_metres(crs):
                raise ConfigError(f"working_crs {self.working_crs!r} ({crs.name}) does not measure in metres; "
                                  "areas and tolerances are in m²: give a metric projected CRS (the UTM "
                                  "zone, e.g. EPSG:32648) or leave it unset")


def match(
    footprints: gpd.GeoDataFrame, permits: gpd.GeoDataFrame, *, config: MatchConfig = MatchConfig()
) -> gpd.GeoDataFrame:
    """One status per footprint, with the evidence.

    Parameters
    ----------
    footprints
        As :func:`changedetect.vectorize.vectorize` gives them: ``footprint_id``,
        ``geometry`` and, when known, ``first_seen``, ``change_type``
        (``new`` / ``altered`` / ``demolished``; default ``new``), ``prob_mean``.
    permits
        A validated register (:func:`changedetect.permits.load_register`), any CRS.
    config
        Tolerances and the working CRS.

    Returns
    -------
    geopandas.GeoDataFrame
        :data:`COLUMNS` + the footprints' other columns + ``geometry``, in the
        footprints' CRS, in the footprints' order and with their index.
    """
    fp, pm, crs = _harmonise_crs(footprints, permits, config)
    grow = (config.edge_tolerance_m or 0.0) if config.attach_to_extensions else 0.0
    fi, pi, pm_candidates = _candidate_pairs(fp, pm, crs, grow)
    if len(fp) and len(pm) and not len(fi):
        _warn_if_far(fp, pm, crs)
    elif len(fp) and not len(pm):
        log.warning("the permit register is empty: every footprint is unlicensed. Check the register's source "
                    "(the file, --layer, --query and its --param values)")
    pm = pm_candidates
    ev = _overlap_evidence(fp, pm, fi, pi, config)
    status, reason = _classify(fp, pm, ev, config)
    out = _frame(footprints, ev, status, reason)
    log.info("matched %d footprints against %d permits in %s: %s", len(out), len(permits), crs.name,
             dict(out["status"].value_counts()))
    return out


#: how far from the footprints a register must hold a permit not to be called "elsewhere" (m)
_NEAR_M = 1000.0


def _warn_if_far(fp: Footprints, pm: gpd.GeoDataFrame, crs: CRS) -> None:
    """A warning when no permit lies within :data:`_NEAR_M` of the footprints: every footprint is
    then ``unlicensed``, which more often means a register in the wrong place (a wrongly declared
    CRS, another district) than a district without a single permit."""
    x0, y0, x1, y1 = shapely.total_bounds(fp.geometry)
    near = _NEAR_M / metres_per_unit(crs)
    area = gpd.GeoSeries([shapely.box(x0 - near, y0 - near, x1 + near, y1 + near)], crs=crs).to_crs(pm.crs)
    if len(pm.sindex.query(area.iloc[0], predicate="intersects")):
        return
    where = ", ".join(f"{v:.0f}" for v in (x0, y0, x1, y1))
    log.warning("no permit of the register lies within %.0f m of the footprints (%s in %s): every footprint "
                "is unlicensed. Check that the register covers this area and that its CRS is declared "
                "right (a wrong CRS puts it kilometres away)", _NEAR_M, where, crs.to_string())


def _harmonise_crs(
    footprints: gpd.GeoDataFrame, permits: gpd.GeoDataFrame, config: MatchConfig
) -> tuple[Footprints, gpd.GeoDataFrame, CRS]:
    """The footprints as arrays in one metric CRS, their attributes normalised (dates, kinds);
    the register as it is (its candidates are reprojected in :func:`_candidate_pairs`)."""
    if footprints.crs is None:
        raise GeoreferenceError("the footprints have no CRS; set it with .set_crs() before matching")
    if permits.crs is None and len(permits):
        raise PermitSchemaError("the permit register has no CRS; load it with load_register(..., crs=...)")
    own = CRS.from_user_input(footprints.crs)
    if config.working_crs:
        crs = CRS.from_user_input(config.working_crs)
        scale = _areal_scale(crs, footprints)
        if abs(scale - 1.0) > MAX_AREA_DISTORTION:
            raise ConfigError(f"working_crs {config.working_crs!r} ({crs.name}) draws the footprints' ground "
                              f"{scale:.3f} times its area here, and tolerances are in m²: give the UTM "
                              "zone (or another CRS of true scale here), or leave it unset")
    elif _in_metres(own) and abs(_areal_scale(own, footprints) - 1.0) <= MAX_AREA_DISTORTION:
        crs = own
    else:  # geographic, in feet, or metres of a distorted scale here (Web Mercator: 1/cos²(lat))
        crs = CRS.from_user_input(footprints.estimate_utm_crs())
    geoms = footprints.geometry
    if CRS.from_user_input(footprints.crs) != crs:
        geoms = reproject(geoms, crs)
    arr = np.asarray(geoms.values)
    bad = ~shapely.is_valid(arr) & ~shapely.is_missing(arr)  # a bow-tie's signed area is 0: measure it repaired
    if bad.any():
        arr = arr.copy()
        arr[bad] = shapely.make_valid(arr[bad], method="structure", keep_collapsed=False)
    # the register is not copied nor reprojected here: it may hold millions of rows, and only
    # the candidates of _candidate_pairs are reprojected
    pm = permits.set_crs(crs) if permits.crs is None else permits
    n = len(footprints)
    if "first_seen" in footprints and pd.api.types.is_numeric_dtype(footprints["first_seen"]) \
            and footprints["first_seen"].notna().any():
        example = footprints["first_seen"].dropna().iloc[0]
        raise ConfigError(f"the footprints' first_seen holds numbers ({example}), not dates: give dates "
                          "(YYYY-MM-DD), as `changedetect vectorize` writes them")
    seen = (_dates(footprints["first_seen"]).to_numpy(dtype="datetime64[ns]") if "first_seen" in footprints
            else np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]"))
    kinds = footprints["change_type"].to_numpy(dtype=object) if "change_type" in footprints else np.full(n, None)
    codes, distinct = pd.factorize(kinds, use_na_sentinel=False)
    kind = np.array([_change_kind(v) for v in distinct] or ["new"], dtype=object)[codes]
    return Footprints(arr, seen, kind, crs), pm, crs


def _dates(values: pd.Series) -> pd.Series:
    """datetime64 days (NaT where unknown) from dates, timestamps or ISO strings."""
    s = pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.dt.tz_localize(None).dt.normalize() if getattr(s.dt, "tz", None) else s.dt.normalize()
    try:
        days = np.array(s.to_numpy(dtype=object), dtype="datetime64[D]")
    except (TypeError, ValueError):
        return pd.to_datetime(s.astype(object), errors="coerce").dt.normalize()
    return pd.Series(days.astype("datetime64[ns]"), index=s.index)


def _change_kind(value: object) -> str:
    text = str(value or "").lower()
    if text.startswith("demol"):
        return "demolished"
    if text.startswith(("alter", "extend", "extens", "modif")):
        return "altered"
    return "new"


def _candidate_pairs(
    fp: Footprints, pm: gpd.GeoDataFrame, crs: CRS, grow: float = 0.0
) -> tuple[np.ndarray, np.ndarray, Permits]:
    """Pairs ``(footprint, permit)`` whose bounding boxes meet (an STRtree), and the candidate
    permits alone as arrays, in the working CRS (``pi`` indexes them), attributes normalised.
    ``grow`` (metres) widens the footprints' boxes, so that permits within that distance are
    candidates too (extension permits a footprint is built against).

    The tree is built on the smaller of the two sets and queried with the other (building a
    tree costs more per geometry than querying one).  When the register is in another CRS
    the footprints are taken to it for the search (their boxes grown by about half a metre),
    so that only the candidates are reprojected, not the whole register.  Exact overlaps are
    measured in :func:`_overlap_evidence`; pairs that only touch drop out there.
    """
    empty = np.empty(0, np.intp)
    if not len(fp) or not len(pm):
        return empty, empty, _permit_arrays(pm, empty, crs)
    reg_crs = CRS.from_user_input(pm.crs)
    grow /= metres_per_unit(crs)  # in the working CRS's units
    if reg_crs == crs and grow <= 0:
        query = fp.geometry
    elif reg_crs == crs:
        b = shapely.bounds(fp.geometry)
        query = shapely.box(b[:, 0] - grow, b[:, 1] - grow, b[:, 2] + grow, b[:, 3] + grow)
    else:
        margin = 0.5 / 111_000 if reg_crs.is_geographic else 0.5 / metres_per_unit(reg_crs)
        # the corners of each footprint's (grown) box are enough to bound it in the register's CRS
        b = shapely.bounds(fp.geometry) + np.array([-grow, -grow, grow, grow])
        xs, ys = b[:, [0, 2, 2, 0]].ravel(), b[:, [1, 1, 3, 3]].ravel()
        tx, ty = Transformer.from_crs(crs, reg_crs, always_xy=True).transform(xs, ys)
        tx, ty = np.asarray(tx).reshape(-1, 4), np.asarray(ty).reshape(-1, 4)
        query = shapely.box(tx.min(axis=1) - margin, ty.min(axis=1) - margin,
                            tx.max(axis=1) + margin, ty.max(axis=1) + margin)
    permits = np.asarray(pm.geometry.values)
    if len(query) <= len(permits):
        pi, fi = shapely.STRtree(query).query(permits)
    else:
        fi, pi = shapely.STRtree(permits).query(query)
    used, pi = np.unique(pi, return_inverse=True)
    order = np.lexsort((pi, fi))  # by footprint: the overlaps then gather their rings in order
    return fi[order], pi[order], _permit_arrays(pm, used, crs)


def _areal_scale(crs: CRS, footprints: gpd.GeoDataFrame) -> float:
    """Map area / ground area of projected ``crs`` at the centre of ``footprints`` (1 when unknown)."""
    if not crs.is_projected or not len(footprints):
        return 1.0
    try:
        x0, y0, x1, y1 = footprints.total_bounds
        lon, lat = Transformer.from_crs(footprints.crs, CRS.from_epsg(4326), always_xy=True).transform(
            (x0 + x1) / 2, (y0 + y1) / 2)
        scale = float(Proj(crs).get_factors(lon, lat, errcheck=False).areal_scale)
    except Exception:  # PROJ cannot tell (a projection without factors): take it as true
        return 1.0
    return scale if np.isfinite(scale) and scale > 0 else 1.0


def _in_metres(crs: CRS) -> bool:
    """A projected CRS whose unit is the metre."""
    return bool(crs.is_projected) and abs(metres_per_unit(crs) - 1.0) < 1e-9


def _permit_arrays(pm: gpd.GeoDataFrame, rows: np.ndarray, crs: CRS) -> Permits:
    """Rows ``rows`` of the register as :class:`Permits`: geometries in ``crs``, dates as
    datetime64, types and statuses stripped and in lower case, areas as floats."""
    geoms = np.asarray(pm.geometry.values)[rows]
    if pm.crs is not None and CRS.from_user_input(pm.crs) != crs:
        geoms = np.asarray(reproject(gpd.GeoSeries(geoms, crs=pm.crs), crs).values)

    def column(name: str) -> pd.Series:
        return pm[name].take(rows).reset_index(drop=True)

    type_code, types = pd.factorize(column("permit_type"), use_na_sentinel=False)
    status_code, statuses = pd.factorize(column("status"), use_na_sentinel=False)
    revoked = np.array([str(v).strip().lower() == "revoked" for v in statuses], dtype=bool)
    return Permits(
        geometry=geoms,
        permit_id=column("permit_id").astype(str).to_numpy(dtype=object),
        type_code=np.asarray(type_code, dtype=np.intp),
        type_names=np.array([str(v).strip().lower() for v in types], dtype=object),
        revoked=revoked[status_code] if len(statuses) else np.zeros(len(rows), bool),
        issued_on=_dates(column("issued_on")).to_numpy(dtype="datetime64[ns]"),
        valid_until=_dates(column("valid_until")).to_numpy(dtype="datetime64[ns]"),
        permitted_area_m2=pd.to_numeric(column("permitted_area_m2"), errors="coerce").to_numpy(dtype=float),
    )


def _frame(footprints: gpd.GeoDataFrame, ev: Evidence, status: np.ndarray, reason: np.ndarray) -> gpd.GeoDataFrame:
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


def match_to_file(
    footprints_path: str | os.PathLike[str],
    register: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    config: MatchConfig = MatchConfig(),
    strict: bool = True,
    rejects_path: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    **register_options: Any,
) -> gpd.GeoDataFrame:
    """Read footprints and a register, :func:`match` them, write the violations.

    ``register_options`` go to :func:`changedetect.permits.load_register`
    (``layer``, ``table``, ``query``, ``params``, ``column_map``, ``crs``, ``timezone``).
    The output format follows ``out``'s extension (:func:`write_vector`); the rows carry the
    matched permits' ``address`` when the register has addresses, as ``changedetect run``'s do.
    """
    from changedetect.errors import OutputExistsError
    from changedetect.io.registers import read_register
    from changedetect.io.vectors import write_vector
    from changedetect.permits import load_register

    if Path(out).exists() and not overwrite:
        raise OutputExistsError(f"output '{out}' already exists; pass --overwrite to replace it")
    footprints, _ = read_register(footprints_path, what="footprints file")
    if "permit_id" in footprints.columns and "footprint_id" not in footprints.columns:
        raise ConfigError(f"footprints file '{footprints_path}' has a permit_id column and no footprint_id: it "
                          "looks like a permit register; give the footprints `changedetect vectorize` or "
                          "`changedetect run` wrote, and the register with --permits")
    permits = load_register(register, strict=strict, rejects_path=rejects_path, overwrite=overwrite,
                            **register_options)
    from changedetect._pipeline_steps import with_addresses

    violations = with_addresses(match(footprints, permits, config=config), permits)  # as `run` writes them
    from changedetect.report import violations_qml

    write_vector(violations, out, overwrite=overwrite, qgis_style=violations_qml())
    return violations


__all__ = ["COLUMNS", "STATUSES", "MatchConfig", "agreement", "match", "match_to_file"]
