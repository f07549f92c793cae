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
   for the footprint.  So it does for a polygon permit drawn as its lot
   rather than as the building (an outline more than ``lot_ratio``, 1.5,
   times its permitted area): it covers what it overlaps, and the building
   is also compared with its permitted area (:mod:`changedetect._match_lots`).
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
       it changed after the fitting permit(s) expired (``valid_until``): its
       ``before_date`` (the last image without it; ``run`` writes it) is on or
       after ``valid_until``, or without one its ``first_seen`` is after it.  A
       permit that ran out between the two may have covered the work: it counts;
   ``exceeds_permit``
       the built area outside the valid permits' footprints (under point
       permits: the area over their permitted area; under a permit drawn as
       its lot: the larger of that and the area outside the footprint's other
       outlines less the permitted area of its lots and points) exceeds both
       ``tolerance_m2`` and ``tolerance_pct`` % of the permitted area;
   ``permitted``
       otherwise.

   Without a first-seen date the two date checks are skipped.
5. **Frame**: one row per footprint with the evidence (``permit_ids``,
   ``overlap_ratio``, ``excess_area_m2``, ``reason``) and a stable
   ``violation_id`` (a hash of ``footprint_id`` and status), in the footprints' CRS.

Steps 1-2 live in :mod:`changedetect._match_inputs`, 3-4 in :mod:`changedetect._match_rules`
(the reasons in :mod:`changedetect._match_reasons`), 5 in :mod:`changedetect._match_frame`.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely
from pyproj import CRS

from changedetect._config_toml import stage_config
from changedetect._match_frame import frame as _frame
from changedetect._match_inputs import MAX_AREA_DISTORTION as MAX_AREA_DISTORTION  # re-exported
from changedetect._match_inputs import NEAR_M
from changedetect._match_inputs import candidate_pairs as _candidate_pairs
from changedetect._match_inputs import harmonise_crs as _harmonise_crs
from changedetect._match_inputs import in_metres as _in_metres
from changedetect._match_inputs import nothing_near as _nothing_near
from changedetect._match_lots import warning as _lots_warning
from changedetect._match_rules import Footprints
from changedetect._match_rules import classify as _classify
from changedetect._match_rules import overlap_evidence as _overlap_evidence
from changedetect._match_truth import agreement
from changedetect.errors import SAID_IN_RESULT, ConfigError

log = logging.getLogger(__name__)

#: whether the caller says the warnings :func:`match` returns (:func:`warnings_carried`)
_CARRIED: contextvars.ContextVar[bool] = contextvars.ContextVar("changedetect_match_carried", default=False)


@contextlib.contextmanager
def warnings_carried() -> Iterator[None]:
    """Within it, the caller says what :func:`match` returns in ``attrs["warnings"]`` (``run``: run.json and
    its summary; :func:`match_to_file`: the ``match`` command's ``Warning:`` lines), so their log records are
    marked ``extra=SAID_IN_RESULT``, which a command printing that result leaves out.  Outside it (the
    nightly's re-match of earlier nights' violations, whose ``attrs`` no one reads) they are plain log lines."""
    token = _CARRIED.set(True)
    try:
        yield
    finally:
        _CARRIED.reset(token)


