"""Write footprints and violations as GeoPackage, GeoJSON, CSV or GeoParquet.

The format is chosen by the file extension:

``.gpkg``
    GeoPackage in the frame's own CRS (one layer, named after the file unless
    ``layer`` is given).  Dates are written as ``DATE`` fields, timestamps as
    ``DATETIME``; lists as comma-joined text; GeoPackage 1.2, which older QGIS
    releases read too.  Opens as is in QGIS; with ``qgis_style`` (what the violation
    lists get) it opens coloured by status (:mod:`changedetect.io.qgis_style`).
``.geojson`` / ``.json``
    GeoJSON in EPSG:4326, longitude first, as RFC 7946 requires (the frame is
    reprojected; coordinates keep 7 decimals, about 1 cm).
``.csv``
    One row per feature: the attributes, ``wkt`` (the geometry as WKT in
    EPSG:4326) and ``lon`` / ``lat`` (the centroid, taken in the frame's CRS and
    then reprojected); UTF-8 with a byte-order mark, so that Excel shows accented
    (Vietnamese) text right, and CRLF line ends (RFC 4180).  A text a spreadsheet would run as a
    formula (``=``, ``+``, ``-``, ``@``, tab or CR first: OWASP's CSV injection) gets a leading
    ``'`` and is shown as text; the other formats keep it as it is.  Beside it, as GDAL's own CSV writer makes them, ``.prj``
    (EPSG:4326) and ``.csvt`` (the field types): GDAL, and QGIS when the file is dragged in,
    read the layer in WGS 84 with numbers and dates typed.  In QGIS's *Add Delimited Text
    Layer*: geometry from the ``wkt`` field, CRS EPSG:4326.
``.parquet`` / ``.geoparquet``
    GeoParquet (1.x metadata, CRS as PROJJSON) in the frame's own CRS.

Every file is written to a temporary file in the same folder and renamed onto
the target, so a reader never sees a half-written file and a failed write
leaves nothing behind.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa

from changedetect.io.atomic import atomic_path

log = logging.getLogger(__name__)

#: extension -> format name
FORMATS: dict[str, str] = {
    ".gpkg": "gpkg",
    ".geojson": "geojson",
    ".json": "geojson",
    ".csv": "csv",
    ".parquet": "parquet",
    ".geoparquet": "parquet",
}


def write_vector(
    gdf: gpd.GeoDataFrame,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    layer: str | None = None,
    qgis_style: str | None = None,
    empty_geometry_type: str | None = None,
) -> Path:
    """Write ``gdf`` atomically to ``path`` in the format its extension names.

    Parameters
    ----------
    gdf
        Features to write; must have a CRS (except for an empty frame).
    path
        Target file: ``.gpkg``, ``.geojson``/``.json``, ``.csv`` or
        ``.parquet``/``.geoparquet``.
    overwrite
        Replace an existing file (the whole file: other GeoPackage layers are
        not kept).  Without it an existing file raises
        :class:`~changedetect.errors.OutputExistsError`.
    layer
        GeoPackage layer name, and the GeoJSON ``name`` member (default: the file name without
        extension).
    qgis_style
        A QGIS style (QML, e.g. :func:`changedetect.report.violations_qml`) stored in a GeoPackage
        as the layer's default (:func:`changedetect.io.qgis_style.add_default_style`): QGIS opens
        the layer with it.  Other formats ignore it.
    empty_geometry_type
        A GeoPackage layer's geometry type when ``gdf`` has no rows (``"Polygon"`` for footprints and
        violations, which their writers give); a layer with rows takes its features'.  None: a generic
        geometry ("Unknown"), which a QGIS project or an ``ogr2ogr -append`` target set up on a quiet
        night's list then kept.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    OutputFormatError
        An extension not listed above (a ``ValueError`` too).
    """
    path = Path(path)
    fmt = vector_format(path)
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise TypeError(f"cannot write '{path}': write_vector takes a geopandas.GeoDataFrame, got "
                        f"{type(gdf).__name__}" + (" (a pandas DataFrame has no geometry: make it "
                        "geopandas.GeoDataFrame(df, geometry=..., crs=...))" if isinstance(gdf, pd.DataFrame) else ""))
    if gdf.crs is None and len(gdf):
        raise ValueError(f"cannot write '{path}': the features have no CRS; set one with .set_crs()")
    if fmt in ("geojson", "csv") and gdf.crs is not None:
        _check_lonlat(gdf, path)
    frame = _plain_columns(gdf)
    with atomic_path(path, overwrite=overwrite) as tmp:
        if fmt == "gpkg":
            # GeoPackage 1.2: what QGIS 3.22 LTR's GDAL (3.6) reads without a warning; the tables
            # are the same for this content
            typed = {"geometry_type": empty_geometry_type} if empty_geometry_type and not len(frame) else {}
            frame.to_file(tmp, driver="GPKG", layer=layer or path.stem, engine="pyogrio", use_arrow=True,
                          dataset_options={"VERSION": "1.2"}, **typed)
            if qgis_style is not None:  # inside the atomic write: the file appears with its style
                from changedetect.io.qgis_style import add_default_style

                add_default_style(tmp, layer or path.stem, qgis_style)
        elif fmt == "geojson":
            frame = frame.to_crs(4326) if frame.crs is not None else frame
            frame.to_file(  # the layer's "name" member, shown by QGIS: the target's, not the temporary file's
                tmp, driver="GeoJSON", layer=layer or path.stem, engine="pyogrio", use_arrow=True,
                layer_options={"RFC7946": "YES", "COORDINATE_PRECISION": "7"},
            )
        elif fmt == "csv":
            # with a UTF-8 byte-order mark: Excel on Windows, where inspectors open it, reads a CSV
            # without one in the local code page and garbles Vietnamese (pandas, GDAL, QGIS skip the mark)
            # and RFC 4180's CRLF line ends: a text holding a carriage return alone is then quoted too (with
            # "\n" line ends pandas wrote it bare, and Excel, pandas and GDAL broke the row there)
            table = _csv_frame(frame)
            table.to_csv(tmp, index=False, encoding="utf-8-sig", lineterminator="\r\n")
            _csv_sidecars(table, path, known=frame.crs is not None)  # published before the CSV itself
        else:
            frame.to_parquet(tmp, index=False)
    log.info("wrote %d features to %s", len(gdf), path)
    return path


def _check_lonlat(gdf: gpd.GeoDataFrame, path: Path) -> None:
    """OutputFormatError when ``gdf``'s CRS has no transformation to WGS 84 (GeoJSON's and the CSV's)."""
    from pyproj import Transformer
    from pyproj.exceptions import ProjError

    from changedetect.errors import OutputFormatError

    try:
        Transformer.from_crs(gdf.crs, 4326, always_xy=True)
    except ProjError:
        raise OutputFormatError(
            f"cannot write '{path}': its coordinates are WGS 84 longitude/latitude and the features' CRS "
            f"'{gdf.crs.name}' has no transformation to it (a local grid); write .gpkg or .parquet, which keep "
            "the CRS") from None


