"""vectorize(): rectangles back as polygons, hysteresis, min-area, strip seams, stable ids, change types."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401
import shapely
import xarray as xr
from affine import Affine
from shapely.geometry import box

from changedetect._vectorize_shapes import regularize
from changedetect.vectorize import COLUMNS, VectorizeConfig, hysteresis, vectorize

X0, Y0, RES = 686_000.0, 1_192_000.0, 0.5


def raster(values: np.ndarray, *, dims: tuple[str, ...] = ("y", "x")) -> xr.DataArray:
    h, w = values.shape[-2:]
    t = Affine(RES, 0, X0, 0, -RES, Y0)
    coords = {"y": Y0 - RES * (np.arange(h) + 0.5), "x": X0 + RES * (np.arange(w) + 0.5)}
    if len(dims) == 3:
        coords["band"] = ["red", "green", "blue", "nir"][: values.shape[0]]
    da = xr.DataArray(values, dims=dims, coords=coords)
    return da.rio.write_crs("EPSG:32648").rio.write_transform(t)


def px_box(r0: int, c0: int, r1: int, c1: int):
    """The ground box of pixel rows [r0, r1) and columns [c0, c1)."""
    return box(X0 + c0 * RES, Y0 - r1 * RES, X0 + c1 * RES, Y0 - r0 * RES)


def iou(a, b) -> float:
    return a.intersection(b).area / a.union(b).area


def test_rectangles_come_back(tmp_path) -> None:
    p = np.zeros((160, 160), np.float32)
    boxes = [(10, 10, 40, 60), (60, 80, 100, 150), (110, 20, 150, 50)]
    for r0, c0, r1, c1 in boxes:
        p[r0:r1, c0:c1] = 0.9
    prob = raster(p)
    prob.attrs.update(model="vhr-building", model_sha256="0123456789abcdef")
    out = vectorize(prob)
    assert list(out.columns) == [*COLUMNS, "geometry"]
    assert len(out) == 3 and out.crs.to_epsg() == 32648
    for r0, c0, r1, c1 in boxes:
        truth = px_box(r0, c0, r1, c1)
        best = max(iou(truth, g) for g in out.geometry)
        assert best > 0.9
    assert out["prob_mean"].tolist() == pytest.approx([0.9] * 3)
    assert (out["model"] == "vhr-building").all() and (out["model_version"] == "0123456789ab").all()
    assert (out["change_type"] == "new").all()


def test_rotated_building_is_regularised() -> None:
    truth = shapely.affinity.rotate(px_box(40, 40, 70, 100), 30, origin="centroid")
    p = np.zeros((160, 160), np.float32)
    rows, cols = np.mgrid[0:160, 0:160]
    xs, ys = X0 + (cols + 0.5) * RES, Y0 - (rows + 0.5) * RES
    p[shapely.contains_xy(truth, xs, ys)] = 0.95
    out = vectorize(raster(p))
    assert len(out) == 1
    geom = out.geometry.iat[0]
    assert len(geom.exterior.coords) == 5  # a rectangle
    assert iou(geom, truth) > 0.93


def test_l_shape_stays_square() -> None:
    poly = shapely.union_all([px_box(0, 0, 40, 20), px_box(20, 0, 40, 60)])
    out = regularize(poly.buffer(0.2, join_style="mitre"), rectangularity=0.8, tolerance=0.75)
    assert iou(out, poly) > 0.95 and len(out.exterior.coords) <= 8


def test_hysteresis_keeps_weak_parts_of_strong_buildings() -> None:
    p = np.zeros((60, 60), np.float32)
    p[10:20, 10:20] = 0.9   # strong
    p[20:30, 10:20] = 0.35  # weak, attached
    p[40:50, 40:50] = 0.35  # weak, alone
    mask = hysteresis(p, 0.5, 0.3)
    assert mask[25, 15] and mask[15, 15] and not mask[45, 45]
    out = vectorize(raster(p))
    assert len(out) == 1
    assert out["area_m2"].iat[0] == pytest.approx(20 * 10 * RES * RES)
    assert out["prob_max"].iat[0] == pytest.approx(0.9)
    no_hyst = vectorize(raster(p), config=VectorizeConfig(low_threshold=None))
    assert no_hyst["area_m2"].iat[0] == pytest.approx(10 * 10 * RES * RES)


def test_min_area_drops_specks() -> None:
    p = np.zeros((60, 60), np.float32)
    p[10:30, 10:30] = 0.9  # 100 m²
    p[40:46, 40:46] = 0.9  # 9 m²
    p[2, 50] = 1.0
    assert len(vectorize(raster(p))) == 1
    assert len(vectorize(raster(p), config=VectorizeConfig(min_area_m2=5))) == 2


@pytest.mark.parametrize("strip_rows", [32, 33, 50])
def test_one_building_across_strip_seams_is_one_polygon(strip_rows: int) -> None:
    p = np.zeros((200, 120), np.float32)
    p[20:180, 30:70] = 0.9
    p[60:140, 70:100] = 0.9  # a wing crossing seams too
    whole = vectorize(raster(p), config=VectorizeConfig(regularize=False))
    strips = vectorize(raster(p), config=VectorizeConfig(regularize=False, strip_rows=strip_rows, strip_overlap=8))
    assert len(whole) == 1 and len(strips) == 1
    assert strips.geometry.iat[0].geom_type == "Polygon"
    assert strips["area_m2"].iat[0] == pytest.approx(whole["area_m2"].iat[0])
    assert strips["prob_mean"].iat[0] == pytest.approx(0.9)
    assert iou(strips.geometry.iat[0], whole.geometry.iat[0]) > 0.999


def test_a_progress_bar_counts_the_strips_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    p = np.zeros((200, 120), np.float32)
    p[20:180, 30:70] = 0.9
    config = VectorizeConfig(regularize=False, strip_rows=50, strip_overlap=8)
    quiet = vectorize(raster(p), config=config)
    assert "vectorize" not in capsys.readouterr().err
    shown = vectorize(raster(p), config=config, progress=True)
    err = capsys.readouterr().err
    assert "vectorize" in err and "4/4" in err and "strip" in err
    assert len(shown) == len(quiet) == 1


def test_footprint_id_is_stable_under_small_noise() -> None:
    rng = np.random.default_rng(0)
    base = np.zeros((200, 200), np.float32)
    boxes = [(20, 20, 60, 70), (100, 30, 130, 90), (120, 120, 180, 170)]
    for r0, c0, r1, c1 in boxes:
        base[r0:r1, c0:c1] = 0.9
    ids = set(vectorize(raster(base))["footprint_id"])
    for _ in range(3):
        noisy = base.copy()
        for r0, c0, r1, c1 in boxes:  # each edge moves by up to one pixel
            dr0, dc0, dr1, dc1 = rng.integers(-1, 2, 4)
            noisy[r0:r1, c0:c1] = 0
            noisy[r0 + dr0: r1 + dr1, c0 + dc0: c1 + dc1] = 0.9
        noisy += rng.normal(0, 0.03, noisy.shape).astype(np.float32)
        assert set(vectorize(raster(noisy))["footprint_id"]) == ids


def test_first_seen_is_the_median_date() -> None:
    p = np.zeros((60, 60), np.float32)
    p[10:30, 10:30] = 0.9
    seen = np.full((60, 60), np.datetime64("NaT"), dtype="datetime64[ns]")
    seen[10:30, 10:30] = np.datetime64("2024-03-15")
    seen[10:12, 10:30] = np.datetime64("2023-01-01")  # a few early pixels do not decide
    fs = xr.DataArray(seen, dims=("y", "x"))
    out = vectorize(raster(p), first_seen=fs)
    assert pd.Timestamp(out["first_seen"].iat[0]) == pd.Timestamp("2024-03-15")
    days = xr.DataArray(np.where(np.isnat(seen), np.nan, seen.astype("datetime64[D]").astype(float)), dims=("y", "x"))
    assert pd.Timestamp(vectorize(raster(p), first_seen=days)["first_seen"].iat[0]) == pd.Timestamp("2024-03-15")
    # another grid: one clear error (exit 2 in the CLI)
    from changedetect.errors import GeoreferenceError

    with pytest.raises(GeoreferenceError, match="first-seen raster has 30x60 pixels and the probability 60x60"):
        vectorize(raster(p), first_seen=days[:30])


def _scene(with_building: bool) -> np.ndarray:
    """Grass (red 60, green 140, blue 50, nir 200) with a grey roof at rows/cols 20..40."""
    img = np.empty((4, 80, 80), np.float32)
    img[:] = np.array([60, 140, 50, 200], np.float32)[:, None, None]
    if with_building:
        img[:, 20:40, 20:40] = np.array([200, 195, 190, 170], np.float32)[:, None, None]
    return img


def test_change_type_from_images_and_from_buildings() -> None:
    p = np.zeros((80, 80), np.float32)
    p[20:40, 20:40] = 0.9
    prob = raster(p)
    grass, roof = raster(_scene(False), dims=("band", "y", "x")), raster(_scene(True), dims=("band", "y", "x"))
    assert vectorize(prob, before=grass, after=roof)["change_type"].tolist() == ["new"]
    assert vectorize(prob, before=roof, after=grass)["change_type"].tolist() == ["demolished"]
    repainted = roof.copy()
    repainted[0] = np.where(roof[0] > 150, 230, roof[0])
    assert vectorize(prob, before=roof, after=repainted)["change_type"].tolist() == ["altered"]
    # an image on another grid: refused, not guessed
    from changedetect.errors import GeoreferenceError

    with pytest.raises(GeoreferenceError, match="image has 40x40 pixels and the probability 80x80"):
        vectorize(prob, before=roof[:, :40, :40], after=roof)
    import geopandas as gpd

    existing = gpd.GeoDataFrame(geometry=[px_box(22, 22, 38, 38)], crs="EPSG:32648").to_crs(4326)
    assert vectorize(prob, buildings=existing)["change_type"].tolist() == ["altered"]
    assert vectorize(prob, buildings=existing, after=grass)["change_type"].tolist() == ["demolished"]


def test_change_type_from_building_presence_before_and_after() -> None:
    from changedetect._change_presence import presence_types

    # three footprints; the images say nothing useful (grass on both dates: the heuristic's "new")
    p = np.zeros((80, 120), np.float32)
    for c0 in (5, 45, 85):
        p[20:40, c0:c0 + 25] = 0.9
    prob, grass = raster(p), raster(np.stack([_scene(False)[:, :, 0]] * 120, axis=-1), dims=("band", "y", "x"))
    before, after = np.zeros((80, 120), np.float32), np.zeros((80, 120), np.float32)
    after[20:40, 5:30] = 0.9  # nothing, then a building: new
    before[20:40, 45:70] = 0.95  # a building, then ground: demolished
    before[20:40, 85:110], after[20:40, 85:110] = 0.9, 0.8  # a building on both dates: altered
    before[30, 90] = np.nan  # no data is left out of the means
    out = vectorize(prob, before=grass, after=grass, presence=(raster(before), raster(after)))
    order = np.argsort(out.geometry.centroid.x.to_numpy())
    assert out["change_type"].to_numpy()[order].tolist() == ["new", "demolished", "altered"]
    assert vectorize(prob, before=grass, after=grass)["change_type"].tolist() == ["new"] * 3  # images alone
    import geopandas as gpd  # an existing-buildings layer still wins

    existing = gpd.GeoDataFrame(geometry=[px_box(20, 5, 40, 30)], crs="EPSG:32648")
    out = vectorize(prob, buildings=existing, presence=(raster(before), raster(after)))
    assert sorted(out["change_type"]) == ["altered", "new", "new"]
    # the thresholds: a rise of 0.3 from below 0.5; neither date built is "new"; NaN falls back
    b = np.array([0.1, 0.9, 0.6, 0.2, 0.45, np.nan])
    a = np.array([0.5, 0.5, 0.7, 0.3, 0.74, 0.9])
    assert presence_types(b, a, ["x"] * 6) == ["new", "demolished", "altered", "new", "altered", "x"]


def test_the_closing_does_not_join_a_new_building_to_one_that_went() -> None:
    # two detections a pixel apart: a new extension (rows 20-39) and, beside it, a winter
    # shadow the segmenter took for a building that then went (rows 41-55)
    p = np.zeros((80, 80), np.float32)
    p[20:40, 20:40] = 0.9
    p[41:56, 10:26] = 0.9
    prob = raster(p)
    before, after = np.full((80, 80), 0.05, np.float32), np.full((80, 80), 0.05, np.float32)
    after[20:40, 20:40] = 0.95
    before[41:56, 10:26] = 0.9
    out = vectorize(prob, presence=(raster(before), raster(after)), config=VectorizeConfig(regularize=False))
    assert sorted(out["area_m2"]) == [60.0, 100.0]  # 15 x 16 and 20 x 20 px of 0.25 m²
    assert sorted(out["change_type"]) == ["demolished", "new"]
    # the same two as one kind (both new) are one object with a crack, closed as before
    after[41:56, 10:26], before[41:56, 10:26] = 0.95, 0.05
    joined = vectorize(prob, presence=(raster(before), raster(after)), config=VectorizeConfig(regularize=False))
    assert len(joined) == 1 and joined["area_m2"].iloc[0] > 160
    assert len(vectorize(prob, config=VectorizeConfig(regularize=False))) == 1  # no segmenter: a plain closing
    with pytest.raises(ValueError, match="grid"):
        vectorize(prob, presence=(raster(before[:40]), raster(after[:40])))


def test_footprints_with_no_building_on_either_date_are_dropped() -> None:
    p = np.zeros((80, 120), np.float32)
    for c0 in (5, 45, 85):
        p[20:40, c0:c0 + 25] = 0.9
    prob = raster(p)
    before, after = np.zeros((80, 120), np.float32), np.zeros((80, 120), np.float32)
    after[20:40, 5:30] = 0.9  # a new building
    before[20:40, 45:70], after[20:40, 45:70] = 0.2, 0.25  # a car or a shadow: no building either side
    before[20:40, 85:110] = np.nan  # no segmenter data: kept
    presence = (raster(before), raster(after))
    out = vectorize(prob, presence=presence)
    assert sorted(out.geometry.centroid.x.round() - X0) == [9.0, 49.0]  # columns 17.5 and 97.5 (0.5 m)
    assert len(vectorize(prob, presence=presence, config=VectorizeConfig(min_presence=None))) == 3
    assert len(vectorize(prob, presence=presence, config=VectorizeConfig(min_presence=0.2))) == 3
    import geopandas as gpd  # an existing-buildings layer decides the kind, not whether it is a building

    existing = gpd.GeoDataFrame(geometry=[px_box(20, 45, 40, 70)], crs="EPSG:32648")
    assert len(vectorize(prob, presence=presence, buildings=existing)) == 2
    with pytest.raises(ValueError, match="min_presence"):
        VectorizeConfig(min_presence=1.5)


def test_a_dropped_blob_takes_no_id_from_a_kept_footprint() -> None:
    """A lawn ring with no building on either date (dropped) around a new building whose centroid
    shares its 4.4 m id cell: the building gets the id it gets alone (it got a '-2' id, the larger
    lawn taking the cell's, and would have changed id the night the lawn is gone)."""
    p = np.zeros((120, 120), np.float32)
    p[10:110, 10:110] = 0.9
    p[30:90, 30:90] = 0.0  # the ring's courtyard, 900 m²: kept as a hole
    p[55:65, 55:65] = 0.9  # the building, 25 m², at the ring's centre
    before, after = np.full_like(p, 0.1), np.full_like(p, 0.1)
    after[55:65, 55:65] = 0.9
    out = vectorize(raster(p), presence=(raster(before), raster(after)))
    alone = np.zeros_like(p)
    alone[55:65, 55:65] = 0.9
    assert out["footprint_id"].tolist() == vectorize(raster(alone))["footprint_id"].tolist()
    assert out["change_type"].tolist() == ["new"] and out["area_m2"].tolist() == [25.0]


def test_empty_and_nan() -> None:
    p = np.full((40, 40), np.nan, np.float32)
    out = vectorize(raster(p))
    assert len(out) == 0 and list(out.columns) == [*COLUMNS, "geometry"]


def test_config_is_checked() -> None:
    with pytest.raises(ValueError):
        VectorizeConfig(threshold=0.3, low_threshold=0.5)


def test_cli_vectorize(tmp_path) -> None:
    from click.testing import CliRunner

    from changedetect.cli import cli

    p = np.zeros((80, 80), np.float32)
    p[10:40, 10:50] = 0.9
    raster(p).rio.to_raster(tmp_path / "prob.tif")
    days = np.where(p > 0, float(np.datetime64("2024-07-12", "D").astype(int)), np.nan).astype(np.float32)
    raster(days).rio.to_raster(tmp_path / "fs.tif")
    out = tmp_path / "fp.gpkg"
    args = ["vectorize", str(tmp_path / "prob.tif"), "--first-seen", str(tmp_path / "fs.tif"), "--out", str(out)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "1 footprints, 300 m²" in res.output
    from changedetect.errors import ConfigError
    from changedetect.vectorize import vectorize_file

    image = np.zeros((3, 80, 80), np.uint8)  # an RGB tile given as PROB
    raster(image, dims=("band", "y", "x")).rio.to_raster(tmp_path / "rgb.tif")
    with pytest.raises(ConfigError, match=r"has 3 band\(s\) of uint8: PROB is a change probability raster"):
        vectorize_file(tmp_path / "rgb.tif", tmp_path / "x.gpkg")
    import geopandas as gpd

    back = gpd.read_file(out)
    assert str(back["first_seen"].iat[0])[:10] == "2024-07-12"
    again = CliRunner().invoke(cli, args)
    assert again.exit_code != 0 and "overwrite" in str(again.exception or again.output)


# --- footprint ids carried over from the previous run -------------------------------------------------


def _one(r0: int, c0: int, r1: int, c1: int, size: int = 200) -> np.ndarray:
    p = np.zeros((size, size), np.float32)
    p[r0:r1, c0:c1] = 0.9
    return p


def _crossing_box() -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """A building whose cell id changes when its east wall moves out by one pixel (found, not assumed)."""
    for c0 in range(20, 60):
        small, grown = (40, c0, 80, c0 + 40), (40, c0, 80, c0 + 41)
        a, b = vectorize(raster(_one(*small))), vectorize(raster(_one(*grown)))
        if a["footprint_id"].iat[0] != b["footprint_id"].iat[0]:
            return small, grown
    raise AssertionError("no position where a one-pixel growth crosses a cell edge")


def test_an_outline_grown_by_a_pixel_keeps_its_id_with_previous() -> None:
    small, grown = _crossing_box()
    before = vectorize(raster(_one(*small)))
    alone = vectorize(raster(_one(*grown)))
    assert alone["footprint_id"].iat[0] != before["footprint_id"].iat[0]  # the cell id alone changes
    after = vectorize(raster(_one(*grown)), previous=before)
    assert after["footprint_id"].tolist() == before["footprint_id"].tolist()
    assert after.attrs["carried_ids"] == 1
    # the previous footprints in another CRS (as a GeoPackage in EPSG:4326 would give them)
    assert vectorize(raster(_one(*grown)), previous=before.to_crs(4326))["footprint_id"].tolist() == \
        before["footprint_id"].tolist()


def test_a_structure_that_grows_keeps_its_id_and_a_different_one_does_not_take_it() -> None:
    before = vectorize(raster(_one(40, 40, 80, 80)))  # 20 m x 20 m
    old_id = before["footprint_id"].iat[0]
    # grown to 20 m x 50 m (IoU 0.39, but it holds 97.5 % of the old outline): the same structure
    grown = vectorize(raster(_one(41, 40, 80, 140)), previous=before)
    assert grown["footprint_id"].tolist() == [old_id]
    # with a higher IoU threshold and a cover rule of 100 % it is not carried: the rule is what decides
    strict = VectorizeConfig(carry_min_iou=0.9, carry_min_cover=1.0)
    assert vectorize(raster(_one(41, 40, 80, 140)), previous=before, config=strict)["footprint_id"].iat[0] != old_id


def _same_cell_pair() -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """A 5 m building and a neighbour 3.5 m east of it (30 % overlap) whose centroids share an id cell."""
    for c0 in range(40, 60):
        old, other = (60, c0, 70, c0 + 10), (60, c0 + 7, 70, c0 + 17)
        a, b = vectorize(raster(_one(*old))), vectorize(raster(_one(*other)))
        if a["footprint_id"].iat[0] == b["footprint_id"].iat[0]:
            return old, other
    raise AssertionError("no position where the two share a cell")


def test_a_different_structure_never_takes_a_previous_id() -> None:
    old_box, other = _same_cell_pair()
    before = vectorize(raster(_one(*old_box)))
    old_id = before["footprint_id"].iat[0]
    alone = vectorize(raster(_one(*other)))
    assert alone["footprint_id"].iat[0] == old_id  # without previous, the cell id collides
    after = vectorize(raster(_one(*other)), previous=before)
    assert after["footprint_id"].tolist() == [f"{old_id}-2"]  # overlaps by 30 %: a fresh id, never the old one


def test_split_and_merge_keep_one_id_each() -> None:
    import geopandas as gpd

    from changedetect._vectorize_shapes import carry_ids

    def frame(boxes: list, ids: list[str]) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame({"footprint_id": ids}, geometry=[px_box(*b) for b in boxes], crs="EPSG:32648")

    big = frame([(0, 0, 40, 100)], ["F-big"])
    pieces = gpd.GeoSeries([px_box(0, 0, 40, 30), px_box(0, 35, 40, 100)], crs="EPSG:32648")
    ids = carry_ids(pieces, big)
    assert ids[1] == "F-big" and ids[0] != "F-big" and not ids[0].startswith("F-big")  # the larger piece
    two = frame([(0, 0, 40, 45), (0, 50, 40, 100)], ["F-west", "F-east"])
    merged = gpd.GeoSeries([px_box(0, 0, 40, 100)], crs="EPSG:32648")
    assert carry_ids(merged, two) == ["F-east"]  # the one it overlaps best
    # a previous id given twice is carried over once
    twice = frame([(0, 0, 40, 45), (0, 50, 40, 100)], ["F-x", "F-x"])
    out = carry_ids(gpd.GeoSeries([px_box(0, 0, 40, 45), px_box(0, 50, 40, 100)], crs="EPSG:32648"), twice)
    assert out.count("F-x") == 1 and len(set(out)) == 2


def test_a_demolition_and_the_building_on_its_lot_are_two_structures() -> None:
    """With kinds, a demolished footprint never passes its id to one that is not (nor back)."""
    import geopandas as gpd

    from changedetect._vectorize_shapes import carry_ids

    lot = gpd.GeoDataFrame({"footprint_id": ["F-lot"], "change_type": ["demolished"]},
                           geometry=[px_box(0, 0, 40, 40)], crs="EPSG:32648")
    rebuilt = gpd.GeoSeries([px_box(0, 0, 40, 38)], crs="EPSG:32648")
    assert carry_ids(rebuilt, lot) == ["F-lot"]  # no kinds given: overlap alone decides
    assert carry_ids(rebuilt, lot, kinds=["new"]) != ["F-lot"]
    assert carry_ids(rebuilt, lot, kinds=["demolished"]) == ["F-lot"]  # the same demolition, seen again
    assert carry_ids(rebuilt, lot.assign(change_type=["new"]), kinds=["altered"]) == ["F-lot"]
    assert carry_ids(rebuilt, lot.drop(columns="change_type"), kinds=["new"]) == ["F-lot"]  # kind unknown
    assert carry_ids(rebuilt, lot.assign(change_type=[None]), kinds=["new"]) == ["F-lot"]
    assert carry_ids(rebuilt, lot, kinds=[None]) == ["F-lot"] == carry_ids(rebuilt, lot, kinds=[np.nan])
    with pytest.raises(ValueError, match="kinds"):
        carry_ids(rebuilt, lot, kinds=["new", "new"])


def test_vectorize_keeps_a_demolitions_id_from_the_rebuild() -> None:
    """vectorize types its footprints (here from building presence) before carrying ids and passes
    the kinds on: a demolition, then a house on its lot, are two structures; the same demolition
    seen again keeps its id; without evidence for the kind (the default `new`), overlap decides."""
    p = np.zeros((80, 80), np.float32)
    p[20:40, 20:45] = 0.9
    built, empty = np.zeros((80, 80), np.float32), np.zeros((80, 80), np.float32)
    built[20:40, 20:45] = 0.95
    demolished = vectorize(raster(p), presence=(raster(built), raster(empty)))
    assert demolished["change_type"].tolist() == ["demolished"]
    p2 = p.copy()
    p2[38:40] = 0  # the next run's outline differs a little
    again = vectorize(raster(p2), presence=(raster(built), raster(empty)), previous=demolished)
    assert again["change_type"].tolist() == ["demolished"]
    assert again["footprint_id"].tolist() == demolished["footprint_id"].tolist()
    rebuilt = vectorize(raster(p2), presence=(raster(empty), raster(built)), previous=demolished)
    assert rebuilt["change_type"].tolist() == ["new"]
    assert rebuilt["footprint_id"].iat[0] != demolished["footprint_id"].iat[0]
    untyped = vectorize(raster(p2), previous=demolished)  # `new` by default, not from evidence
    assert untyped["footprint_id"].tolist() == demolished["footprint_id"].tolist()


def test_previous_must_have_ids_and_a_crs() -> None:
    import geopandas as gpd

    from changedetect.errors import GeoreferenceError

    p = raster(_one(40, 40, 80, 80))
    with pytest.raises(ValueError, match="footprint_id"):
        vectorize(p, previous=gpd.GeoDataFrame(geometry=[px_box(40, 40, 80, 80)], crs="EPSG:32648"))
    with pytest.raises(GeoreferenceError, match="CRS"):
        vectorize(p, previous=gpd.GeoDataFrame({"footprint_id": ["F-a"]}, geometry=[px_box(40, 40, 80, 80)]))
    assert vectorize(p, previous=vectorize(raster(np.zeros((200, 200), np.float32))))["footprint_id"].tolist() == \
        vectorize(p)["footprint_id"].tolist()


def test_previous_with_broken_shapes_and_missing_ids(tmp_path) -> None:
    import geopandas as gpd

    from changedetect._vectorize_shapes import carry_ids
    from changedetect.errors import ConfigError
    from changedetect.vectorize import load_previous

    crs = "EPSG:32648"
    new = gpd.GeoSeries([px_box(0, 0, 40, 40), px_box(100, 100, 140, 140)], crs=crs)
    x0, y0, x1, y1 = px_box(0, 0, 40, 40).bounds
    bowtie = shapely.Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])  # self-intersecting, as a GIS edit leaves
    assert not bowtie.is_valid
    prev = gpd.GeoDataFrame({"footprint_id": ["F-old", None]}, geometry=[bowtie, px_box(100, 100, 140, 140)],
                            crs=crs)
    out = carry_ids(new, prev)  # GEOS raised a TopologyException on the bow-tie before it was made valid
    assert "None" not in out and "nan" not in out
    assert out[1] != out[0] and out[1].startswith("F-")
    # a file without a CRS is refused when it is read, with the file's name
    gpd.GeoDataFrame({"footprint_id": ["F-a"]}, geometry=[px_box(0, 0, 40, 40)]).to_file(tmp_path / "nocrs.gpkg")
    with pytest.raises(ConfigError, match="nocrs.gpkg.*no CRS"):
        load_previous(tmp_path / "nocrs.gpkg")


