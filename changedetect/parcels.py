"""The cadastral parcel layer (thửa đất): loading it, and the parcel each violation stands on.

Vietnamese urban management works per parcel: a map sheet (tờ bản đồ số), a parcel number on it
(thửa đất số), an address and a land use.  A violation's own position (lat/lon) is not enough for an
inspector to find it on the ground, and an ``unlicensed`` building has no permit to give it an
address: :func:`with_parcels` gives each footprint the parcel holding the largest share of it, and
how many parcels it crosses (a building across a lot boundary is evidence).

The layer is read as the permit register is (:func:`changedetect.io.registers.read_register`:
GeoPackage, Shapefile, GeoJSON, GeoParquet, CSV with WKT, or a ``postgresql://`` URL; the same
encodings, CRS handling and layer choice), its columns mapped as the register's are
(:func:`changedetect.permits.map_columns` with :data:`ALIASES`), and every row checked: one
:class:`~changedetect.errors.PermitSchemaError` names each bad row and column; invalid polygons are
repaired with a :class:`~changedetect.errors.PermitRowWarning` naming the row.

Example
-------
>>> from changedetect.parcels import load_parcels, with_parcels
>>> parcels = load_parcels("thua_dat.gpkg")  # doctest: +SKIP
>>> violations = with_parcels(violations, parcels)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from changedetect import _permit_checks as chk
from changedetect.errors import GeoreferenceError, PermitRowWarning, PermitSchemaError

log = logging.getLogger(__name__)

#: the layer's columns (``parcel_id`` required, or ``sheet`` and ``parcel_no`` to make it)
COLUMNS = ("parcel_id", "address", "sheet", "parcel_no", "land_use")
#: other names of them (compared in lower case without diacritics: 'Số thửa' is ``so_thua``; a Shapefile's
#: cut of one at 10 bytes, 'Số thử', is the one alias it begins: :func:`changedetect._permit_columns._alias`),
#: as :data:`changedetect._permit_schema.DEFAULT_COLUMN_MAP`
ALIASES: dict[str, str] = {
    "ma_thua": "parcel_id", "ma_thua_dat": "parcel_id", "id_thua": "parcel_id", "parcelid": "parcel_id",
    "parcel_code": "parcel_id", "ma_dinh_danh_thua": "parcel_id",
    "so_to": "sheet", "to_ban_do": "sheet", "so_to_ban_do": "sheet", "to_ban_do_so": "sheet", "so_hieu_to": "sheet",
    "so_hieu_to_ban_do": "sheet", "to_so": "sheet", "map_sheet": "sheet", "sheet_no": "sheet",
    "so_thua": "parcel_no", "thua": "parcel_no", "thua_so": "parcel_no", "so_thua_dat": "parcel_no",
    "thua_dat_so": "parcel_no", "so_thu_tu_thua": "parcel_no", "parcel_number": "parcel_no", "lot_no": "parcel_no",
    "dia_chi": "address", "dia_chi_thua": "address", "addr": "address",
    "loai_dat": "land_use", "ma_loai_dat": "land_use", "muc_dich_su_dung": "land_use", "mdsd": "land_use",
    "landuse": "land_use", "geom": "geometry", "the_geom": "geometry", "wkb_geometry": "geometry",
    "shape": "geometry",
    # the national cadastral data standard's names (Thông tư 75/2015/TT-BTNMT: soHieuToBanDo, soThuTuThua,
    # diaChi, ...) and their run-together forms, lower-cased ('SoThua' is ``sothua``)
    "mathua": "parcel_id", "madinhdanh": "parcel_id", "sohieutobando": "sheet", "soto": "sheet",
    "tobando": "sheet", "sothututhua": "parcel_no", "sothua": "parcel_no", "diachi": "address",
    "loaidat": "land_use", "maloaidat": "land_use", "mucdichsudung": "land_use",
}
#: a parcel holding at least this share of a footprint, and :data:`CROSS_M2`, of it shrunk by the outline's
#: positional tolerance (``edge_tolerance_m``), counts as crossed: a footprint traced from pixels spills
#: about a pixel, and a blob with a bit of shadow more, over its lot's edge (on the sample city, where no
#: building stands across lots, 5 % and 2 m² flagged 11 of the 42 violations, 6 with 4 m²; 10 % and 4 m²
#: after one pixel, none)
CROSS_SHARE = 0.10
CROSS_M2 = 4.0
#: how many problems the error lists before "... and N more"
MAX_LISTED = 20
WHAT = "parcel layer"


def load_parcels(source: str | os.PathLike[str], *, layer: str | None = None, table: str | None = None,
                 query: str | None = None, crs: Any = None,
                 column_map: Mapping[str, str] | None = None) -> gpd.GeoDataFrame:
    """Read, map and check a cadastral parcel layer.

    Parameters
    ----------
    source
        A file (``.gpkg``, ``.shp``, ``.geojson``, ``.parquet``, ``.csv`` with a WKT column) or a
        ``postgresql://user@host:port/db`` URL (with ``table`` or ``query``).
    layer
        Layer of a multi-layer file.
    table, query
        For PostGIS: a table (``schema.table``) or one ``SELECT``.
    crs
        CRS of a layer that declares none (a CSV's WKT, SRID 0), or that replaces one PROJ cannot
        place (a .prj that lost VN-2000's ``+towgs84``), e.g. ``"EPSG:9210"``.
    column_map
        Layer column -> one of :data:`COLUMNS`, for names :data:`ALIASES` does not know.

    Returns
    -------
    geopandas.GeoDataFrame
        ``parcel_id`` (text; ``"<sheet>/<parcel_no>"`` when the layer has no id), ``address``,
        ``sheet``, ``parcel_no``, ``land_use`` (text or None) and polygonal ``geometry``, in the
        layer's CRS; ``attrs["parcels"]`` is its name for messages.

    Raises
    ------
    PermitSchemaError
        No CRS, no ``parcel_id`` (nor ``sheet`` and ``parcel_no``), or bad rows: one message
        naming each row and column.
    RegisterReadError
        The file is missing, unreadable or of an unknown format.

    Examples
    --------
    >>> parcels = load_parcels("thua_dat.csv", crs="EPSG:9210", column_map={"MaTD": "parcel_id"})  # doctest: +SKIP
    >>> parcels[["parcel_id", "sheet", "parcel_no", "address"]].head()  # doctest: +SKIP
    """
    from changedetect.io.registers import read_register
    from changedetect.permits import map_columns

    raw, name = read_register(source, layer=layer, table=table, query=query, crs=crs, what=WHAT)
    absent = [c for c in (column_map or {}) if c not in raw.columns]
    if absent:  # map_columns would say so in the register's words (--column-map)
        raise PermitSchemaError(
            f"{WHAT} '{name}': the column map names {', '.join(repr(a) for a in absent)}, which the layer does not "
            f"have (its columns: {', '.join(map(str, raw.columns))}); map one of its columns (column_map in the "
            "[parcels] table of --config, column_map= in Python)")
    unknown = {k: v for k, v in (column_map or {}).items() if v not in (*COLUMNS, "geometry")}
    if unknown:  # else the column would be read under a name nothing uses, without a word
        raise PermitSchemaError(
            f"{WHAT} '{name}': the column map maps {', '.join(f'{k!r} onto {v!r}' for k, v in unknown.items())}; "
            f"a parcel layer's columns are {', '.join(COLUMNS)} (column_map in the [parcels] table of --config, "
            "column_map= in Python)")
    mapped = map_columns(raw, column_map, name=f"{WHAT} '{name}'", aliases=ALIASES)
    parcels, repairs = _validated(mapped, name)
    if repairs:
        warnings.warn(PermitRowWarning(f"{WHAT} '{name}': repaired {len(repairs)} row(s): "
                                       + "; ".join(repairs[:MAX_LISTED])), stacklevel=2)
    if not len(parcels):  # a wrong layer, table or query: every violation would silently get no parcel
        warnings.warn(UserWarning(f"{WHAT} '{name}' has no parcels: no violation gets one; check its layer, "
                                  "table or query"), stacklevel=2)
    parcels.attrs["parcels"] = name
    return parcels


def _validated(gdf: gpd.GeoDataFrame, name: str) -> tuple[gpd.GeoDataFrame, list[str]]:
    """The layer's rows as :data:`COLUMNS` and geometry, and the repairs made; or one error."""
    where = f"{WHAT} '{name}'"
    has_id = "parcel_id" in gdf.columns
    if not has_id and not {"sheet", "parcel_no"} <= set(gdf.columns):
        raise PermitSchemaError(
            f"{where}: no parcel_id column (nor sheet and parcel_no to make it); found "
            f"{', '.join(map(str, gdf.columns))}. Rename a column, or map it (column_map= in Python, column_map in "
            "the [parcels] table of --config, e.g. column_map = {MaTD = \"parcel_id\"})")
    if gdf.crs is None and len(gdf):
        raise PermitSchemaError(
            f"{where} has no CRS; declare it in the file (a .prj beside a Shapefile or CSV, an 'SRID=9210;' prefix "
            "on a CSV's WKT) or give it (crs= in Python, crs in the [parcels] table of --config), e.g. 'EPSG:9210' "
            "for VN-2000 / TM-3 105-45")
    problems: list[str] = [f"row {i + 1}: {why}" for i, why in sorted(gdf.attrs.get("line_errors", {}).items())]
    empty: list[str | None] = [None] * len(gdf)
    text = {c: _texts(gdf[c], c, problems) if c in gdf.columns else list(empty) for c in COLUMNS}
    for i, (pid, sheet, no) in enumerate(zip(text["parcel_id"], text["sheet"], text["parcel_no"], strict=True)):
        if pid is None and sheet is not None and no is not None:  # no id: '<sheet>/<parcel_no>'
            text["parcel_id"][i] = f"{sheet}/{no}"
    for i in map(int, np.flatnonzero(pd.isna(pd.Series(text["parcel_id"], dtype=object)).to_numpy())):
        need = "parcel_id" if has_id else "sheet and parcel_no (the parcel_id is '<sheet>/<parcel_no>')"
        problems.append(f"row {i + 1}, parcel_id: missing {need}")
    ids = pd.Series(text["parcel_id"], dtype=object)
    first = {pid: i for i, pid in reversed(list(enumerate(ids))) if pid is not None}
    for i in map(int, np.flatnonzero((ids.duplicated() & ids.notna()).to_numpy())):
        problems.append(f"row {i + 1}, parcel_id: duplicated parcel_id {chk.shown(ids[i])} (first on row "
                        f"{first[ids[i]] + 1}): a parcel has one row; merge its pieces into one MultiPolygon")
    geoms, repairs = _geometries(gdf, problems)
    if problems:
        problems.sort(key=lambda text: int(text.split()[1].rstrip(",:")))  # by row (each starts 'row N')
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise PermitSchemaError(f"{where}: {len(problems)} problem(s)\n  " + "\n  ".join(problems[:MAX_LISTED])
                                + more + "\nFix these rows in the parcel layer (or leave --parcels out)")
    frame = gpd.GeoDataFrame({c: pd.Series(text[c], dtype=object) for c in COLUMNS},
                             geometry=gpd.GeoSeries(geoms, crs=gdf.crs), crs=gdf.crs)
    return frame, repairs


def _texts(values: pd.Series, column: str, problems: list[str]) -> list[str | None]:
    """A column as stripped text (a whole number without its '.0'), None where missing."""
    out: list[str | None] = []
    for i, value in enumerate(values.tolist()):
        if isinstance(value, float | np.floating) and np.isfinite(value) and float(value).is_integer():
            value = int(value)  # a sheet or parcel number read as a float (a DBF's numeric field)
        text, err = chk.check_text(value)
        if err:
            problems.append(f"row {i + 1}, {column}: {err}")
        out.append(text.strip() if text is not None and text.strip() else None)
    return out


def _geometries(gdf: gpd.GeoDataFrame, problems: list[str]) -> tuple[np.ndarray, list[str]]:
    """The polygons, invalid ones repaired (:func:`changedetect._permit_checks.check_geometry`)."""
    geoms = np.asarray(gdf.geometry.values, dtype=object).copy()
    errors: Mapping[int, str] = gdf.attrs.get("geometry_errors", {})
    polygonal = np.isin(shapely.get_type_id(geoms), (3, 6))  # Polygon, MultiPolygon (missing: -1)
    clean = polygonal & shapely.is_valid(geoms) & ~shapely.is_empty(geoms)
    repairs: list[str] = []
    for i in map(int, np.flatnonzero(~clean)):
        if i in errors:
            problems.append(f"row {i + 1}, geometry: {errors[i]}")
            continue
        geom, err, note = chk.check_geometry(geoms[i])
        if err is None and geom is not None and geom.geom_type.endswith("Point"):
            err = f"geometry is a {geom.geom_type}; a parcel is a Polygon or MultiPolygon"
        if err:
            problems.append(f"row {i + 1}, geometry: {err}")
        else:
            geoms[i] = geom
            kind = getattr(gdf.geometry.iloc[i], "geom_type", "geometry")
            repairs.append(f"row {i + 1}: {note or f'a {kind}: only its polygons kept'}")
    return geoms, repairs


def check_parcels_datum(parcels: gpd.GeoDataFrame, crs: Any) -> None:
    """Refuse (:class:`GeoreferenceError`) a parcel layer on a datum PROJ cannot take to ``crs``'s (the
    footprints'): its parcels would be placed hundreds of metres off, as
    :func:`changedetect._match_inputs.check_register_datum` refuses such a permit register."""
    from changedetect._match_inputs import check_datum

    name = f"{WHAT} '{parcels.attrs['parcels']}'" if parcels.attrs.get("parcels") else f"the {WHAT}"
    check_datum(parcels, crs, name=name, items="parcels", consequence="", subject="layer",
                fix='crs = "EPSG:9210" in the [parcels] table of --config (crs= in Python)')


def with_parcels(violations: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame, *,
                 edge_tolerance_m: float = 0.0) -> gpd.GeoDataFrame:
    """``violations`` (or footprints) with the parcel each stands on.

    Parameters
    ----------
    violations
        Footprints or violations, in any CRS (areas are measured in metres of the ground where
        :func:`changedetect.match.match` measures them: their own CRS when projected in metres of true
        scale here, else their UTM zone).
    parcels
        A layer as :func:`load_parcels` gives it, in any CRS PROJ can take to theirs (datum shift
        included; one it cannot place is refused, :func:`check_parcels_datum`).
    edge_tolerance_m
        The outlines' positional tolerance (metres): a crossing is counted on the footprint shrunk by
        it (``changedetect run`` uses the pixel size, as for ``exceeds_permit``); 0: as drawn.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy with, before ``geometry``: ``parcel_id`` and ``parcel_address`` of the parcel holding
        the largest share of the footprint, ``parcel_sheet`` / ``parcel_no`` / ``parcel_land_use``
        when the layer gives them, ``parcel_share`` (that share, 0-1) and ``parcels_crossed`` (how
        many parcels hold at least 10 % and 4 m² of it, shrunk by ``edge_tolerance_m``).  On no parcel: ``""``, 0.0 and 0.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> fp = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 10, 10)], crs="EPSG:32648")
    >>> lots = gpd.GeoDataFrame({"parcel_id": ["12/345", "12/346"]},
    ...                         geometry=[shapely.box(-5, -5, 7, 15), shapely.box(7, -5, 20, 15)], crs="EPSG:32648")
    >>> with_parcels(fp, lots)[["parcel_id", "parcel_share", "parcels_crossed"]].values.tolist()
    [['12/345', 0.7, 2]]
    """
    from changedetect._parcel_overlay import overlay

    for what, frame, fix in (("violations", violations, "match()'s result"),
                             ("parcels", parcels, "load_parcels(path), which reads and checks a parcel layer")):
        if not isinstance(frame, gpd.GeoDataFrame):
            raise TypeError(f"with_parcels' {what} must be a geopandas.GeoDataFrame, got {type(frame).__name__}; "
                            f"give {fix}")
    if violations.crs is None and len(violations):
        raise GeoreferenceError("the footprints have no CRS; set it with .set_crs() before adding parcels")
    if parcels.crs is None and len(parcels):
        raise PermitSchemaError(f"the {WHAT} has no CRS; load it with load_parcels(..., crs=...)")
    if "parcel_id" not in parcels.columns:  # else every footprint would get the id '' without a word
        raise PermitSchemaError(
            f"the {WHAT} has no parcel_id column (its columns: {', '.join(map(str, parcels.columns))}); load it "
            "with load_parcels(), which maps the usual names (column_map= for others)")
    check_parcels_datum(parcels, violations.crs)
    best, share, crossed = overlay(violations, parcels, edge_tolerance_m)
    if len(parcels) and len(best) and (best < 0).all():
        _warn_if_far(violations, parcels)
    out = violations.drop(columns=[c for c in _OUTPUT if c in violations.columns])
    at = list(out.columns).index(out.geometry.name) if out.geometry.name in out.columns else len(out.columns)

    def pick(column: str) -> list[str]:
        values = parcels[column].to_numpy(dtype=object) if column in parcels else np.full(len(parcels), None)
        return ["" if b < 0 or chk.isnull(values[b]) else str(values[b]) for b in best]

    given = [("parcel_sheet", "sheet"), ("parcel_no", "parcel_no"), ("parcel_land_use", "land_use")]
    new = {"parcel_id": pick("parcel_id"), "parcel_address": pick("address"),
           **{dst: pick(src) for dst, src in given if src in parcels and parcels[src].notna().any()},
           "parcel_share": np.round(share, 3), "parcels_crossed": crossed.astype(np.int64)}
    for column, values in new.items():
        out.insert(at, column, values)
        at += 1
    return out


def _warn_if_far(footprints: gpd.GeoDataFrame, parcels: gpd.GeoDataFrame) -> None:
    """A warning when no parcel lies within :data:`~changedetect._match_inputs.NEAR_M` of the footprints
    (none of which got one): a layer in the wrong place (a wrongly declared CRS, another district), as
    :func:`changedetect.match.match` warns of such a register."""
    from changedetect._match_inputs import NEAR_M, nothing_near, working_crs

    work = working_crs(footprints)
    x0, y0, x1, y1 = footprints.to_crs(work).total_bounds
    if not np.isfinite([x0, y0, x1, y1]).all() or not nothing_near((x0, y0, x1, y1), work, parcels):
        return
    name = f"{WHAT} '{parcels.attrs['parcels']}'" if parcels.attrs.get("parcels") else f"the {WHAT}"
    lx0, ly0, lx1, ly1 = parcels.total_bounds
    log.warning("no parcel of %s lies within %.0f m of the footprints (%s in %s; the layer: %s in %s): no "
                "violation gets a parcel. Check that the layer covers this area and that its CRS is declared "
                "right (crs in the [parcels] table of --config, crs= in Python)", name, NEAR_M,
                ", ".join(f"{v:.0f}" for v in (x0, y0, x1, y1)), work.to_string(),
                ", ".join(f"{v:.0f}" for v in (lx0, ly0, lx1, ly1)), parcels.crs.to_string())


#: the columns :func:`with_parcels` adds (replaced when already there: parcels added twice)
_OUTPUT = ("parcel_id", "parcel_address", "parcel_sheet", "parcel_no", "parcel_land_use", "parcel_share",
           "parcels_crossed")


def parcel_counts(violations: gpd.GeoDataFrame) -> dict[str, int]:
    """Of ``violations`` (:func:`with_parcels`'s; ``permitted`` rows left out): how many there are,
    stand on a parcel, across parcels (``parcels_crossed`` 2 or more), and have an address only from
    their parcel (no permit gave one: an unlicensed building's), for ``run``'s summary and run.json."""
    listed = violations[violations["status"] != "permitted"] if "status" in violations else violations
    if "parcel_id" not in listed:
        return {"violations": len(listed), "on_a_parcel": 0, "across_parcels": 0, "address_from_parcel": 0}
    own = listed["address"].fillna("").astype(str).eq("") if "address" in listed else pd.Series(True, listed.index)
    return {"violations": len(listed), "on_a_parcel": int((listed["parcel_id"] != "").sum()),
            "across_parcels": int((listed["parcels_crossed"] >= 2).sum()),
            "address_from_parcel": int((own & listed["parcel_address"].fillna("").astype(str).ne("")).sum())}


__all__ = ["ALIASES", "COLUMNS", "CROSS_M2", "CROSS_SHARE", "check_parcels_datum", "load_parcels", "parcel_counts", "with_parcels"]
