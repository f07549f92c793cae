"""``changedetect report``: the inspectors' self-contained HTML report."""

from __future__ import annotations

from pathlib import Path

import click

from changedetect.cli.options import check_overwrite, check_writable, json_opt, overwrite_opt


@click.command(name="report")
@click.argument("run_dir", required=False, type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--violations", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Violations file (GeoPackage, GeoJSON, ...) from `changedetect match` or `run`.")
@click.option("--before", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Raster of the first date (aligned), for the image chips.")
@click.option("--after", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="Raster of the last date (aligned), for the overview and the chips.")
@click.option("--out", "-o", "out", type=click.Path(path_type=Path),
              help="The .html file to write (default: RUN_DIR/report.html).")
@click.option("--title", help="Heading of the report.")
@click.option("--include-permitted", is_flag=True, help="Also give buildings with a valid permit a card.")
@click.option("--lang", metavar="LANG",
              help="The report's language: en (English) or vi (Tiếng Việt); default: the run's "
                   "(RUN_DIR/run.json's [report] lang), else en.")
@json_opt
@overwrite_opt
def command(run_dir: Path | None, violations: Path | None, before: Path | None, after: Path | None,
            out: Path | None, title: str | None, include_permitted: bool, lang: str | None, as_json: bool,
            overwrite: bool) -> None:
    """Write ONE self-contained HTML file for inspectors (works offline, prints well).

    Either from a run directory written by `changedetect run` (it holds
    violations.gpkg, before_rgb.tif, after_rgb.tif and run.json), or from a
    violations file and the before/after rasters.

    \b
    Examples:
      changedetect report demo_out --overwrite
      changedetect report demo_out --lang vi --out demo_out/bao_cao.html
      changedetect report --violations out/violations.gpkg \\
          --before out/before_rgb.tif --after out/after_rgb.tif --out review.html
    """
    import dataclasses
    import json

    from changedetect.config import ReportConfig
    from changedetect.report import report_from_run, write_report

    if lang is None:  # re-rendering a run keeps its language
        lang = _run_lang(run_dir) if run_dir is not None else "en"
    config = ReportConfig(include_permitted=include_permitted, lang=lang)  # an unknown lang: ConfigError
    if title:
        config = dataclasses.replace(config, title=title)
    if run_dir is not None:
        target = out if out is not None else run_dir / "report.html"
    elif violations is None or out is None:
        raise click.UsageError("give a RUN_DIR, or --violations and --out (with --before/--after)")
    else:
        target = out
    check_overwrite(target, overwrite)
    check_writable(target)
    if run_dir is not None:
        path = report_from_run(run_dir, out_path=out, config=config, overwrite=overwrite)
    else:
        path = write_report(violations, out_path=target, before=before, after=after, config=config,
                            overwrite=overwrite)
    size = path.stat().st_size
    if as_json:
        click.echo(json.dumps({"report": str(path), "bytes": size}))
    else:
        click.echo(f"Report: {path} ({size / 1e6:.1f} MB, self-contained; open it in any browser)")


def _run_lang(run_dir: Path) -> str:
    """The language ``run_dir``'s report was written in (``run.json``'s ``config.report.lang``), else
    ``en`` (a run.json from before languages, or none)."""
    import json

    try:
        run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        lang = run["config"]["report"]["lang"]
    except (OSError, ValueError, KeyError, TypeError):
        return "en"
    return lang if isinstance(lang, str) else "en"