def _extra() -> dict[str, bool] | None:
    return SAID_IN_RESULT if _CARRIED.get() else None

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
    lot_ratio
        A polygon permit whose outline is more than this many times its ``permitted_area_m2``
        (and larger than it by more than ``tolerance_m2``) is read as a lot (thửa đất, a
        register digitised from the cadastre), not the permitted building's outline: a
        building on it is judged on its area against the permitted area, as under a point
        permit, and on the lot's outline as before (the larger excess counts).  1.5: a
        building's own outline is its permitted area within drawing error (the sample
        register: 0.997-1.002; half a metre too wide on every side of a 6 x 10 m house:
        1.28), while a lot of which at most two thirds may be built is 1.5 or more.
        ``None``: every polygon permit is judged on its outline alone.
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
    lot_ratio: float | None = 1.5
    working_crs: str | None = None

    def __post_init__(self) -> None:
        if self.tolerance_m2 < 0 or self.tolerance_pct < 0 or (self.edge_tolerance_m or 0.0) < 0:
            raise ValueError("tolerances must be >= 0")
        if not 0 < self.min_overlap_ratio <= 1:
            raise ValueError(f"min_overlap_ratio must be in (0, 1], got {self.min_overlap_ratio}")
        if self.lot_ratio is not None and not 1 <= self.lot_ratio < float("inf"):
            raise ValueError(f"lot_ratio must be at least 1 (None, false in TOML, turns the rule off), got {self.lot_ratio}")
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
    footprints: gpd.GeoDataFrame, permits: gpd.GeoDataFrame, *, config: MatchConfig | Mapping[str, Any] = MatchConfig()
) -> gpd.GeoDataFrame:
    """One status per footprint, with the evidence.

    Parameters
    ----------
    footprints
        As :func:`changedetect.vectorize.vectorize` gives them: ``footprint_id``,
        ``geometry`` and, when known, ``first_seen``, ``before_date`` (the last date
        without it, as ``run`` writes it), ``change_type``
        (``new`` / ``altered`` / ``demolished``; default ``new``), ``prob_mean``.
    permits
        A validated register (:func:`changedetect.permits.load_register`), any CRS.
    config
        Tolerances and the working CRS: a :class:`MatchConfig`, or a dict of its fields as the TOML
        file's ``[match]`` table has them (``{"edge_tolerance_m": 0.5}``).

    Returns
    -------
    geopandas.GeoDataFrame
        :data:`COLUMNS` + the footprints' other columns + ``geometry``, in the
        footprints' CRS, in the footprints' order and with their index; ``attrs["warnings"]``: what
        was also logged as a warning about the result (in :func:`warnings_carried`, marked for a
        command that prints them to leave the log line out), each ``{"kind", "message"}`` (``register_far``: no permit near
        the footprints; ``register_empty``; ``lot_outlines``: permits covering a
        footprint are drawn as lots, judged on their permitted area, with ``permits``, how many, and
        ``example``, an id), ``[]`` when none.

    Notes
    -----
    ``exceeds_permit`` is judged on outlines: the area of a footprint outside its valid permits'
    outlines.  A register whose polygons are the lots (thửa đất, digitised from the cadastre) rather
    than the permitted buildings would then let any building on its lot pass; a permit whose outline
    is more than ``config.lot_ratio`` times its ``permitted_area_m2`` (and larger than it by more than
    ``tolerance_m2``) is read as such a lot, and the building is also compared with its permitted
    area, as under a point permit: what lies outside the footprint's other valid outlines, less the
    permitted area of its lot (and point) permits.  The larger excess counts, so a building over its
    lot line is still judged on the outline; the reason names the lot permit and the ratio.
    """
    config = stage_config(config, MatchConfig, call="match", table="match")
    fp, pm, crs = _harmonise_crs(footprints, permits, config)
    grow = (config.edge_tolerance_m or 0.0) if config.attach_to_extensions else 0.0
    fi, pi, pm_candidates = _candidate_pairs(fp, pm, crs, grow)
    said: list[dict[str, str]] = []  # the output's attrs["warnings"], logged too: a command says them once
    if len(fp) and len(pm) and not len(fi):
        said += _warn_if_far(fp, pm, crs)
    elif len(fp) and not len(pm):
        said.append({"kind": "register_empty", "message": "the permit register is empty: every footprint is "
                     "unlicensed. Check the register's source (the file, --layer, --query and its --param values)"})
        log.warning("%s", said[-1]["message"], extra=_extra())
    pm = pm_candidates
    ev = _overlap_evidence(fp, pm, fi, pi, config)
    status, reason = _classify(fp, pm, ev, config)
    for record in _lots_warning(pm, ev, config):  # a register of lots, not of the permitted buildings
        log.warning("%s", record["message"], extra=_extra())
        said.append(record)
    out = _frame(footprints, ev, status, reason)
    out.attrs["warnings"] = said
    log.info("matched %d footprints against %d permits in %s: %s", len(out), len(permits), crs.name,
             dict(out["status"].value_counts()))
    return out


def _warn_if_far(fp: Footprints, pm: gpd.GeoDataFrame, crs: CRS) -> list[dict[str, str]]:
    """A warning when no permit lies within :data:`~changedetect._match_inputs.NEAR_M` of the footprints:
    every footprint is then ``unlicensed``, which more often means a register in the wrong place (a
    wrongly declared CRS, another district) than a district without a single permit.  Returns it as a
    record (``kind`` ``register_far``, ``message``, ``near_m``), or ``[]``."""
    bounds = shapely.total_bounds(fp.geometry)
    if not _nothing_near(bounds, crs, pm):
        return []
    where = ", ".join(f"{v:.0f}" for v in bounds)
    message = (f"no permit of the register lies within {NEAR_M:.0f} m of the footprints ({where} in "
               f"{crs.to_string()}): every footprint is unlicensed. Check that the register covers this area and "
               "that its CRS is declared right (a wrong CRS puts it kilometres away)")
    log.warning("%s", message, extra=_extra())
    return [{"kind": "register_far", "message": message, "near_m": f"{NEAR_M:.0f}"}]


def match_to_file(
    footprints_path: str | os.PathLike[str],
    register: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    config: MatchConfig | Mapping[str, Any] = MatchConfig(),
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
    config = stage_config(config, MatchConfig, call="match_to_file", table="match")
    from changedetect.errors import OutputExistsError
    from changedetect.io.atomic import not_an_input
    from changedetect.io.registers import read_register
    from changedetect.io.vectors import write_vector
    from changedetect.permits import load_register

    inputs = {"footprints file": footprints_path, "permit register": register}
    for name, target in (("output", out), ("rejects file", rejects_path)):
        not_an_input(target, inputs, name=name, becomes="the violation list", where="--out, --rejects")
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

    with warnings_carried():  # returned in the violations' attrs
        matched = match(footprints, permits, config=config)
    violations = with_addresses(matched, permits)  # as `run` writes them
    violations.attrs["warnings"] = matched.attrs.get("warnings", [])  # match_cmd says them, -q or not
    from changedetect.report import violations_qml

    write_vector(violations, out, overwrite=overwrite, qgis_style=violations_qml(), empty_geometry_type="Polygon")
    return violations


__all__ = ["COLUMNS", "STATUSES", "MatchConfig", "agreement", "match", "match_to_file"]
