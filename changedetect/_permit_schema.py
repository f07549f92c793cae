"""The permit register schema, as a Python constant.

``permits/schema.json`` in the repository is a copy of :data:`SCHEMA` (a test
asserts they agree), so that an installed package, which has no ``permits/``
folder, still knows the schema.  Edit both together.
"""

from __future__ import annotations

from typing import Any

PERMIT_TYPES: tuple[str, ...] = ("new_construction", "extension", "renovation", "demolition")
PERMIT_STATUSES: tuple[str, ...] = ("active", "expired", "revoked", "completed")
DATE_FORMAT = "%Y-%m-%d"
DATE_FORMAT_HUMAN = "YYYY-MM-DD"

#: The columns of a validated register, in order (the geometry last).
COLUMNS: tuple[str, ...] = (
    "permit_id", "permit_type", "issued_on", "valid_until", "permitted_area_m2", "address", "status",
    "geometry",
)

SCHEMA: dict[str, Any] = {
    "title": "changedetect permit register",
    "description": (
        "One row per building permit. The geometry is the permitted footprint of the building "
        "(for a demolition permit: the footprint to demolish). Columns named differently in a "
        "register are mapped onto these names (see permits/README.md)."
    ),
    "version": 1,
    "columns": {
        "permit_id": {
            "type": "string", "required": True, "unique": True,
            "description": "Permit number as issued, e.g. GP-2024-0031.",
        },
        "geometry": {
            "type": "geometry", "required": True, "geometry_types": ["Polygon", "MultiPolygon"],
            "also_accepted": ["Point (a register with locations only: areas are compared instead of footprints)"],
            "description": "The permitted footprint. Invalid polygons are repaired with make_valid (with a warning).",
        },
        "permit_type": {
            "type": "string", "required": True, "enum": list(PERMIT_TYPES),
            "description": "What the permit allows.",
        },
        "issued_on": {
            "type": "date", "required": True, "format": DATE_FORMAT_HUMAN,
            "description": "Day the permit was issued.",
        },
        "valid_until": {
            "type": "date", "required": True, "format": DATE_FORMAT_HUMAN, "minimum": "issued_on",
            "description": "Last day the permit allows work to start; not before issued_on.",
        },
        "permitted_area_m2": {
            "type": "number", "required": True, "exclusive_minimum": 0,
            "description": "Permitted built area in square metres (for demolition: the area to demolish).",
        },
        "address": {
            "type": "string", "required": False, "encoding": "UTF-8",
            "description": "Street address, in Vietnamese (UTF-8).",
        },
        "status": {
            "type": "string", "required": True, "enum": list(PERMIT_STATUSES),
            "description": "Administrative status of the permit.",
        },
    },
    "required": ["permit_id", "geometry", "permit_type", "issued_on", "valid_until", "permitted_area_m2", "status"],
    "crs": {
        "required": True,
        "description": (
            "The register must declare its CRS (GeoPackage/GeoParquet/Shapefile .prj/PostGIS SRID, "
            "or crs= for a CSV with WKT). Any CRS pyproj knows is accepted; matching reprojects the "
            "register onto the footprints' CRS with the best available datum transformation."
        ),
        "examples": ["EPSG:9210", "EPSG:4326", "EPSG:32648"],
        "sample_register": "EPSG:9210",
    },
    "checks": [
        "permit_id is present and unique (later duplicates are rejected)",
        "geometry is present, non-empty and polygonal (or a point); invalid polygons are repaired",
        "issued_on and valid_until are dates in YYYY-MM-DD form",
        "valid_until is not before issued_on",
        "permitted_area_m2 is a number greater than 0",
        "permit_type and status take one of the allowed values (case and spaces are normalised)",
        "text is valid UTF-8",
        "in a geographic CRS (EPSG:4326), coordinates are longitudes and latitudes (projected metres mean a wrong CRS)",
    ],
}

#: Aliases of column names found in real registers -> schema name (compared in lower case).
DEFAULT_COLUMN_MAP: dict[str, str] = {
    # English variants
    "id": "permit_id", "permit_no": "permit_id", "permit_number": "permit_id", "permitid": "permit_id",
    "type": "permit_type", "permittype": "permit_type", "kind": "permit_type",
    "issued": "issued_on", "issue_date": "issued_on", "date_issued": "issued_on", "issued_date": "issued_on",
    "expires": "valid_until", "expiry_date": "valid_until", "expiry": "valid_until",
    "valid_to": "valid_until", "expires_on": "valid_until",
    "area": "permitted_area_m2", "area_m2": "permitted_area_m2", "permitted_area": "permitted_area_m2",
    "addr": "address", "permit_status": "status", "state": "status",
    "geom": "geometry", "the_geom": "geometry", "wkb_geometry": "geometry", "shape": "geometry",
    # Shapefile (DBF) cuts names at 10 characters
    "permit_typ": "permit_type", "valid_unti": "valid_until", "permitted_": "permitted_area_m2",
    "permitted1": "permitted_area_m2",
    # Vietnamese administrative names (giấy phép xây dựng)
    "so_giay_phep": "permit_id", "so_gp": "permit_id", "ma_gp": "permit_id",
    "loai_giay_phep": "permit_type", "loai_gp": "permit_type",
    "ngay_cap": "issued_on", "ngay_cap_phep": "issued_on",
    "ngay_het_han": "valid_until", "han_gp": "valid_until",
    "dien_tich": "permitted_area_m2", "dien_tich_xay_dung": "permitted_area_m2", "dt_xay_dung": "permitted_area_m2",
    "dia_chi": "address", "trang_thai": "status",
}

__all__ = [
    "COLUMNS", "DATE_FORMAT", "DATE_FORMAT_HUMAN", "DEFAULT_COLUMN_MAP", "PERMIT_STATUSES", "PERMIT_TYPES",
    "SCHEMA",
]
