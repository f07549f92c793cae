"""The inputs of :func:`changedetect.match.match` as arrays (private): the footprints in one
metric working CRS of true scale, their dates and change kinds normalised, and the candidate
(footprint, permit) pairs from a spatial index, with the candidate permits alone reprojected."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Proj, Transformer

from changedetect._match_rules import Footprints, Permits, reproject
from changedetect.errors import ConfigError, GeoreferenceError, PermitSchemaError
from changedetect.io._datum import datum_name, datum_shift_unknown, towgs84_lost_hint
from changedetect.io.geo import metres_per_unit

if TYPE_CHECKING:
    from changedetect.match import MatchConfig

#: a working CRS may draw ground areas at most 2 % too large or small where the footprints are
#: (1 % in length, as :func:`changedetect.io.geo.pixel_size_m`); UTM within its zone: 0.2 %
MAX_AREA_DISTORTION = 0.02


def harmonise_crs(
    footprints: gpd.GeoDataFrame, permits: gpd.GeoDataFrame, config: MatchConfig
) -> tuple[Footprints, gpd.GeoDataFrame, CRS]:
    """The footprints as arrays in one metric CRS, their attributes normalised (dates, kinds);
    the register as it is (its candidates are reprojected in :func:`candidate_pairs`)."""
    check_frames(footprints, permits)
    if footprints.crs is None:
        raise GeoreferenceError("the footprints have no CRS; set it with .set_crs() before matching")
    if permits.crs is None and len(permits):
        raise PermitSchemaError("the permit register has no CRS; load it with load_register(..., crs=...)")
    if config.working_crs:
        crs = CRS.from_user_input(config.working_crs)
        scale = _areal_scale(crs, footprints)
        if abs(scale - 1.0) > MAX_AREA_DISTORTION:
            raise ConfigError(f"working_crs {config.working_crs!r} ({crs.name}) draws the footprints' ground "
                              f"{scale:.3f} times its area here, and tolerances are in m²: give the UTM "
                              "zone (or another CRS of true scale here), or leave it unset")
    else:
        crs = working_crs(footprints)
    geoms = footprints.geometry
    if CRS.from_user_input(footprints.crs) != crs:
        geoms = reproject(geoms, crs)
    arr = np.asarray(geoms.values)
    bad = ~shapely.is_valid(arr) & ~shapely.is_missing(arr)  # a bow-tie's signed area is 0: measure it repaired
    if bad.any():
        arr = arr.copy()
        arr[bad] = shapely.make_valid(arr[bad], method="structure", keep_collapsed=False)
    # the register is not copied nor reprojected here: it may hold millions of rows, and only
    # the candidates of candidate_pairs are reprojected
    pm = permits.set_crs(crs) if permits.crs is None else permits
    check_register_datum(pm, crs)
    n = len(footprints)
    for col in ("first_seen", "before_date"):
        if col in footprints and pd.api.types.is_numeric_dtype(footprints[col]) and footprints[col].notna().any():
            example = footprints[col].dropna().iloc[0]
            raise ConfigError(f"the footprints' {col} holds numbers ({example}), not dates: give dates "
                              "(YYYY-MM-DD), as `changedetect vectorize` and `changedetect run` write them")
    seen = (_dates(footprints["first_seen"]).to_numpy(dtype="datetime64[ns]") if "first_seen" in footprints
            else np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]"))
    kinds = footprints["change_type"].to_numpy(dtype=object) if "change_type" in footprints else np.full(n, None)
    codes, distinct = pd.factorize(kinds, use_na_sentinel=False)
    kind = np.array([_change_kind(v) for v in distinct] or ["new"], dtype=object)[codes]
    absent = (_dates(footprints["before_date"]).to_numpy(dtype="datetime64[ns]") if "before_date" in footprints
              else None)  # the last date without it (run writes it): when it changed, not only when seen
    check_permit_columns(pm)  # after the footprints' own checks: what is wrong with them is said first
    return Footprints(arr, seen, kind, crs, absent), pm, crs


#: the register's columns :func:`match` reads (``permits/schema.json``'s required ones, less the geometry)
PERMIT_COLUMNS = ("permit_id", "permit_type", "issued_on", "valid_until", "permitted_area_m2", "status")


def check_frames(footprints: Any, permits: Any) -> None:
    """A ``TypeError`` naming what to give when ``footprints`` or ``permits`` is not a GeoDataFrame,
    instead of an ``AttributeError`` from inside match."""
    for what, frame, fix in (
            ("footprints", footprints, "vectorize()'s result, or geopandas.read_file(path) for a file"),
            ("permits", permits, "load_register(path), which reads and checks a register file")):
        if isinstance(frame, pd.DataFrame) and not isinstance(frame, gpd.GeoDataFrame):
            raise TypeError(f"match's {what} must be a geopandas.GeoDataFrame, got a pandas DataFrame, which has no "
                            "geometry: make it geopandas.GeoDataFrame(df, geometry=..., crs=...)")
        if not isinstance(frame, gpd.GeoDataFrame):
            raise TypeError(f"match's {what} must be a geopandas.GeoDataFrame, got {type(frame).__name__}; "
                            f"give {fix}")


def check_permit_columns(permits: gpd.GeoDataFrame) -> None:
    """:class:`PermitSchemaError` naming the columns of :data:`PERMIT_COLUMNS` ``permits`` lacks (a
    register made in memory, not read with ``load_register``), instead of a ``KeyError`` from pandas."""
    missing = [c for c in PERMIT_COLUMNS if c not in permits.columns]
    if missing:
        raise PermitSchemaError(
            f"the permit register lacks the column(s) {', '.join(missing)} (its columns: "
            f"{', '.join(map(str, permits.columns))}); read it with load_register(), which checks it against "
            "permits/schema.json and maps other names (column_map=), or for a GeoDataFrame in memory give "
            "validate_register(map_columns(gdf, column_map)).permits (changedetect.permits)")


def working_crs(footprints: gpd.GeoDataFrame) -> CRS:
    """Where ``footprints`` (with a CRS) are measured in m²: their own CRS when projected in metres of
    true scale here (within :data:`MAX_AREA_DISTORTION`), else their UTM zone (geographic, in feet, or
    metres of a distorted scale: Web Mercator draws 1/cos²(lat) times the ground's area); their own
    when there is none to pick (no footprint, a quiet scene in EPSG:4326: nothing is measured)."""
    own = CRS.from_user_input(footprints.crs)
    if in_metres(own) and abs(_areal_scale(own, footprints) - 1.0) <= MAX_AREA_DISTORTION:
        return own
    if np.isfinite(footprints.total_bounds).all():
        return CRS.from_user_input(footprints.estimate_utm_crs())
    return own


#: how far from the footprints a layer (a register, a parcel layer) must hold a feature not to be called
#: "elsewhere" (m)
NEAR_M = 1000.0


def nothing_near(bounds: Any, crs: CRS, layer: gpd.GeoDataFrame) -> bool:
    """Whether ``layer`` holds nothing within :data:`NEAR_M` of ``bounds`` (x0, y0, x1, y1 in ``crs``, a
    CRS in metres: the footprints'): a layer in the wrong place (a wrongly declared CRS, another
    district), which :func:`changedetect.match.match` and :func:`changedetect.parcels.with_parcels`
    warn of."""
    x0, y0, x1, y1 = bounds
    near = NEAR_M / metres_per_unit(crs)
    area = gpd.GeoSeries([shapely.box(x0 - near, y0 - near, x1 + near, y1 + near)], crs=crs).to_crs(layer.crs)
    return not len(layer.sindex.query(area.iloc[0], predicate="intersects"))


def check_register_datum(permits: gpd.GeoDataFrame, crs: Any) -> None:
    """Refuse (:class:`GeoreferenceError`) a register on a datum PROJ cannot take to ``crs``'s (the
    footprints' CRS): what :func:`harmonise_crs` checks, for ``run`` to say it before any work."""
    name = f"permit register '{permits.attrs['register']}'" if permits.attrs.get("register") else "the permit register"
    check_datum(permits, crs, name=name, items="permits", consequence=" and the buildings found unlicensed",
                subject="register", fix="--permits-crs EPSG:9210 (VN-2000 / TM-3 105-45; crs= in Python, crs in "
                                        "the [permits] table of --config)")


def check_datum(frame: gpd.GeoDataFrame, crs: Any, *, name: str, items: str, consequence: str, subject: str,
                fix: str) -> None:
    """Refuse (:class:`GeoreferenceError`) a vector layer (``name``: how the message names it; ``items``:
    what its rows are) on a datum PROJ cannot take to ``crs``'s (the footprints'): PROJ would place it
    as if on their datum, hundreds of metres off; ``fix``: how to give its real CRS."""
    if not len(frame) or frame.crs is None or crs is None or not datum_shift_unknown(frame.crs, crs):
        return
    own, theirs = CRS.from_user_input(frame.crs), CRS.from_user_input(crs)
    raise GeoreferenceError(
        f"{name} is in the CRS '{own.name}' on the datum '{datum_name(own)}', which has no transformation PROJ "
        f"knows to the footprints' '{theirs.name}'{towgs84_lost_hint(own)}: its {items} would be placed as if on "
        f"the datum '{datum_name(theirs)}' (VN-2000 read so lands about 230 m off){consequence}. Give the "
        f"{subject}'s real CRS, which replaces one without a datum shift: for Ho Chi Minh City {fix}, or a PROJ "
        "string with its +towgs84")


def _dates(values: pd.Series) -> pd.Series:
    """datetime64 days (NaT where unknown) from dates, timestamps or ISO strings."""
    s = pd.Series(values)
    if pd.api.types.is_datetime64_any_dtype(s):
        return s.dt.tz_localize(None).dt.normalize() if getattr(s.dt, "tz", None) else s.dt.normalize()
    try:
        with warnings.catch_warnings():  # a text timestamp with a UTC offset: numpy would take it to UTC
            warnings.simplefilter("error", UserWarning)
            days = np.array(s.to_numpy(dtype=object), dtype="datetime64[D]")
    except (TypeError, ValueError, UserWarning):
        try:
            parsed = pd.to_datetime(s.astype(object), errors="coerce")
        except (TypeError, ValueError):  # offsets that differ from row to row
            parsed = None
        if parsed is not None and pd.api.types.is_datetime64_any_dtype(parsed):
            return (parsed.dt.tz_localize(None) if parsed.dt.tz is not None else parsed).dt.normalize()
        return pd.Series([_local_day(v) for v in s.tolist()], index=s.index, dtype="datetime64[ns]")
    return pd.Series(days.astype("datetime64[ns]"), index=s.index)


def _local_day(value: object) -> pd.Timestamp:
    """The day of a date, timestamp or ISO text; a timestamp with a UTC offset is its local day there
    (as a timezone-aware column is), NaT where unknown or unreadable."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return pd.NaT
    try:
        stamp = pd.Timestamp(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return pd.NaT
    if stamp is pd.NaT:
        return pd.NaT
    return (stamp.tz_localize(None) if stamp.tzinfo is not None else stamp).normalize()


def _change_kind(value: object) -> str:
    text = str(value or "").lower()
    if text.startswith("demol"):
        return "demolished"
    if text.startswith(("alter", "extend", "extens", "modif")):
        return "altered"
    return "new"


def candidate_pairs(
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
    measured in :func:`changedetect._match_rules.overlap_evidence`; pairs that only touch drop out there.
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


def in_metres(crs: CRS) -> bool:
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


__all__ = ["MAX_AREA_DISTORTION", "NEAR_M", "PERMIT_COLUMNS", "candidate_pairs", "check_datum", "check_frames", "check_permit_columns", "check_register_datum", "harmonise_crs", "in_metres",
           "nothing_near", "working_crs"]