def test_run_checks_previous_before_any_work() -> None:
    import geopandas as gpd

    from changedetect.errors import ConfigError
    from changedetect.pipeline import _load_previous

    with pytest.raises(ConfigError, match="footprint_id"):
        _load_previous(gpd.GeoDataFrame(geometry=[px_box(0, 0, 4, 4)], crs="EPSG:32648"))
    with pytest.raises(ConfigError, match="no CRS"):
        _load_previous(gpd.GeoDataFrame({"footprint_id": ["F-a"]}, geometry=[px_box(0, 0, 4, 4)]))


def test_cli_vectorize_previous(tmp_path) -> None:
    import geopandas as gpd
    from click.testing import CliRunner

    from changedetect.cli import cli

    small, grown = _crossing_box()
    raster(_one(*small)).rio.to_raster(tmp_path / "p1.tif")
    raster(_one(*grown)).rio.to_raster(tmp_path / "p2.tif")
    first = CliRunner().invoke(cli, ["vectorize", str(tmp_path / "p1.tif"), "--out", str(tmp_path / "f1.gpkg")])
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(cli, ["vectorize", str(tmp_path / "p2.tif"), "--out", str(tmp_path / "f2.gpkg"),
                                      "--previous", str(tmp_path / "f1.gpkg")])
    assert second.exit_code == 0, second.output
    assert "1 ids carried over" in second.output
    ids1 = gpd.read_file(tmp_path / "f1.gpkg")["footprint_id"].tolist()
    assert gpd.read_file(tmp_path / "f2.gpkg")["footprint_id"].tolist() == ids1
    (tmp_path / "bad.gpkg").write_text("not a geopackage")
    bad = CliRunner().invoke(cli, ["vectorize", str(tmp_path / "p2.tif"), "--out", str(tmp_path / "f3.gpkg"),
                                   "--previous", str(tmp_path / "bad.gpkg")])
    assert bad.exit_code != 0 and "previous footprints" in str(bad.exception or bad.output)


