"""The vector inputs of :func:`changedetect.pipeline.run` (private): how ``run.json`` records the
permit register and the parcel layer (path, sha256; a database URL without its password), and
reading the parcel layer with its datum checked before any work."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from changedetect._state import sha256_file

if TYPE_CHECKING:
    import geopandas as gpd

    from changedetect.config import PipelineConfig

#: the files of a Shapefile whose content the register's checksum covers (attributes live in the .dbf)
_SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


def register_sha256(path: Path) -> str:
    """The register file's sha256; for a Shapefile, the sha256 of its parts' (name: sha256) lines."""
    if path.suffix.lower() != ".shp":
        return sha256_file(path)
    lines = [f"{p.suffix.lower()}: {sha256_file(p)}\n" for suffix in _SHAPEFILE_PARTS
             for p in [path.with_suffix(suffix), path.with_suffix(suffix.upper())] if p.is_file()]
    return hashlib.sha256("".join(dict.fromkeys(lines)).encode()).hexdigest()


def shown(source: str | Path) -> str:
    """A register or layer as run.json records it: a database URL without its password."""
    from changedetect.io.registers import _safe_url

    text = str(source)
    return _safe_url(text) if "://" in text else text


def input_record(source: str | Path) -> dict[str, Any]:
    """run.json's record of a register or layer: ``path`` (shown) and ``sha256`` (None for a URL)."""
    path = Path(str(source))
    return {"path": shown(source), "sha256": register_sha256(path) if path.is_file() else None}


def load_parcel_layer(source: str | Path | None, config: PipelineConfig, crs: Any) -> gpd.GeoDataFrame | None:
    """The parcel layer (``[parcels]``'s options), refused right away when PROJ cannot place it on the
    imagery's datum (``crs``): the parcels are added after the match, at the end of the run."""
    if source is None:
        return None
    from changedetect.parcels import check_parcels_datum

    parcels = config.parcels.load(source)
    check_parcels_datum(parcels, crs)
    return parcels


__all__ = ["input_record", "load_parcel_layer", "register_sha256", "shown"]
