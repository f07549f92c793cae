"""The pieces of one structure that neighbouring blocks each marked ``cut_by_block`` are one
footprint (H122; :func:`changedetect._block_merge.join_cut`): their union, its area, the pieces'
confidence weighted by area, the earliest first-seen date, the largest piece's kind, an id of its
own; what is not such a piece is left as it is.  End to end (``pipeline.run`` in blocks): the
band of ``tests/test_blocked_h116_cut.py``."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from changedetect._block_merge import BLOCK, CUT, REBUILD, join_cut, structures
from changedetect._vectorize_config import VectorizeConfig
from changedetect._vectorize_shapes import footprint_ids

X0, Y0 = 686000.0, 1190000.0  # UTM 48N, Ho Chi Minh City (metres)
CRS = "EPSG:32648"


def _frame(rows: list[dict]) -> gpd.GeoDataFrame:
    """Footprints as a run in blocks has them before they are joined: largest first."""
    for row in rows:
        row.setdefault("prob_mean", np.float32(0.8))
        row.setdefault("prob_max", np.float32(0.9))
        row.setdefault("first_seen", pd.Timestamp("2024-05-14"))
        row.setdefault("before_date", pd.Timestamp("2024-03-15"))
        row.setdefault("change_type", "new")
        row.setdefault(CUT, False)
        row.setdefault(REBUILD, False)
        row["area_m2"] = round(row["geometry"].area, 2)
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS)
    frame["prob_mean"] = frame["prob_mean"].astype(np.float32)
    frame["prob_max"] = frame["prob_max"].astype(np.float32)
    return frame.sort_values("area_m2", ascending=False, kind="stable").reset_index(drop=True)


def _box(x0: float, x1: float, y0: float = 0.0, y1: float = 15.0) -> shapely.Polygon:
    return shapely.box(X0 + x0, Y0 - y1, X0 + x1, Y0 - y0)


def _band(**left: object) -> list[dict]:
    """A 15 x 250 m band as two blocks cut it (as the pipeline's test gave it, 3000 and 2910 m2
    overlapping by 2160 m2), and a house of another block beside it."""
    return [
        {"footprint_id": "F-left", BLOCK: 1, "geometry": _box(0, 200), CUT: True, "prob_mean": np.float32(0.9),
         "prob_max": np.float32(0.9), "first_seen": pd.Timestamp("2024-05-14"),
         "before_date": pd.Timestamp("2024-03-15"), "change_type": "altered", **left},
        {"footprint_id": "F-right", BLOCK: 2, "geometry": _box(56, 250), CUT: True, "prob_mean": np.float32(0.6),
         "prob_max": np.float32(0.95), "first_seen": pd.Timestamp("2023-11-02"),
         "before_date": pd.Timestamp("2023-09-01"), "change_type": "new"},
        {"footprint_id": "F-house", BLOCK: 2, "geometry": _box(10, 22, 30, 40)},
    ]


def test_two_overlapping_cut_pieces_of_neighbouring_blocks_are_one_footprint() -> None:
    frame = _frame(_band())
    out = join_cut(frame, None, VectorizeConfig())
    assert len(out) == 2
    band = out.iloc[0]
    assert band.geometry.equals(_box(0, 250)) and band["area_m2"] == pytest.approx(15 * 250)
    assert bool(band[CUT])
    # confidence: the pieces' means weighted by their areas (3000 and 2910 m2); the largest maximum
    assert band["prob_mean"] == pytest.approx((0.9 * 3000 + 0.6 * 2910) / 5910, abs=1e-4)
    assert out["prob_mean"].dtype == np.float32 and band["prob_max"] == pytest.approx(0.95)
    # first seen: the earliest piece's, with its before date; the kind: the largest piece's
    assert band["first_seen"] == pd.Timestamp("2023-11-02") and band["before_date"] == pd.Timestamp("2023-09-01")
    assert band["change_type"] == "altered"
    # its id: the whole scene's for its outline (no previous run: its centroid's cell), none other's
    assert band["footprint_id"] == footprint_ids(gpd.GeoSeries([_box(0, 250)], crs=CRS))[0]
    assert out["footprint_id"].is_unique and out.iloc[1]["footprint_id"] == "F-house"
    assert list(out.columns) == list(frame.columns)


def test_the_joined_id_is_carried_over_and_never_another_s() -> None:
    # the previous run's footprint of the whole band: its id is carried over to the union
    previous = gpd.GeoDataFrame({"footprint_id": ["F-prev"], "change_type": ["altered"]},
                                geometry=[_box(0, 250)], crs=CRS)
    out = join_cut(_frame(_band()), previous, VectorizeConfig())
    assert out.iloc[0]["footprint_id"] == "F-prev"
    # without it, the union's cell id; taken by another footprint of the run: the first free suffix
    cell = footprint_ids(gpd.GeoSeries([_box(0, 250)], crs=CRS))[0]
    rows = _band()
    rows[2]["footprint_id"] = cell
    out = join_cut(_frame(rows), None, VectorizeConfig())
    assert out.iloc[0]["footprint_id"] == f"{cell}-2" and out["footprint_id"].is_unique


def test_cut_pieces_that_only_touch_across_the_seam_are_joined() -> None:
    rows = _band()
    rows[1]["geometry"] = _box(200, 250)
    out = join_cut(_frame(rows), None, VectorizeConfig())
    assert len(out) == 2 and out.iloc[0]["area_m2"] == pytest.approx(15 * 250)


@pytest.mark.parametrize("case", ["one block", "neither cut", "rebuild", "touching a held footprint"])
def test_what_is_not_two_blocks_pieces_of_one_structure_is_left_as_it_is(case: str) -> None:
    rows = _band()
    if case == "one block":  # one block's footprints are apart by its own tracing
        rows[1][BLOCK] = 1
    elif case == "neither cut":  # whole footprints of two blocks
        rows[0][CUT] = rows[1][CUT] = False
    elif case == "rebuild":  # a rebuild over its lot's demolition: two structures
        rows[1][REBUILD] = True
    else:  # a held house of another block just touching the band's piece
        rows[1].update(geometry=_box(200, 212), **{CUT: False})
    frame = _frame(rows)
    out = join_cut(frame, None, VectorizeConfig())
    pd.testing.assert_frame_equal(pd.DataFrame(out), pd.DataFrame(frame))


def test_a_held_footprint_that_a_cut_piece_of_another_block_overlaps_is_joined_to_it() -> None:
    rows = _band()
    rows[1][CUT] = False  # held whole by its block, overlapped by the other block's cut piece
    out = join_cut(_frame(rows), None, VectorizeConfig())
    assert len(out) == 2 and out.iloc[0]["area_m2"] == pytest.approx(15 * 250) and bool(out.iloc[0][CUT])


def test_three_pieces_are_joined_through_the_middle_one() -> None:
    rows = _band()
    rows.append({"footprint_id": "F-far", BLOCK: 3, "geometry": _box(230, 400), CUT: True})
    out = join_cut(_frame(rows), None, VectorizeConfig())
    assert len(out) == 2 and out.iloc[0]["area_m2"] == pytest.approx(15 * 400)


def test_dropped_rows_of_one_structure_count_once() -> None:
    """The rows blocks dropped as unconfirmed: pieces of different blocks that overlap are one."""
    geoms = np.array([_box(0, 200), _box(56, 250), _box(250, 260), _box(10, 20, 30, 40)], dtype=object)
    labels = structures(geoms, np.array([1, 2, 3, 2]))
    assert len(set(labels.tolist())) == 3  # the band's two pieces once; the one only touching it apart
    assert len(structures(np.array([], dtype=object), np.array([], dtype=np.int64))) == 0


def test_a_rebuild_s_pieces_are_joined_with_each_other() -> None:
    """A rebuild's pieces (each a rebuild of its block) are one rebuild: the run counts it once."""
    rows = _band()
    rows[0][REBUILD] = rows[1][REBUILD] = True
    out = join_cut(_frame(rows), None, VectorizeConfig())
    assert len(out) == 2 and list(out[REBUILD]) == [True, False]


def test_a_house_that_overlaps_a_cut_piece_by_a_sliver_is_not_joined_to_it() -> None:
    """A house of another block beside a cut structure, whose simplified outline crosses the structure's
    piece by a sliver (0.3 m of its 12 m, 2.5 % of the house), stays a footprint of its own: only pieces
    of one structure overlap by the seam's margin."""
    rows = _band()
    rows.append({"footprint_id": "F-next", BLOCK: 1, "geometry": _box(230, 242, 14.7, 26.7)})
    out = join_cut(_frame(rows), None, VectorizeConfig())
    assert len(out) == 3 and "F-next" in set(out["footprint_id"])
    assert out.iloc[0].geometry.equals(_box(0, 250)) and not bool(out.set_index("footprint_id").at["F-next", CUT])
