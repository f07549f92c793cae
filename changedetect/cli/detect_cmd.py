"""``changedetect detect``: change probability between two dates (or along a series)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from changedetect._detect_series_blocks import BLOCK_PX
from changedetect.cli.options import (
    check_device,
    check_overwrite,
    check_suffix,
    check_writable,
    cloud_mask_opt,
    out_path_opt,
    overwrite_opt,
    pattern_opt,
    quiet,
)

if TYPE_CHECKING:
    from changedetect.detect import DetectConfig


@click.command(name="detect")
@click.argument("before", type=click.Path(path_type=Path, exists=True))
@click.argument("after", required=False, type=click.Path(path_type=Path, exists=True))
@out_path_opt(help="Probability raster to write (float32 Cloud-Optimized GeoTIFF on BEFORE's grid).")
@click.option("--model", "-m", default="vhr-building", show_default=True,
              help="Shipped model name or model folder (see `changedetect models`).")
@click.option("--series", is_flag=True,
              help="BEFORE is a stack of tiles (folder, manifest...): detect between consecutive "
                   "dates (and same-season dates a year apart), keep the highest probability and "
                   "write the date change first appeared.")
@click.option("--consecutive-only", is_flag=True,
              help="With --series: compare consecutive dates only, not also each date with its "
                   "same-season partner a year or more before (see docs/detection.md).")
@click.option("--no-presence-check", is_flag=True,
              help="With --series: the network alone, without the presence check by the model's "
                   "building segmenter (its buildings/ stage; see docs/detection.md).")
@click.option("--no-fill-masked-before", is_flag=True,
              help="With --series: compare a date's no data (its SCL's clouds) as no change, instead of the "
                   "last earlier date with data there (see docs/detection.md).")
@click.option("--tta", is_flag=True, help="Average over flips and a rotation (4x slower, a bit more accurate).")
@click.option("--window", type=click.IntRange(32), help="Window side in pixels (default: the model card's).")
@click.option("--overlap", type=click.IntRange(0), default=64, show_default=True,
              help="Overlap of neighbouring windows in pixels (blended smoothly); less than half the window.")
@click.option("--batch-size", type=click.IntRange(1), default=4, show_default=True, help="Windows per forward pass.")
@click.option("--threshold", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Probability counted as change: in the summary and in the raster's 'threshold' tag, "
                   "which `changedetect vectorize` decides on (default: the model card's).")
@click.option("--device", default="cpu", show_default=True, help="Torch device (cpu, cuda).")
@click.option("--block-px", type=click.IntRange(256), default=BLOCK_PX, show_default=True,
              help="With --series: a scene larger than this many pixels a side is detected block by block "
                   "(each read with the margin its windows need, so that the result is the whole scene's), "
                   "which bounds memory by the block, not the scene; lower it if memory runs short.")
@pattern_opt
@cloud_mask_opt
@overwrite_opt
@click.pass_context
def command(ctx: click.Context, before: Path, after: Path | None, out: Path, model: str, series: bool,
            consecutive_only: bool, no_presence_check: bool, no_fill_masked_before: bool, tta: bool,
            window: int | None, overlap: int, batch_size: int, threshold: float | None, device: str,
            block_px: int, pattern: str | None, cloud_mask: bool | None, overwrite: bool) -> None:
    """Change probability between BEFORE and AFTER rasters, written as a COG on BEFORE's grid.

    detect does NOT co-register: give it dates that `changedetect coregister`
    aligned (or use `changedetect run`, which does both), or a misregistered
    date comes out as change along every edge (the raw sample city: 4.6 % of
    the pixels, 262 footprints; aligned: 1.4 %, 49).  AFTER is read onto
    BEFORE's grid when the two differ (reprojection on the fly, no alignment).
    Windows overlap and are blended smoothly; memory stays bounded whatever
    the size of the scene.  With --series, BEFORE is a stack of tiles and two
    rasters are written: the probability and, beside it, its name with
    _first_seen (out/change_first_seen.tif: the date change first appeared, as
    days since 1970-01-01; NaN where never); a series larger than --block-px
    is detected block by block with the whole scene's statistics.

    \b
    Examples (the sample city, aligned first):
      changedetect coregister sample_tiles --out out/aligned
      changedetect detect out/aligned --series --out out/change.tif
      changedetect detect out/aligned/aligned_20240115.tif out/aligned/aligned_20240712.tif \\
          --out out/change_jan_jul.tif --tta
      changedetect detect a.tif b.tif --out change.tif --model s2-urban --overwrite
    """
    from changedetect.detect import DetectConfig

    check_suffix(out, (".tif", ".tiff"), what="the probability raster",
                 hint=" (a Cloud-Optimized GeoTIFF is written)")
    if consecutive_only and not series:
        raise click.UsageError("--consecutive-only chooses a series' pairs: give it with --series")
    if cloud_mask is not None and not series:
        raise click.UsageError("--cloud-mask/--no-cloud-mask read a series' Sentinel-2 SCL: give it with --series "
                               "(two files are read as they are)")
    if no_presence_check and not series:
        raise click.UsageError("--no-presence-check applies to a series: give it with --series")
    if block_px != BLOCK_PX and not series:
        raise click.UsageError("--block-px applies to a series: give it with --series (a pair is always "
                               "detected strip by strip)")
    if pattern is not None and not series:
        raise click.UsageError("--pattern finds the dates in a series' file names: give it with --series (BEFORE "
                               "and AFTER are compared in that order, whatever their dates)")
    if no_fill_masked_before and not series:
        raise click.UsageError("--no-fill-masked-before applies to a series: give it with --series")
    device = check_device(device)
    try:
        config = DetectConfig(model=model, window=window, overlap=overlap, batch_size=batch_size,
                              tta=tta, threshold=threshold, device=device,
                              season_days=None if consecutive_only else DetectConfig.season_days,
                              presence_check=not no_presence_check,
                              fill_masked_before=not no_fill_masked_before)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if series and after is not None:
        raise click.UsageError("with --series give one TILES argument, not BEFORE and AFTER")
    if not series and after is None:
        raise click.UsageError("give BEFORE and AFTER rasters (or one stack of tiles with --series)")
    _check_files(before, after)
    check_overwrite(out, overwrite)
    check_writable(out)
    if after is None:  # --series (checked above)
        _series(before, out, config, overwrite=overwrite, progress=not quiet(ctx), cloud_mask=cloud_mask is not False,
                block_px=block_px, pattern=pattern, say_warnings=quiet(ctx))
        return
    from changedetect.detect import detect_to_file

    s = detect_to_file(before, after, out, config=config, overwrite=overwrite, progress=not quiet(ctx))
    click.echo(f"Wrote {s.path}: {s.width}x{s.height} px in {s.seconds:.1f} s ({s.mpx_per_s:.2f} Mpx/s), "
               f"{100 * s.share_above:.2f}% of pixels >= {s.threshold:.2f} (model {s.model})"
               + (f"; {100 * s.valid_share:.1f}% of the scene has data on both dates" if s.valid_share < 0.995 else ""))
    if quiet(ctx):  # without -q their log lines said them already
        for line in s.warnings:
            click.echo(f"Warning: {line}", err=True)


def _check_files(before: Path, after: Path | None) -> None:
    """A folder given as BEFORE or AFTER of a pair: say to give it alone with --series, or two files."""
    folders = [(which, p) for which, p in (("BEFORE", before), ("AFTER", after)) if p is not None and p.is_dir()]
    if after is None or not folders:
        return
    named = " and ".join(f"{which} '{p}'" for which, p in folders)
    raise click.UsageError(
        f"{named} {'are folders' if len(folders) > 1 else 'is a folder'}: to compare the dates of a folder of "
        f"tiles give it alone with --series (changedetect detect {folders[0][1]} --series --out change.tif), "
        "or give two raster files (changedetect detect before.tif after.tif --out change.tif)")


def _series(tiles: Path, out: Path, config: DetectConfig, *, overwrite: bool, progress: bool,
            cloud_mask: bool = True, block_px: int = BLOCK_PX, pattern: str | None = None,
            say_warnings: bool = False) -> None:
    from changedetect._detect_inputs import check_stack_bands, heard
    from changedetect._detect_series_blocks import detect_series_to_file, first_seen_path
    from changedetect.io import open_series
    from changedetect.io.clouds import cloud_shares, warn_cloudy
    from changedetect.weights import building_segmenter, load_model

    check_overwrite(first_seen_path(out), overwrite)
    check_writable(first_seen_path(out))
    series = open_series(tiles, pattern=pattern)  # a bad folder fails before the models are loaded
    stack = series.to_stack(cloud_mask=cloud_mask)
    warn_cloudy(cloud_shares(series), masked=cloud_mask)
    loaded = load_model(config.model, device=config.device)
    check_stack_bands(stack, loaded.card, f"tiles '{tiles}'")
    segmenter = building_segmenter(loaded, device=config.device) if config.presence_check else None
    with heard() as said:  # -q (say_warnings) drops their log lines: said after the summary
        s = detect_series_to_file(stack, out, config=config, block_px=block_px, overwrite=overwrite,
                                  progress=progress, model=loaded, segmenter=segmenter)
    click.echo(f"Wrote {s.path} and {s.first_seen_path} ({s.width}x{s.height} px"
               + (f" in {s.blocks} blocks" if s.blocks > 1 else "")
               + f", {s.before} -> {s.after}): {100 * s.share_above:.2f}% of pixels "
               f">= {s.threshold:.2f}; first_seen is days since 1970-01-01")
    for line in said if say_warnings else []:
        click.echo(f"Warning: {line}", err=True)
