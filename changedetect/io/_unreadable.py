"""Why a vector file cannot be read, in the user's terms (private helper of :mod:`changedetect.io`).

pyogrio passes GDAL's words on: "'x.gpkg' not recognized as being in a supported file format.; It
might help to specify the correct driver explicitly by prefixing the file path with '<DRIVER>:', e.g.
'CSV:path'", or an SQLite statement and "database disk image is malformed".  A user who gave an empty
download, a file of another kind or a GeoPackage cut short by a full disk needs to hear which of these it
is and what to do: not the driver prefix, which would not help.
"""

from __future__ import annotations

import re
from pathlib import Path

#: The vector formats changedetect reads (for messages).
READ_FORMATS = "a GeoPackage, GeoJSON, Shapefile, GeoParquet or CSV"

_DRIVER_ADVICE = re.compile(r";?\s*It might help to specify the correct driver explicitly.*$", re.S)


def vector_reason(path: str | Path, exc: BaseException) -> str:
    """Why ``path`` could not be read (``exc`` is what the reader raised) and what to do, in one clause."""
    text = _DRIVER_ADVICE.sub("", str(exc)).strip().rstrip(";.")
    p = Path(path)
    try:
        size = p.stat().st_size if p.is_file() else None
        with p.open("rb") as f:
            head = f.read(16) if size else b""
    except OSError:
        size, head = None, b""
    if size == 0:
        return "it is empty (0 bytes): copy or export the file again"
    lowered = text.lower()
    if "malformed" in lowered or "not a database" in lowered or "file is truncated" in lowered:
        said = text.split(" failed: ")[-1].split(";")[0].strip()
        return (f"it is cut short or corrupt ({said}): copy or export the file again "
                "(ogrinfo, or QGIS, says whether a copy opens)")
    if "not recognized as being in a supported file format" in lowered:
        kind = "text" if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head) else "binary data"
        if head.startswith(b"SQLite format 3"):
            kind = "an SQLite database without GeoPackage tables"
        found = f" ({size} bytes of {kind})" if size is not None else ""
        return (f"it is not a vector file GDAL can read{found}; give {READ_FORMATS} "
                "(check that the path points at the right file)")
    if "failed to read geojson" in lowered:
        said = text.split(";", 1)[-1].strip() if ";" in text else text
        return f"it is not valid GeoJSON ({said}): fix it or export it again"
    return f"{text}; give {READ_FORMATS}, or export the file again"


__all__ = ["READ_FORMATS", "vector_reason"]
