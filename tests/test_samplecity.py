"""The generated sample city: reproducible, georeferenced in District 12, with consistent truth."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from pyproj import Transformer
from rasterio.features import rasterize
from scipy import ndimage

from changedetect.errors import OutputExistsError
from changedetect.samplecity import CityConfig, Plan, generate, output_paths, plan
from changedetect.samplecity.permits import PERMIT_COLUMNS
from changedetect.samplecity.registration import Misregistration, inverse_map
from changedetect.samplecity.verdict import expected_status

REPO = Path(__file__).resolve().parents[1]
TILES = REPO / "sample_tiles"
PERMITS = REPO / "permits"
STATUSES = {"permitted", "unlicensed", "exceeds_permit", "permit_expired", "before_permit", "type_mismatch"}
SMALL = CityConfig(size=256)


@pytest.fixture(scope="module")
def small_city(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("city")
    generate(root / "tiles", root / "permits", config=SMALL)
    return root


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((TILES / "manifest.json").read_text(encoding="utf-8"))


def test_regeneration_is_byte_identical(small_city: Path, tmp_path: Path) -> None:
    generate(tmp_path / "tiles", tmp_path / "permits", config=SMALL)
    first = output_paths(small_city / "tiles", small_city / "permits", SMALL)
    second = output_paths(tmp_path / "tiles", tmp_path / "permits", SMALL)
    assert len(first) >= 14
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), f"{a.name} differs between two runs"


def test_another_seed_gives_another_city(small_city: Path, tmp_path: Path) -> None:
    cfg = CityConfig(size=256, seed=13)
    generate(tmp_path / "t", tmp_path / "p", config=cfg)
    name = "district12_20240115.tif"
    assert (tmp_path / "t" / name).read_bytes() != (small_city / "tiles" / name).read_bytes()


def test_existing_outputs_are_not_overwritten(small_city: Path) -> None:
    with pytest.raises(OutputExistsError, match="--overwrite"):
        generate(small_city / "tiles", small_city / "permits", config=SMALL)


def test_committed_images_are_in_district_12(manifest: dict) -> None:
    images = manifest["images"]
    assert len(images) >= 3
    dates = [dt.date.fromisoformat(i["date"]) for i in images]
    assert dates == sorted(dates)
    to_lonlat = Transformer.from_crs(32648, 4326, always_xy=True)
    for item in images:
        with rasterio.open(TILES / item["path"]) as src:
            assert src.crs.to_epsg() == 32648
            assert src.res == (0.5, 0.5)
            assert src.count == 4 and src.dtypes == ("uint8",) * 4
            assert src.descriptions == ("red", "green", "blue", "nir") == tuple(item["bands"])
            assert src.width >= 1024 and src.height >= 1024
            assert src.nodata is None
            left, bottom, right, top = src.bounds
            lons, lats = to_lonlat.transform([left, right], [bottom, top])
            assert min(lons) >= 106.63 and max(lons) <= 106.70, lons
            assert min(lats) >= 10.84 and max(lats) <= 10.89, lats
            assert src.tags()["ACQUISITION_DATE"] == item["date"]


def test_committed_outputs_are_small_and_complete() -> None:
    paths = output_paths(TILES, PERMITS, CityConfig())
    missing = [str(p) for p in paths if not p.exists()]
    assert not missing
    total = sum(p.stat().st_size for p in paths)
    assert total < 15 * 2**20, f"{total / 2**20:.1f} MB"


def test_committed_truth_matches_the_generator(full_plan: Plan) -> None:
    """The vector truth is regenerated (no rendering) and compared with the committed files."""
    pl = full_plan
    assert not pl.mismatches
    committed = pd.read_csv(PERMITS / "expected_violations.csv", dtype=str, keep_default_na=False)
    fresh = pl.table.astype(str)
    assert list(committed["structure_id"]) == list(fresh["structure_id"])
    assert list(committed["expected_status"]) == list(fresh["expected_status"])
    register = gpd.read_file(PERMITS / "sample_register.gpkg", layer="permits")
    assert list(register["permit_id"]) == list(pl.register["permit_id"])


def test_committed_truth_rasters_match_the_generator(full_plan: Plan) -> None:
    """Building and change masks regenerated without rendering equal the committed ones."""
    from changedetect.samplecity import changes, truth

    cfg = CityConfig()
    pl = full_plan
    tags = [a.tag for a in cfg.acquisitions]
    states = changes.date_states(pl.city, pl.changes, np.random.default_rng([cfg.seed, 3]), len(tags))
    for k, tag in enumerate(tags):
        with rasterio.open(TILES / "truth" / f"buildings_{tag}.tif") as src:
            assert np.array_equal(src.read(1), truth.building_mask(cfg, states[k])), tag
    with rasterio.open(TILES / "truth" / f"change_{tags[0]}_{tags[-1]}.tif") as src:
        assert np.array_equal(src.read(1), truth.change_mask(cfg, pl.changes, 0, len(tags) - 1))


def test_register_follows_the_schema() -> None:
    register = gpd.read_file(PERMITS / "sample_register.gpkg", layer="permits")
    assert list(register.columns) == PERMIT_COLUMNS
    assert register.crs.to_epsg() == 9210
    assert register["permit_id"].is_unique
    assert set(register["permit_type"]) == {"new_construction", "extension", "renovation", "demolition"}
    assert set(register["status"]) <= {"active", "expired", "revoked", "completed"}
    assert (register["valid_until"] >= register["issued_on"]).all()
    assert (register["permitted_area_m2"] > 0).all()
    assert register.geometry.is_valid.all() and (register.geom_type == "Polygon").all()
    assert register["address"].str.contains("Quận 12, TP. Hồ Chí Minh").all()
    for col in ("issued_on", "valid_until"):
        pd.to_datetime(register[col], format="%Y-%m-%d")


def test_truth_covers_every_status_and_follows_the_rules() -> None:
    table = pd.read_csv(PERMITS / "expected_violations.csv", dtype=str, keep_default_na=False)
    assert set(table["expected_status"]) == STATUSES
    demolitions = table[table["change_type"] == "demolition"]
    assert "permitted" in set(demolitions["expected_status"])
    assert set(demolitions["expected_status"]) & {"unlicensed", "type_mismatch"}
    register = gpd.read_file(PERMITS / "sample_register.gpkg", layer="permits").to_crs(32648)
    fp = gpd.read_file(TILES / "truth" / "footprints.gpkg", layer="footprints")
    assert list(fp["structure_id"]) == list(table["structure_id"])
    used = {p for ids in table["permit_id"] for p in ids.split(";") if p}
    assert used <= set(register["permit_id"])
    assert len(set(register["permit_id"]) - used) >= 3  # permits for things never built
    for (_, f), (_, t) in zip(fp.iterrows(), table.iterrows(), strict=True):
        status, _, _ = expected_status(f.geometry, f["change_type"], dt.date.fromisoformat(f["first_seen"]), register)
        assert status == t["expected_status"], f["structure_id"]


def test_change_masks_match_footprints(manifest: dict) -> None:
    fp = gpd.read_file(TILES / "truth" / "footprints.gpkg", layer="footprints")
    assert set(fp["change_type"]) == {"new", "extension", "demolition"}
    dates = [i["date"] for i in manifest["images"]]
    for a, b in zip(dates[:-1], dates[1:], strict=True):
        name = f"change_{a.replace('-', '')}_{b.replace('-', '')}.tif"
        with rasterio.open(TILES / "truth" / name) as src:
            mask = src.read(1)
            sel = fp[(fp["first_seen"] > a) & (fp["first_seen"] <= b)]
            assert 15 <= len(sel) <= 30
            burnt = rasterize(((g, 1) for g in sel.geometry), out_shape=mask.shape, transform=src.transform, dtype="uint8")
        assert mask.any() and np.array_equal(mask, burnt)
        assert abs(mask.sum() * 0.25 - sel["area_m2"].sum()) < 0.05 * sel["area_m2"].sum()


def test_nuisance_masks_flag_what_is_not_construction(manifest: dict) -> None:
    tags = [i["date"].replace("-", "") for i in manifest["images"]]
    share = {}
    for a, b in [*zip(tags[:-1], tags[1:], strict=True), (tags[0], tags[-1])]:
        with rasterio.open(TILES / "truth" / "nuisance" / f"nuisance_{a}_{b}.tif") as src, rasterio.open(TILES / "truth" / f"change_{a}_{b}.tif") as chg:
            bits, change = src.read(1), chg.read(1)
        assert not bits[change > 0].any()
        share[(a, b)] = {bit: float(((bits & bit) > 0).mean()) for bit in (1, 2, 4)}
        assert all(v > 0 for v in share[(a, b)].values()), (a, b)
    # January to July moves every shadow; January to January (same sun) much less
    assert share[(tags[0], tags[1])][4] > 2 * share[(tags[0], tags[-1])][4]


def _shift(ref: np.ndarray, mov: np.ndarray) -> np.ndarray:
    """Sub-pixel ``(dx, dy)`` by which ``mov``'s content is displaced from ``ref``'s (phase correlation)."""

    def prep(a: np.ndarray) -> np.ndarray:
        g = np.hypot(ndimage.sobel(a, 0), ndimage.sobel(a, 1))
        win = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
        return (g - g.mean()) * win

    cross = np.fft.fft2(prep(mov)) * np.conj(np.fft.fft2(prep(ref)))
    corr = np.fft.fftshift(np.real(np.fft.ifft2(cross / (np.abs(cross) + 1e-9))))
    iy, ix = np.unravel_index(np.argmax(corr), corr.shape)
    out = []
    for axis, i in ((1, ix), (0, iy)):
        line = corr[iy, ix - 1 : ix + 2] if axis == 1 else corr[iy - 1 : iy + 2, ix]
        off = 0.5 * (line[0] - line[2]) / (line[0] - 2 * line[1] + line[2])
        out.append(i + off - corr.shape[axis] // 2)
    return np.array(out)


def test_registration_truth_realigns_each_date(manifest: dict) -> None:
    doc = json.loads((TILES / "truth" / "registration.json").read_text(encoding="utf-8"))
    with rasterio.open(TILES / manifest["images"][0]["path"]) as src:
        ref = src.read(2).astype(np.float64)
    n = ref.shape[0]
    inner = slice(64, n - 64)
    for entry, item in zip(doc["dates"][1:], manifest["images"][1:], strict=True):
        mis = Misregistration.from_dict(entry["misregistration"])
        with rasterio.open(TILES / item["path"]) as src:
            img = src.read(2).astype(np.float64)
        raw = _shift(ref[inner, inner], img[inner, inner])
        mean = entry["misregistration"]["mean_displacement_px"]
        # the sign convention: content is displaced by +u (the warp makes a windowed estimate
        # differ from the plain mean by a few tenths of a pixel)
        assert np.hypot(raw[0] - mean["dx"], raw[1] - mean["dy"]) < 0.6, (raw, mean)
        cols, rows = inverse_map(mis, n)
        grid = entry["misregistration"]["reference_to_date_px"]
        ticks = np.array(grid["ticks"])
        sub = np.ix_(ticks, ticks)
        assert np.abs(cols[sub] - ticks[None, :] - np.array(grid["dx"])).max() < 1e-3
        assert np.abs(rows[sub] - ticks[:, None] - np.array(grid["dy"])).max() < 1e-3
        aligned = ndimage.map_coordinates(img, [rows, cols], order=3, mode="nearest")
        residual = _shift(ref[inner, inner], aligned[inner, inner])
        assert np.hypot(*residual) < 0.15, residual
        assert np.hypot(*residual) < np.hypot(*raw) / 4


def _lucas_kanade(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least-squares ``(dx, dy)`` of ``b`` against ``a`` for small shifts (gradient method)."""
    gy, gx = np.gradient((a + b) / 2)
    dt = b - a
    lhs = np.array([[np.sum(gx * gx), np.sum(gx * gy)], [np.sum(gx * gy), np.sum(gy * gy)]])
    return np.linalg.solve(lhs, -np.array([np.sum(gx * dt), np.sum(gy * dt)]))


