"""``changedetect vectorize``: a change probability raster -> building footprints."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from changedetect.cli.options import (
    check_overwrite,
    check_writable,
    out_path_opt,
    overwrite_opt,
    previous_opt,
    quiet,
)

if TYPE_CHECKING:
    from affine import Affine
    from rasterio.crs import CRS

_FILE = click.Path(path_type=Path, exists=True, dir_okay=False)


@click.command(name="vectorize")
@click.argument("prob", type=_FILE)
@out_path_opt(help="Footprints to write: .gpkg, .geojson, .csv (WKT + lon/lat) or .parquet.")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="A footprint must hold a pixel of at least this probability.  [default: the raster's own "
                   "decision threshold, its 'threshold' tag as detect writes it (the model card's); 0.5 "
                   "without one]")
@click.option("--low-threshold", type=click.FloatRange(0, 1, min_open=True), default=0.3, show_default=True,
              help="Pixels of at least this probability join a footprint they touch (hysteresis).")
@click.option("--min-area", "min_area", type=click.FloatRange(0), default=10.0, show_default=True,
              help="Drop footprints smaller than this many m².")
@click.option("--no-regularize", is_flag=True, help="Keep the traced outlines (no squaring to building shapes).")
@click.option("--first-seen", "first_seen", type=_FILE,
              help="Days-since-1970 raster of the first date change was seen (detect --series writes it).")
@click.option("--before", type=_FILE, help="Image before the change (same grid), to tell new/altered/demolished.")
@click.option("--after", type=_FILE, help="Image after the change (same grid).")
@click.option("--buildings", type=_FILE, help="Existing buildings (vector file) before the change.")
@previous_opt
@overwrite_opt
@click.pass_context
def command(ctx: click.Context, prob: Path, out: Path, threshold: float | None, low_threshold: float,
            min_area: float,
            no_regularize: bool, first_seen: Path | None, before: Path | None, after: Path | None,
            buildings: Path | None, previous: Path | None, overwrite: bool) -> None:
    """Turn the change probability raster PROB into building footprints.

    Hysteresis threshold, morphological clean-up, polygons merged across
    processing strips, small ones dropped, outlines simplified and squared.
    Each footprint gets a stable id, its area, mean and max probability, the
    date it was first seen (with --first-seen) and whether it is a new,
    altered or demolished building (with --before/--after or --buildings).
    With --previous, ids are carried over from the previous run's footprints
    by overlap, so a structure keeps its id from run to run.

    Without --before/--after (or --buildings) every footprint is typed `new`,
    and without --first-seen it has no date: match then takes a permitted
    demolition for a type_mismatch and cannot tell before_permit or
    permit_expired.  The first example gives what match needs.

    \b
    Examples:
      changedetect vectorize out/change.tif --first-seen out/change_first_seen.tif \\
          --before out/aligned/aligned_20240115.tif --after out/aligned/aligned_20250120.tif \\
          --out footprints.gpkg
      changedetect vectorize change.tif --out footprints.gpkg
      changedetect vectorize change.tif --first-seen change_first_seen.tif --min-area 20 \\
          --threshold 0.6 --out footprints.parquet --overwrite
      changedetect vectorize change_2025.tif --previous footprints_2024.gpkg --out footprints_2025.gpkg
    """
    from changedetect.io.vectors import vector_format
    from changedetect.vectorize import VectorizeConfig, vectorize_file

    try:
        config = VectorizeConfig(threshold=threshold,
                                 low_threshold=low_threshold if threshold is None else min(low_threshold, threshold),
                                 min_area_m2=min_area, regularize=not no_regularize)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    vector_format(out)
    if (before is None) != (after is None):
        given, missing = ("--before", "--after") if after is None else ("--after", "--before")
        raise click.UsageError(f"{given} needs {missing}: new, altered and demolished are told from both "
                               "images (the co-registered dates, or a run's before_rgb.tif and after_rgb.tif); "
                               f"give {missing} too, or neither")
    check_overwrite(out, overwrite)
    check_writable(out)  # before any input is read (tests/test_cli_errors.py)
    _check_companions(prob, {"--first-seen": first_seen, "--before": before, "--after": after})
    frame = vectorize_file(prob, out, first_seen_path=first_seen, before_path=before, after_path=after,
                           buildings_path=buildings, previous_path=previous, config=config,
                           overwrite=overwrite, progress=not quiet(ctx))
    kinds = ", ".join(f"{k} {v}" for k, v in frame["change_type"].value_counts().items()) or "none"
    total = float(frame["area_m2"].sum()) if len(frame) else 0.0
    carried = f"; {frame.attrs.get('carried_ids', 0)} ids carried over from {previous}" if previous else ""
    click.echo(f"Wrote {out}: {len(frame)} footprints, {total:.0f} m² in all ({kinds}){carried}")
    if len(frame) and before is None and buildings is None:
        click.echo("Warning: change_type not determined (no --before/--after, no --buildings): every footprint is "
                   "typed new, so match takes a permitted demolition or renovation for a type_mismatch; give "
                   "--before and --after (the co-registered first and last dates)", err=True)
    if len(frame) and first_seen is None:
        click.echo("Warning: no --first-seen: the footprints have no first_seen date, so match cannot decide "
                   "before_permit or permit_expired; give --first-seen (detect --series writes "
                   "change_first_seen.tif beside its output)", err=True)


def _check_companions(prob: Path, rasters: dict[str, Path | None]) -> None:
    """Each of ``rasters`` (by its option) must lie on PROB's grid: its CRS, pixel size, origin and size.

    A first-seen raster or an image on another grid was read pixel by pixel against the probability as if
    it lay on it (an image of another place or CRS gave new/altered/demolished from the wrong ground).
    """
    import rasterio
    from rasterio.errors import RasterioIOError

    from changedetect.errors import GeoreferenceError
    from changedetect.io._checks import check_raster
    from changedetect.io._inspect import inspect_raster

    def meta(path: Path) -> tuple[CRS | None, Affine, tuple[int, int], int]:
        try:
            with rasterio.open(path) as src:
                found = src.crs, src.transform, (src.height, src.width), src.count
        except RasterioIOError:
            inspect_raster(path)  # a missing, cut or foreign file: one TileReadError naming it and why
            raise
        check_raster(inspect_raster(path))  # GCPs or RPCs alone, a complex or palette band: as io's reads
        return found

    try:
        crs, transform, shape, _ = meta(prob)
    except RasterioIOError:
        return  # vectorize_file says why PROB cannot be read
    what = {"--first-seen": "the first-seen raster written with PROB (detect --series writes both on one grid)",
            "--before": "images on PROB's grid (the co-registered dates, or a run's before_rgb.tif / after_rgb.tif)",
            "--after": "images on PROB's grid (the co-registered dates, or a run's before_rgb.tif / after_rgb.tif)"}
    for option, path in rasters.items():
        if path is None:
            continue
        other_crs, other_transform, other_shape, count = meta(path)
        if option == "--first-seen" and count != 1:
            raise GeoreferenceError(f"--first-seen '{path}' has {count} bands: it is the first-seen raster "
                                    "(one band of days since 1970) that `changedetect detect --series` writes "
                                    "beside the probability, not an image")
        if option in ("--before", "--after") and count < 2:
            raise GeoreferenceError(f"{option} '{path}' has {count} band: change types need an image's red, green "
                                    "and blue bands; give the co-registered dates or a run's before_rgb.tif / "
                                    "after_rgb.tif (not a probability raster)")
        found = ""
        if crs is not None and other_crs != crs:
            found = f"is in {_crs_name(other_crs)} and PROB '{prob}' in {_crs_name(crs)}"
        elif other_shape != shape:
            found = (f"has {other_shape[1]}x{other_shape[0]} pixels and PROB '{prob}' "
                     f"{shape[1]}x{shape[0]}")
        elif not other_transform.almost_equals(transform, precision=abs(transform.a) * 1e-3):
            found = (f"lies on another grid than PROB '{prob}' (origin {other_transform.c:.1f}, "
                     f"{other_transform.f:.1f} and pixel {other_transform.a:g} m against {transform.c:.1f}, "
                     f"{transform.f:.1f} and {transform.a:g} m)")
        if found:
            raise GeoreferenceError(f"{option} '{path}' {found}: give {what[option]}")


def _crs_name(crs: CRS | None) -> str:
    """``EPSG:32648`` for a registered CRS, else its name (:func:`changedetect.io._checks.crs_name`); 'no
    CRS' for None."""
    from changedetect.io._checks import crs_name

    return "no CRS" if crs is None else crs_name(crs)
