"""Datums a layer's CRS may lose on its way from a city's GIS: whether PROJ can place a CRS on WGS 84.

A VN-2000 Shapefile whose .prj lost its ``+towgs84`` (what QGIS and GDAL write from the usual
custom CRS) is placed by PROJ's "ballpark" transformation, about 230 m off; the register and
parcel readers refuse such a layer (:func:`changedetect._match_inputs.check_datum`) with the
words these functions give.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any


def datum_shift_unknown(src: Any, dst: Any) -> bool:
    """Whether PROJ knows no transformation from ``src`` to ``dst`` but a "ballpark" one (or one whose
    grid is not installed, or none): their datums differ and it would take one for the other (VN-2000
    for WGS 84: about 230 m off).  Not between two registered geocentric datums (:func:`_geocentric`:
    CGCS2000, NAD83(CSRS)v4, an ITRF or SIRGAS realisation, which EPSG leaves without a transformation
    to WGS 84), which lie within a few metres of each other, as PROJ's ballpark places them."""
    from pyproj import CRS

    src, dst = CRS.from_user_input(src), CRS.from_user_input(dst)
    if src == dst or src.datum == dst.datum:
        return False
    return _ballpark_only(src.to_wkt(), dst.to_wkt()) and not (_geocentric(src) and _geocentric(dst))


@functools.lru_cache(maxsize=64)
def _ballpark_only(src: str, dst: str) -> bool:
    """:func:`datum_shift_unknown`'s question to PROJ, asked once per pair of CRSs (WKT) a process
    (a nightly job matches every pair with the same register): a TransformerGroup takes up to a
    few hundred milliseconds.  PROJ's warning that a better transformation's grid is missing is
    not repeated to the user: an available one (or the refusal) decides."""
    from pyproj.transformer import TransformerGroup

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ops = TransformerGroup(src, dst, always_xy=True).transformers
    except Exception:  # noqa: BLE001 - pyproj raises several kinds for CRSs it cannot relate
        return True
    return not ops or all("ballpark" in t.description.lower() for t in ops)


#: Ellipsoids of geocentric datums only (GRS 1980 was adopted in 1979; CGCS2000's differs from it in
#: the flattening's 11th digit).  Not the WGS 84 ellipsoid: VN-2000 lies on it 230 m from WGS 84.
_GEOCENTRIC_ELLIPSOIDS = {"GRS 1980", "CGCS2000"}


def _geocentric(crs: Any) -> bool:
    """A registered datum (an EPSG id; not a .prj's own, such as VN-2000's that lost its ``+towgs84``)
    on a geocentric datum's ellipsoid, or WGS 84 itself (its ensemble or a realisation): within metres
    of the ITRS."""
    datum, ellipsoid = crs.datum, crs.ellipsoid
    if datum is None or ellipsoid is None or not datum.to_json_dict().get("id"):
        return False
    return ellipsoid.name in _GEOCENTRIC_ELLIPSOIDS or str(datum.name).startswith("World Geodetic System 1984")


def unplaceable(crs: Any) -> bool:
    """A CRS on a datum PROJ cannot take to WGS 84 (an unknown datum, a local grid)."""
    return datum_shift_unknown(crs, "EPSG:4326")


def datum_name(crs: Any, limit: int = 48) -> str:
    """A CRS's datum name for a message, cut to ``limit`` characters (GDAL writes +towgs84 into it)."""
    from pyproj import CRS

    datum = CRS.from_user_input(crs).datum
    name = str(datum.name) if datum is not None else "none"
    return name if len(name) <= limit else name[: limit - 3] + "..."


def towgs84_lost_hint(crs: Any) -> str:
    """What a CRS's datum name tells of how it lost its datum shift, for messages ('' when nothing)."""
    from pyproj import CRS

    datum = CRS.from_user_input(crs).datum
    if datum is not None and "towgs84" in datum.name.lower():
        return (" (its .prj lost the datum shift: an ESRI .prj cannot hold +towgs84, so GDAL wrote the "
                "parameters into the datum's name)")
    return ""
