"""What one night of :mod:`changedetect.nightly` starts from: the night's date, the register and model every
area shares (read once, before the lock), tonight's copy of a database register, and the temporary
files a killed run left behind."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from changedetect.config import PipelineConfig
from changedetect.errors import ConfigError

log = logging.getLogger("changedetect.nightly")


def _night(night: str | dt.date | None) -> str:
    """The night as ``YYYY-MM-DD``: today's by default; a night that has not come yet is refused (a
    typo there would name tonight's files after it and mark the catalog's later acquisitions done)."""
    today = dt.date.today()
    if night is None:
        return today.isoformat()
    try:
        day = night if isinstance(night, dt.date) else dt.date.fromisoformat(str(night))
    except ValueError:
        raise ConfigError(f"night {night!r} is not a date: give it as YYYY-MM-DD") from None
    if isinstance(day, dt.datetime):
        day = day.date()
    if day > today + dt.timedelta(days=1):  # a day's grace: the catalog's clock may be ahead of ours
        raise ConfigError(f"night {day.isoformat()} has not come yet (today is {today.isoformat()}): "
                          "give tonight's date or an earlier one, or leave --night out for today")
    return day.isoformat()


def _check_not_before(night: str, nights: dict[str, Any], *, given: bool, work: bool | None = None) -> str:
    """The night to run, or a ConfigError for one dated before the last night committed (a typo in ``--night``,
    a script replaying dates): it was committed out of order, its register holding violations first seen
    months after it, and 'the last night committed' then meant it.  An earlier night already committed may be
    run again while it has nothing new to do (``work`` False: its outputs restored); with new work (a late
    delivery, ``work`` True) it is refused too: the next night takes that up.  Today's night (``given``
    False) before the last one committed (a run dated tomorrow, which :func:`_night` allows, or a clock set
    back) is that last night, run again."""
    last = max(nights, default=None)
    if last is None or night >= last:
        return night
    if not given:  # (run_nightly says so in the night's summary)
        return last
    if night in nights and not work:
        return night
    what = ("it has new work (acquisitions dated on or before it that came after later nights were committed): the "
            "next night takes it up; run without --night" if night in nights else
            "give a later --night, or leave it out (today)")
    raise ConfigError(f"night {night} is before the last night committed, {last} (committed nights: "
                      f"{', '.join(sorted(nights)[-3:])}{' ...' if len(nights) > 3 else ''}); a night is committed "
                      f"after the ones before it: {what}")


def _rejected_line(message: str, shown: int = 5) -> str:
    """A lenient register's rejected-rows warning as one line of the night's summary: the count and the first
    ``shown`` rows' reasons, without the advice for ``run`` and ``match`` (a rejects file, a Python argument),
    which the nightly has not."""
    head, *rest = message.splitlines()
    problems = [line.strip() for line in rest if line.startswith("  ") and not line.strip().startswith("...")]
    more = f"; and {len(problems) - shown} more" if len(problems) > shown else ""
    return (f"{head.split('; ')[0]} (lenient: the night went on without them; fix them in the register): "
            + "; ".join(problems[:shown]) + more)


def _check_shared_inputs(permits: str | Path, config: PipelineConfig) -> Any:
    """The register and the model every area uses: a bad one is one error (exit 2) before the
    lock is taken or anything is written, instead of the same failure in every area.  Returns the
    loaded register (its content names the night's work folders)."""
    from changedetect.weights import find_model

    find_model(config.detect.model)  # ModelError listing the models there are
    return config.permits.load(permits)  # PermitSchemaError / RegisterReadError naming the rows


def _check_parcels(parcels: str | Path | None, config: PipelineConfig) -> Any:
    """The cadastral parcel layer every pair's run reads (``--parcels``, with the ``[parcels]`` table's
    options), read once before the lock like the register: a bad layer is one error (exit 2), not one
    per area.  Its content names the night's work folders too.  None without one."""
    return None if parcels is None else config.parcels.load(parcels)  # PermitSchemaError naming the rows


def _check_datums(tasks: list[dict[str, Any]], register: Any, layer: Any) -> None:
    """Refuse (:class:`~changedetect.errors.GeoreferenceError`) the register, then the parcel layer, when
    PROJ cannot take its datum to the imagery's (a VN-2000 .prj that lost its ``+towgs84``): once, after
    the night is planned and before any pair runs or anything is written, with the message of
    ``changedetect run`` (which refuses it before any work), instead of every area's pair failing on it.
    The imagery's CRS is each pair's BEFORE date's (the grid its run detects on), read from the header
    of its first file; one that cannot be read is left to the pair's run to report."""
    from changedetect._match_inputs import check_register_datum
    from changedetect.parcels import check_parcels_datum

    crss: dict[str, Any] = {}
    for pair in (p for t in tasks for p in t["pairs"]):
        crs = _crs_of((pair.get("before_files") or [pair["before_path"]])[0])
        if crs is not None:
            crss.setdefault(crs.to_wkt(), crs)
    for crs in crss.values():
        check_register_datum(register, crs)
    for crs in crss.values() if layer is not None else ():
        check_parcels_datum(layer, crs)


def _crs_of(path: str) -> Any:
    """A raster's CRS, None when it has none or cannot be read."""
    import rasterio

    try:
        with rasterio.open(path) as src:
            return src.crs
    except Exception:  # noqa: BLE001 - the pair's run reads it and says why
        return None


def _copy_path(state_dir: Path, key: str, name: str = "register") -> Path:
    """Where :func:`_register_copy` keeps tonight's copy of a database register (or parcel layer)."""
    return state_dir / "register" / f"{name}-{key[:16]}.parquet"


def _register_copy(register: Any, key: str, state_dir: Path, name: str = "register") -> Path:
    """Tonight's copy of a database register (GeoParquet, ``STATE/register/register-<key>.parquet``).

    A PostGIS register is read once a night, by :func:`_check_shared_inputs`; every pair (on this host
    or a Dask worker) reads this copy, so all of them match against the rows the work folders are
    keyed by, even if a permit is added or revoked in the database during the night, and the
    database answers one query a night rather than one per pair.  A rerun of the night with the
    same rows finds its copy.
    """
    from changedetect.io.atomic import atomic_path

    path = _copy_path(state_dir, key, name)
    if not path.is_file():
        with atomic_path(path) as tmp:
            register.to_parquet(tmp)
    return path


def _remove_older_register_copies(state_dir: Path, *tonight: str | Path | None) -> None:
    """Once the night is committed, the copies of earlier nights' registers (and parcel layers) are not
    needed."""
    keep = {Path(t) for t in tonight if t is not None}
    for old in [*(state_dir / "register").glob("register-*.parquet"), *(state_dir / "register").glob("parcels-*.parquet")]:
        if old not in keep:
            old.unlink(missing_ok=True)


def _remove_stale_temporaries(*folders: Path) -> None:
    """Temporary files that a killed run left beside its outputs (``.<name>.tmp-XXXXXXXX<suffix>``).

    Only this job writes there and it holds the lock, so none of them is being written now.
    """
    from changedetect.io.atomic import is_temp_name

    for folder in folders:
        if not folder.is_dir():
            continue
        for f in folder.iterdir():
            if is_temp_name(f) and f.is_file():
                log.info("removing %s, left by an interrupted run", f)
                f.unlink(missing_ok=True)
