"""The output folder of :func:`changedetect.pipeline.run` (private): its file names, the refusal
to replace an earlier run, the staging folder's publication, and the folders a failed run made."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from changedetect.errors import ConfigError, OutputExistsError, OutputLocationError
from changedetect.io._names import RASTER_SUFFIXES
from changedetect.io.atomic import removing_new_folders  # re-exported (it lived here)

#: Output file names (keys of :attr:`RunSummary.paths`) of a run with the default configuration
#: (:data:`FORMAT_OUTPUTS`: the violation list's other formats, when asked).
OUTPUTS: dict[str, str] = {
    "coregistration": "coregistration.json",
    "probability": "change_probability.tif",
    "first_seen": "first_seen.tif",
    "before_rgb": "before_rgb.tif",
    "after_rgb": "after_rgb.tif",
    "footprints": "footprints.gpkg",
    "violations": "violations.gpkg",
    "violations_csv": "violations.csv",
    "report": "report.html",
    "run": "run.json",
    #: explicit pairs with a masked same-season pair only (the nightly job): that pair's decisions
    "same_season": "same_season_change.tif",
}
#: the violation list in the formats a run writes only when asked (``[output] geojson`` / ``parquet``,
#: ``changedetect run --format``): GeoJSON (EPSG:4326) and GeoParquet (the run's CRS)
FORMAT_OUTPUTS: dict[str, str] = {
    "violations_geojson": "violations.geojson",
    "violations_parquet": "violations.parquet",
}
#: the violation list's key of OUTPUTS / FORMAT_OUTPUTS, per format of :data:`changedetect.config.LIST_FORMATS`
LIST_KEYS: dict[str, str] = {"gpkg": "violations", "csv": "violations_csv", "geojson": "violations_geojson",
                             "parquet": "violations_parquet"}
#: the rows of the register that a lenient run set aside (``[permits] strict = false``)
REJECTS = "permit_rejects.gpkg"
STAGE_PREFIX = ".run.tmp-"


def output_names() -> dict[str, str]:
    """Every file a run may write, key -> name: :data:`OUTPUTS` with :data:`FORMAT_OUTPUTS` after the
    CSV (the order of ``run.json``'s ``outputs``)."""
    names: dict[str, str] = {}
    for key, name in OUTPUTS.items():
        names[key] = name
        if key == "violations_csv":
            names.update(FORMAT_OUTPUTS)
    return names


def check_out(out: Path, overwrite: bool, *, hint: str = "overwrite=True (--overwrite)") -> None:
    """OutputExistsError when ``out`` is a file, or already holds a run and ``overwrite`` is off
    (``hint`` names how to pass it: the command line says ``--overwrite``)."""
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"output '{out}' is a file; give a folder for the run's outputs")
    try:
        ours = [p for p in out.iterdir() if p.name in {*output_names().values(), REJECTS}] if out.is_dir() else []
    except OSError as exc:  # a folder that cannot be listed
        raise OutputLocationError(f"cannot read the output folder '{out}': {exc.strerror or exc}; choose "
                                  "another folder") from None
    folders = [p for p in ours if p.is_dir()]
    if folders:  # before any work: publish() failed on it at the end, a run's outputs half replaced ('a bug')
        raise OutputLocationError(f"'{folders[0]}' is a folder, but the run writes a file of that name: move "
                                  "or rename it, or choose another output folder")
    held = any(p.name in output_names().values() for p in ours)
    if held and not overwrite:
        raise OutputExistsError(f"output folder '{out}' already holds a run; pass {hint} to replace it, "
                                "or choose another folder")


def check_apart(out: Path, tiles: Any, *, what: str = "the run's outputs") -> None:
    """ConfigError when ``out`` is a folder of ``tiles`` (a folder given, or the folder of a raster given):
    its outputs (``before_rgb.tif``, a co-registration's ``aligned_YYYYMMDD.tif``) would be read as tiles the
    next time the folder is, and ``info`` and ``run`` of it then failed ('no date in the file name ...
    after_rgb.tif')."""
    sources = [tiles] if isinstance(tiles, str | Path) else list(tiles)
    target = out.resolve()
    for source in sources:
        path = Path(source)
        folder = path if path.is_dir() else path.parent if path.suffix.lower() in RASTER_SUFFIXES else None
        if folder is not None and folder.resolve() == target:
            which = f"the tiles folder '{source}'" if path.is_dir() else f"the folder of the tile '{source}'"
            raise ConfigError(f"output folder '{out}' is {which}: {what} would be read as "
                              "tiles the next time the folder is; give another folder (e.g. --out out/)")


def publish(stage: Path, out: Path) -> None:
    """Move a finished run's outputs from ``stage`` into ``out``: the old run.json first goes (a
    crash in between leaves no run.json: an unfinished folder), the outputs an earlier run left
    and this one did not write go, and the new run.json comes last."""
    from changedetect.io.vectors import remove_vector

    (out / OUTPUTS["run"]).unlink(missing_ok=True)
    written = {p.name for p in stage.iterdir()}
    for name in sorted(written - {OUTPUTS["run"]}):
        os.replace(stage / name, out / name)
    for name in {*output_names().values(), REJECTS} - written:  # left by an earlier run in this folder (overwrite)
        remove_vector(out / name)  # (a CSV with its side files; any other output alone)
    os.replace(stage / OUTPUTS["run"], out / OUTPUTS["run"])


__all__ = ["FORMAT_OUTPUTS", "LIST_KEYS", "OUTPUTS", "REJECTS", "STAGE_PREFIX", "check_apart", "check_out",
           "output_names", "publish", "removing_new_folders"]
