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
    import geopandas as gpd

    existing = gpd.GeoDataFrame(geometry=[px_box(22, 22, 38, 38)], crs="EPSG:32648").to_crs(4326)
    assert vectorize(prob, buildings=existing)["change_type"].tolist() == ["altered"]
    assert vectorize(prob, buildings=existing, after=grass)["change_type"].tolist() == ["demolished"]


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
    import geopandas as gpd

    back = gpd.read_file(out)
    assert str(back["first_seen"].iat[0])[:10] == "2024-07-12"
    again = CliRunner().invoke(cli, args)
    assert again.exit_code != 0 and "overwrite" in str(again.exception or again.output)
