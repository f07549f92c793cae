"""A Sentinel-2 user's defects (review of 2026-11-30 on OSCD pisa/rennes, reproduced on tiny
synthetic data): band names B02/B03/B04/B08 mean blue/green/red/nir for the report's images
and the change-type heuristic, an empty footprint list in EPSG:4326 is matched, and chips
of 10 m imagery show the ground around a footprint."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from shapely.geometry import box
from test_match import b, fp, permit, register

from changedetect._imagery import StackImagery, _pick_bands
from changedetect.match import match
from changedetect.testing import make_grid
from changedetect.vectorize import vectorize

S2_BANDS = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]


def test_sentinel2_band_names_give_a_true_colour_rgb() -> None:
    assert _pick_bands(S2_BANDS, len(S2_BANDS), ("red", "green", "blue")) == [4, 3, 2]
    assert _pick_bands(["b04", "b03", "b02"], 3, ("red", "green", "blue")) == [1, 2, 3]
    assert _pick_bands(["nir", "red", "green", "blue"], 4, ("red", "green", "blue")) == [2, 3, 4]


def _stack(bands: list[str], planes: dict[str, np.ndarray], times: list[str], resolution: float) -> xr.DataArray:
    grid = make_grid(planes[next(iter(planes))].shape[-1], resolution=resolution)
    data = np.stack([np.stack([planes[name][t] for name in bands]) for t in range(len(times))]).astype(np.float32)
    da = xr.DataArray(data, dims=("time", "band", "y", "x"),
                      coords={"time": pd.DatetimeIndex(times), "band": bands, **grid.coords()})
    return da.rio.write_crs(grid.crs).rio.write_transform(grid.transform)


def test_stack_imagery_of_a_sentinel2_stack_reads_b04_b03_b02() -> None:
    planes = {name: np.full((1, 8, 8), 10.0 * k) for k, name in enumerate(S2_BANDS)}
    img = StackImagery(_stack(S2_BANDS, planes, ["2017-06-01"], 10.0), 0)
    assert [str(v) for v in img.da["band"].values] == ["B04", "B03", "B02"]


def _field_becomes_roof(size: int = 48) -> dict[str, np.ndarray]:
    """Two dates of 10 m Sentinel-2-like bands: a green field (high NIR) amid dark asphalt
    becomes a bright roof; B01 (aerosol) is a flat haze that says nothing of either."""
    inside = (slice(18, 30), slice(18, 30))
    planes: dict[str, np.ndarray] = {}
    asphalt = {"B01": 1400, "B02": 20, "B03": 20, "B04": 20, "B08": 30}
    field = {"B01": 1400, "B02": 30, "B03": 80, "B04": 40, "B08": 220}
    roof = {"B01": 1400, "B02": 200, "B03": 200, "B04": 200, "B08": 200}
    rng = np.random.default_rng(0)
    for name in asphalt:
        img = np.full((2, size, size), float(asphalt[name]))
        img[0][inside] = field[name]
        img[1][inside] = roof[name]
        planes[name] = img + rng.normal(0, 1, img.shape)
    return planes


def test_change_type_reads_sentinel2_bands_by_their_names() -> None:
    planes = _field_becomes_roof()
    prob_grid = make_grid(48, resolution=10.0)
    prob = xr.DataArray(np.zeros((48, 48), np.float32), dims=("y", "x"), coords=prob_grid.coords())
    prob = prob.rio.write_crs(prob_grid.crs).rio.write_transform(prob_grid.transform)
    prob[18:30, 18:30] = 0.9
    prob.attrs["threshold"] = 0.5
    named = _stack(["blue", "green", "red", "nir"], {k: planes[v] for k, v in
                   {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08"}.items()},
                   ["2015-07-04", "2018-02-11"], 10.0)
    s2 = _stack(["B01", "B02", "B03", "B04", "B08"], planes, ["2015-07-04", "2018-02-11"], 10.0)
    kinds = {}
    for key, stack in (("named", named), ("s2", s2)):
        out = vectorize(prob, before=stack.isel(time=0), after=stack.isel(time=-1))
        assert len(out) == 1
        kinds[key] = out["change_type"].iloc[0]
    assert kinds == {"named": "new", "s2": "new"}  # B01 was read as red, the field as built


def test_an_empty_footprint_list_in_epsg4326_is_matched() -> None:
    empty = gpd.GeoDataFrame({"footprint_id": [], "first_seen": [], "change_type": []},
                             geometry=[], crs="EPSG:4326")
    permits = gpd.GeoDataFrame([permit("P-1", box(10.38, 43.70, 10.39, 43.71))], crs="EPSG:4326")
    out = match(empty, permits)
    assert len(out) == 0
    assert out.crs == empty.crs


def test_an_empty_footprint_list_in_epsg4326_is_matched_by_the_cli(tmp_path) -> None:
    from click.testing import CliRunner

    from changedetect.cli import cli

    empty = gpd.GeoDataFrame({"footprint_id": [], "first_seen": [], "change_type": []},
                             geometry=gpd.GeoSeries([], crs="EPSG:4326"), crs="EPSG:4326")
    empty.to_file(tmp_path / "fp.gpkg", layer="footprints")
    gpd.GeoDataFrame([permit("P-1", box(10.38, 43.70, 10.39, 43.71))], crs="EPSG:4326").to_file(
        tmp_path / "permits.gpkg", layer="permits")
    res = CliRunner().invoke(cli, ["match", str(tmp_path / "fp.gpkg"), "--permits", str(tmp_path / "permits.gpkg"),
                                    "--out", str(tmp_path / "v.gpkg")])
    assert res.exit_code == 0, res.output
    assert len(gpd.read_file(tmp_path / "v.gpkg", layer="v")) == 0


@pytest.mark.parametrize(("ptype", "kind", "article"), [("extension", "demolished", "an extension"),
                                                         ("renovation", "new", "a renovation")])
def test_type_mismatch_reason_uses_the_right_article(ptype: str, kind: str, article: str) -> None:
    seen = dt.date(2024, 6, 1)
    out = match(fp(("F1", b(0, 0, 10, 10), seen, kind)), register(permit("P-1", b(0, 0, 10, 10), ptype=ptype)))
    reason = out["reason"].iloc[0]
    assert out["status"].iloc[0] == "type_mismatch"
    assert f"under {article} permit" in reason, reason


def _geotiff(path, resolution: float, size: int = 64):  # noqa: ANN001, ANN202
    import rasterio

    grid = make_grid(size, resolution=resolution)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8",
                       crs=grid.crs, transform=grid.transform) as dst:
        dst.write(np.full((3, size, size), 100, np.uint8))
        dst.descriptions = ("B04", "B03", "B02")
    return grid


@pytest.mark.parametrize(("resolution", "min_side_m"), [(10.0, 30 + 2 * 80), (0.5, 30 + 2 * 15)])
def test_a_chip_of_10m_imagery_shows_the_ground_around_the_footprint(tmp_path, resolution: float,
                                                                      min_side_m: float) -> None:
    """At 10 m a 15 m margin is a pixel and a half: a small footprint's chip was a blur of 6 px."""
    from changedetect._imagery import RasterImagery
    from changedetect.config import ReportConfig
    from changedetect.report import _chip

    grid = _geotiff(tmp_path / "after.tif", resolution)
    asked: list[tuple[float, float, float, float]] = []

    class Recording(RasterImagery):
        def chip(self, bounds: tuple[float, float, float, float], size: int) -> np.ndarray:
            asked.append(bounds)
            return super().chip(bounds, size)

    left, top = grid.transform.c, grid.transform.f
    geom = box(left + 100, top - 130, left + 130, top - 100)  # 30 m x 30 m
    _chip(Recording(tmp_path / "after.tif"), geom, ReportConfig(), (255, 0, 0))
    side = asked[0][2] - asked[0][0]
    assert side == pytest.approx(min_side_m)  # 8 pixels of margin at 10 m, the 15 m at 0.5 m
    _chip(Recording(tmp_path / "after.tif"), geom, ReportConfig(chip_margin_m=0, chip_margin_px=0), (255, 0, 0))
    assert asked[1][2] - asked[1][0] == pytest.approx(30)


