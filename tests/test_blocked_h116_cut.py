"""`changedetect run` in blocks, end to end: a footprint no grown block can hold whole is marked
``cut_by_block`` in footprints.gpkg, violations.gpkg and violations.csv and named in one WARNING;
a run in blocks where nothing is left cut writes no such column (H116).  The change probability is
planted by ground coordinates in place of the network's (``detect_pair``), so every block sees the
whole scene's and the runs take seconds."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from changedetect._pipeline_blocks import CUT, GROW_CAP
from changedetect.config import PipelineConfig, RunConfig
from changedetect.testing import DEFAULT_ORIGIN, make_run_inputs, make_stack

RES = 0.5  # make_stack's pixel (m)
SIZE = 500  # block_px 256 cuts it into 2 x 2 cores of 250 px
BLOCK, HALO = 256, 16
#: (row0, row1, col0, col1): a small house inside one core, and a road-like band 30 px high across the
#: whole 500 px scene, wider than a block may grow (GROW_CAP x (256 + 16) = 340 px, and the windows
#: read past that): cut
BAND = [(20, 40, 20, 44), (100, 130, 0, SIZE)]
#: the same house, and a shed of 30 x 130 px across the cores' edge at column 250, larger than the
#: halo on both sides but within a grown block's reach: its blocks are read again and hold it whole
SHED = [(20, 40, 20, 44), (100, 130, 190, 320)]


def _planted(prob: xr.DataArray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    col = np.floor((prob["x"].values - DEFAULT_ORIGIN[0]) / RES).astype(int)
    row = np.floor((DEFAULT_ORIGIN[1] - prob["y"].values) / RES).astype(int)
    out = np.zeros(prob.shape, dtype=np.float32)
    for r0, r1, c0, c1 in boxes:
        out[np.ix_((row >= r0) & (row < r1), (col >= c0) & (col < c1))] = 0.9
    return out


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[logging.LogRecord]]]:
    """Two runs in 2 x 2 blocks of the same scene: 'cut' (the band) and 'held' (the shed).  No local
    or radiometric co-registration (most of a run's time here, and nothing to align: one stack)."""
    import changedetect.detect as detect_mod
    from changedetect.pipeline import run

    root = tmp_path_factory.mktemp("h116")
    config: PipelineConfig = make_run_inputs(root, size=SIZE)
    config = dataclasses.replace(config, vectorize=dataclasses.replace(config.vectorize, threshold=None,
                                                                      low_threshold=0.3),
                                 run=RunConfig(block_px=BLOCK, halo_px=HALO),
                                 coregister=dataclasses.replace(config.coregister, local=False, radiometric=False))
    boxes: list[tuple[int, int, int, int]] = []

    def planted(before: xr.DataArray, after: xr.DataArray, *, config: object, progress: bool = False,
                model: object = None) -> xr.DataArray:
        """The network's place: the planted structures on the series' last pair, nothing elsewhere."""
        loaded = detect_mod._load_model(config, model)  # type: ignore[arg-type]
        base = before.isel(band=0, drop=True)
        prob = xr.DataArray(np.zeros(base.shape, dtype=np.float32), dims=("y", "x"),
                            coords={"y": base["y"], "x": base["x"]}, name="change_probability")
        if str(after["time"].values)[:10] == newest:
            prob.values = _planted(prob, boxes)
        prob.attrs.update(detect_mod._attrs(loaded.card, config, detect_mod._date_of(before),  # type: ignore[arg-type]
                                            detect_mod._date_of(after)))
        return detect_mod._with_georef(prob, before)

    newest = str(make_stack(n_dates=3, size=8)["time"].values[-1])[:10]  # make_run_inputs' last date
    mp = pytest.MonkeyPatch()
    mp.setattr(detect_mod, "detect_pair", planted)
    handler, logger = _Keep(), logging.getLogger("changedetect.pipeline")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    out: dict[str, tuple[Path, list[logging.LogRecord]]] = {}
    try:
        for name, planted_boxes in (("cut", BAND), ("held", SHED)):
            boxes[:] = planted_boxes
            handler.records = []
            run(root / "tiles", permits=root / "permits.gpkg", out=root / name, config=config)
            out[name] = (root / name, handler.records)
    finally:
        mp.undo()
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    return out


def _layers(folder: Path) -> dict[str, pd.DataFrame]:
    return {"footprints.gpkg": gpd.read_file(folder / "footprints.gpkg"),
            "violations.gpkg": gpd.read_file(folder / "violations.gpkg"),
            "violations.csv": pd.read_csv(folder / "violations.csv")}


def _truthy(values: pd.Series) -> list[bool]:
    return [str(v).strip().lower() in ("true", "1") for v in values]


def _band_and_house(fp: gpd.GeoDataFrame) -> tuple[set[str], str]:
    """The ids of the band's footprints (one since H122: the pieces of the blocks that keep one, each
    the cap's reach, joined) and the house's."""
    house = str(fp.loc[fp["area_m2"].idxmin(), "footprint_id"])
    return set(fp["footprint_id"].astype(str)) - {house}, house


def test_a_footprint_larger_than_a_grown_block_is_marked_in_every_file(runs: dict) -> None:
    folder, _ = runs["cut"]
    layers = _layers(folder)
    fp = layers["footprints.gpkg"]
    # the premise: the band (15 m x 250 m), wider than a grown block, is cut; the house is whole
    assert int(GROW_CAP * (BLOCK + HALO)) < SIZE
    assert 30 * 200 * RES * RES < fp["area_m2"].max() < 30 * SIZE * RES * RES * 1.03
    assert fp["area_m2"].min() == pytest.approx(20 * 24 * RES * RES, rel=0.1)
    band, house = _band_and_house(fp)
    assert band
    for name, frame in layers.items():
        assert CUT in frame.columns, f"{name}: {list(frame.columns)}"
        marked = dict(zip(frame["footprint_id"].astype(str), _truthy(frame[CUT]), strict=True))
        assert marked == {**dict.fromkeys(band, True), house: False}, name


def test_the_cut_footprints_are_named_in_one_warning(runs: dict) -> None:
    folder, records = runs["cut"]
    band, house = _band_and_house(gpd.read_file(folder / "footprints.gpkg"))
    warnings = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
    said = [w for w in warnings if CUT in w]
    assert len(said) == 1, warnings
    assert all(fid in said[0] for fid in band) and house not in said[0] and "halo_px" in said[0]


def test_a_run_in_blocks_with_nothing_cut_writes_no_such_column(runs: dict) -> None:
    folder, records = runs["held"]
    layers = _layers(folder)
    fp = layers["footprints.gpkg"]
    # the premise: the shed was read again, larger, and is one footprint of its whole area
    assert any("read again" in r.getMessage() for r in records)
    assert fp["area_m2"].max() == pytest.approx(30 * 130 * RES * RES, rel=0.02)
    for name, frame in layers.items():
        assert len(frame) and CUT not in frame.columns, f"{name}: {list(frame.columns)}"
    assert not [r for r in records if r.levelno >= logging.WARNING and CUT in r.getMessage()]


def test_the_pieces_of_a_cut_structure_are_one_footprint_of_its_whole_area(runs: dict) -> None:
    """H122: the band came out as two marked pieces of 3000 and 2910 m2 overlapping by 2160 m2 (two
    violations for one structure); the pieces of the blocks that keep one are joined: one footprint
    of about the band's 3750 m2, one violation, marked, no footprint overlapping another."""
    folder, records = runs["cut"]
    layers = _layers(folder)
    fp = layers["footprints.gpkg"]
    band_area = 30 * SIZE * RES * RES
    assert len(fp) == 2, fp[["footprint_id", "area_m2"]].to_string()
    band = fp.loc[fp["area_m2"].idxmax()]
    assert band["area_m2"] == pytest.approx(band_area, rel=0.03)
    assert band.geometry.area == pytest.approx(band["area_m2"], rel=1e-6)  # a metric CRS: the area is the outline's
    assert band.geometry.geom_type == "Polygon"
    geoms = np.asarray(fp.geometry.values)
    assert fp.geometry.iloc[0].intersection(fp.geometry.iloc[1]).area == 0, [g.bounds for g in geoms]
    # its confidence is the planted probability's, its date the band's, its id its own
    assert band["prob_mean"] == pytest.approx(0.9, abs=0.01) and band["prob_max"] == pytest.approx(0.9, abs=1e-6)
    assert str(band["first_seen"])[:10] == str(fp["first_seen"].min())[:10]
    assert fp["footprint_id"].is_unique
    for name, frame in layers.items():
        assert len(frame) == 2, name
        assert sorted(_truthy(frame[CUT])) == [False, True], name
    said = [r.getMessage() for r in records if r.levelno >= logging.WARNING and CUT in r.getMessage()]
    assert said and said[0].startswith("1 footprint(s)"), said
