"""``python -m changedetect.samplecity``: generate the sample city (deterministic, seeded)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out-tiles", type=click.Path(path_type=Path), default=Path("sample_tiles"), show_default=True, help="Folder for the images, the manifest and truth/.")
@click.option("--out-permits", type=click.Path(path_type=Path), default=Path("permits"), show_default=True, help="Folder for sample_register.gpkg, expected_violations.csv and sample_parcels.gpkg.")
@click.option("--seed", type=int, default=12, show_default=True, help="Seed of every random choice.")
@click.option("--size", type=click.IntRange(min=128), default=1024, show_default=True, help="Image width and height in pixels (0.5 m each).")
@click.option("--overwrite", is_flag=True, help="Replace the files of an earlier run.")
@click.option("--check", "check_only", is_flag=True, help="Regenerate in a temporary folder and compare with the files there (exit 1 if any differs).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def main(out_tiles: Path, out_permits: Path, seed: int, size: int, overwrite: bool, check_only: bool, quiet: bool) -> None:
    """Generate the sample city: 3 dates of a 0.5 m RGB+NIR scene of District 12, Ho Chi Minh City,
    with known changes, misregistration, radiometry, a permit register and the expected violations.

    \b
    Example (what is committed in the repository):
      python -m changedetect.samplecity --out-tiles sample_tiles --out-permits permits --overwrite
    The same seed and size give byte-identical files; --check verifies that the files
    there are what this code generates.
    """
    from changedetect.errors import EXIT_BAD_INPUT, ChangeDetectError
    from changedetect.samplecity import CityConfig, check, generate

    start = time.perf_counter()
    if check_only:
        differ = check(out_tiles, out_permits, config=CityConfig(seed=seed, size=size))
        for name in differ:
            click.echo(f"differs or missing: {name}", err=True)
        click.echo(f"sample city check: {'OK, byte-identical' if not differ else f'{len(differ)} file(s) differ'} ({time.perf_counter() - start:.1f} s)")
        sys.exit(1 if differ else 0)
    try:
        result = generate(out_tiles, out_permits, config=CityConfig(seed=seed, size=size), overwrite=overwrite, progress=not quiet)
    except ChangeDetectError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(f"sample city (seed {seed}, {size} x {size} px at 0.5 m) in {time.perf_counter() - start:.1f} s")
    click.echo(f"  dates: {', '.join(result.dates)}")
    for pair, counts in result.changes.items():
        click.echo(f"  changes {pair}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    click.echo(f"  permits: {result.permits}; expected statuses: " + ", ".join(f"{v} {k}" for k, v in result.statuses.items()))
    for line in result.mismatches:
        click.echo(f"  warning: {line}", err=True)
    click.echo(f"  {len(result.files)} files under {out_tiles} and {out_permits}")


if __name__ == "__main__":
    main()
