"""``changedetect match``: footprints x permit register -> violations."""

from __future__ import annotations

from pathlib import Path

import click

from changedetect.cli.options import (
    check_overwrite,
    check_writable,
    name_value_pairs,
    out_path_opt,
    overwrite_opt,
    said_by_result,
)


def _lot_ratio(_ctx: click.Context, _param: click.Parameter, value: str) -> float | None:
    """``--lot-ratio``: a number of at least 1, or ``off`` (None: every outline is the building's)."""
    if value.strip().lower() in ("off", "none", "false"):
        return None
    try:
        ratio = float(value)
    except ValueError:
        ratio = float("nan")
    if not 1 <= ratio < float("inf"):
        raise click.BadParameter(f"{value!r}: give a ratio of at least 1 (e.g. 1.5), or 'off'")
    return ratio


@click.command(name="match")
@click.argument("footprints", type=click.Path(path_type=Path, exists=True))
@click.option("--permits", "register", required=True,
              help="Permit register: .gpkg, .geojson, .shp, .parquet, .csv or postgresql://user@host:port/db.")
@out_path_opt(help="Violations to write: .gpkg, .geojson, .csv (WKT + lon/lat) or .parquet.")
@click.option("--layer", help="Layer of a multi-layer register file.")
@click.option("--table", help="PostGIS table ([schema.]name) holding the register.")
@click.option("--query", help="PostGIS SELECT with %(name)s placeholders (values from --param).")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="A query parameter (repeatable).")
@click.option("--column-map", "column_map", multiple=True, metavar="THEIRS=OURS",
              help="Map a register column onto a schema name, e.g. --column-map so_gp=permit_id (repeatable).")
@click.option("--permits-crs", "permits_crs", help="CRS of a register that declares none (CSV with WKT), e.g. EPSG:9210.")
@click.option("--permits-timezone", "permits_timezone", metavar="ZONE",
              help="PostGIS register: the city's time zone (e.g. Asia/Ho_Chi_Minh); a timestamptz permit date "
                   "is its day there, not in the server's zone.")
@click.option("--lenient", is_flag=True, help="Keep the good permits and set bad rows aside instead of failing.")
@click.option("--rejects", type=click.Path(path_type=Path),
              help="Where --lenient writes rejected rows [default: OUT's folder, <stem>_rejects.gpkg].")
@click.option("--tolerance-m2", type=click.FloatRange(0), default=10.0, show_default=True,
              help="Built area outside the permitted footprint tolerated (m²).")
@click.option("--tolerance-pct", type=click.FloatRange(0), default=10.0, show_default=True,
              help="The same, in % of the permitted area (both must be exceeded).")
@click.option("--edge-tolerance", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Positional tolerance of outlines (m): exceeds_permit counts only what lies beyond the "
                   "permitted footprint grown by this much.  For footprints traced from imagery give its "
                   "pixel size, e.g. 0.5 (`changedetect run` does).")
@click.option("--min-overlap", type=click.FloatRange(0, 1, min_open=True), default=0.1, show_default=True,
              help="Least overlap (fraction of the smaller area) for a permit to cover a footprint.")
@click.option("--attach-extensions/--no-attach-extensions", default=True, show_default=True,
              help="Measure a change that no permit covers but that touches the outline of a valid extension "
                   "permit against that permit (exceeds_permit) rather than calling it unlicensed.")
@click.option("--lot-ratio", default="1.5", show_default=True, metavar="RATIO|off", callback=_lot_ratio,
              help="A permit whose outline is more than RATIO times its permitted_area_m2 is drawn as its lot, "
                   "not as the building: the building's area is also compared with the permitted area.  "
                   "'off' judges every outline as the building's.")
