"""Review of reading tiles and co-registration: defects found with real-imagery situations in mind."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import dask.array as da
import numpy as np
import pytest

from changedetect._registration.field import ShiftField
from changedetect._registration.synthetic import textured_scene
from changedetect._registration.warp import apply_shift_field, warp_lazy
from changedetect.coregister import CoregisterConfig, coregister
from changedetect.errors import CoregistrationWarning

sys.path.insert(0, str(Path(__file__).parent))
from test_coregister import _stack  # noqa: E402


@pytest.mark.parametrize("chunks", [256, (256, 300)])
def test_lazy_warp_of_a_scene_whose_last_block_is_thinner_than_the_halo(chunks: int | tuple[int, int]) -> None:
    """A 262 px scene read in 256 px blocks (to_stack's 1024 on a 1030 px scene) has a 6 px last block,
    thinner than the halo: dask's overlap rechunks it on its own, out of step with the block offsets
    the warp uses, and the last 6 columns (and rows) were sampled from the wrong pixels (off by up to
    76 digital numbers on a 1030 px scene)."""
    img = textured_scene((262, 262), seed=3)
    fld = ShiftField.uniform(img.shape, 2.5, -1.5)
    lazy = warp_lazy(da.from_array(img, chunks=chunks), fld).compute()
    eager = apply_shift_field(img, (2.5, -1.5))
    assert lazy.shape == eager.shape
    np.testing.assert_array_equal(np.isnan(lazy), np.isnan(eager))
    ok = np.isfinite(eager)
    assert np.abs(lazy[ok] - eager[ok]).max() < 1e-3


def test_a_date_registered_without_any_tie_point_says_so() -> None:
    """A date that covers only the bottom 36 rows: the global shift is measured there, but no tie-point
    window has enough data to confirm it.  With 1-7 tie points the report warns that the local field
    was not applied; with none it said nothing (status "global", no warning)."""
    stack = _stack([(0, 0), (2.3, -1.4)])
    stack.values[1, :, :220, :] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CoregistrationWarning)
        _, report = coregister(stack, config=CoregisterConfig(radiometric=False))
    entry = report.dates[1]
    assert entry.status == "global" and entry.tie_points_kept == 0
    assert any("tie point" in w for w in entry.warnings), entry.warnings


def test_a_shift_beyond_max_shift_names_max_shift_not_clouds() -> None:
    """A 25 px shift is measured confidently (peak ratio 80) but exceeds max_shift (20 px): the warning
    blamed coverage or clouds and never named the limit that refused it, nor how to raise it."""
    stack = _stack([(0, 0), (25.0, 0.0)])
    with pytest.warns(CoregistrationWarning, match="max_shift"):
        _, report = coregister(stack, config=CoregisterConfig(radiometric=False, local=False))
    assert report.dates[1].status == "unreliable"
    assert "max_shift" in report.dates[1].warnings[0]


def test_sentinel2_l2a_band_files_with_a_resolution_suffix(tmp_path: Path) -> None:
    """L2A products name their band files ``T48PXS_20240131T031051_B02_10m.jp2``: the band token was
    only looked for at the very end of the name, so every file became band "B1" and the folder was
    refused as "date 2024-01-31 appears more than once ... with the same band(s) B1"."""
    import rasterio
    from affine import Affine

    from changedetect.io import open_series

    for day in ("20240131T031051", "20240301T031051"):
        for band, res in (("B04", 10), ("B02", 10), ("B05", 20)):
            n = 400 // res
            with rasterio.open(tmp_path / f"T48PXS_{day}_{band}_{res}m.tif", "w", driver="GTiff", width=n,
                               height=n, count=1, dtype="uint16", crs="EPSG:32648",
                               transform=Affine(res, 0, 683_000.0, 0, -res, 1_203_000.0)) as dst:
                dst.write(np.full((1, n, n), 1000, np.uint16))
    series = open_series(tmp_path)
    assert series.band_names == ["B02", "B04", "B05"]
    assert [b.nominal_resolution for b in series.bands] == [10.0, 10.0, 20.0]
    assert series.to_stack().shape == (2, 3, 40, 40)

    # a real R10m/R20m folder also holds the L2A side products: left out, not taken for bands
    for day in ("20240131T031051", "20240301T031051"):
        for product, count in (("AOT", 1), ("WVP", 1), ("TCI", 3), ("SCL", 1)):
            with rasterio.open(tmp_path / f"T48PXS_{day}_{product}_10m.tif", "w", driver="GTiff", width=40,
                               height=40, count=count, dtype="uint8", crs="EPSG:32648",
                               transform=Affine(10, 0, 683_000.0, 0, -10, 1_203_000.0)) as dst:
                dst.write(np.full((count, 40, 40), 7, np.uint8))
    series = open_series(tmp_path)
    assert series.band_names == ["B02", "B04", "B05"]


def test_reading_onto_a_much_coarser_grid_reads_a_bounded_window(tmp_path: Path, monkeypatch) -> None:
    """DESIGN.md / docs/io.md: memory is bounded by the block size.  A 0.5 m tile read onto a 10 m grid
    read every source pixel under each block at full resolution (400 times the block: a 1024 px block
    at 10 m from 0.3 m imagery is a 34k x 34k float32 window, 4.6 GB)."""
    import rasterio
    from affine import Affine

    from changedetect.io import _read, open_series

    n = 800
    rng = np.random.default_rng(0)
    for day in ("20240101", "20240301"):
        with rasterio.open(tmp_path / f"t_{day}.tif", "w", driver="GTiff", width=n, height=n, count=1,
                           dtype="uint16", nodata=0, crs="EPSG:32648",
                           transform=Affine(0.5, 0, 683_000.0, 0, -0.5, 1_203_000.0)) as dst:
            data = rng.integers(900, 1100, (1, n, n)).astype(np.uint16)
            data[0, :200] = 0  # a nodata strip: 10 rows of the 10 m grid
            dst.write(data)
    series = open_series(tmp_path)
    grid = series.reference_grid(resolution=10.0)
    read: list[int] = []
    real = _read.read_float

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        out = real(*args, **kwargs)
        read.append(out.size)
        return out

    monkeypatch.setattr(_read, "read_float", spy)
    whole = series.to_stack(grid, resampling="average").values  # one read per block: 800 x 800 source px
    assert max(read) >= 800 * 800
    # bounded: each block is warped piece by piece, each piece from its own source window ...
    read.clear()
    monkeypatch.setattr(_read, "MAX_SOURCE_PIXELS", 300 * 300)
    stack = series.to_stack(grid, resampling="average").values
    assert stack.shape == (2, 1, 40, 40)
    assert max(read) <= 300 * 300, max(read)
    # ... and the pieces agree with the one read (their margins grow with the reduction)
    np.testing.assert_allclose(stack, whole, rtol=0, atol=1e-3, equal_nan=True)
    assert np.isnan(stack[:, 0, :10]).all() and np.isfinite(stack[:, 0, 10:]).all()
    assert np.nanmean(stack) == pytest.approx(999.5, abs=2)


@pytest.mark.parametrize("cloud", [0.4, 0.5, 0.7, 0.85])
def test_a_mostly_cloudy_date_is_not_normalised_by_the_clouds(cloud: float) -> None:
    """The other date is 0.8 x + 12 of the reference with its top rows under a flat bright cloud.  The
    gain and offset fitted on "pseudo-invariant" pixels were the clouds': gain 0.04-0.12 at 70 % cloud,
    0.3-0.5 at 50 %,
    -8266 (offset 1.6 million) at 85 %, turning the clear rows into nonsense, with no warning.  A band
    whose fit explains nothing must be left as it is, and the report must say so."""
    stack = _stack([(0, 0), (0, 0)])
    rows = int(256 * cloud)
    other = stack.values[1] * 0.8 + 12
    other[:, :rows] = 230 + np.random.default_rng(0).normal(0, 2, (3, rows, 256))
    stack.values[1] = other
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CoregistrationWarning)
        aligned, report = coregister(stack, config=CoregisterConfig(local=False))
    entry = report.dates[1]
    assert entry.status == "global"
    clear = aligned.values[1, :, rows + 8 : -8, 8:-8]
    truth = stack.values[0, :, rows + 8 : -8, 8:-8]
    for k, band in enumerate(("red", "green", "blue")):
        if entry.gain[band] == 1.0 and entry.offset[band] == 0.0:  # left as it is: said so
            assert any("radiometric" in w and band in w for w in entry.warnings), entry.warnings
        else:  # or fitted right
            assert entry.gain[band] == pytest.approx(1.25, rel=0.05)
            assert np.nanmedian(np.abs(clear[k] - truth[k])) < 3.0


@pytest.mark.parametrize("crs", [None, "EPSG:3857", "EPSG:4326"])
def test_shift_m_is_the_same_ground_displacement_whatever_the_target_crs(tmp_path: Path, crs: str | None) -> None:
    """The CLI's test passes --no-radiometric and then accepts any gain when radiometric is off, and checks
    no shift.  Pinned here: against a later reference (shifted by (0.75, 0.5) px of 0.5 m), the first date
    is reported 0.375 m west and 0.25 m north, on the UTM grid, on a 1 m Web Mercator grid and in degrees."""
    from test_coregister_cli import _tiles

    from changedetect._registration.cli_tool import coregister_files

    tiles = _tiles(tmp_path / "tiles", [(0, 0), (0.75, 0.5)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CoregistrationWarning)
        report, _ = coregister_files(tiles, tmp_path / "out", reference="2024-02-15", crs=crs,
                                     resolution=1.0 if crs == "EPSG:3857" else None, local=False,
                                     radiometric=False)
    first = report.dates[0]
    assert report.reference == "2024-02-15" and first.status == "global"
    assert first.shift_m == pytest.approx((-0.375, 0.25), abs=0.02)


def test_a_constant_band_is_left_alone_without_a_warning() -> None:
    """An RGBA PNG's alpha band is 255 on both dates: nothing to fit, nothing to warn about."""
    from changedetect.coregister import normalize_radiometry

    rng = np.random.default_rng(0)
    ref = np.stack([rng.uniform(0, 200, (64, 64)), np.full((64, 64), 255.0)])
    fit = normalize_radiometry(ref, ref * np.array([0.5, 1.0])[:, None, None])
    assert fit.gain == pytest.approx((2.0, 1.0)) and fit.offset == pytest.approx((0.0, 0.0), abs=1e-6)
    assert fit.unfitted == ()


def _two_tiles(folder: Path) -> None:
    import rasterio
    from affine import Affine

    for name in ("a.tif", "b.tif"):
        with rasterio.open(folder / name, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8",
                           crs="EPSG:32648", transform=Affine(0.5, 0, 683_000.0, 0, -0.5, 1_203_000.0)) as dst:
            dst.write(np.ones((1, 8, 8), np.uint8))


@pytest.mark.parametrize(("name", "content"), [
    # Excel on a French or Vietnamese Windows saves CSV in the ANSI code page, not UTF-8
    ("manifest.csv", "path,date\nCréteil_a.tif,2024-01-01\nb.tif,2024-02-01\n".encode("cp1252")),
    # a STAC search that found nothing, saved as is
    ("items.json", b'{"type": "FeatureCollection", "features": []}'),
    ("empty.json", b"[]"),
    # a STAC asset without its href, a manifest row whose path is a number, bands a number
    ("item.json", b'{"type": "Feature", "id": "x", "properties": {"datetime": "2024-01-01T00:00:00Z"},'
                  b' "assets": {"b": {"type": "image/tiff; application=geotiff"}}}'),
    ("rows.json", b'[{"path": 5, "date": "2024-01-01"}, {"path": "b.tif", "date": "2024-02-01"}]'),
    ("bands.json", b'[{"path": "a.tif", "date": "2024-01-01", "bands": 3}]'),
    # a STAC item with "properties": null
    ("null.json", b'{"type": "Feature", "id": "x", "properties": null, "assets": {"b": {"href": "a.tif"}}}'),
], ids=["csv-cp1252", "stac-empty-collection", "empty-list", "stac-asset-without-href", "path-number", "bands-number",
        "stac-null-properties"])
def test_a_malformed_manifest_is_one_clear_error(tmp_path: Path, name: str, content: bytes) -> None:
    """Each of these crashed with a bare UnicodeDecodeError, IndexError, KeyError or TypeError."""
    from changedetect.errors import ChangeDetectError
    from changedetect.io import open_series

    _two_tiles(tmp_path)
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ChangeDetectError, match=name.replace(".", r"\.")):
        open_series(tmp_path / name)