@pytest.mark.parametrize("value", [-1, True, 1.5])
def test_a_bad_chip_margin_px_is_refused(value: object) -> None:
    from changedetect.config import ReportConfig
    from changedetect.errors import ConfigError

    with pytest.raises(ConfigError, match="chip_margin_px"):
        ReportConfig(chip_margin_px=value)  # type: ignore[arg-type]


def test_a_footprint_permitted_by_the_edge_tolerance_says_so() -> None:
    """rennes: 'new building of 13691 m² within permit P-1 ...; 2305 m² outside, within tolerance
    (10 m² or 10%)': 2305 m² is 17 % of that permit; what let it pass was the 10 m edge tolerance."""
    from changedetect.match import MatchConfig

    seen = dt.date(2024, 6, 1)
    out = match(fp(("F1", b(0, 0, 100, 100), seen, "new")), register(permit("P-1", b(5, 5, 90, 90))),
                config=MatchConfig(edge_tolerance_m=10.0))
    assert out["status"].iloc[0] == "permitted"
    reason = out["reason"].iloc[0]
    assert "1900 m² outside" in reason and "(10 m² or 10%)" not in reason, reason
    assert "within 10 m of its outline" in reason, reason
    inside = match(fp(("F1", b(0, 0, 100, 100), seen, "new")), register(permit("P-1", b(0, 0, 100, 99.99))),
                   config=MatchConfig(edge_tolerance_m=10.0))
    assert "within tolerance (10 m² or 10%)" in inside["reason"].iloc[0]


