"""``changedetect nightly``: the incremental, idempotent, crash-safe nightly job."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from pathlib import Path
from typing import Any

import click

from changedetect.cli.options import (
    check_device,
    check_writable,
    json_opt,
    register_opts,
    said_by_result,
    with_register_options,
)


@click.command(name="nightly")
@click.option("--catalog", required=True, type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="Folder receiving acquisitions: one sub-folder per area, or files named <area>_<date>.tif.")
@click.option("--permits", required=True, type=str, help="Permit register file or postgresql:// URL.")
@click.option("--parcels", type=str, metavar="PATH_OR_URL",
              help="Cadastral parcel layer (file or postgresql:// URL): every violation gets its parcel (id, "
                   "sheet/number, address; parcels crossed) in the night's lists, the open register and the "
                   "report. Its layer, table, query, crs and column_map: the [parcels] table of --config.")
@click.option("--decisions", type=str, metavar="PATH_OR_URL",
              help="The inspectors' decisions (CSV, GeoPackage or other table, or postgresql://...#table): "
                   "violation_id, decision (confirmed, false_alarm, resolved; xác nhận, báo động nhầm, đã xử lý), "
                   "decided_on, inspector, note. A false alarm or a resolved violation is withdrawn and not opened "
                   "again; a confirmed one carries its decision.")
@click.option("--state", "state", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="State folder (lock, what was processed, cumulative violations).")
@click.option("--out", "-o", "out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Output folder: violations-YYYY-MM-DD.gpkg/.csv, open_violations.gpkg, and "
                   "withdrawn-YYYY-MM-DD.gpkg/.csv on a night that withdraws earlier violations; each "
                   "also .geojson/.parquet when the --config's [output] table asks.")
@click.option("--night", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="The night to process (default: today, by this machine's local clock); acquisitions dated "
                   "later wait.")
@click.option("--scheduler", help="Address of a running Dask scheduler (default: a LocalCluster).")
@click.option("--workers", type=click.IntRange(min=1),
              help="Areas processed at once on the LocalCluster.  [default: 2, or 1 for a night of one area]")
@click.option("--model", help="Model name or folder (default: the config's, vhr-building).")
@click.option("--config", "config_path", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="TOML configuration (as for `changedetect run`).")
@register_opts
@json_opt
def command(catalog: Path, permits: str, state: Path, out: Path, night: dt.datetime | None,
            scheduler: str | None, workers: int | None, model: str | None, config_path: Path | None,
            as_json: bool, parcels: str | None = None, decisions: str | None = None, **register: Any) -> None:
    """Process what arrived in the catalog since the last run, area by area, on Dask.

    Writes the violations first seen tonight and updates the cumulative register of
    open violations (stable ids).  Running it twice adds nothing; killed at any
    moment, the next run finishes the night exactly.  Exit 2 when an area failed (it is
    retried next night), 3 when another run holds the lock, 130 after Ctrl-C and 143 after
    SIGTERM (`systemctl stop`, `timeout`): the night is then not committed, and the next run
    does it.  An unreadable acquisition
    (one that fails a cheap read of its header and corner pixels), or a reference that
    vanished, is printed as a WARNING, left out of the pairs, and the area goes on (exit 0).
    A night with a date of the same season a year before withdraws the earlier
    cross-season violations that pair does not see (most are shadows that moved with the
    sun: withdrawn-YYYY-MM-DD.gpkg says which and why); each open violation's `same_sun`
    column says whether it was checked yet.  Scheduling examples: docs/nightly.md.

    \b
    Example:
      changedetect nightly --catalog /data/incoming --permits permits/register.gpkg \\
          --state /var/lib/changedetect --out /srv/violations
    \b
    With the cadastral parcels, so that an unlicensed building gets its parcel and address:
      changedetect nightly --catalog /data/incoming --permits register.gpkg \\
          --parcels thua_dat.gpkg --state /var/lib/changedetect --out /srv/violations
    \b
    With the inspectors' decisions (false alarms and resolved violations leave the open list):
      changedetect nightly ... --decisions quyet_dinh_kiem_tra.csv
    \b
    On an existing Dask cluster, for a given night:
      changedetect nightly --catalog incoming --permits register.gpkg --state st --out out \\
          --scheduler tcp://10.0.0.5:8786 --night 2024-06-01
    """
    import json

    from changedetect.config import PipelineConfig
    from changedetect.nightly import run_nightly

    config = with_register_options(PipelineConfig.from_toml(config_path) if config_path else PipelineConfig(),
                                   register)
    check_device(config.detect.device, fix='device = "cpu" in the [detect] table of --config')
    check_writable(state, folder=True)
    check_writable(out, folder=True)
    opts = click.get_current_context().find_root().obj or {}
    # the summary below prints the night's warnings and failures: their log lines only with -v
    hide = None if as_json or opts.get("verbose") or opts.get("debug") else _NotInSummary()
    # (a pair's low-coverage line: the summary's names the area)
    logs = [logging.getLogger("changedetect.nightly"), logging.getLogger("changedetect.pipeline")]
    if hide is not None:
        for one in logs:
            one.addFilter(hide)
    try:  # and what each pair's run warned of about its result (SAID_IN_RESULT): the summary's warnings say it
        with said_by_result() if hide is not None else contextlib.nullcontext():
            summary = run_nightly(catalog, permits=permits, state=state, out=out,
                                  night=night.date() if night else None, scheduler=scheduler, workers=workers,
                                  config=config.with_model(model), parcels=parcels, decisions=decisions)
    finally:
        if hide is not None:
            for one in logs:
                one.removeFilter(hide)
    s = summary.to_dict()
    if as_json:
        click.echo(json.dumps(s, indent=1))
    else:
        click.echo(f"night {s['night']}: {s['new_acquisitions']} new acquisition(s) in "
                   f"{len(s['areas'])} area(s), {s['pairs']} pair(s) run; "
                   f"{s['new_violations']} new violation(s), "
                   + (f"{len(s['withdrawn'])} withdrawn{_why(s.get('withdrawn_reasons') or {})}, "
                      if s["withdrawn"] else "")
                   + (f"{len(s['status_changed'])} changed status, " if s.get("status_changed") else "")
                   + (f"{len(s['reopened'])} reopened (confirmed by an inspector), " if s.get("reopened") else "")
                   + (f"{len(s['suppressed'])} kept closed by an inspector's decision, " if s.get("suppressed")
                      else "")
                   + f"{s['open_violations']} open in total"
                   + (f" ({s['pending']} awaiting a same-season check)" if s["pending"] else ""))
        for key, path in s["outputs"].items():
            click.echo(f"  {key:<11} {path}")
        for again in s.get("reruns", []):
            click.echo(f"  {'again':<11} {again['area']} {again['date']}: {again['reason']}")
        for area, pairs in s["coverage"].items():
            for c in pairs:
                value = c.get("compared_share", c["coverage_both_dates"])
                share = "unknown" if value is None else f"{100 * value:.1f} %"
                filled = c.get("filled_share") or 0.0
                click.echo(f"  {'coverage':<11} {area} {c['before']}..{c['after']}: {share} of the scene "
                           + (f"compared ({100 * filled:.1f} % against the last clear view where "
                              f"{c['before']} had no data)" if filled else "has data on both dates"))
        for message in s.get("warnings", []):
            click.echo(f"  WARNING {message}", err=True)
        for area, err in s["failed"].items():
            click.echo(f"  FAILED {area}: {err}", err=True)
    if s["failed"]:
        raise SystemExit(2)


def _why(reasons: dict[str, int]) -> str:
    """Why violations were withdrawn, when any for another reason than the same sun (the usual one,
    said by the withdrawn files): `` (1 under a cloud a late SCL masks, 5 not seen under the same sun)``."""
    from changedetect._withdraw_masked import said

    return "" if set(reasons) <= {"not seen under the same sun"} else f" ({said(reasons, counted=True)})"


class _NotInSummary(logging.Filter):
    """Drops the log records that the night's summary repeats (``extra=IN_SUMMARY``, and a pair's
    run's warning that its dates share data over under half the scene: the summary's ``coverage``
    and its warning, :mod:`changedetect._nightly_coverage`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        pair_coverage = record.module == "_pipeline_chain" and record.funcName == "warn_coverage"
        return not (getattr(record, "in_summary", False) or pair_coverage)