def test_stac_eo_bands_given_as_plain_names(tmp_path: Path) -> None:
    """``"eo:bands": ["pan"]`` (names, not objects) crashed with AttributeError: 'str' object has no attribute 'get'."""
    from changedetect.io import open_series

    _two_tiles(tmp_path)
    item = tmp_path / "item.json"
    item.write_text('{"type": "Feature", "id": "x", "properties": {"datetime": "2024-01-01T00:00:00Z"},'
                    ' "assets": {"b": {"href": "a.tif", "eo:bands": ["pan"]}}}')
    assert open_series(item).band_names == ["pan"]


def test_the_reference_may_be_a_datetime_or_a_time_coordinate_value() -> None:
    """A ``datetime`` is a ``date`` (and ``pandas.Timestamp`` a ``datetime``), and ``stack.time.values[1]``
    the natural way to name a date of a stack: each was refused as "reference date '2024-03-31T00:00:00'
    is not in the stack; dates are ['2024-01-01', '2024-03-31']"."""
    import datetime as dt
    import json

    import pandas as pd

    stack = _stack([(0, 0), (0.5, 0.25)])
    second = stack["time"].values[1]
    for reference in (second, pd.Timestamp(second), dt.datetime(2024, 3, 31, 10, 30)):
        _, report = coregister(stack, config=CoregisterConfig(reference=reference, local=False, radiometric=False))
        assert report.reference == "2024-03-31"
        assert report.dates[0].shift_px == pytest.approx((-0.5, -0.25), abs=0.05)
        assert json.loads(json.dumps(report.to_dict()))["config"]["reference"].startswith("2024-03-31")