@pytest.mark.parametrize("crs, res", [("EPSG:2263", 0.5 / 0.3048006096), ("EPSG:4326", 0.5 / 111_320.0),
                                      ("EPSG:3857", 0.5 / np.cos(np.radians(40.75)))])
def test_areas_and_minimum_area_are_metres_whatever_the_crs_unit(crs: str, res: float) -> None:
    """A NY state plane in US survey feet, lon/lat degrees, or Web Mercator (metres, but 1.74 x too
    long at 40.75 N): area_m2 and min_area_m2 stay in ground m²."""
    from pyproj import Transformer

    x0, y0 = {"EPSG:2263": (985_000.0, 200_000.0), "EPSG:4326": (-73.98, 40.75)}.get(
        crs) or Transformer.from_crs(4326, 3857, always_xy=True).transform(-73.98, 40.75)
    p = np.zeros((80, 80), np.float32)
    p[10:30, 10:30] = 0.9  # 20 x 20 pixels of about 0.5 m: about 100 m²
    p[50:56, 50:56] = 0.9  # 6 x 6 pixels: about 9 m², under the 10 m² minimum
    t = Affine(res, 0, x0, 0, -res, y0)
    coords = {"y": y0 - res * (np.arange(80) + 0.5), "x": x0 + res * (np.arange(80) + 0.5)}
    prob = xr.DataArray(p, dims=("y", "x"), coords=coords).rio.write_crs(crs).rio.write_transform(t)
    out = vectorize(prob, config=VectorizeConfig(regularize=False))
    assert len(out) == 1 and out.crs == prob.rio.crs
    expected = 100.0 * np.cos(np.radians(40.75)) if crs == "EPSG:4326" else 100.0  # a degree of lon shrinks
    assert out["area_m2"].iloc[0] == pytest.approx(expected, rel=0.03)
    # the outline was simplified by 0.5 m, not by 0.5 CRS units (which would be 0.15 m or 55 km)
    assert len(shapely.get_coordinates(out.geometry.iloc[0])) <= 6