@overwrite_opt
def command(footprints: Path, register: str, out: Path, layer: str | None, table: str | None,
            query: str | None, params: tuple[str, ...], column_map: tuple[str, ...], permits_crs: str | None,
            permits_timezone: str | None, lenient: bool, rejects: Path | None, tolerance_m2: float, tolerance_pct: float,
            edge_tolerance: float, min_overlap: float, attach_extensions: bool, lot_ratio: float | None,
            overwrite: bool) -> None:
    """Match FOOTPRINTS against a permit register: one status per footprint.

    Statuses: permitted, unlicensed, exceeds_permit, permit_expired,
    before_permit, type_mismatch; each row carries the matched permit_ids,
    overlap_ratio, excess_area_m2 and a one-line reason.  The register may be
    in any CRS (e.g. VN-2000 EPSG:9210); it is reprojected with the datum shift.

    \b
    Examples:
      changedetect match footprints.gpkg --permits permits/sample_register.gpkg --out violations.gpkg
      changedetect match footprints.gpkg --permits register.csv --permits-crs EPSG:9210 --lenient \\
          --out violations.csv
      changedetect match footprints.gpkg --permits postgresql://inspector@localhost:5432/city \\
          --query "SELECT * FROM permits WHERE district = %(d)s" --param d=12 --out violations.gpkg
    """
    from changedetect.io.vectors import vector_format
    from changedetect.match import STATUSES, MatchConfig, match_to_file

    config = MatchConfig(tolerance_m2=tolerance_m2, tolerance_pct=tolerance_pct, edge_tolerance_m=edge_tolerance,
                         min_overlap_ratio=min_overlap, attach_to_extensions=attach_extensions,
                         lot_ratio=lot_ratio)
    vector_format(out)
    check_overwrite(out, overwrite)
    check_writable(out)
    if rejects is not None and not lenient:
        raise click.UsageError("--rejects is where --lenient writes the rows it sets aside: add --lenient, "
                               "or drop --rejects (without --lenient a bad row stops the match)")
    if lenient and rejects is None:
        rejects = out.with_name(f"{out.stem}_rejects.gpkg")
    if rejects is not None:
        vector_format(rejects)
        check_overwrite(rejects, overwrite)
        check_writable(rejects)
    with said_by_result():  # a register far away, empty or of lots: the Warning: lines below, not log lines too
        violations = match_to_file(
            footprints, register, out, config=config, strict=not lenient, rejects_path=rejects if lenient else None,
            overwrite=overwrite, layer=layer, table=table, query=query,
            params=name_value_pairs(params, "--param") or None,
            column_map=name_value_pairs(column_map, "--column-map") or None, crs=permits_crs,
            timezone=permits_timezone,
        )
    counts = violations["status"].value_counts()
    click.echo(f"Wrote {out}: {len(violations)} footprints")
    _warn_untyped(footprints)  # after the match: a refused register is one line, not this warning and it
    if len(violations) and ("first_seen" not in violations or violations["first_seen"].isna().all()):
        click.echo(f"Warning: the footprints in '{footprints}' have no first_seen date: before_permit and "
                   "permit_expired could not be decided (each footprint was judged as if built within its permit's "
                   "dates); vectorize with --first-seen, as changedetect run does", err=True)
    for said in violations.attrs.get("warnings", []):  # said here only (said_by_result): -q drops log lines
        click.echo(f"Warning: {said['message']}", err=True)
    for status in STATUSES:
        click.echo(f"  {status:<15} {int(counts.get(status, 0))}")
    if lenient and rejects is not None and rejects.exists():
        click.echo(f"Rejected permit rows written to {rejects}")


def _warn_untyped(footprints: Path) -> None:
    """One warning when the footprints have no ``change_type``: match takes every one as new (a 'Warning:'
    line, as the command's other warnings about its result: -q keeps them)."""
    from changedetect.io.vectors import vector_columns

    columns = vector_columns(footprints)
    looks_like_register = columns is not None and "permit_id" in columns and "footprint_id" not in columns
    if columns is not None and "change_type" not in columns and not looks_like_register:  # that one is refused
        click.echo(f"Warning: footprints '{footprints}' have no change_type column: every footprint is taken as "
                   "new, so a permitted demolition or renovation can come out type_mismatch; add a change_type "
                   "column (new, altered or demolished), as `changedetect vectorize` and `changedetect run` write "
                   "it", err=True)
