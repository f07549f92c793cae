"""The nightly job's published files (private): the night's lists, the open register and the
night's HTML reports in ``OUT/``, their dates typed as dates (:func:`published`).

What they hold is :mod:`changedetect._merge`'s (the register after the night, the violations withdrawn);
this module only writes it, each file atomically, so that a rerun of the night writes the same bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from changedetect._state import checkpoint
from changedetect.config import LIST_FORMATS, OutputConfig, ReportConfig

if TYPE_CHECKING:
    import geopandas as gpd

log = logging.getLogger("changedetect._merge")  # (the merge's logger, as before this module)

#: The register's date columns: ISO text in memory and in the state (compared as text), DATE fields in
#: the published files (:func:`published`), as ``changedetect run``'s ``first_seen`` and ``before_date``.
DATE_COLUMNS = ("night", "before", "after", "first_seen", "before_date", "withdrawn", "status_since", "decided_on")
#: the lists' formats without an ``[output]`` table (:attr:`changedetect.config.OutputConfig.formats`)
DEFAULT_FORMATS = OutputConfig().formats


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


def output_paths(out_dir: Path, night: str, formats: Iterable[str] = DEFAULT_FORMATS, *,
                 withdrawn: bool = False) -> dict[str, Path]:
    """The night's lists, key -> file, in the order they are written and printed: ``night_<format>``
    (``violations-<night>``), ``open_<format>`` (``open_violations``: every format but the CSV, as
    ever) and, on a night that withdrew some, ``withdrawn_<format>`` (``withdrawn-<night>``), for the
    GeoPackage and each of ``formats`` (:attr:`changedetect.config.OutputConfig.formats`)."""
    asked = [f for f in LIST_FORMATS if f == "gpkg" or f in set(formats)]
    stems = [("night", f"violations-{night}"), ("open", "open_violations")]
    stems += [("withdrawn", f"withdrawn-{night}")] if withdrawn else []
    return {f"{key}_{f}": out_dir / f"{stem}.{f}" for key, stem in stems for f in asked
            if not (key == "open" and f == "csv")}


def write_outputs(violations: gpd.GeoDataFrame, out_dir: Path, night: str,
                  withdrawn: gpd.GeoDataFrame | None = None, *,
                  formats: Iterable[str] = DEFAULT_FORMATS) -> dict[str, str]:
    """``violations-<night>`` (first seen tonight, those open: ``violations``' rows of the night; a night done
    again lists one of its own rows it withdraws in ``withdrawn-<night>`` only), ``open_violations`` and, when
    violations were withdrawn tonight, ``withdrawn-<night>`` (:func:`~changedetect._merge.withdraw_unconfirmed`; every
    run of the night's: :func:`~changedetect._merge.withdrawn_table`), each as a GeoPackage and in the
    other ``formats`` asked (:func:`output_paths`: CSV, GeoJSON in EPSG:4326, GeoParquet in the
    register's CRS; dates as dates, :func:`published`), each file atomically; then the night's and the
    open register's files in a format no longer asked go (:func:`remove_unasked`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = output_paths(out_dir, night, formats, withdrawn=withdrawn is not None and len(withdrawn) > 0)
    _write(violations, withdrawn, night, paths)
    remove_unasked(out_dir, night, formats)
    return {k: str(v) for k, v in paths.items()}


def restore_outputs(violations: gpd.GeoDataFrame, out_dir: Path, night: str,
                    withdrawn: gpd.GeoDataFrame | None = None, *,
                    formats: Iterable[str] = DEFAULT_FORMATS) -> dict[str, str]:
    """A night already committed, run again: its lists that are missing are written again (the others are
    left as they are: a GeoPackage written again differs in its timestamps), and those of a format no
    longer asked go (:func:`remove_unasked`)."""
    paths = output_paths(out_dir, night, formats, withdrawn=withdrawn is not None and len(withdrawn) > 0)
    missing = {k: p for k, p in paths.items() if not p.is_file()}
    if missing:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write(violations, withdrawn, night, missing, checkpoints=False)
    remove_unasked(out_dir, night, formats)
    return {k: str(v) for k, v in paths.items()}


def _write(violations: gpd.GeoDataFrame, withdrawn: gpd.GeoDataFrame | None, night: str, paths: dict[str, Path],
           *, checkpoints: bool = True) -> None:
    """Write the lists ``paths`` names (:func:`output_paths`' keys): the night's first, the open register
    last; the GeoPackages with QGIS's style by status."""
    from changedetect.io.vectors import write_vector
    from changedetect.report import violations_qml

    style = violations_qml()  # the GeoPackages open in QGIS coloured by status
    rows = {"night": violations[violations["night"] == night], "withdrawn": withdrawn, "open": violations}
    for key, frame in rows.items():
        mine = {k: p for k, p in paths.items() if k.startswith(f"{key}_")}
        if mine and frame is not None:
            frame = published(frame)
        for name, path in mine.items():
            gpkg = name.endswith("_gpkg")
            write_vector(frame, path, overwrite=True, qgis_style=style if gpkg else None,
                         empty_geometry_type="Polygon")
            if checkpoints and key == "night" and gpkg:
                checkpoint("night gpkg written")
        if checkpoints and key == "night":
            checkpoint("night csv written")  # (and its other formats)


def remove_unasked(out_dir: Path, night: str, formats: Iterable[str]) -> None:
    """Remove the night's lists (``violations-<night>``, ``withdrawn-<night>``) and the open register in a
    format not asked any more (a CSV with its ``.prj`` and ``.csvt``): a folder never holds a GeoJSON of
    another register than its GeoPackage.  Earlier nights' files stay as they were written."""
    from changedetect.io.vectors import remove_vector

    for fmt in set(LIST_FORMATS) - {"gpkg", *formats}:
        stems = [f"violations-{night}", f"withdrawn-{night}"] + (["open_violations"] if fmt != "csv" else [])
        for stem in stems:
            remove_vector(out_dir / f"{stem}.{fmt}")


def write_night_reports(violations: gpd.GeoDataFrame, results: list[dict[str, Any]], out_dir: Path,
                        night: str, withdrawn: gpd.GeoDataFrame | None = None,
                        report: ReportConfig | None = None) -> dict[str, str]:
    """``report-<night>-<area>.html`` per area with violations first seen, or withdrawn, tonight.

    The chips come from the area's latest pair of the night (its ``before_rgb.tif`` /
    ``after_rgb.tif``); the report's date line is the night, so a rerun writes the same file.
    Violations withdrawn tonight (:mod:`changedetect._merge`'s) are named in its header, so that
    an inspector holding an earlier night's report learns which of its cards no longer stand, and so are
    those whose status tonight's permit register changed (:mod:`changedetect._nightly_rematch`).  Its
    coverage section is the area's pairs' of the night, with what their runs warned of flagged at its top
    (a register with no permit near the footprints: :func:`changedetect._nightly_coverage.report_coverage`).
    ``report`` is the run config's ``[report]`` table (title, ``max_cards``, language), as
    ``changedetect run`` reads it; the night's own header lines are in its language too.
    """
    from changedetect._nightly_coverage import report_coverage
    from changedetect._nightly_rematch import changed_tonight
    from changedetect._report_text import term, text
    from changedetect._withdraw_masked import reasons, said
    from changedetect.report import write_report

    report = report or ReportConfig()
    lang = report.lang
    t = text(lang)
    tonight = violations[violations["night"] == night]
    changed = violations[violations["violation_id"].astype(str).isin(changed_tonight(violations, night))]
    paths = {}
    for r in results:
        if r["error"] or not r["runs"]:
            continue
        area, pair = r["area"], max(r["runs"], key=lambda p: p["after"])
        new = tonight[tonight["area"] == area]
        gone = [] if withdrawn is None or not len(withdrawn) else \
            withdrawn.loc[withdrawn["area"] == area, "violation_id"].astype(str).tolist()
        moved = changed[changed["area"] == area]  # a status the register changed tonight
        if new.empty and not gone and moved.empty:
            continue
        run_dir = Path(pair["run_dir"])
        path = out_dir / f"report-{night}-{area}.html"
        info = {"area": area, "night": night, "before": pair["before"], "after": pair["after"],
                "generated": t["night.generated"].format(night=night)}
        if gone and withdrawn is not None:
            kinds = reasons(withdrawn[withdrawn["area"] == area])
            why = said({term(lang, "withdrawn", k): n for k, n in kinds.items()})
            info["withdrawn tonight"] = t["night.withdrawn"].format(n=len(gone), ids=", ".join(gone), why=why,
                                                                    night=night)
        if len(moved):
            items = ", ".join(t["night.changed_item"].format(id=v, before=term(lang, "status", a),
                                                             after=term(lang, "status", b))
                              for v, a, b in zip(moved["violation_id"], moved["previous_status"], moved["status"],
                                                 strict=True))
            info["status changed tonight"] = t["night.changed"].format(n=len(moved), items=items)
        write_report(new, out_path=path, before=run_dir / "before_rgb.tif", after=run_dir / "after_rgb.tif",
                     run_info=info, overwrite=True, config=report, coverage=report_coverage(r["runs"]))
        paths[f"report_{area}"] = str(path)
    return paths


__all__ = ["DATE_COLUMNS", "DEFAULT_FORMATS", "output_paths", "published", "remove_unasked", "restore_outputs",
           "write_night_reports", "write_outputs"]