def test_simplify_m_is_metres_on_a_feet_grid() -> None:
    """A triangle's staircase outline on a 0.5 m grid drawn in US survey feet (EPSG:2263) is
    simplified as on the same grid in UTM: by 0.5 m, not by 0.5 ft = 0.15 m (the square of the
    test above has 5 vertices whatever the tolerance, so it cannot tell)."""
    from rasterio.features import rasterize

    tri = shapely.Polygon([(10, 10), (110, 40), (30, 100)])  # in pixels (column, row)
    p = rasterize([tri], out_shape=(120, 120)).astype(np.float32) * 0.9

    def vertices(crs: str, res: float, x0: float, y0: float, simplify_m: float = 0.5) -> int:
        coords = {"y": y0 - res * (np.arange(120) + 0.5), "x": x0 + res * (np.arange(120) + 0.5)}
        prob = xr.DataArray(p, dims=("y", "x"), coords=coords).rio.write_crs(crs).rio.write_transform(
            Affine(res, 0, x0, 0, -res, y0))
        out = vectorize(prob, config=VectorizeConfig(regularize=False, simplify_m=simplify_m))
        return len(shapely.get_coordinates(out.geometry.iloc[0]))

    utm, utm_fine = (vertices("EPSG:32618", 0.5, 585_000.0, 4_511_000.0, s) for s in (0.5, 0.15))
    assert utm_fine > 2 * utm  # the tolerance matters for this outline
    assert vertices("EPSG:2263", 0.5 / 0.3048006096, 985_000.0, 200_000.0) <= 1.2 * utm
