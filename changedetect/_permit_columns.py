"""A register's column names onto the schema's (private; :func:`changedetect.permits.map_columns`,
re-exported there): a ``column_map`` first, then the aliases of
:data:`~changedetect._permit_schema.DEFAULT_COLUMN_MAP` (Vietnamese names without their diacritics,
as Excel headers and Shapefiles carry them), and a Shapefile's names cut to 10 bytes (in UTF-8 or
Windows Vietnamese, cp1258) as the one alias they begin."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import geopandas as gpd

from changedetect._permit_schema import DEFAULT_COLUMN_MAP
from changedetect.errors import PermitSchemaError


def map_columns(gdf: gpd.GeoDataFrame, column_map: Mapping[str, str] | None = None, *,
                name: str | None = None, aliases: Mapping[str, str] = DEFAULT_COLUMN_MAP) -> gpd.GeoDataFrame:
    """Rename a register's columns onto the schema names.

    ``column_map`` (register name -> schema name) is applied first, then the
    aliases of :data:`~changedetect._permit_schema.DEFAULT_COLUMN_MAP`
    (case-insensitive) for columns that are still missing.  A ``column_map`` key that is
    not a column of ``gdf`` is a :class:`PermitSchemaError` (naming ``name``, the register).
    ``aliases``: another table of aliases (the parcel layer's, :mod:`changedetect.parcels`).
    """
    mapping: dict[str, str] = {}
    taken = set(gdf.columns)
    user = dict(column_map or {})
    absent = [src for src in user if src not in gdf.columns]
    if absent:
        raise PermitSchemaError(
            f"{name or 'the register'}: the column map names {', '.join(repr(a) for a in absent)}, which the register "
            f"does not have (its columns: {', '.join(str(c) for c in gdf.columns)}); map NAME=SCHEMA_NAME with "
            "NAME one of the register's columns (--column-map, column_map=)")
    for src, dst in user.items():
        if src in gdf.columns and src != dst:
            mapping[src] = dst
    targets = set(taken) | set(mapping.values())
    for col in gdf.columns:
        if col in mapping:
            continue
        alias = _alias(str(col), cut=not _cut_twice(str(col), gdf.columns), aliases=aliases)
        if alias and alias not in targets:
            mapping[col] = alias
            targets.add(alias)
    if not mapping:
        return gdf
    result = [mapping.get(c, c) for c in gdf.columns]
    for twice in dict.fromkeys(n for n in result if result.count(n) > 1):
        sources = [str(c) for c in gdf.columns if mapping.get(c, c) == twice]
        raise PermitSchemaError(
            f"{name or 'the register'}: the columns {' and '.join(repr(c) for c in sources)} would all be named "
            f"{twice!r} by the column map; map only one of them onto it, and rename a column of that name that "
            f"is not the one to use (e.g. --column-map {twice}=old_{twice} --column-map {sources[-1]}={twice})")
    out = gdf.rename(columns=mapping)
    if gdf.geometry.name in mapping:
        out = out.set_geometry(mapping[gdf.geometry.name])
    return out


#: the longest column name a Shapefile (DBF) holds: longer ones are cut to it
_DBF_NAME = 10


def _alias(column: str, *, cut: bool = True, aliases: Mapping[str, str] = DEFAULT_COLUMN_MAP) -> str | None:
    """The schema name a register's column stands for, from :data:`DEFAULT_COLUMN_MAP`: compared in
    lower case without Vietnamese diacritics, spaces or dashes ('Ngày hết hạn' is ``ngay_het_han``), and
    (``cut``) a name of a DBF's 10 characters as the one alias it begins (``so_giay_ph`` is ``so_giay_phep``)."""
    import unicodedata

    key = str(column).strip().lower().replace("đ", "d")
    key = "".join(c for c in unicodedata.normalize("NFD", key) if not unicodedata.combining(c))
    key = re.sub(r"[\s\-.]+", "_", key)
    if key in aliases:
        return aliases[key]
    if not cut or not _dbf_cut(str(column).strip()):
        return None
    targets = {schema for alias, schema in aliases.items() if alias.startswith(key)}
    return targets.pop() if len(targets) == 1 else None


def _dbf_cut(name: str) -> bool:
    """Whether ``name`` may be a DBF field name cut to its 10 bytes: 10 bytes in UTF-8, or 8-9 where a
    letter of 2-3 bytes was cut in two and dropped ('Địa chỉ' is 'Địa ch'), or 9-10 in Windows
    Vietnamese (cp1258: 'ố' is 'ô' and a tone mark, two bytes; a cut before a tone mark drops it)."""
    utf8 = len(name.encode("utf-8"))
    return _DBF_NAME - 2 <= utf8 <= _DBF_NAME or _DBF_NAME - 1 <= len(_cp1258_bytes(name)) <= _DBF_NAME


def _cp1258_bytes(text: str) -> bytes:
    """``text`` in Windows Vietnamese (cp1258) as Vietnamese software writes it: a letter cp1258 has
    (â ê ô ơ ư ă đ, Latin-1's) as one byte, a tone mark (grave, acute, hook, tilde, dot below) after it
    as another; Python's codec takes neither the precomposed 'ố' nor its decomposed circumflex."""
    import unicodedata

    out = []
    for ch in unicodedata.normalize("NFC", text):
        try:
            out.append(ch.encode("cp1258"))
            continue
        except UnicodeEncodeError:
            pass
        letters = unicodedata.normalize("NFD", ch)
        base, marks = letters[0], list(letters[1:])
        for mark in marks:  # the mark cp1258 holds precomposed with the letter; the tone after it
            try:
                head = unicodedata.normalize("NFC", base + mark).encode("cp1258")
            except UnicodeEncodeError:
                continue
            if len(head) == 1:
                marks.remove(mark)
                out.append(head + "".join(marks).encode("cp1258", errors="replace"))
                break
        else:
            out.append(letters.encode("cp1258", errors="replace"))
    return b"".join(out)


def _cut_twice(column: str, columns: Any) -> bool:
    """Whether a DBF's 10-character ``column`` was cut from one of several names: GDAL names the
    second name cut to the same 10 characters ``<its first 8>_1`` (``dien_tich_dat`` and
    ``dien_tich_xay_dung`` become ``dien_tich_`` and ``dien_tic_1``, in the register's order), so the
    cut stands for whichever came first (a plot's land area as the permitted area): not an alias."""
    if len(column) != _DBF_NAME:
        return False
    for c in columns:
        m = re.fullmatch(r"(.+)_\d{1,3}", str(c))
        if m is not None and str(c) != column and len(str(c)) == _DBF_NAME \
                and column.lower().startswith(m.group(1).lower()):
            return True
    return False


__all__ = ["map_columns"]
