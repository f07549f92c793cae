"""``changedetect coregister``: align every date onto one grid and write aligned COGs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from changedetect.cli.options import (
    check_overwrite,
    check_writable,
    cloud_mask_opt,
    out_path_opt,
    overwrite_opt,
    pattern_opt,
    quiet,
    said_by_result,
)


@click.command(name="coregister", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("tiles", nargs=-1, required=True, type=click.Path(path_type=Path))
@out_path_opt(help="Output folder: one aligned COG per date and coregistration.json.")
@click.option("--reference", default=None, metavar="DATE_OR_PATH",
              help="Reference date (YYYY-MM-DD) or one of its files; default the first date.")
@click.option("--crs", default=None, metavar="EPSG:N", help="Output CRS; default the reference date's.")
@click.option("--resolution", type=float, default=None, metavar="METRES",
              help="Output pixel size in metres; default the reference date's finest band.")
@click.option("--no-local", is_flag=True, help="Apply one global shift per date, no local field.")
@click.option("--no-radiometric", is_flag=True, help="Do not normalise gain and offset per band.")
@pattern_opt
@cloud_mask_opt
@overwrite_opt
@click.pass_context
def command(ctx: click.Context, tiles: tuple[Path, ...], out: Path, reference: str | None,
            crs: str | None, resolution: float | None, no_local: bool, no_radiometric: bool,
            pattern: str | None, cloud_mask: bool | None, overwrite: bool) -> None:
    """Co-register a time series of tiles: one grid, sub-pixel alignment, radiometric normalisation.

    TILES takes the same inputs as `changedetect info`: a folder of dated
    GeoTIFF/COG tiles, a manifest, a Sentinel-2 band-per-file city folder, a
    STAC item, or several raster files.  Every date (every band, whatever its
    CRS and resolution) is read onto the reference grid, shifted sub-pixel onto
    the reference date (a global shift and a smooth local field), normalised
    per band, and written as OUT/aligned_YYYYMMDD.tif (float32 COG, same grid
    and shape for every date) with OUT/coregistration.json (the quality report).
    A date that cannot be registered is written unshifted, with a warning.

    \b
    Examples:
      changedetect coregister sample_tiles --out out/aligned
      changedetect coregister ../shared/data/oscd/images/paris --out out/paris --resolution 10
      changedetect coregister a_20240101.tif b_20240301.tif --out out/ab --reference 2024-03-01
      changedetect coregister tiles/ --out out/utm --crs EPSG:32648 --resolution 0.5 --no-local
    """
    from changedetect._pipeline_output import check_apart
    from changedetect._registration.cli_tool import coregister_files

    check_overwrite(out, overwrite)
    check_apart(out, tiles, what="its aligned_YYYYMMDD.tif COGs")
    check_writable(out, folder=True)
    source: Any = [str(p) for p in tiles] if len(tiles) > 1 else tiles[0]
    with said_by_result():  # a date not registered: its Warning: line below, not a log line too
        report, written = coregister_files(
            source, out, reference=reference, crs=crs, resolution=resolution, local=not no_local,
            radiometric=not no_radiometric, pattern=pattern, overwrite=overwrite, progress=not quiet(ctx),
            cloud_mask=cloud_mask is not False,
        )
    for entry in report.dates:
        click.echo(_summary_line(entry, metres=report.crs is not None))
    for line in report.warnings:
        click.echo(f"Warning: {line}", err=True)
    click.echo(f"Wrote {len(written)} aligned COG(s) and {out / 'coregistration.json'}")


def _summary_line(entry: Any, *, metres: bool = True) -> str:
    """One date's line; ``metres``: the grid has a CRS (a PNG pair's shift in metres would be its pixels)."""
    if entry.status == "reference":
        return f"{entry.date}  reference"
    if entry.status == "unreliable":
        return f"{entry.date}  UNRELIABLE: not registered (written unshifted)"
    dx, dy = entry.shift_px
    east, north = entry.shift_m
    rmse = "n/a" if entry.residual_rmse_px is None else f"{entry.residual_rmse_px:.3f} px"
    gains = list(entry.gain.values())
    gain = f"  gain {min(gains):.3f}..{max(gains):.3f}" if gains else ""
    ground = f" ({east:+.2f} m E, {north:+.2f} m N)" if metres else ""
    return (f"{entry.date}  shift {dx:+.2f}, {dy:+.2f} px{ground}  "
            f"{entry.status}  tie points {entry.tie_points_kept}/{entry.tie_points_found}  "
            f"residual {rmse}{gain}")