def test_a_nodata_corner_both_dates_share_does_not_bend_a_uniform_shift() -> None:
    """Both dates clipped to the same area (an L-shaped nodata margin): the truth is one shift everywhere.

    The shared nodata edge voted for no shift: the global estimate was 0.08 px short and the local
    field bent by up to 0.34 px; matched inside the box both dates cover, 0.012 px."""
    stack = _stack([(0, 0), (2.3, -1.4)])
    r, c = np.mgrid[:256, :256]
    nodata = (r < 90) | (c < 60)
    stack.values[:, :, nodata] = np.nan
    _, report = coregister(stack, config=CoregisterConfig(radiometric=False))
    rr, cc = np.mgrid[0:256:8, 0:256:8]
    ex, ey = report.dates[1].shift_field.evaluate(rr, cc)
    error = np.hypot(ex - 2.3, ey + 1.4)[~nodata[rr, cc]]
    assert error.max() < 0.05, (report.dates[1].status, float(error.max()))


@pytest.mark.parametrize("resampling", ["bilinear", "cubic", "lanczos"])
def test_a_coarser_grid_read_block_by_block_has_no_seams(tmp_path: Path, resampling: str) -> None:
    """Reading 0.5 m imagery onto a 5 m grid, GDAL widens the resampling kernel 10 times (a lanczos
    reaches 30 source pixels), but each block read only 4 source pixels beyond its footprint: the values
    depended on the block size, up to 20 (of a 35 std. dev.) apart along the block edges."""
    import rasterio
    from affine import Affine
    from scipy import ndimage

    from changedetect.io import open_series

    n, rng = 320, np.random.default_rng(0)
    for day in ("20240101", "20240301"):
        with rasterio.open(tmp_path / f"t_{day}.tif", "w", driver="GTiff", width=n, height=n, count=1,
                           dtype="float32", crs="EPSG:32648",
                           transform=Affine(0.5, 0, 683_000.0, 0, -0.5, 1_203_000.0)) as dst:
            dst.write((100 + 500 * ndimage.gaussian_filter(rng.normal(size=(n, n)), 3)).astype(np.float32)[None])
    series = open_series(tmp_path)
    grid = series.reference_grid(resolution=5.0)
    whole = series.to_stack(grid, resampling=resampling, chunks=4096).values
    blocks = series.to_stack(grid, resampling=resampling, chunks=8).values
    np.testing.assert_array_equal(np.isnan(whole), np.isnan(blocks))
    assert np.nanmax(np.abs(whole - blocks)) < 1e-3


