"""Byte-reproducible writers for the sample city: GeoTIFF, GeoPackage, CSV and JSON.

Nothing time-dependent is written: GeoTIFFs carry no ``TIFFTAG_DATETIME`` and
GeoPackages are written with GDAL's ``OGR_CURRENT_DATE`` fixed to the
register's date, so regenerating gives the same bytes.  Every file goes through
:func:`changedetect.io.atomic.atomic_path` (temporary file, then rename).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from rasterio.enums import ColorInterp

from changedetect.io.atomic import atomic_path
from changedetect.samplecity.spec import IMAGE_EPSG, CityConfig

_PROFILE = {
    "driver": "GTiff",
    "dtype": "uint8",
    "tiled": True,
    "blockxsize": 256,
    "blockysize": 256,
    "compress": "deflate",
    "zlevel": 9,
    "predictor": 2,
    "interleave": "pixel",
}


def write_tif(
    path: Path,
    data: np.ndarray,
    config: CityConfig,
    *,
    descriptions: Sequence[str],
    tags: dict[str, str] | None = None,
    rgb: bool = False,
) -> Path:
    """A tiled, DEFLATE-compressed uint8 GeoTIFF ``(bands, size, size)`` on the reference grid."""
    if data.ndim == 2:
        data = data[None]
    block = 256 if config.size % 256 == 0 else 128 if config.size % 128 == 0 else 16
    profile = dict(_PROFILE, blockxsize=block, blockysize=block, count=data.shape[0], width=data.shape[2], height=data.shape[1])
    profile.update(crs=f"EPSG:{IMAGE_EPSG}", transform=config.transform)
    if rgb:
        profile["photometric"] = "RGB"
        profile["alpha"] = "UNSPECIFIED"
    with atomic_path(path, overwrite=True) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data)
        for i, name in enumerate(descriptions, 1):
            dst.set_band_description(i, name)
        if rgb:
            dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.undefined]
        if tags:
            dst.update_tags(**tags)
    return path


@contextmanager
def _fixed_date(date: str) -> Iterator[None]:
    old = os.environ.get("OGR_CURRENT_DATE")
    os.environ["OGR_CURRENT_DATE"] = date
    try:
        with rasterio.Env(OGR_CURRENT_DATE=date):
            yield
    finally:
        if old is None:
            os.environ.pop("OGR_CURRENT_DATE", None)
        else:
            os.environ["OGR_CURRENT_DATE"] = old


def write_gpkg(path: Path, layers: dict[str, gpd.GeoDataFrame], *, date: str) -> Path:
    """A GeoPackage with the given layers, its timestamps fixed to ``date`` (ISO)."""
    import pyogrio

    stamp = f"{date}T00:00:00.000Z"
    with atomic_path(path, overwrite=True) as tmp, _fixed_date(stamp):
        for name, frame in layers.items():
            single = bool((frame.geom_type == "Polygon").all())
            pyogrio.write_dataframe(
                frame, tmp, layer=name, driver="GPKG", append=tmp.exists(), promote_to_multi=not single, geometry_type="Polygon" if single else None
            )
    return path


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    """UTF-8 CSV with ``\\n`` line ends."""
    with atomic_path(path, overwrite=True) as tmp:
        frame.to_csv(tmp, index=False, lineterminator="\n", encoding="utf-8")
    return path


_NUMBERS = re.compile(r"\[\s*(-?[0-9][0-9.eE+-]*(?:,\s*-?[0-9][0-9.eE+-]*)*)\s*\]")


def write_json(path: Path, doc: Any) -> Path:
    """Indented UTF-8 JSON (non-ASCII kept; lists of numbers on one line) ending in a newline."""
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    text = _NUMBERS.sub(lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text)
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return path
