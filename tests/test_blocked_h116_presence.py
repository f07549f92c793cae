"""`changedetect run` in blocks: a structure larger than the halo that the whole scene keeps, but
that the block whose core holds it rejects when cut, is the whole scene's footprint (H116).

Two ways a cut can reject it, each with no footprint left to read the block again for (H115 reads a
block again for the footprints that reach past its held pixels): the presence check's object whose
network hint lies past the block (rejected: no hint), and a footprint whose building lies mostly past
the block (dropped by ``min_presence``: no building on either date in the part the block holds).
The neighbouring block sees the structure, reads itself again and holds it whole, but leaves it to
the core that holds its representative point.  The rasters are planted by ground coordinates (the
change network's and the building segmenter's, through ``detect_pair``), so every block sees the
whole scene's and the only difference between the runs is where a block's held pixels end."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from test_review_fill_before import CFG, Card, Diff, Loaded

from changedetect._pipeline_chain import Clock
from changedetect._pipeline_find import find
from changedetect.config import PipelineConfig, RunConfig
from changedetect.testing import DEFAULT_ORIGIN, make_stack

RES = 0.5  # make_stack's pixel (m)
SIZE = 400  # block_px 256: 2 x 2 cores of 200 px; with halo_px 32 the left core's block reads columns 0-256
DATES = ["2024-01-15", "2024-02-05"]  # one season: the pair is presence-checked
#: a warehouse of 30 x 270 px built between the dates (rows, columns): its representative point at
#: column 195, in the left cores; a block grown to GROW_CAP x (256 + 32) = 360 px holds it whole
HALL = (90, 120, 60, 330)
SEGMENTER = Loaded(Diff(), Card(name="roof"))


def _box(values: xr.DataArray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``box``'s pixels (scene rows and columns) on ``values``' grid, by ground coordinates."""
    col = np.floor((values["x"].values - DEFAULT_ORIGIN[0]) / RES).astype(int)
    row = np.floor((DEFAULT_ORIGIN[1] - values["y"].values) / RES).astype(int)
    r0, r1, c0, c1 = box
    return np.ix_((row >= r0) & (row < r1), (col >= c0) & (col < c1))


def _planted(monkeypatch: pytest.MonkeyPatch, change: list[tuple[tuple[int, int, int, int], float]],
             built: tuple[int, int, int, int]) -> None:
    """``detect_pair`` planted: the change network's probability ``change`` (boxes and values over
    0.01), the segmenter's building probability 0.95 over ``built`` on the later date (0.02 elsewhere)."""
    import changedetect.detect as detect_mod

    def planted(before: xr.DataArray, after: xr.DataArray, *, config: object, progress: bool = False,
                model: object = None) -> xr.DataArray:
        loaded = detect_mod._load_model(config, model)  # type: ignore[arg-type]
        base = before.isel(band=0, drop=True)
        prob = xr.DataArray(np.zeros(base.shape, dtype=np.float32), dims=("y", "x"),
                            coords={"y": base["y"], "x": base["x"]}, name="change_probability")
        if model is SEGMENTER:
            prob.values[:] = 0.02
            if str(before["time"].values)[:10] == DATES[1]:
                prob.values[_box(prob, built)] = 0.95
        else:
            prob.values[:] = 0.01
            for box, value in change:
                prob.values[_box(prob, box)] = value
        prob.attrs.update(detect_mod._attrs(loaded.card, config, detect_mod._date_of(before),  # type: ignore[arg-type]
                                            detect_mod._date_of(after)))
        return detect_mod._with_georef(prob, before)

    monkeypatch.setattr(detect_mod, "detect_pair", planted)


def _runs(tmp_path: Path) -> tuple[list[tuple[float, float, float, float, float]], ...]:
    """The footprints (bounds in scene pixels, area) of the whole scene and of 2 x 2 blocks."""
    from changedetect._pipeline_blocks import run_blocks

    stack = make_stack(dates=DATES, size=SIZE, seed=4)
    config = replace(PipelineConfig(), detect=replace(CFG, same_sun_share=None, rebuilds=False))
    models = (Loaded(Diff(), Card()), SEGMENTER)
    whole = find(stack, None, None, config, models, Clock(False), False, None).footprints
    config = replace(config, run=RunConfig(block_px=256, halo_px=32))
    blocked = run_blocks(stack, None, None, config, models, Clock(False), False, None, tmp_path)
    assert blocked.footprints.attrs["blocks"] == 4

    def rows(fp: object) -> list[tuple[float, float, float, float, float]]:
        b = fp.bounds  # type: ignore[attr-defined]
        return sorted(zip((DEFAULT_ORIGIN[1] - b.maxy) / RES, (DEFAULT_ORIGIN[1] - b.miny) / RES,
                          (b.minx - DEFAULT_ORIGIN[0]) / RES, (b.maxx - DEFAULT_ORIGIN[0]) / RES,
                          fp["area_m2"], strict=True))  # type: ignore[index]

    return rows(whole), rows(blocked.footprints)


def _same(whole: list, blocked: list) -> None:
    assert len(blocked) == len(whole), blocked
    np.testing.assert_allclose(np.array(blocked), np.array(whole), rtol=1e-9)


def test_a_presence_check_object_whose_hint_lies_past_the_block_is_the_whole_scene_s(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The network only hints (0.40) at the warehouse's far end (columns 290-330), past the left
    core's block (columns 0-256): the check there saw the warehouse cut and without a hint, and
    rejected it; the right core's block confirmed it, read itself again and left it to the left
    core.  The code before kept no footprint of it."""
    _planted(monkeypatch, [((90, 120, 290, 330), 0.4)], HALL)
    whole, blocked = _runs(tmp_path)
    assert len(whole) == 1 and whole[0][2] == pytest.approx(HALL[2], abs=1.5)  # the premise: whole
    assert whole[0][3] == pytest.approx(HALL[3], abs=1.5)
    _same(whole, blocked)


def test_a_footprint_whose_building_lies_past_the_block_is_the_whole_scene_s(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The network outlines the whole 30 x 270 px change, but the segmenter sees a building over its
    columns 230-330 only: 0.36 of building on average over the whole, kept by ``min_presence``
    (0.3); over the part the left core's block reads (columns 60-256), 0.14, dropped.  The code before kept none."""
    _planted(monkeypatch, [(HALL, 0.9)], (90, 120, 230, 330))
    whole, blocked = _runs(tmp_path)
    assert len(whole) == 1 and whole[0][2] == pytest.approx(HALL[2], abs=1.5)  # the premise: whole
    _same(whole, blocked)