def test_a_second_series_into_the_same_out_folder_writes_nothing_without_overwrite(tmp_path: Path) -> None:
    """Other dates into an existing output folder: the new dates' COGs were written, then the existing
    coregistration.json refused, leaving one run's report beside another run's images."""
    from test_coregister_cli import _tiles

    from changedetect._registration.cli_tool import coregister_files
    from changedetect.errors import OutputExistsError

    out = tmp_path / "out"
    coregister_files(_tiles(tmp_path / "a", [(0, 0), (0.5, 0.5)]), out, local=False, radiometric=False)
    before = sorted(p.name for p in out.iterdir())
    other = _tiles(tmp_path / "b", [(0, 0), (0.5, 0.5), (1, 1), (1.5, 1.5)])
    for old in ("district12_20240115.tif", "district12_20240215.tif"):
        (other / old).unlink()  # dates 2024-03-15 and 2024-04-15: new dates, same report name
    with pytest.raises(OutputExistsError):
        coregister_files(other, out, local=False, radiometric=False)
    assert sorted(p.name for p in out.iterdir()) == before


def test_a_tiny_scene_says_its_shift_is_rough() -> None:
    """On 32-40 px scenes the global shift was 0.15-0.7 px off with status 'global' and no caveat;
    from 64 px it is 0.02-0.09 px: below 64 px the report now says so."""
    from changedetect.coregister import SMALL_SCENE_PX, coregister
    from changedetect.testing import make_stack

    _, tiny = coregister(make_stack(n_dates=2, size=40, seed=3))
    entry = tiny.dates[1]
    assert entry.status in {"global", "local"} and any("only 40 px across" in w for w in entry.warnings)
    _, enough = coregister(make_stack(n_dates=2, size=SMALL_SCENE_PX, seed=3))
    assert not any("px across" in w for w in enough.dates[1].warnings)
