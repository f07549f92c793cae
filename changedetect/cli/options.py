"""Options shared by several subcommands (as rasterio's ``rio.options``)."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from changedetect.errors import (
    ConfigError,
    OutputExistsError,
    OutputFormatError,
    OutputLocationError,
)

F = TypeVar("F", bound=Callable[..., Any])

json_opt = click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
overwrite_opt = click.option("--overwrite", is_flag=True, help="Replace outputs that already exist.")


def out_path_opt(*, help: str, required: bool = True) -> Callable[[F], F]:
    """``--out PATH`` (a file or a directory)."""
    return click.option(
        "--out", "-o", "out", type=click.Path(path_type=Path), required=required, help=help
    )


previous_opt = click.option(
    "--previous", type=click.Path(path_type=Path, exists=True),
    help="Footprints of the previous run over the same ground: a footprints file, or the output folder of an "
         "earlier `changedetect run`. A footprint overlapping one of them well (IoU >= 0.5, or 80 % of the "
         "smaller covered) keeps its footprint_id.")

pattern_opt = click.option(
    "--pattern", default=None, metavar="REGEX",
    help="Regular expression finding the date in file names: group 'date' (YYYYMMDD or YYYY-MM-DD), "
    "or groups 'year', 'month', 'day' (e.g. '(?P<day>\\d{2})-(?P<month>\\d{2})-(?P<year>\\d{4})').")
cloud_mask_opt = click.option(
    "--cloud-mask/--no-cloud-mask", "cloud_mask", default=None,
    help="A date with a Sentinel-2 scene classification (*_SCL_20m beside its bands, or a band named SCL): read "
         "its clouds, cloud shadows, cirrus and no data as no data (the default; for run also [run] cloud_mask in its "
         "--config), "
         "or as data (--no-cloud-mask).")

format_opt = click.option(
    "--format", "formats", multiple=True, metavar="FORMAT",
    help="A format of the violation list (repeatable, or comma-separated): gpkg, csv, geojson (EPSG:4326), parquet "
         "(GeoParquet, the run's CRS). Given, exactly those are written, and violations.gpkg always; without it, "
         "the [output] table of --config says (csv, geojson, parquet = true/false; default: gpkg and csv).")


def check_overwrite(path: Path, overwrite: bool) -> None:
    """Refuse to replace an existing output unless ``--overwrite`` was given."""
    try:
        taken = path.exists() and (path.is_file() or any(path.iterdir()))
    except OSError as exc:  # a folder that cannot be listed
        raise OutputLocationError(_unwritable(path, exc)) from None
    if taken and not overwrite:
        raise OutputExistsError(f"output '{path}' already exists; pass --overwrite to replace it")


def quiet(ctx: click.Context) -> bool:
    """Whether the user asked for no progress bars."""
    root = ctx.find_root()
    return bool(root.obj and root.obj.get("quiet"))


@contextmanager
def said_by_result() -> Iterator[None]:
    """Within it, a warning that the command's printed result says (its summary's ``Warning:`` and ``NOT
    CO-REGISTERED`` lines, ``--json``'s ``warnings``) is not also a log line: the records marked
    ``extra=SAID_IN_RESULT`` (:mod:`changedetect.errors`: a run's model fit, a match's register far away,
    empty or of lots, a date co-registration could not register) are left out, with or without ``-q``."""
    from changedetect.cli import _WARNINGS_ONCE

    before = _WARNINGS_ONCE.result_says
    _WARNINGS_ONCE.result_says = True
    try:
        yield
    finally:
        _WARNINGS_ONCE.result_says = before


#: Key in the click context's ``meta`` of the :class:`ExitStack` of :func:`command_cleanup`.
_CLEANUP = "changedetect.cleanup"


@contextmanager
def command_cleanup(ctx: click.Context) -> Iterator[None]:
    """Around a subcommand (the group's ``invoke``): should it fail, the folders that
    :func:`check_writable` made for its outputs, and those its work made on the way to them, are
    removed again while empty (a failed ``match --out new/a/b/v.gpkg`` leaves no new/a/b)."""
    with ExitStack() as stack:
        ctx.meta[_CLEANUP] = stack
        try:
            yield
        finally:
            ctx.meta.pop(_CLEANUP, None)


def check_writable(path: Path, *, folder: bool = False) -> None:
    """Fail fast, before any work, when ``path`` cannot be written.

    ``path`` is an output file (``folder=False``) or an output folder.  The
    folder that will receive the output (the file's parent; an output folder
    itself when it exists, else its parent) is created if missing, then a
    temporary file is created and removed in it.  Under :func:`command_cleanup`
    (every subcommand of ``changedetect``), should the command then fail, the
    folders on the way to ``path`` that did not exist here go again while empty.

    Raises
    ------
    OutputLocationError
        The folder cannot be created, or a file cannot be created in it; an output file's path is a folder.
    """
    ctx = click.get_current_context(silent=True)
    stack = ctx.meta.get(_CLEANUP) if ctx is not None else None
    if isinstance(stack, ExitStack):
        # imported here: changedetect.io imports rasterio, which `changedetect --help` need not wait for
        from changedetect.io.atomic import removing_new_folders

        stack.enter_context(removing_new_folders(path))
    if folder:
        _check_folder_name(path)
    elif path.is_dir():  # before any work: with --overwrite the rename at the end failed, 'a bug'
        from changedetect.io.atomic import folder_not_file

        raise OutputLocationError(folder_not_file(path))
    # an existing output folder is written inside (run stages there too); else its parent, to make it
    _probe(path if folder and path.is_dir() else path.parent)


#: Names that are files, not the output folder a command asks for (``run --out result.gpkg`` made a
#: folder of that name, which QGIS then refused to open as a GeoPackage).
_FILE_SUFFIXES = frozenset({".gpkg", ".geojson", ".json", ".csv", ".parquet", ".geoparquet", ".shp", ".tif",
                            ".tiff", ".html", ".zip", ".onnx"})


def _check_folder_name(path: Path) -> None:
    stem = path.with_suffix("") if path.suffix else path
    if path.is_file():
        raise OutputLocationError(f"'{path}' is a file, but this output is a folder (it will hold several "
                                  f"files): give a folder, e.g. '{stem}_out'")
    if not path.exists() and path.suffix.lower() in _FILE_SUFFIXES:
        raise OutputLocationError(f"'{path}' names a {path.suffix} file, but this output is a folder (it will "
                                  f"hold several files, e.g. violations.gpkg and report.html): give a folder, "
                                  f"e.g. '{stem}'")


def _probe(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        where = exc.filename if isinstance(exc.filename, str) else folder
        raise OutputLocationError(_unwritable(where, exc)) from None
    try:
        fd, name = tempfile.mkstemp(prefix=".changedetect-write-test-", dir=folder)
    except OSError as exc:
        raise OutputLocationError(_unwritable(folder, exc)) from None
    os.close(fd)
    os.unlink(name)


def _unwritable(folder: str | Path, exc: OSError) -> str:
    why = exc.strerror or str(exc)
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):  # a file stands where a folder of the path should be
        blocker = next((p for p in (Path(folder), *Path(folder).parents) if p.is_file()), None)
        if blocker is not None:
            return (f"cannot write to '{folder}': '{blocker}' is a file, not a folder; give an output path "
                    "whose folders are folders")
    if exc.errno == errno.ENOENT and Path(folder).is_dir():  # /proc, /sys: the folder is there, files are not
        why = f"files cannot be created in this folder (a system or virtual filesystem: mkstemp says '{why}')"
    return f"cannot write to '{folder}': {why}; choose a writable folder"


def check_suffix(path: Path, allowed: Iterable[str], *, what: str, hint: str = "") -> None:
    """Refuse an output whose extension is not one of ``allowed`` (lower case, with the dot)."""
    allowed = sorted(allowed)
    if path.suffix.lower() not in allowed:
        got = f"extension '{path.suffix}'" if path.suffix else "no extension"
        raise OutputFormatError(f"cannot write {what} '{path}': {got}; use one of {', '.join(allowed)}{hint}")


def check_device(device: str, *, fix: str = "--device cpu") -> str:
    """The torch device ``device`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``) if this machine has it.

    ``fix`` is what the messages tell the user to do instead (the option, or the config key).

    Raises
    ------
    ConfigError
        Not a device name torch knows, or a device this torch build or machine lacks.
    """
    name = device.strip().lower()
    if name == "cpu":
        return name
    import torch

    try:
        parsed = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device {device!r}: torch devices are cpu or cuda (cuda:N for the N-th GPU); "
                          f"use {fix}") from None
    if parsed.type == "cpu":
        return name
    if parsed.type == "cuda":
        if torch.version.cuda is None:
            raise ConfigError(f"CUDA is not available in this torch build; use {fix}")
        if not torch.cuda.is_available():
            raise ConfigError(f"no CUDA GPU found (torch built with CUDA {torch.version.cuda}); use {fix}")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ConfigError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                              f"numbered from 0; use cuda:0, or {fix}")
        return name
    if parsed.type == "mps" and torch.backends.mps.is_available():
        return name
    raise ConfigError(f"device {device!r} is not available here; use {fix}")


def register_opts(f: F) -> F:
    """The permit register's reading options, for commands that take ``--permits`` and a
    ``--config`` (run, nightly): each overrides the ``[permits]`` table of the configuration."""
    for option in reversed([
        click.option("--layer", "permits_layer", help="Layer of a multi-layer register file."),
        click.option("--table", "permits_table", help="PostGIS table ([schema.]name) holding the register."),
        click.option("--query", "permits_query",
                     help="PostGIS SELECT with %(name)s placeholders (values from --param)."),
        click.option("--param", "permits_params", multiple=True, metavar="NAME=VALUE",
                     help="A query parameter (repeatable)."),
        click.option("--column-map", "permits_column_map", multiple=True, metavar="THEIRS=OURS",
                     help="Map a register column onto a schema name, e.g. --column-map so_gp=permit_id."),
        click.option("--permits-crs", "permits_crs",
                     help="CRS of a register that declares none (CSV with WKT), e.g. EPSG:9210."),
        click.option("--permits-timezone", "permits_timezone", metavar="ZONE",
                     help="PostGIS register: the city's time zone (e.g. Asia/Ho_Chi_Minh); a timestamptz permit "
                          "date is its day there, not in the server's zone."),
        click.option("--lenient", "permits_lenient", is_flag=True,
                     help="Keep the good permits and set bad rows aside (permit_rejects.gpkg) instead of failing."),
    ]):
        f = option(f)
    return f


def name_value_pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    """``NAME=VALUE`` option values (``--param``, ``--column-map``) as a dict; a usage error otherwise."""
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint=option)
        out[key.strip()] = value
    return out


def with_register_options(config: Any, options: dict[str, Any]) -> Any:
    """``config`` (a PipelineConfig) with the ``permits_*`` options of :func:`register_opts`
    that were given replacing its ``[permits]`` values."""
    from dataclasses import replace

    changes: dict[str, Any] = {}
    for key, field_name in (("permits_layer", "layer"), ("permits_table", "table"), ("permits_query", "query"),
                            ("permits_crs", "crs"), ("permits_timezone", "timezone")):
        if options.get(key):
            changes[field_name] = options[key]
    if options.get("permits_params"):
        changes["params"] = name_value_pairs(options["permits_params"], "--param")
    if options.get("permits_column_map"):
        changes["column_map"] = name_value_pairs(options["permits_column_map"], "--column-map")
    if options.get("permits_lenient"):
        changes["strict"] = False
    return replace(config, permits=replace(config.permits, **changes)) if changes else config
