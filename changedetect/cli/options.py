"""Options shared by several subcommands (as rasterio's ``rio.options``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from changedetect.errors import OutputExistsError

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


def check_overwrite(path: Path, overwrite: bool) -> None:
    """Refuse to replace an existing output unless ``--overwrite`` was given."""
    if path.exists() and not overwrite and (path.is_file() or any(path.iterdir())):
        raise OutputExistsError(f"output '{path}' already exists; pass --overwrite to replace it")


def quiet(ctx: click.Context) -> bool:
    """Whether the user asked for no progress bars."""
    root = ctx.find_root()
    return bool(root.obj and root.obj.get("quiet"))