def test_misregistration_truth_is_exact_on_an_unchanged_scene() -> None:
    """One date's scene observed twice, once misregistered: the truth realigns it to < 0.02 px."""
    from changedetect.samplecity import changes, scene
    from changedetect.samplecity.registration import draw_misregistration, observe

    cfg = CityConfig(size=256)
    pl = plan(cfg)
    states = changes.date_states(pl.city, pl.changes, np.random.default_rng(0), 1)
    refl = scene.render(scene.StaticScene(pl.city, np.random.default_rng(1)), states[0], cfg.acquisitions[0])
    mis = draw_misregistration(np.random.default_rng(2), 256, reference=False)
    ref = observe(refl, cfg, Misregistration(0.0, 0.0), cfg.acquisitions[0], np.random.default_rng(3))[1].astype(float)
    img = observe(refl, cfg, mis, cfg.acquisitions[0], np.random.default_rng(4))[1].astype(float)
    cols, rows = inverse_map(mis, 256)
    aligned = ndimage.map_coordinates(img, [rows, cols], order=3, mode="nearest")
    inner = slice(24, 232)
    assert np.hypot(mis.dx, mis.dy) > 0.5
    assert np.hypot(*_lucas_kanade(ref[inner, inner], aligned[inner, inner])) < 0.02
    shifted = ndimage.shift(aligned, (0.0, 0.1), order=3, mode="nearest")  # the check can see 0.1 px
    assert abs(_lucas_kanade(ref[inner, inner], shifted[inner, inner])[0] - 0.1) < 0.03


