"""The nightly job's published files (private): the night's lists, the open register and the
night's HTML reports in ``OUT/``, their dates typed as dates (:func:`published`).

What they hold is :mod:`changedetect._merge`'s (the register after the night, the violations withdrawn);
this module only writes it, each file atomically, so that a rerun of the night writes the same bytes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from changedetect._state import checkpoint

if TYPE_CHECKING:
    import geopandas as gpd

log = logging.getLogger("changedetect._merge")  # (the merge's logger, as before this module)

#: The register's date columns: ISO text in memory and in the state (compared as text), DATE fields in
#: the published files (:func:`published`), as ``changedetect run``'s ``first_seen`` and ``before_date``.
DATE_COLUMNS = ("night", "before", "after", "first_seen", "before_date", "withdrawn")


def published(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` with its :data:`DATE_COLUMNS` as dates (``datetime64`` at midnight, which
    :func:`~changedetect.io.vectors.write_vector` writes as GeoPackage ``DATE`` fields, ``Date`` in a
    CSV's ``.csvt`` and the same ``YYYY-MM-DD`` text in the CSV; an empty list's too) and ``violation_id``
    as text.  Whatever the state held them as: ISO text (every version so far), or dates.  A column with a
    value that is no day is left as it is."""
    out = frame.copy()
    for col in [c for c in DATE_COLUMNS if c in out]:
        s = out[col].where(out[col].astype(str).str.strip() != "")  # '' (never written so far): no date
        days = pd.to_datetime(s, format="ISO8601", errors="coerce")
        if (bad := s.notna() & days.isna()).any():
            log.warning("the register's column %s holds a value that is not a date (%r): written as text", col,
                        s[bad].iloc[0])
            continue
        if days.dt.tz is not None or (days.dropna() != days.dropna().dt.normalize()).any():
            continue  # a time of day: not ours to cut
        out[col] = days  # whole days: write_vector's DATE (an empty or all-null column too)
    if "violation_id" in out:  # (a night of no violation had none to type it: Real)
        out["violation_id"] = out["violation_id"].astype(object).where(out["violation_id"].notna(), None)
    return out


def write_outputs(violations: gpd.GeoDataFrame, out_dir: Path, night: str,
                  withdrawn: gpd.GeoDataFrame | None = None) -> dict[str, str]:
    """``violations-<night>.gpkg``/``.csv`` (first seen tonight), ``open_violations.gpkg``, and
    ``withdrawn-<night>.gpkg``/``.csv`` when earlier violations were withdrawn tonight
    (:func:`~changedetect._merge.withdraw_unconfirmed`; every run of the night's:
    :func:`~changedetect._merge.withdrawn_table`)."""
    from changedetect.io.vectors import write_vector
    from changedetect.report import violations_qml

    style = violations_qml()  # the GeoPackages open in QGIS coloured by status
    out_dir.mkdir(parents=True, exist_ok=True)
    tonight = published(violations[violations["night"] == night])
    violations = published(violations)
    paths = {
        "night_gpkg": out_dir / f"violations-{night}.gpkg",
        "night_csv": out_dir / f"violations-{night}.csv",
        "open_gpkg": out_dir / "open_violations.gpkg",
    }
    write_vector(tonight, paths["night_gpkg"], overwrite=True, qgis_style=style)
    checkpoint("night gpkg written")
    write_vector(tonight, paths["night_csv"], overwrite=True)
    checkpoint("night csv written")
    if withdrawn is not None and len(withdrawn):
        withdrawn = published(withdrawn)
        paths["withdrawn_gpkg"] = out_dir / f"withdrawn-{night}.gpkg"
        paths["withdrawn_csv"] = out_dir / f"withdrawn-{night}.csv"
        write_vector(withdrawn, paths["withdrawn_gpkg"], overwrite=True, qgis_style=style)
        write_vector(withdrawn, paths["withdrawn_csv"], overwrite=True)
    write_vector(violations, paths["open_gpkg"], overwrite=True, qgis_style=style)
    return {k: str(v) for k, v in paths.items()}


def write_night_reports(violations: gpd.GeoDataFrame, results: list[dict[str, Any]], out_dir: Path,
                        night: str, withdrawn: gpd.GeoDataFrame | None = None) -> dict[str, str]:
    """``report-<night>-<area>.html`` per area with violations first seen, or withdrawn, tonight.

    The chips come from the area's latest pair of the night (its ``before_rgb.tif`` /
    ``after_rgb.tif``); the report's date line is the night, so a rerun writes the same file.
    Violations withdrawn tonight (:mod:`changedetect._merge`'s) are named in its header, so that
    an inspector holding an earlier night's report learns which of its cards no longer stand.
    """
    from changedetect._withdraw_masked import reasons, said
    from changedetect.report import write_report

    tonight = violations[violations["night"] == night]
    paths = {}
    for r in results:
        if r["error"] or not r["runs"]:
            continue
        area, pair = r["area"], max(r["runs"], key=lambda p: p["after"])
        new = tonight[tonight["area"] == area]
        gone = [] if withdrawn is None or not len(withdrawn) else \
            withdrawn.loc[withdrawn["area"] == area, "violation_id"].astype(str).tolist()
        if new.empty and not gone:
            continue
        run_dir = Path(pair["run_dir"])
        path = out_dir / f"report-{night}-{area}.html"
        info = {"area": area, "night": night, "before": pair["before"], "after": pair["after"],
                "generated": f"the night of {night}"}
        if gone and withdrawn is not None:
            why = said(reasons(withdrawn[withdrawn["area"] == area]))
            info["withdrawn tonight"] = f"{len(gone)}: {', '.join(gone)} ({why}; withdrawn-{night}.csv gives the reasons)"
        write_report(new, out_path=path, before=run_dir / "before_rgb.tif", after=run_dir / "after_rgb.tif",
                     run_info=info, overwrite=True)
        paths[f"report_{area}"] = str(path)
    return paths


__all__ = ["DATE_COLUMNS", "published", "write_night_reports", "write_outputs"]
