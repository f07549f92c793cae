"""`changedetect run` in blocks: a changed structure larger than the halo, across a core's edge,
is the whole scene's footprint (H115).  The change probability is planted (the last pair's
raster, by ground coordinates, so that every block sees the whole scene's), so the only
difference between the runs could be where a block's held pixels end."""

from __future__ import annotations

import dataclasses

import geopandas as gpd
import numpy as np
import pytest
import xarray as xr

from changedetect.config import PipelineConfig, RunConfig
from changedetect.testing import DEFAULT_ORIGIN, make_run_inputs

RES = 0.5  # make_stack's pixel (m)
#: (row0, row1, col0, col1) in the 300-px scene: two small houses inside one core each, and a long
#: shed of 30 x 200 px across the cores' vertical edge at column 150 (2 x 2 cores of 150 px,
#: halo 16 px): larger than the halo on both sides of it
PLANTED = [(20, 40, 20, 44), (240, 262, 230, 250), (100, 130, 50, 250)]


def _planted(prob: xr.DataArray) -> np.ndarray:
    col = np.floor((prob["x"].values - DEFAULT_ORIGIN[0]) / RES).astype(int)
    row = np.floor((DEFAULT_ORIGIN[1] - prob["y"].values) / RES).astype(int)
    out = np.zeros(prob.shape, dtype=np.float32)
    for r0, r1, c0, c1 in PLANTED:
        out[np.ix_((row >= r0) & (row < r1), (col >= c0) & (col < c1))] = 0.9
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, str]:
    import logging

    import changedetect._detect_pairs as pairs_mod
    import changedetect.detect as detect_mod
    from changedetect.pipeline import run

    root = tmp_path_factory.mktemp("h115")
    config: PipelineConfig = make_run_inputs(root)
    config = dataclasses.replace(config, vectorize=dataclasses.replace(config.vectorize, threshold=None,
                                                                      low_threshold=0.3))
    original = pairs_mod.combine_pairs

    def planted(events: list, stack: xr.DataArray, threshold: float) -> tuple[xr.DataArray, xr.DataArray]:
        last = max(j for _, j, _ in events)
        for k, (i, j, prob) in enumerate(events):  # in place: the same-sun rule reads these too
            data = _planted(prob) if j == last else np.zeros(prob.shape, dtype=np.float32)
            events[k] = (i, j, prob.copy(data=data))
        return original(events, stack, threshold)

    mp = pytest.MonkeyPatch()
    mp.setattr(detect_mod, "combine_pairs", planted)
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(level=logging.INFO)
    logger = logging.getLogger("changedetect.pipeline")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        out = {}
        for name, block, halo in (("whole", 4096, 256), ("blocks", 256, 16)):
            # 300 px: block_px 256 (the least allowed) cuts it into 2 x 2 cores of 150 px
            cfg = dataclasses.replace(config, run=RunConfig(block_px=block, halo_px=halo))
            run(root / "tiles", permits=root / "permits.gpkg", out=root / name, config=cfg)
            out[name] = gpd.read_file(root / name / "footprints.gpkg")
    finally:
        mp.undo()
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    return out["whole"], out["blocks"], "\n".join(r.getMessage() for r in records)


def test_the_planted_structures_are_the_whole_run_s_footprints(runs: tuple) -> None:
    whole, _, _ = runs
    # the premise: three footprints, the shed 30 x 200 px (1500 m2), more than the halo past the cores' edge
    assert len(whole) == 3
    assert whole["area_m2"].max() == pytest.approx(30 * 200 * RES * RES, rel=0.02)


def test_a_structure_larger_than_the_halo_across_a_core_s_edge_is_the_whole_scene_s(runs: tuple) -> None:
    whole, blocks, log = runs
    assert len(blocks) == len(whole), sorted(blocks["area_m2"])
    np.testing.assert_allclose(sorted(blocks["area_m2"]), sorted(whole["area_m2"]), rtol=1e-9)
    for geom in blocks.geometry:
        assert whole.geometry.geom_equals_exact(geom, 1e-6).sum() == 1, geom.wkt[:80]
    assert sorted(blocks["footprint_id"]) == sorted(whole["footprint_id"])
    for column in ("first_seen", "change_type"):
        if column in whole:
            a = whole.set_index("footprint_id")[column].astype(str)
            b = blocks.set_index("footprint_id")[column].astype(str)
            assert (a.sort_index() == b.sort_index()).all(), column
    assert "in 4 blocks" in log and "read again" in log  # the shed's blocks were read again, larger
    assert "cut_by_block" not in blocks  # none left cut: the whole scene's columns


# ----------------------------------------------------------------------------- the cap
def test_a_structure_larger_than_the_cap_is_marked_and_named_once(caplog: pytest.LogCaptureFixture) -> None:
    """A block grows at most to GROW_CAP x (block_px + halo_px) a side: a footprint still cut
    there is marked in cut_by_block and named in one WARNING, not silently kept."""
    import logging

    import shapely
    from affine import Affine

    from changedetect._pipeline_blocks import CUT, GROW_CAP, _held_whole, _said_cut
    from changedetect._pipeline_find import Found

    transform = Affine(RES, 0, DEFAULT_ORIGIN[0], 0, -RES, DEFAULT_ORIGIN[1])
    config = dataclasses.replace(PipelineConfig(), run=RunConfig(block_px=256, halo_px=16))
    read: list[tuple[tuple[int, int], tuple[int, int]]] = []

    def detect(outer_y: tuple[int, int], outer_x: tuple[int, int]) -> Found:
        read.append((outer_y, outer_x))
        # a band 20 rows high across the 4000-px scene, cut where the block ends
        (x0, y0), (x1, y1) = transform * (outer_x[0], 20), transform * (outer_x[1], 40)
        frame = gpd.GeoDataFrame({"footprint_id": ["F-band", "F-small"]},
                                 geometry=[shapely.box(x0, y1, x1, y0), shapely.box(*transform * (10, 60),
                                                                                     *transform * (20, 50))],
                                 crs="EPSG:32648")
        return Found(None, None, None, frame, (0, 1), None)  # type: ignore[arg-type]

    found, outer, cut = _held_whole(detect, ((0, 256), (0, 256)), (4000, 4000), config, [(64, 8)], transform, 1)
    cap = int(GROW_CAP * (256 + 16))
    assert len(read) >= 2 and read[-1][1][1] - read[-1][1][0] >= cap - 64  # grown, to about the cap
    assert read[-1][1][1] <= cap + 64 and read[-1][0] == read[0][0]  # no further; the rows never reached
    assert all(isinstance(v, int) for span in read[-1] for v in span)  # pixel spans stay integers
    assert list(cut) == [True, False]
    with caplog.at_level(logging.WARNING, logger="changedetect.pipeline"):
        marked = _said_cut(found.footprints.assign(**{CUT: cut}), config)
    assert list(marked[CUT]) == [True, False]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "F-band" in warnings[0].getMessage() and "F-small" not in warnings[0].getMessage()
    assert "halo_px" in warnings[0].getMessage()
    # nothing cut: no column, no warning
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="changedetect.pipeline"):
        plain = _said_cut(found.footprints.assign(**{CUT: [False, False]}), config)
    assert CUT not in plain and not caplog.records