def test_an_empty_violation_list_in_epsg4326_is_written_as_csv_without_a_warning(tmp_path) -> None:
    """A quiet Sentinel-2 scene (0 footprints, EPSG:4326): `changedetect run` printed geopandas'
    'Geometry is in a geographic CRS. Results from 'centroid' are likely incorrect'."""
    import warnings

    from changedetect.io import write_vector

    empty = gpd.GeoDataFrame({"violation_id": [], "status": []}, geometry=gpd.GeoSeries([], crs="EPSG:4326"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_vector(empty, tmp_path / "v.csv")
    assert pd.read_csv(tmp_path / "v.csv").columns.tolist()[-3:] == ["wkt", "lon", "lat"]


def test_a_register_without_addresses_is_matched_by_the_cli(tmp_path) -> None:
    """`address` is optional, but a register without it (rennes, a CSV of permits) made
    `changedetect match` and `run` fail with exit 1 once a footprint lay in a permit: pandas'
    astype(str) keeps a missing address NaN, and '; '.join took the float."""
    from click.testing import CliRunner

    from changedetect.cli import cli
    from changedetect.testing import make_footprints, make_permits

    footprints = make_footprints()
    footprints.to_file(tmp_path / "fp.gpkg", layer="footprints")
    make_permits(footprints).drop(columns="address").to_file(tmp_path / "permits.gpkg", layer="permits")
    res = CliRunner().invoke(cli, ["match", str(tmp_path / "fp.gpkg"), "--permits", str(tmp_path / "permits.gpkg"),
                                   "--out", str(tmp_path / "v.gpkg")])
    assert res.exit_code == 0, res.output
    out = gpd.read_file(tmp_path / "v.gpkg", layer="v")
    assert (out["status"] == "permitted").all() and len(out) == len(footprints)
    assert out["address"].fillna("").eq("").all()


def test_a_card_in_epsg4326_gives_its_working_coordinates_to_the_metre() -> None:
    """pisa: 'Working CRS 10.4 E, 43.7 N (EPSG:4326)': one decimal of a degree is 8-11 km."""
    from shapely.geometry import Point

    from changedetect._report_card import _coords

    _, working = _coords(Point(10.4323481, 43.7095812), "EPSG:4326")
    assert working.startswith("10.432348 E, 43.709581 N"), working
    _, utm = _coords(Point(686_123.44, 1_192_456.78), "EPSG:32648")
    assert utm.startswith("686,123.4 E, 1,192,456.8 N"), utm


def test_nightly_candidates_in_epsg4326_raise_no_centroid_warning(tmp_path) -> None:
    """A register in EPSG:4326 (the nightly merges in its CRS): every night printed geopandas'
    'Geometry is in a geographic CRS. Results from 'centroid' are likely incorrect' (pisa)."""
    import warnings

    from changedetect._merge import _night_candidates
    from changedetect.testing import make_violations

    (tmp_path / "run").mkdir()
    make_violations(n=3).to_crs("EPSG:4326").to_file(tmp_path / "run" / "violations.gpkg", layer="violations")
    results = [{"area": "pisa", "error": None,
                "runs": [{"run_dir": str(tmp_path / "run"), "before": "2015-07-04", "after": "2018-02-11"}]}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cand = _night_candidates(results, "EPSG:4326")
    assert len(cand) == len(cand[cand["status"] != "permitted"]) > 0


def _s2_band_files(folder, *, nodata: float | None = None) -> None:  # noqa: ANN001
    """Two dates of Sentinel-2 band files (uint16, 10 m and one 20 m band); the second date's
    left third lies outside the swath: 0, Sentinel-2's NODATA, with no nodata tag."""
    import rasterio

    folder.mkdir()
    rng = np.random.default_rng(1)
    for day in ("20150704", "20180211"):
        for band, res in (("B02", 10.0), ("B03", 10.0), ("B04", 10.0), ("B08", 10.0), ("B11", 20.0)):
            size = int(60 * 10 / res)
            grid = make_grid(size, resolution=res)
            data = rng.integers(800, 3000, (size, size)).astype(np.uint16)
            if day == "20180211":
                data[:, : size // 3] = 0
            with rasterio.open(folder / f"T32TPP_{day}_{band}.tif", "w", driver="GTiff", width=size, height=size,
                               count=1, dtype="uint16", crs=grid.crs, transform=grid.transform, nodata=nodata) as dst:
                dst.write(data, 1)


def test_sentinel2_zeros_outside_the_swath_are_nodata(tmp_path) -> None:
    """pisa with its second date's left 30 % zero-filled (as a JP2 converted without a nodata
    tag): 177 footprints instead of 87, one of 5.7 km², 23 % of the rest marked as change."""
    from changedetect.io import describe, open_stack

    _s2_band_files(tmp_path / "s2")
    stack = open_stack(tmp_path / "s2")
    later = stack.sel(band=["B02", "B08", "B11"]).isel(time=1).values
    assert np.isnan(later[:, :, :18]).all()  # the strip (B11's 20 m pixels: 10 columns of 20 at 10 m)
    assert np.isfinite(later[:, :, 22:]).all()
    assert np.isfinite(stack.isel(time=0).values).all()
    info = describe(tmp_path / "s2")
    assert info["scenes"][1]["nodata_share"] == pytest.approx(1 / 3, abs=0.02)
    assert info["scenes"][0]["nodata_share"] == 0


def test_a_declared_nodata_still_wins_over_sentinel2_zero(tmp_path) -> None:
    from changedetect.io import open_stack

    _s2_band_files(tmp_path / "s2", nodata=65535)
    later = open_stack(tmp_path / "s2").isel(time=1).values
    assert np.isfinite(later).all() and (later[:, :, :15] == 0).all()


def test_detect_on_stacked_sentinel2_geotiffs_leaves_the_zero_strip_out(tmp_path) -> None:
    """`changedetect detect before.tif after.tif --model s2-urban` on raw uint16 stacks (bands
    described B02, B03, B04, B08, no nodata tag) read the swath's zeros as reflectance."""
    import rasterio

    from changedetect.detect import DetectConfig, detect_to_file

    grid = make_grid(96, resolution=10.0)
    rng = np.random.default_rng(2)
    for name in ("before", "after"):
        data = rng.integers(800, 3000, (4, 96, 96)).astype(np.uint16)
        if name == "after":
            data[:, :, :32] = 0
        with rasterio.open(tmp_path / f"{name}.tif", "w", driver="GTiff", width=96, height=96, count=4,
                           dtype="uint16", crs=grid.crs, transform=grid.transform) as dst:
            dst.write(data)
            dst.descriptions = ("B02", "B03", "B04", "B08")
    detect_to_file(tmp_path / "before.tif", tmp_path / "after.tif", tmp_path / "p.tif",
                   config=DetectConfig(model="s2-urban", window=64, overlap=16))
    with rasterio.open(tmp_path / "p.tif") as src:
        prob = src.read(1)
    assert np.isnan(prob[:, :32]).all()
    assert np.isfinite(prob[:, 40:]).all()


def test_the_gsd_warning_names_the_shipped_model_for_10m(caplog: pytest.LogCaptureFixture) -> None:
    """rennes with the default model: 'model 'vhr-building' is made for 0.3-1 m pixels, and the
    stack has 10.39 m pixels: expect poor results' (0 footprints) without saying which fits."""
    import logging

    from changedetect._detect_inputs import check_gsd
    from changedetect.weights import find_model, read_card

    grid = make_grid(64, resolution=10.0)
    with caplog.at_level(logging.WARNING):
        check_gsd(read_card(find_model("vhr-building")), grid.crs, grid.transform, 64, 64, "the stack")
    assert "--model s2-urban" in caplog.text, caplog.text
    caplog.clear()
    fine = make_grid(64, resolution=0.5)
    with caplog.at_level(logging.WARNING):
        check_gsd(read_card(find_model("s2-urban")), fine.crs, fine.transform, 64, 64, "the stack")
    assert "--model vhr-building" in caplog.text, caplog.text


def test_a_card_in_epsg4326_west_or_south_names_its_hemisphere() -> None:
    """Before: 'Working CRS -73.985512 E, -33.868820 N' for a point in the western and southern hemispheres."""
    from shapely.geometry import Point

    from changedetect._report_card import _coords

    _, working = _coords(Point(-73.985512, -33.86882), "EPSG:4326")
    assert working.startswith("73.985512 W, 33.868820 S"), working
