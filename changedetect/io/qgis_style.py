"""A GeoPackage layer's default QGIS style, stored in the file itself.

QGIS keeps styles in a GeoPackage's ``layer_styles`` table and applies the row marked
``useAsDefault`` when the layer is opened (its *Save style -> In database* does the same).  So a
violation list written with a style opens in QGIS coloured by status, as the HTML report shows
it, with nothing else to load.  Other readers (GDAL, geopandas, ArcGIS) list ``layer_styles`` as a
plain attribute table and read the features as before.

:func:`categorized_qml` builds the style (QGIS's categorised renderer on one text field: a
translucent fill and a solid outline per value, every other value in grey);
:func:`add_default_style` writes it into a GeoPackage (the writer calls it on its temporary file,
before the rename: the style is part of the atomic write).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from xml.sax.saxutils import quoteattr

__all__ = ["add_default_style", "categorized_qml", "read_default_style"]

#: QGIS's table of styles (``QgsOgrProvider``); the column names are QGIS's.
_CREATE = """CREATE TABLE IF NOT EXISTS layer_styles (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    f_table_catalog TEXT(256), f_table_schema TEXT(256), f_table_name TEXT(256),
    f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT,
    useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30),
    update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"""
_OTHER_RGB = (160, 160, 160)


def _fill_symbol(name: str, rgb: tuple[int, int, int], fill_alpha: int, outline_mm: float) -> str:
    fill = ",".join(map(str, (*rgb, fill_alpha)))
    line = ",".join(map(str, (*rgb, 255)))
    props = {"color": fill, "outline_color": line, "outline_style": "solid", "outline_width": f"{outline_mm:g}",
             "outline_width_unit": "MM", "joinstyle": "miter", "style": "solid"}
    options = "".join(f'<Option type="QString" name="{k}" value="{v}"/>' for k, v in props.items())
    legacy = "".join(f'<prop k="{k}" v="{v}"/>' for k, v in props.items())
    return (f'<symbol type="fill" name={quoteattr(name)} alpha="1" clip_to_extent="1" force_rhr="0">'
            f'<layer class="SimpleFill" enabled="1" locked="0" pass="0"><Option type="Map">{options}</Option>'
            f"{legacy}</layer></symbol>")


def categorized_qml(field: str, categories: Mapping[str, tuple[tuple[int, int, int], str]], *,
                    fill_alpha: int = 60, outline_mm: float = 0.6) -> str:
    """A QGIS style (QML) colouring polygons by the value of ``field``.

    Parameters
    ----------
    field
        The text field to categorise on.
    categories
        ``value -> ((r, g, b), legend label)``, in legend order.  Any other value is drawn in grey
        (QGIS's catch-all category).
    fill_alpha
        The fill's opacity (0-255): translucent, so that the imagery underneath shows.
    outline_mm
        The outline's width in millimetres.

    >>> qml = categorized_qml("status", {"unlicensed": ((230, 25, 45), "Unlicensed")})
    >>> 'attr="status"' in qml and 'value="unlicensed"' in qml and 'v="230,25,45,255"' in qml
    True
    """
    if not 0 <= fill_alpha <= 255:
        raise ValueError(f"fill_alpha must be in [0, 255], got {fill_alpha}")
    cats, symbols = [], []
    items = [*((str(k), rgb, label) for k, (rgb, label) in categories.items()), ("", _OTHER_RGB, "other")]
    for i, (value, rgb, label) in enumerate(items):
        cats.append(f'<category render="true" symbol="{i}" value={quoteattr(value)} label={quoteattr(label)}/>')
        symbols.append(_fill_symbol(str(i), rgb, fill_alpha, outline_mm))
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
            '<qgis version="3.22.0" styleCategories="Symbology">'
            f'<renderer-v2 type="categorizedSymbol" attr={quoteattr(field)} symbollevels="0" enableorderby="0" '
            f'forceraster="0"><categories>{"".join(cats)}</categories><symbols>{"".join(symbols)}</symbols>'
            "</renderer-v2><layerGeometryType>2</layerGeometryType></qgis>\n")


def add_default_style(path: str | Path, layer: str, qml: str, *, name: str | None = None,
                      description: str = "") -> None:
    """Store ``qml`` as the default QGIS style of ``layer`` in the GeoPackage ``path``.

    Creates QGIS's ``layer_styles`` table when missing and registers it in ``gpkg_contents`` (as
    an attribute table, as QGIS and GDAL do, so that the file stays a valid GeoPackage); any
    earlier default of the layer stops being one.

    Raises
    ------
    ValueError
        ``layer`` is not a feature table of ``path``.
    """
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
    with closing(sqlite3.connect(str(path))) as db, db:
        row = db.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)).fetchone()
        if row is None:
            raise ValueError(f"'{path}' has no feature table {layer!r}: cannot style it")
        db.execute(_CREATE)
        db.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, "
                   "last_change) VALUES ('layer_styles', 'attributes', 'layer_styles', '', ?)", (now,))
        db.execute("UPDATE layer_styles SET useAsDefault = 0 WHERE f_table_name = ?", (layer,))
        db.execute("INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, "
                   "styleName, styleQML, styleSLD, useAsDefault, description, owner, ui) "
                   "VALUES ('', '', ?, ?, ?, ?, '', 1, ?, '', '')",
                   (layer, row[0], name or layer, qml, description))


def read_default_style(path: str | Path, layer: str) -> str | None:
    """The QML of ``layer``'s default style in the GeoPackage ``path``; None when it has none."""
    with closing(sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)) as db:
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'layer_styles'").fetchone() is None:
            return None
        row = db.execute("SELECT styleQML FROM layer_styles WHERE f_table_name = ? AND useAsDefault "
                         "ORDER BY id DESC LIMIT 1", (layer,)).fetchone()
    return None if row is None else str(row[0])
