"""STAC items in the nightly job's catalog (private; :mod:`changedetect._nightly_catalog`).

An item is one date of its area.  Its raster assets with the ``data`` role (an asset without roles
counts as data) are its bands, each named as :func:`changedetect.io.open_series` names a STAC asset's
band (its ``eo:bands`` names, else its key): Sentinel-2 COGs as Earth Search serves them (``blue``,
``green``, ``red``, ``nir``, ... one file each), a Landsat item's ``SR_B*`` assets, or one multi-band
COG.  Its SCL asset (key, band name or file named ``SCL``) is its cloud mask, not a band; L2A's other
side products (``aot``, ``wvp``, ``tci``, ...) are left out, as beside loose band files.  An item
without a data asset falls back to its first ``visual`` one.  Hrefs are local files (relative to the
item, absolute, or ``file://``); a remote href is no local file and leaves the item out as its
missing COG does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from changedetect.io._names import S2_AUX_RE, band_sort_key, is_scl

_RASTER = {".tif", ".tiff"}
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
#: STAC's common band names in Sentinel-2 order (a Landsat item's sort the same way), for the band order.
_COMMON = {"coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05", "rededge2": "B06",
           "rededge3": "B07", "nir": "B08", "nir08": "B8A", "nir09": "B09", "cirrus": "B10", "swir16": "B11",
           "swir22": "B12"}


@dataclass(frozen=True)
class Item:
    """A STAC item of the catalog: its date (None: not in the item, the caller reads its file name),
    its band assets ``(band name, file)`` in band order, and its SCL asset's file; ``rasters``: every
    raster asset's file (side products and ``visual`` included), one of which a state written when the
    job read an item's first asset alone knows the date by."""

    date: str | None
    assets: tuple[tuple[str, Path], ...]
    scl: Path | None = None
    rasters: tuple[Path, ...] = ()

    @property
    def files(self) -> tuple[Path, ...]:
        """Every local file the item names (bands and SCL)."""
        return (*(f for _, f in self.assets), *([self.scl] if self.scl else []))


def read_item(path: Path) -> Item | None:
    """The item in ``path``, or None when it is no STAC item with a raster asset (or is malformed)."""
    try:
        item = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(item, dict) or item.get("type") != "Feature" or not isinstance(item.get("assets"), dict):
        return None
    try:  # a malformed item (properties or an asset not an object, a datetime not a string) is no item
        when = str((item.get("properties") or {}).get("datetime") or "")
        raster = [(str(k), a) for k, a in item["assets"].items()
                  if Path(str(a.get("href", ""))).suffix.lower() in _RASTER]
        data = [(k, a) for k, a in raster if "data" in _roles(a)]
        scl = [(k, a) for k, a in data if any(is_scl(n) for n in _names(k, a))]
        bands = [(k, a) for k, a in data if (k, a) not in scl and not any(
            S2_AUX_RE.search(n) for n in _names(k, a))]
        bands = bands or [(k, a) for k, a in raster if "visual" in _roles(a)][:1]
        found = [(band_name(k, a), _href(path, a)) for k, a in bands]
        mask = _href(path, scl[0][1]) if len(scl) == 1 else None
    except (AttributeError, TypeError):
        return None
    if not found:
        return None
    found.sort(key=lambda x: (*band_sort_key(_COMMON.get(x[0].lower(), x[0].upper())), x[0]))
    return Item(when[:10] if _DAY.match(when) else None, tuple(found), mask, tuple(_href(path, a) for _, a in raster))


def band_name(key: str, asset: dict[str, Any]) -> str:
    """An asset's band name(s) as :mod:`changedetect.io` reads a STAC asset: its ``eo:bands``
    ``name`` (else ``common_name``) when every band has one, ``;``-joined, else the asset's key."""
    names = [b.get("name") or b.get("common_name") if isinstance(b, dict) else b
             for b in asset.get("eo:bands") or []]
    return ";".join(map(str, names)) if names and all(names) else key


def _roles(asset: dict[str, Any]) -> list[str]:
    return list(asset.get("roles") or ["data"])


def _names(key: str, asset: dict[str, Any]) -> list[str]:
    """What may say an asset is an SCL or a side product: its key, band names and file name."""
    href = str(asset.get("href", ""))
    return [key, *band_name(key, asset).split(";"), Path(href).stem]


def _href(item: Path, asset: dict[str, Any]) -> Path:
    href = str(asset["href"]).removeprefix("file://")
    return Path(href) if Path(href).is_absolute() else (item.parent / href).resolve()


__all__ = ["Item", "band_name", "read_item"]