def feature_layer(path: str | os.PathLike[str]) -> str | None:
    """The layer to read from a GeoPackage when none is named: its only feature layer, when it
    has other tables besides (QGIS's ``layer_styles``: :func:`write_vector`'s ``qgis_style``), so
    that reading it neither warns nor picks a style table; None otherwise (the reader's default).
    """
    if Path(path).suffix.lower() != ".gpkg":
        return None
    import pyogrio

    try:
        layers = pyogrio.list_layers(path)
    except Exception:  # noqa: BLE001 - unreadable: the read itself says so
        return None
    features = [str(name) for name, kind in layers if kind is not None]
    return features[0] if len(features) == 1 and len(layers) > 1 else None


def vector_columns(path: str | os.PathLike[str]) -> list[str] | None:
    """The attribute columns of a vector file, from its schema only (no feature is read); None when
    they cannot be told (an unknown format, an unreadable file: the read that follows says why)."""
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".geoparquet"):
            import pyarrow.parquet as pq

            return [str(n) for n in pq.read_schema(p).names]
        if suffix == ".csv":
            import csv

            with p.open(encoding="utf-8-sig", newline="") as f:
                return [h.strip() for h in next(csv.reader(f), [])]
        import pyogrio

        layers = [str(name) for name, kind in pyogrio.list_layers(p) if kind is not None]
        if len(layers) > 1:  # which one is read is the reader's question, and its message
            return None
        return [str(n) for n in pyogrio.read_info(p, layer=feature_layer(p))["fields"]]
    except Exception:  # noqa: BLE001 - unreadable: the read itself says so
        return None


