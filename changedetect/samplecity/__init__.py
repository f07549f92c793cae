"""A generated sample city: District 12, Ho Chi Minh City, at 0.5 m, with ground truth.

Real very-high-resolution imagery cannot be shipped, so the demo and the tests
run on this deterministic, seeded city (``python -m changedetect.samplecity``)::

    sample_tiles/district12_YYYYMMDD.tif   4 bands (red, green, blue, nir) uint8, EPSG:32648
    sample_tiles/manifest.json             path, date, bands of every date
    sample_tiles/truth/registration.json   the misregistration and radiometry of each date
    sample_tiles/truth/change_A_B.tif      changed buildings between two dates (0/1)
    sample_tiles/truth/nuisance/nuisance_A_B.tif  what changed without construction (bit flags)
    sample_tiles/truth/buildings_A.tif     buildings standing on a date (0/1)
    sample_tiles/truth/footprints.gpkg     every changed structure (layers footprints, structures)
    permits/sample_register.gpkg           the permit register (layer permits, EPSG:9210)
    permits/expected_violations.csv        the expected status of every changed structure
    permits/sample_parcels.gpkg            the cadastral parcels (layer parcels, EPSG:9210)

See ``docs/sample_city.md`` for what is drawn, the conventions and the rules.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from changedetect.errors import ConfigError, OutputExistsError
from changedetect.samplecity.spec import BANDS, CityConfig

log = logging.getLogger(__name__)

#: The configuration of the committed sample city.
DEFAULT_CONFIG = CityConfig()
REGISTER_NAME = "sample_register.gpkg"
TRUTH_NAME = "expected_violations.csv"
PARCELS_NAME = "sample_parcels.gpkg"


@dataclass
class SampleCity:
    """What :func:`generate` wrote: the files and a few counts."""

    files: list[Path] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)
    changes: dict[str, dict[str, int]] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    permits: int = 0
    mismatches: list[str] = field(default_factory=list)


def output_paths(out_tiles: Path, out_permits: Path, config: CityConfig) -> list[Path]:
    """Every file :func:`generate` writes for ``config``."""
    tags = [a.tag for a in config.acquisitions]
    truth = out_tiles / "truth"
    paths = [out_tiles / f"district12_{t}.tif" for t in tags] + [out_tiles / "manifest.json"]
    paths += [truth / f"buildings_{t}.tif" for t in tags]
    paths += [truth / f"change_{a}_{b}.tif" for a, b in _pairs(tags)]
    paths += [truth / "nuisance" / f"nuisance_{a}_{b}.tif" for a, b in _pairs(tags)]
    paths += [truth / "registration.json", truth / "footprints.gpkg"]
    return paths + [out_permits / REGISTER_NAME, out_permits / TRUTH_NAME, out_permits / PARCELS_NAME]


def _pairs(tags: list[str]) -> list[tuple[str, str]]:
    pairs = list(zip(tags[:-1], tags[1:], strict=True))
    return pairs + ([(tags[0], tags[-1])] if len(tags) > 2 else [])


def generate(
    out_tiles: str | Path = "sample_tiles",
    out_permits: str | Path = "permits",
    *,
    config: CityConfig = DEFAULT_CONFIG,
    overwrite: bool = False,
    progress: bool = False,
) -> SampleCity:
    """Generate the sample city into ``out_tiles`` and ``out_permits``.

    Parameters
    ----------
    out_tiles, out_permits
        Output folders (created if needed).
    config
        Seed, size and dates; the same config gives byte-identical files.
    overwrite
        Replace existing outputs; without it an existing output raises
        :class:`~changedetect.errors.OutputExistsError` before any work.
    progress
        Show a progress bar over the dates.
    """
    out_tiles, out_permits = Path(out_tiles), Path(out_permits)
    existing = [p for p in output_paths(out_tiles, out_permits, config) if p.exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"output '{existing[0]}' already exists ({len(existing)} of the sample city's files do); pass --overwrite to regenerate")
    if config.size < 128 or len(config.acquisitions) < 2:
        raise ConfigError(
            f"a sample city needs size >= 128 px and at least 2 dates, got size {config.size} and "
            f"{len(config.acquisitions)} date(s); pass a larger size (the committed city uses 1024)"
        )
    from changedetect.samplecity.render import render_dates

    pl = plan(config)
    city, changes = pl.city, pl.changes
    log.info("city: %d buildings, %d trees, %d changes", len(city.buildings), len(city.trees), len(changes))
    result = SampleCity(dates=[a.date.isoformat() for a in config.acquisitions])
    reg_doc: list[dict[str, Any]] = []
    nuisance: list[dict[str, np.ndarray]] = []
    for d in _progress(render_dates(config, city, changes), progress, len(config.acquisitions)):
        nuisance.append(_reference_layers(d.layers, d.state, config))
        result.files.append(_write_date(out_tiles, d.image, config, d.acquisition))
        result.files.append(_write_buildings(out_tiles, d.state, config, d.acquisition.tag))
        reg_doc.append(_registration_entry(d.misregistration, d.acquisition, config))
    result.files += _write_truth(out_tiles, changes, config, reg_doc, nuisance)
    _write_permits(out_permits, pl, config, result)
    from changedetect.samplecity.truth import summary

    result.changes = summary(changes, config)
    return result


def _progress(items: Iterable[Any], progress: bool, total: int) -> Iterable[Any]:
    if not progress:
        return items
    from tqdm import tqdm

    return tqdm(items, desc="dates", unit="date", total=total)


def _write_date(out: Path, img: np.ndarray, config: CityConfig, acq: Any) -> Path:
    from changedetect.samplecity.output import write_tif

    tags = {
        "ACQUISITION_DATE": acq.date.isoformat(),
        "SUN_AZIMUTH_DEG": f"{acq.sun_azimuth_deg:.1f}",
        "SUN_ELEVATION_DEG": f"{acq.sun_elevation_deg:.1f}",
        "GSD_M": f"{config.resolution}",
        "DESCRIPTION": "changedetect generated sample city (District 12, Ho Chi Minh City); synthetic, not real imagery",
        "GENERATOR": f"python -m changedetect.samplecity --seed {config.seed} --size {config.size}",
    }
    return write_tif(out / f"district12_{acq.tag}.tif", img, config, descriptions=BANDS, tags=tags, rgb=True)


def _write_buildings(out: Path, state: Any, config: CityConfig, tag: str) -> Path:
    from changedetect.samplecity.output import write_tif
    from changedetect.samplecity.truth import building_mask

    mask = building_mask(config, state)
    return write_tif(out / "truth" / f"buildings_{tag}.tif", mask, config, descriptions=["building"])


def _registration_entry(mis: Any, acq: Any, config: CityConfig) -> dict[str, Any]:
    from changedetect.samplecity.registration import radiometry_dict

    return {
        "date": acq.date.isoformat(),
        "path": f"../district12_{acq.tag}.tif",
        "sun": {"azimuth_deg": acq.sun_azimuth_deg, "elevation_deg": acq.sun_elevation_deg},
        "season_greenness": acq.greenness,
        "misregistration": mis.to_dict(config.size),
        "radiometry": radiometry_dict(acq, config.acquisitions[0]),
    }


def _reference_layers(layers: dict[str, np.ndarray], state: Any, config: CityConfig) -> dict[str, np.ndarray]:
    from changedetect.samplecity import truth

    out = {name: truth.to_reference(mask, config) for name, mask in layers.items()}
    out["debris"] = truth.debris_code(config, state)
    return out


def _write_truth(
    out: Path, changes: list[Any], config: CityConfig, reg_doc: list[dict[str, Any]], nuisance: list[dict[str, np.ndarray]]
) -> list[Path]:
    from changedetect.samplecity import registration, truth
    from changedetect.samplecity.output import write_gpkg, write_json, write_tif

    tags = [a.tag for a in config.acquisitions]
    files = []
    bits = ", ".join(f"{v}={k}" for k, v in truth.NUISANCE_BITS.items())
    for a, b in _pairs(tags):
        ia, ib = tags.index(a), tags.index(b)
        mask = truth.change_mask(config, changes, ia, ib)
        files.append(write_tif(out / "truth" / f"change_{a}_{b}.tif", mask, config, descriptions=["changed_building"]))
        noise = truth.nuisance_mask(config, nuisance[ia], nuisance[ib], mask)
        files.append(write_tif(out / "truth" / "nuisance" / f"nuisance_{a}_{b}.tif", noise, config, descriptions=["nuisance_bits"], tags={"BITS": bits}))
    layers = {"footprints": truth.footprints(config, changes), "structures": truth.footprints(config, changes, whole=True)}
    files.append(write_gpkg(out / "truth" / "footprints.gpkg", layers, date=config.register_date.isoformat()))
    doc = {
        "description": "Known misregistration and radiometry of each date against the reference (first) date.",
        "convention": list(registration.CONVENTION),
        "crs": "EPSG:32648",
        "transform": list(config.transform)[:6],
        "size": [config.size, config.size],
        "reference": config.acquisitions[0].date.isoformat(),
        "dates": reg_doc,
    }
    files.append(write_json(out / "truth" / "registration.json", doc))
    manifest = {
        "name": "changedetect sample city: District 12, Ho Chi Minh City (generated)",
        "crs": "EPSG:32648",
        "resolution_m": config.resolution,
        "seed": config.seed,
        "images": [{"path": f"district12_{t}.tif", "date": a.date.isoformat(), "bands": list(BANDS)} for t, a in zip(tags, config.acquisitions, strict=True)],
    }
    files.append(write_json(out / "manifest.json", manifest))
    return files


def check(out_tiles: str | Path = "sample_tiles", out_permits: str | Path = "permits", *, config: CityConfig = DEFAULT_CONFIG) -> list[str]:
    """Regenerate into a temporary folder and compare with the files there.

    Returns the names of the files that are missing or differ (empty: byte-identical).
    """
    import tempfile

    out_tiles, out_permits = Path(out_tiles), Path(out_permits)
    with tempfile.TemporaryDirectory(prefix="samplecity-") as tmp:
        fresh_tiles, fresh_permits = Path(tmp) / "tiles", Path(tmp) / "permits"
        generate(fresh_tiles, fresh_permits, config=config)
        ours = output_paths(out_tiles, out_permits, config)
        fresh = output_paths(fresh_tiles, fresh_permits, config)
        return [str(a) for a, b in zip(ours, fresh, strict=True) if not a.is_file() or a.read_bytes() != b.read_bytes()]


@dataclass
class Plan:
    """Everything decided before any pixel is drawn: the city, its changes, the register, the truth
    (and the cadastral parcels, EPSG:9210)."""

    city: Any
    changes: list[Any]
    register: Any
    table: Any
    mismatches: list[str]
    parcels: Any = None


def plan(config: CityConfig = DEFAULT_CONFIG) -> Plan:
    """The vector side of the sample city (fast: no rendering).

    ``register`` is the permit register (EPSG:9210, with a helper column
    ``target``), ``table`` the expected violations, ``parcels`` the cadastral parcel layer
    (:mod:`changedetect.samplecity.cadastre`; drawn from a random stream of its own).
    """
    from changedetect.samplecity import cadastre, permits, truth, verdict
    from changedetect.samplecity.render import city_and_changes

    city, changes = city_and_changes(config)
    rng = np.random.default_rng([config.seed, 7])
    cases = permits.assign_cases(changes, rng)
    register = permits.build_register(city, changes, cases, rng)
    notes = {c.sid: c.note for c in changes}
    for _, row in register[register["status"] == "revoked"].iterrows():
        if row["target"]:
            notes[row["target"]] += f"; its permit {row['permit_id']} was revoked"
    table = verdict.truth_table(truth.footprints(config, changes), register, notes)
    mismatches = []
    for sid, status in zip(table["structure_id"], table["expected_status"], strict=True):
        intended = cases[sid].replace("unlicensed_revoked", "unlicensed")
        if intended != status:
            mismatches.append(f"{sid}: planned {intended}, the register gives {status}")
            log.warning("sample city: %s planned as %s but the register gives %s", sid, intended, status)
    parcels = cadastre.build_parcels(city, changes, register[permits.PERMIT_COLUMNS])
    return Plan(city, changes, register, table, mismatches, parcels)


def _write_permits(out: Path, pl: Plan, config: CityConfig, result: SampleCity) -> None:
    from changedetect.samplecity import permits
    from changedetect.samplecity.output import write_csv, write_gpkg

    stored = pl.register[permits.PERMIT_COLUMNS]
    result.files.append(write_gpkg(out / REGISTER_NAME, {"permits": stored}, date=config.register_date.isoformat()))
    result.files.append(write_csv(out / TRUTH_NAME, pl.table))
    result.files.append(write_gpkg(out / PARCELS_NAME, {"parcels": pl.parcels}, date=config.register_date.isoformat()))
    result.statuses = {str(k): int(v) for k, v in pl.table["expected_status"].value_counts().sort_index().items()}
    result.permits = len(stored)
    result.mismatches = pl.mismatches


__all__ = ["DEFAULT_CONFIG", "CityConfig", "Plan", "SampleCity", "check", "generate", "output_paths", "plan"]
