"""``changedetect run``: the whole chain, from tiles and a permit register to the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from changedetect.cli.options import (
    check_device,
    check_writable,
    cloud_mask_opt,
    format_opt,
    json_opt,
    out_path_opt,
    overwrite_opt,
    pattern_opt,
    previous_opt,
    quiet,
    register_opts,
    said_by_result,
    with_register_options,
)


@click.command(name="run")
@click.argument("tiles", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option("--permits", required=True, type=str,
              help="Permit register: .gpkg/.geojson/.shp/.parquet/.csv or a postgresql:// URL.")
@out_path_opt(help="Output folder (coregistration.json, change_probability.tif, first_seen.tif with 3+ dates, "
                   "before_rgb.tif, after_rgb.tif, footprints.gpkg, violations.gpkg/.csv (and .geojson/.parquet: "
                   "--format), report.html, run.json).")
@click.option("--model", help="Model name or folder (default: the config's, vhr-building).")
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="TOML file mapping one-to-one onto the configuration: a commented example in docs/report.md, section *Configuration file*; every key with its default: python -c \"import changedetect as cd; print(cd.PipelineConfig().to_toml())\".")
@register_opts
@click.option("--parcels", type=str, metavar="PATH_OR_URL",
              help="Cadastral parcel layer (thửa đất: .gpkg/.shp/.geojson/.parquet/.csv or a postgresql:// URL): each "
                   "violation gets its parcel (id, sheet/number, address; parcels crossed). Its layer, table, query, "
                   "crs and column_map: the [parcels] table of --config.")
@previous_opt
@pattern_opt
@cloud_mask_opt
@format_opt
@click.option("--report-lang", metavar="LANG",
              help="The report's language: en (English) or vi (Tiếng Việt); default: [report] lang of --config, en.")
@json_opt
@overwrite_opt
@click.pass_context
def command(ctx: click.Context, tiles: tuple[Path, ...], permits: str, out: Path, model: str | None,
            config_path: Path | None, parcels: str | None, previous: Path | None, pattern: str | None,
            cloud_mask: bool | None, formats: tuple[str, ...],
            report_lang: str | None, as_json: bool, overwrite: bool, **register: Any) -> None:
    """Co-register, detect, vectorise, match and report, in one go.

    TILES is anything `changedetect info` reads: a folder of GeoTIFFs with dates
    in their names, a manifest (.csv/.json), a Sentinel-2 city folder, or
    several dated raster files (a_20240115.tif b_20250120.tif), ...; --pattern
    reads dates written otherwise in the names (15-01-2024).

    With three dates or more, consecutive dates are compared, and each date with
    the date a year or more before it in the same season (shadows fall alike);
    `season_days = false` in the [detect] table of --config compares consecutive
    dates only.

    A whole district fits: a scene larger than 4096 px a side is detected block
    by block ([run] block_px), and a co-registered stack over 2 GiB ([run]
    hold_gib) is written once to scratch GeoTIFFs in OUT, or in [run] spill_dir,
    removed when the run ends (the disk must have room for the whole stack).

    \b
    Example (the bundled sample city; `make demo` runs this, with --overwrite):
      changedetect run sample_tiles --permits permits/sample_register.gpkg \\
          --parcels permits/sample_parcels.gpkg --out demo_out
    \b
    With a configuration file and another model, printing JSON:
      changedetect run tiles/ --permits register.gpkg --out out/ \\
          --config run.toml --model vhr-building --json
    \b
    The violation list also as GeoJSON and GeoParquet (--format: exactly these, and
    violations.gpkg always; default: gpkg and csv; [output] geojson = true in --config):
      changedetect run tiles/ --permits register.gpkg --out out/ \\
          --format csv --format geojson --format parquet
    \b
    The next acquisition, keeping the footprint ids of the previous run:
      changedetect run tiles_2025/ --permits register.gpkg --out out_2025/ --previous out_2024/
    \b
    With the cadastral parcels, so that an unlicensed building gets its parcel and address:
      changedetect run tiles/ --permits register.gpkg --parcels thua_dat.gpkg --out out/
    \b
    A city's register in PostGIS (or, in --config, a [permits] table with the same keys):
      changedetect run tiles/ --permits postgresql://inspector@db:5432/city --table cadastre.permits \\
          --out out/
    """
    import json
    from dataclasses import replace

    from changedetect._pipeline_output import check_apart
    from changedetect.config import PipelineConfig
    from changedetect.pipeline import check_out, run

    config = PipelineConfig.from_toml(config_path) if config_path else PipelineConfig()
    config = with_register_options(config.with_model(model), register)
    if cloud_mask is not None:
        config = replace(config, run=replace(config.run, cloud_mask=cloud_mask))
    if formats:  # an unknown one: ConfigError, before the output folder is made
        config = replace(config, output=config.output.with_formats(formats))
    if report_lang is not None:  # an unknown one: ConfigError, before any work
        config = replace(config, report=replace(config.report, lang=report_lang))
    check_device(config.detect.device, fix='device = "cpu" in the [detect] table of --config')
    check_out(out, overwrite, hint="--overwrite")
    check_apart(out, tiles)
    check_writable(out, folder=True)  # makes OUT's parent: gone again if the run fails (command_cleanup)
    with said_by_result():  # its warnings: the summary's lines (or --json's), not log lines as well
        summary = run(tiles[0] if len(tiles) == 1 else list(tiles), permits=permits, out=out, config=config,
                      overwrite=overwrite, previous=previous, progress=not quiet(ctx) and not as_json,
                      parcels=parcels, pattern=pattern)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=1))
        return
    click.echo(_text(summary.to_dict()))


def _text(s: dict[str, Any]) -> str:
    """The one-screen summary."""
    lines = [
        "",
        f"changedetect run: {len(s['dates'])} dates {s['dates'][0]} .. {s['dates'][-1]}, "
        f"model {s['model']} ({s['model_sha256'][:12]})",
        f"  footprints found:   {s['n_footprints']}"
        + (f" ({s['carried_ids']} ids carried over from the previous run)" if s.get("carried_ids") is not None else "")
        + (f"; {s['same_sun_dropped']} more first seen across seasons dropped (not seen under the same sun)"
           if s.get("same_sun_dropped") else ""),
        f"  violations:         {s['n_violations']}",
    ]
    if s.get("coverage_both_dates") is not None:
        lines.insert(3, f"  coverage:           {100 * s['coverage_both_dates']:.1f} % of the scene has data on both "
                        f"{s['dates'][0]} and {s['dates'][-1]}")
    for u in s.get("unregistered") or []:
        lines.insert(len(lines) - 1, f"  NOT CO-REGISTERED:  {u['date']} could not be aligned on {u['reference']} "
                     f"({u['reason']}) and was compared as it lies: its building edges can read as change; check "
                     "its georeferencing (coregistration.json)")
    for m in s.get("warnings") or []:  # said here only (said_by_result): -q drops log lines
        lines.insert(len(lines) - 1, f"  Warning: {m['message']}")
    for c in s.get("clouds") or []:
        lines.insert(len(lines) - 1, f"  cloud {c['date']}:   {100 * c['cloud_share']:.1f} % of the scene by its SCL"
                     + (", masked as no data" if c["masked"] else ", not masked (--no-cloud-mask): read as data"))
    order = ["unlicensed", "exceeds_permit", "permit_expired", "type_mismatch", "before_permit"]
    counts = s["counts"]
    for status in order + sorted(set(counts) - set(order) - {"permitted"}):
        if status in counts:
            lines.append(f"    {status.replace('_', ' '):<18}{counts[status]:>4}")
    if "permitted" in counts:
        lines.append(f"  permitted:          {counts['permitted']} (footprints within a valid permit; in the "
                     "violation files, not in the report)")
    if s.get("parcels"):
        p = s["parcels"]
        lines.append(f"  parcels:            {p['on_a_parcel']} of {p['violations']} violations on a parcel, "
                     f"{p['across_parcels']} across lots, {p['address_from_parcel']} addressed by their parcel alone")
    t = s["timings_s"]
    lines.append("  time: " + ", ".join(f"{k} {v:.1f} s" for k, v in t.items()) + f" (total {sum(t.values()):.1f} s)")
    paths = s["paths"]
    if "report" in paths:
        lines.append(f"  report:     {paths['report']}")
    lists = [Path(paths[k]) for k in ("violations", "violations_csv", "violations_geojson", "violations_parquet")
             if k in paths]
    lines.append("  violations: " + ", ".join([str(p) for p in lists[:1]] + [p.name for p in lists[1:]]))
    lines.append(f"  provenance: {paths.get('run', '')}")
    return "\n".join(lines)