def vector_format(path: str | os.PathLike[str]) -> str:
    """The format :func:`write_vector` writes to ``path`` (``gpkg``, ``geojson``, ``csv``, ``parquet``).

    Raises
    ------
    OutputFormatError
        The extension is not one of :data:`FORMATS` (Shapefiles are read, not written).
    """
    from changedetect.errors import OutputFormatError

    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        got = f"unknown extension '{path.suffix}'" if path.suffix else "no extension"
        shp = " (Shapefiles are read but not written: use .gpkg)" if path.suffix.lower() == ".shp" else ""
        raise OutputFormatError(
            f"cannot write '{path}': {got}; use one of {', '.join(sorted(FORMATS))}{shp}"
        )
    return fmt


def _plain_columns(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Lists/tuples/sets -> comma-joined text; keep dates and numbers typed."""
    out = gdf.copy()
    geom = out.geometry.name
    for col in out.columns:
        if col == geom:
            continue
        s = out[col]
        if pd.api.types.is_datetime64_any_dtype(s) and s.dt.tz is None:
            valid = s.dropna()
            if len(valid) and (valid == valid.dt.normalize()).all():  # whole days: a DATE field
                out[col] = pd.Series([v.date() if not pd.isna(v) else None for v in s], index=s.index, dtype=object)
            elif not len(valid):  # no value to see (an empty list): a date, as when filled
                out[col] = pd.Series(pd.NaT, index=s.index, dtype="datetime64[s]").astype(_DATE)
            continue
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            values = s.tolist()
            if s.dtype == object and all(_isnull(v) for v in values):  # no value to type it: text, as when filled
                out[col] = pd.Series(values, index=s.index, dtype=object).astype(_TEXT)
                continue
            if any(isinstance(v, list | tuple | set | np.ndarray) for v in values):
                out[col] = [
                    ",".join(str(x) for x in v) if isinstance(v, list | tuple | set | np.ndarray) else v
                    for v in values
                ]
            elif values and all(isinstance(v, dt.date) or _isnull(v) for v in values) and not all(
                _isnull(v) for v in values
            ):
                out[col] = [
                    (v.date() if isinstance(v, dt.datetime) else v) if not _isnull(v) else None
                    for v in values
                ]
    return out


#: Arrow types of a date column and of a text column without values, so that an empty list (a night without
#: violations) has the fields of a full one: DATE, not DATETIME; Parquet string and date32, not null/timestamp
_DATE = pd.ArrowDtype(pa.date32())
_TEXT = pd.ArrowDtype(pa.string())


def _isnull(v: object) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT


#: what starts a formula in a spreadsheet cell: Excel and LibreOffice run a CSV cell beginning with one
#: (OWASP "CSV injection": a register's ``=HYPERLINK("http://...")`` or ``=cmd|' /C calc'!A0``)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _as_text(value: object) -> object:
    """``value`` with a leading ``'`` when it is text a spreadsheet would read as a formula
    (:data:`FORMULA_START`): the cell then shows the text, not its result; other values as they are."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def _csv_frame(frame: gpd.GeoDataFrame) -> pd.DataFrame:
    """Attributes (text a spreadsheet would run as a formula made text: :func:`_as_text`) + ``wkt``
    (EPSG:4326) + centroid ``lon``/``lat``."""
    geoms = frame.geometry
    if frame.crs is not None and not frame.crs.is_projected:  # centroids need metres
        # no footprint (a quiet scene in EPSG:4326) has no UTM zone, and nothing to take a centroid of
        located = bool(np.isfinite(frame.total_bounds).all())
        centroids = geoms.to_crs(frame.estimate_utm_crs()).centroid if located else geoms
    else:
        centroids = geoms.centroid
    wgs = geoms.to_crs(4326) if frame.crs is not None else geoms
    cen = centroids.to_crs(4326) if frame.crs is not None else centroids
    table = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    for col in table.columns:
        if table[col].dtype == object or pd.api.types.is_string_dtype(table[col]):
            values = table[col].tolist()
            text = [_as_text(v) for v in values]
            if any(t is not v for t, v in zip(text, values, strict=True)):  # else its type as it was (.csvt)
                table[col] = pd.Series(text, index=table.index, dtype=object)
    table["wkt"] = wgs.to_wkt(rounding_precision=7, trim=True).to_numpy()
    table["lon"] = np.round(cen.x.to_numpy(), 7)
    table["lat"] = np.round(cen.y.to_numpy(), 7)
    return table


#: what GDAL reads beside a CSV (its CRS and its field types): written with it, removed with it
CSV_SIDECARS = (".prj", ".csvt")


def remove_vector(path: Path) -> None:
    """Remove a list :func:`write_vector` wrote, a CSV with its :data:`CSV_SIDECARS` (nothing there: nothing
    done): an output a later run or night no longer writes."""
    path.unlink(missing_ok=True)
    if path.suffix.lower() == ".csv":
        for side in CSV_SIDECARS:
            path.with_suffix(side).unlink(missing_ok=True)


def _csv_sidecars(table: pd.DataFrame, path: Path, *, known: bool) -> None:
    """``.prj`` (EPSG:4326, the ``wkt`` column's CRS) and ``.csvt`` (the field types) beside the CSV
    at ``path``, as GDAL's CSV writer makes them: GDAL, and QGIS through it, then read the layer in
    WGS 84 with typed fields instead of without a CRS (drawn in the project's, e.g. UTM metres) and
    every field as text.  Without a CRS (an empty list) an earlier ``.prj`` goes."""
    from pyproj import CRS

    with atomic_path(path.with_suffix(".csvt"), overwrite=True) as tmp:
        tmp.write_text(_csvt(table) + "\n", encoding="ascii")
    if known:
        with atomic_path(path.with_suffix(".prj"), overwrite=True) as tmp:
            tmp.write_text(CRS.from_epsg(4326).to_wkt(version="WKT1_GDAL"), encoding="ascii")
    else:
        path.with_suffix(".prj").unlink(missing_ok=True)


def _csvt(table: pd.DataFrame) -> str:
    """GDAL's ``.csvt`` line for ``table``'s columns: ``WKT`` for ``wkt``, then Integer64, Real,
    Date, DateTime or String by their values."""
    types = []
    for name in table.columns:
        s = table[name]
        if name == "wkt":
            types.append("WKT")
        elif pd.api.types.is_bool_dtype(s):
            types.append("Integer(Boolean)")
        elif pd.api.types.is_integer_dtype(s):
            types.append("Integer64")
        elif pd.api.types.is_float_dtype(s):
            types.append("Real")
        elif isinstance(s.dtype, pd.ArrowDtype) and pa.types.is_date(s.dtype.pyarrow_dtype):
            types.append("Date")  # (before the next: pandas counts an Arrow date32 as datetime64)
        elif pd.api.types.is_datetime64_any_dtype(s):
            types.append("DateTime")
        else:
            values = [v for v in s.tolist() if not _isnull(v)]
            if values and all(isinstance(v, dt.datetime) for v in values):
                types.append("DateTime")
            elif values and all(isinstance(v, dt.date) for v in values):
                types.append("Date")
            else:
                types.append("String")
    return ",".join(types)


def load_previous(path: str | os.PathLike[str]) -> gpd.GeoDataFrame:
    """The footprints of a previous run: a vector file (``.gpkg``, ``.parquet``, ...) or a run folder.

    A folder is a ``changedetect run`` output folder: its ``footprints.gpkg`` is read.

    Raises
    ------
    ConfigError
        Not such a file or folder, unreadable, without a ``footprint_id`` column or without a
        CRS.  Rows without an id are dropped (with a warning), invalid shapes made valid.
    """
    from changedetect.errors import ConfigError

    p = Path(path)
    if p.is_dir():
        if not (p / "footprints.gpkg").is_file():
            raise ConfigError(f"previous footprints: folder '{p}' has no footprints.gpkg; give the output "
                              "folder of an earlier `changedetect run` or a footprints file")
        p = p / "footprints.gpkg"
    if not p.is_file():
        raise ConfigError(f"previous footprints: '{p}' does not exist; give an earlier run's footprints "
                          "file or output folder")
    try:
        frame = gpd.read_parquet(p) if p.suffix.lower() == ".parquet" else gpd.read_file(p)
    except Exception as exc:  # noqa: BLE001 - pyogrio / pyarrow raise many kinds
        from changedetect.io._unreadable import vector_reason

        raise ConfigError(f"previous footprints: cannot read '{p}': {vector_reason(p, exc)}") from None
    from changedetect._vectorize_shapes import check_previous

    return check_previous(frame, f"previous footprints: '{p}'")


__all__ = ["FORMATS", "feature_layer", "load_previous", "vector_format", "write_vector"]