def test_sample_city_opens_as_a_series() -> None:
    from changedetect import io
    series = io.open_series(TILES)
    assert [d.isoformat() for d in series.dates][:3] == ["2024-01-15", "2024-07-12", "2025-01-20"]
    assert [b.name for b in series.bands] == ["red", "green", "blue", "nir"]


def test_command_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from changedetect.samplecity.__main__ import main

    args = ["--out-tiles", str(tmp_path / "t"), "--out-permits", str(tmp_path / "p"), "--size", "128", "-q"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "expected statuses" in first.output and (tmp_path / "p" / "sample_register.gpkg").is_file()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert CliRunner().invoke(main, [*args, "--check"]).exit_code == 0
    (tmp_path / "p" / "expected_violations.csv").write_text("tampered\n", encoding="utf-8")
    checked = CliRunner().invoke(main, [*args, "--check"])
    assert checked.exit_code == 1 and "expected_violations.csv" in checked.output


def test_too_small_a_city_is_refused(tmp_path: Path) -> None:
    from changedetect.errors import ConfigError

    with pytest.raises(ConfigError, match="size >= 128"):
        generate(tmp_path / "t", tmp_path / "p", config=CityConfig(size=64))


def test_shallow_lots_with_back_yards_plan_without_error() -> None:
    # seed 145 at 512 px draws a lot shallower than 11 m with a back yard; the yard's depth
    # range was empty there (numpy: "high - low < 0") before the range was clamped
    city = plan(CityConfig(seed=145, size=512))
    assert len(city.changes) > 0


def test_shallow_green_blocks_plan_without_error() -> None:
    # seed 149 at 512 px has a green block under 22 m deep: scattering houses with yards
    # there drew from an empty range ("high - low < 0") before such blocks were skipped
    city = plan(CityConfig(seed=149, size=512))
    assert len(city.changes) > 0


def _house_demolitions(pl: Plan) -> list:
    return [c for c in pl.changes if c.change_type == "demolition" and c.lot is not None]


def test_shaded_share_follows_the_sun() -> None:
    from changedetect.samplecity.changes import shaded_share
    from changedetect.samplecity.spec import Building, Roof

    jan = CityConfig().acquisitions[0]  # sun in the south-east: shadows fall north-west
    low = Building(1, "house", (Roof(0.0, 0.0, 6.0, 6.0, 0.0, 4.0, "tile", (0.5, 0.3, 0.2, 0.3), True),))
    # a 16 m block 2 m south-east of the house (local y grows southwards) shades most of it
    tall_se = Building(2, "apartment", (Roof(6.0, 8.0, 6.0, 6.0, 0.0, 16.0, "concrete", (0.5, 0.5, 0.5, 0.5), False),))
    # the same block north-west of it shades nothing of the house
    tall_nw = Building(3, "apartment", (Roof(-6.0, -8.0, 6.0, 6.0, 0.0, 16.0, "concrete", (0.5, 0.5, 0.5, 0.5), False),))
    # a neighbour no taller than the house casts nothing on its roof
    low_se = Building(4, "house", (Roof(6.0, 8.0, 6.0, 6.0, 0.0, 4.0, "tile", (0.5, 0.3, 0.2, 0.3), True),))
    assert shaded_share(low, [low, tall_se], jan) > 0.5
    assert shaded_share(low, [low, tall_nw], jan) == 0.0
    assert shaded_share(low, [low, low_se], jan) == 0.0


def test_shaded_demolitions_are_drawn_from_shaded_houses() -> None:
    from changedetect.samplecity.changes import shaded_share

    ordinary = plan(CityConfig(seed=251, size=512))
    shaded = plan(CityConfig(seed=251, size=512, shaded_demolitions=1.0))
    jan = shaded.city.config.acquisitions[0]
    shares = [shaded_share(c.before, shaded.city.buildings, jan) for c in _house_demolitions(shaded)]
    assert shares and min(shares) >= 0.5
    before = [shaded_share(c.before, ordinary.city.buildings, jan) for c in _house_demolitions(ordinary)]
    assert min(before) < 0.5  # drawn from every house otherwise
    # only the demolitions' draw changes: the same city, the same new buildings
    assert len(shaded.city.buildings) == len(ordinary.city.buildings)
    assert [c.sid for c in shaded.changes if c.change_type == "new"] == \
        [c.sid for c in ordinary.changes if c.change_type == "new"]
