"""Open one raster for its metadata only, and turn every failure into a clear error."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import rasterio
from affine import Affine
from pyproj import CRS
from rasterio.enums import Interleaving
from rasterio.errors import NotGeoreferencedWarning as RioNotGeoreferencedWarning
from rasterio.errors import RasterioIOError

from changedetect.errors import TileReadError
from changedetect.types import Grid

log = logging.getLogger(__name__)

_MAGIC = {
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"II+\x00": "BigTIFF",
    b"MM\x00+": "BigTIFF",
    b"\x89PNG": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"\x00\x00\x00\x0cjP": "JPEG 2000",
    b"PK\x03\x04": "ZIP",
}

#: Check every block of a GeoTIFF for truncation up to this many blocks per band.
_MAX_BLOCKS_CHECKED = 20_000


@dataclass(frozen=True)
class RasterMeta:
    """What :func:`inspect_raster` learnt about one file without reading pixels."""

    path: Path
    driver: str
    count: int
    width: int
    height: int
    crs: CRS | None
    transform: Affine
    dtypes: tuple[str, ...]
    nodata: float | None
    descriptions: tuple[str | None, ...]
    colorinterp: tuple[str, ...]
    overviews: tuple[int, ...]
    #: Ground control points and their CRS, for a file georeferenced by GCPs instead of a geotransform.
    gcps: int = 0
    gcp_crs: CRS | None = None
    #: Whether the file carries RPCs (a satellite's rational polynomial camera model).
    rpcs: bool = False
    #: The acquisition time GDAL's ``IMAGERY`` metadata domain gives (``ACQUISITIONDATETIME``: GDAL fills
    #: it from a Maxar/DigitalGlobe ``.IMD``, a Pleiades/SPOT ``DIM_*.XML`` beside the image, or a GeoTIFF
    #: that stores it), as written; ``None`` without one.
    acquired: str | None = None

    @property
    def georeferenced(self) -> bool:
        """Whether the file has a CRS (a transform alone is not enough)."""
        return self.crs is not None

    @property
    def has_transform(self) -> bool:
        """Whether the file has a geotransform other than the identity."""
        return self.transform != Affine.identity()

    @property
    def grid(self) -> Grid:
        """The file's own pixel grid."""
        return Grid(crs=self.crs, transform=self.transform, width=self.width, height=self.height)


def inspect_raster(path: str | Path) -> RasterMeta:
    """Read the metadata of one raster file; no pixels are read.

    Raises
    ------
    TileReadError
        The file is missing, is not a raster GDAL can read, or is truncated.
    """
    path = Path(path)
    if not path.exists():
        if path.is_symlink():
            raise TileReadError(f"tile '{path}' is a symbolic link to '{os.readlink(path)}', which does not exist: "
                                "restore its target, or give the file itself")
        raise TileReadError(f"tile '{path}' does not exist; check the path")
    if path.is_dir():
        raise TileReadError(f"tile '{path}' is a folder, not a raster file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RioNotGeoreferencedWarning)
            with rasterio.open(path) as src:
                meta = _meta_of(path, src)
                _check_not_truncated(path, src)
                _check_vrt_sources(path, src)
    except RasterioIOError as exc:
        raise _open_error(path, exc) from exc
    log.debug(
        "inspected %s: %s %dx%dx%d %s",
        path,
        meta.driver,
        meta.count,
        meta.height,
        meta.width,
        meta.crs,
    )
    return meta


def _meta_of(path: Path, src: rasterio.DatasetReader) -> RasterMeta:
    crs = CRS.from_user_input(src.crs.to_wkt()) if src.crs else None
    gcps, gcp_crs = src.gcps if crs is None else ([], None)  # asked for only where there is no CRS
    return RasterMeta(
        path=path,
        driver=src.driver,
        count=src.count,
        width=src.width,
        height=src.height,
        crs=crs,
        transform=src.transform,
        dtypes=tuple(src.dtypes),
        nodata=src.nodata,
        descriptions=tuple(src.descriptions),
        colorinterp=tuple(ci.name for ci in src.colorinterp),
        overviews=tuple(src.overviews(1)) if src.count else (),
        gcps=len(gcps),
        gcp_crs=CRS.from_user_input(gcp_crs.to_wkt()) if gcps and gcp_crs else None,
        rpcs=crs is None and src.rpcs is not None,
        acquired=src.tags(ns="IMAGERY").get("ACQUISITIONDATETIME") or None,
    )


def _open_error(path: Path, exc: Exception) -> TileReadError:
    kind = sniff(path)
    size = path.stat().st_size
    if kind == "ZIP":
        return TileReadError(f"'{path}' is a ZIP archive ({size} bytes), not a raster: unzip it "
                             f"(`unzip '{path}' -d FOLDER`) and give the folder of tiles")
    if kind is None:
        return TileReadError(
            f"'{path}' is not a raster GDAL can read ({size} bytes, unknown format; GDAL said: {exc}); "
            "expected a GeoTIFF/COG, PNG or JPEG: check that the path points at an image"
        )
    return TileReadError(
        f"'{path}' looks like a {kind} file ({size} bytes) but cannot be opened: it is truncated "
        f"or corrupt (GDAL said: {exc}); copy or download it again"
    )


def sniff(path: Path) -> str | None:
    """The image format named by the first bytes of ``path``, or ``None``."""
    with path.open("rb") as fh:
        head = fh.read(8)
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return kind
    return None


def _check_vrt_sources(path: Path, src: rasterio.DatasetReader) -> None:
    """A VRT (a ``gdalbuildvrt`` mosaic) whose source files are gone fails only when its pixels are read;
    say which file is missing when it is opened."""
    if src.driver != "VRT":
        return
    for name in src.files[1:]:
        if not name.startswith("/vsi") and "://" not in name and not Path(name).exists():
            raise TileReadError(
                f"'{path}' is a VRT whose source file '{name}' does not exist; restore that file, or rebuild "
                "the VRT from the files as they are now (gdalbuildvrt)"
            )


def _check_not_truncated(path: Path, src: rasterio.DatasetReader) -> None:
    """Compare a GeoTIFF's block offsets with the file size (cheap: the IFD is in memory)."""
    if src.driver not in ("GTiff", "COG"):
        return
    size = path.stat().st_size
    bh, bw = src.block_shapes[0]
    nrows, ncols = -(-src.height // bh), -(-src.width // bw)
    bands = range(1, src.count + 1) if src.interleaving != Interleaving.pixel else range(1, 2)
    if nrows * ncols <= _MAX_BLOCKS_CHECKED:
        blocks = [(c, r) for r in range(nrows) for c in range(ncols)]
    else:
        blocks = [(0, 0), (ncols - 1, nrows - 1)]
    for bidx in bands:
        for col, row in blocks:
            offset = src.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=bidx)
            nbytes = src.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=bidx)
            if not offset or not nbytes:
                continue  # sparse block, or a driver that does not say
            end = int(offset) + int(nbytes)
            if end > size:
                raise TileReadError(
                    f"'{path}' is truncated: band {bidx}, block ({row}, {col}) needs bytes up to "
                    f"{end} but the file has only {size}; copy or download it again"
                )


__all__ = ["RasterMeta", "inspect_raster", "sniff"]
