"""Public builders and assertions for tests and notebooks (as ``xarray.testing``).

Everything here is tiny, seeded and deterministic:

- :func:`make_stack` a georeferenced :data:`~changedetect.types.TileStack` with
  buildings appearing between dates, and :func:`write_stack` to put it on disk
  as one GeoTIFF per date;
- :func:`make_footprints`, :func:`make_permits`, :func:`make_violations` small
  GeoDataFrames with the columns of the vectorise, permit-register and match stages;
- :func:`assert_same_grid` and :func:`assert_tilestack`.

Example
-------
>>> from changedetect.testing import make_stack, assert_tilestack
>>> stack = make_stack(n_dates=3, size=64)
>>> assert_tilestack(stack)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from changedetect.types import Grid, check_tilestack, transform_of

#: Where the generated scenes sit: Ho Chi Minh City, UTM 48N.
DEFAULT_CRS = "EPSG:32648"
DEFAULT_ORIGIN = (686_000.0, 1_190_000.0)
DEFAULT_BANDS = ("red", "green", "blue", "nir")


@dataclass(frozen=True)
class Building:
    """A rectangular building of :func:`make_stack`, in pixels of the scene.

    ``appears`` is the index of the first date it is on the ground (0: always there).
    """

    row: int
    col: int
    height: int
    width: int
    appears: int = 0
    roof: tuple[int, int, int, int] = (205, 90, 70, 110)


def default_buildings(size: int, n_dates: int) -> list[Building]:
    """Two buildings present at every date and one new building per later date."""
    s = size
    out = [
        Building(s // 10, s // 10, s // 5, s // 4, 0, (190, 190, 185, 120)),
        Building(s // 10, s // 2 + s // 8, s // 6, s // 5, 0, (160, 80, 60, 100)),
    ]
    for i in range(1, n_dates):
        r = s // 2 + (i - 1) * (s // 6) % (s // 3)
        c = s // 8 + (i - 1) * (s // 3) % (s // 2)
        out.append(Building(r, c, s // 5, s // 5, i, (215, 95, 75, 105)))
    return out


def make_grid(size: int = 64, *, resolution: float = 0.5, crs: str = DEFAULT_CRS,
              origin: tuple[float, float] = DEFAULT_ORIGIN) -> Grid:
    """A north-up square grid of ``size`` pixels at ``resolution`` metres."""
    from affine import Affine
    from pyproj import CRS

    transform = Affine(resolution, 0.0, origin[0], 0.0, -resolution, origin[1])
    return Grid(crs=CRS.from_user_input(crs), transform=transform, width=size, height=size)


def make_stack(
    n_dates: int = 2,
    *,
    size: int = 64,
    dates: Sequence[str | dt.date] | None = None,
    bands: Sequence[str] = DEFAULT_BANDS,
    buildings: Sequence[Building] | None = None,
    resolution: float = 0.5,
    crs: str = DEFAULT_CRS,
    origin: tuple[float, float] = DEFAULT_ORIGIN,
    noise: float = 3.0,
    seed: int = 0,
) -> xr.DataArray:
    """A tiny georeferenced TileStack ``(time, band, y, x)`` float32 in 0..255.

    Parameters
    ----------
    n_dates
        Number of dates (ignored when ``dates`` is given); 2024-01-15 then every 60 days.
    size
        Side in pixels.
    dates
        The dates (ISO strings or dates); default ``n_dates`` of them.
    bands
        Band names, in order; default red, green, blue, nir.
    buildings
        Rectangles on the ground; defaults to :func:`default_buildings`.
    resolution
        Pixel size in CRS units (metres).
    crs
        The stack's CRS; default UTM 48N (Ho Chi Minh City).
    origin
        ``(x, y)`` of the upper-left corner in ``crs``.
    noise
        Standard deviation of the per-date sensor noise (digital numbers).
    seed
        Seed of the ground texture and the noise.
    """
    if dates is None:
        dates = [dt.date(2024, 1, 15) + dt.timedelta(days=60 * i) for i in range(n_dates)]
    times = pd.DatetimeIndex([pd.Timestamp(d) for d in dates])
    n_dates = len(times)
    if buildings is None:
        buildings = default_buildings(size, n_dates)
    rng = np.random.default_rng(seed)
    ground = _ground(size, len(bands), rng)
    data = np.empty((n_dates, len(bands), size, size), dtype=np.float32)
    for t in range(n_dates):
        img = ground.copy()
        for b in buildings:
            if b.appears <= t:
                roof = np.resize(np.asarray(b.roof, dtype=np.float32), len(bands))
                img[:, b.row : b.row + b.height, b.col : b.col + b.width] = roof[:, None, None]
        img += rng.normal(0.0, noise, img.shape).astype(np.float32)
        data[t] = np.clip(img, 0, 255)
    grid = make_grid(size, resolution=resolution, crs=crs, origin=origin)
    return _as_stack(data, times, list(bands), grid)


def _ground(size: int, n_bands: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth vegetation/soil texture with a road across the scene."""
    from scipy.ndimage import gaussian_filter

    base = gaussian_filter(rng.normal(0, 1, (size, size)), sigma=max(size / 16, 1.0))
    base = (base - base.min()) / (np.ptp(base) + 1e-9)
    colours = np.array([[70, 110, 50, 160], [120, 105, 80, 120]], dtype=np.float32)
    mix = colours[0][:, None, None] * (1 - base) + colours[1][:, None, None] * base
    img = np.resize(mix, (n_bands, size, size)).astype(np.float32) if n_bands != 4 else mix
    road = slice(size * 2 // 5, size * 2 // 5 + max(size // 20, 1))
    img[:, road, :] = 95.0
    return img.astype(np.float32)


def _as_stack(data: np.ndarray, times: pd.DatetimeIndex, bands: list[str], grid: Grid) -> xr.DataArray:
    coords = grid.coords()
    da = xr.DataArray(
        data,
        dims=("time", "band", "y", "x"),
        coords={"time": times.values.astype("datetime64[ns]"), "band": bands, "y": coords["y"], "x": coords["x"]},
        name="reflectance",
    )
    da = da.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
    return da.rio.write_nodata(np.nan, encoded=False)


def write_stack(stack: xr.DataArray, folder: str | Path, *, prefix: str = "tile") -> list[Path]:
    """Write one uint8 GeoTIFF per date, ``<prefix>_YYYYMMDD.tif``; return the paths."""
    import rasterio

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for t in range(stack.sizes["time"]):
        day = pd.Timestamp(stack["time"].values[t]).strftime("%Y%m%d")
        path = folder / f"{prefix}_{day}.tif"
        arr = np.nan_to_num(stack.isel(time=t).values, nan=0).round().clip(0, 255).astype(np.uint8)
        profile = {
            "driver": "GTiff", "width": arr.shape[2], "height": arr.shape[1], "count": arr.shape[0],
            "dtype": "uint8", "crs": stack.rio.crs, "transform": transform_of(stack),
        }
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(arr)
            for i, name in enumerate(stack["band"].values, start=1):
                dst.set_band_description(i, str(name))
        paths.append(path)
    return paths


def _box(grid: Grid, row: float, col: float, height: float, width: float):  # noqa: ANN202
    from shapely.geometry import box

    t = grid.transform
    x0, y0 = t @ (col, row)
    x1, y1 = t @ (col + width, row + height)
    return box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def make_footprints(stack: xr.DataArray | Grid | None = None, *, new_only: bool = True,
                    first_seen: str = "2024-03-15", model: str = "test-model"):  # noqa: ANN201
    """Footprints as :func:`changedetect.vectorize.vectorize` gives them, one per building.

    With ``new_only`` only the buildings that appear after the first date.
    """

    grid = stack if isinstance(stack, Grid) else (Grid.of(stack) if stack is not None else make_grid())
    n = 2 if stack is None or isinstance(stack, Grid) else stack.sizes["time"]
    rows = []
    for i, b in enumerate(default_buildings(grid.width, n)):
        if new_only and b.appears == 0:
            continue
        geom = _box(grid, b.row, b.col, b.height, b.width)
        rows.append({
            "footprint_id": f"F{i:04d}", "area_m2": float(geom.area), "prob_mean": 0.8, "prob_max": 0.95,
            "first_seen": pd.Timestamp(first_seen), "change_type": "new_building",
            "model": model, "model_version": "0", "geometry": geom,
        })
    return _frame(rows, ["footprint_id", "area_m2", "prob_mean", "prob_max", "first_seen", "change_type",
                         "model", "model_version"], grid.crs)


def make_permits(footprints, *, statuses: Sequence[str] = ("active",),  # noqa: ANN001, ANN201
                 scale: float = 1.0, issued_on: str = "2024-01-01", valid_until: str = "2026-12-31"):
    """A permit register (``permits/schema.json`` columns) covering the given footprints.

    Each footprint gets a permit whose polygon is the footprint scaled by ``scale``
    (1.0: an exact permit, 0.5: the building exceeds it); ``statuses`` cycles.
    """
    from shapely import affinity

    rows = []
    for i, geom in enumerate(footprints.geometry):
        poly = affinity.scale(geom, xfact=scale ** 0.5, yfact=scale ** 0.5)
        rows.append({
            "permit_id": f"GP-2024-{i + 1:04d}", "permit_type": "new_construction",
            "issued_on": issued_on, "valid_until": valid_until,
            "permitted_area_m2": float(poly.area),
            "address": f"Số {i + 12} Đường Nguyễn Thị Minh Khai, Phường Đa Kao, Quận 1",
            "status": statuses[i % len(statuses)], "geometry": poly,
        })
    return _frame(rows, ["permit_id", "permit_type", "issued_on", "valid_until", "permitted_area_m2", "address",
                         "status"], footprints.crs)


_STATUSES = ("unlicensed", "exceeds_permit", "permit_expired", "before_permit", "type_mismatch", "permitted")


def make_violations(stack: xr.DataArray | Grid | None = None, *, n: int = 3, seed: int = 0):  # noqa: ANN201
    """Violations as :func:`changedetect.match.match` gives them: ``n`` boxes inside the scene."""

    grid = stack if isinstance(stack, Grid) else (Grid.of(stack) if stack is not None else make_grid())
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        h, w = (int(v) for v in rng.integers(max(grid.height // 10, 2), max(grid.height // 5, 3), 2))
        r = int(rng.integers(0, grid.height - h))
        c = int(rng.integers(0, grid.width - w))
        geom = _box(grid, r, c, h, w)
        status = _STATUSES[i % len(_STATUSES)]
        permit = "" if status == "unlicensed" else f"GP-2024-{i:04d}"
        rows.append({
            "violation_id": f"V-{i + 1:05d}", "footprint_id": f"F{i:04d}", "status": status,
            "reason": f"{status.replace('_', ' ')}: building of {geom.area:.0f} m² <test & \"escape\">",
            "permit_ids": permit, "overlap_ratio": float(rng.uniform(0, 1)),
            "excess_area_m2": float(rng.uniform(0, 50)), "area_m2": float(geom.area),
            "first_seen": pd.Timestamp("2024-03-15"), "change_type": "new_building",
            "confidence": float(rng.uniform(0.5, 1)), "geometry": geom,
        })
    return _frame(rows, ["violation_id", "footprint_id", "status", "reason", "permit_ids", "overlap_ratio",
                         "excess_area_m2", "area_m2", "first_seen", "change_type", "confidence"], grid.crs)


def _frame(rows: list[dict[str, Any]], columns: list[str], crs: Any) -> Any:
    """``rows`` as a GeoDataFrame in ``crs``; with no row, an empty one with ``columns`` and its geometry
    (``GeoDataFrame([], geometry="geometry")`` raises 'Unknown column geometry')."""
    import geopandas as gpd

    if rows:
        return gpd.GeoDataFrame(rows, geometry="geometry", crs=crs)
    return gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in columns}, geometry=gpd.GeoSeries([], crs=crs),
                            crs=crs)


def make_model(folder: str | Path, *, arch: str = "siamese_unet", bands: Sequence[str] = ("red", "green", "blue"),
               threshold: float = 0.5, seed: int = 0, **arch_kwargs: object) -> Path:
    """Save a small randomly initialised model (weights + card) into ``folder``; return it.

    Its predictions mean nothing: it is for tests of the plumbing (loading,
    checksums, the chain's files), never for accuracy.  Pass the folder as
    ``DetectConfig(model=str(folder))``.
    """
    import torch

    from changedetect.nn import get_model
    from changedetect.weights import ModelCard, save_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    kwargs = dict(arch_kwargs) or {"widths": (8, 8, 16, 16, 16)}
    torch.manual_seed(seed)
    module = get_model(arch, in_channels=len(bands), **kwargs)
    card = ModelCard(name=folder.name, version="0-test", arch=arch, bands=tuple(bands),
                     arch_kwargs={k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()},
                     window=64, threshold=threshold)
    save_model(module, card, folder)
    return folder


def make_run_inputs(root: str | Path, *, size: int = 300, seed: int = 3) -> Any:
    """A tiny run's inputs under ``root``: three dates of ``size``² px in ``tiles/``, a one-permit
    ``permits.gpkg`` and a random model (:func:`make_model`); returns the
    :class:`~changedetect.config.PipelineConfig` that runs them in seconds (64 px windows, a low
    threshold so that the random model finds footprints, no report).  For tests of the whole
    chain's plumbing, never of accuracy::

        config = make_run_inputs(tmp_path)
        run(tmp_path / "tiles", permits=tmp_path / "permits.gpkg", out=tmp_path / "out", config=config)
    """
    from dataclasses import replace

    from changedetect.config import PipelineConfig

    root = Path(root)
    stack = make_stack(n_dates=3, size=size, seed=seed)
    write_stack(stack, root / "tiles", prefix="district12")
    make_permits(make_footprints(stack).iloc[:1]).to_file(root / "permits.gpkg")
    config = PipelineConfig().with_model(str(make_model(root / "tiny-model")))
    return replace(config, detect=replace(config.detect, window=64, overlap=8),
                   vectorize=replace(config.vectorize, threshold=0.02, low_threshold=0.02),
                   output=replace(config.output, report=False))


def make_one_band(tile: str | Path) -> bytes:
    """Rewrite raster ``tile`` as its first band alone, in place (a date that passes a cheap read
    but fails in its pair, which needs the model's bands); return its old bytes to put back."""
    import rasterio

    tile = Path(tile)
    old = tile.read_bytes()
    with rasterio.open(tile) as src:
        profile, band = src.profile, src.read(1)
    profile.update(count=1)
    tile.unlink()
    with rasterio.open(tile, "w", **profile) as dst:
        dst.write(band, 1)
    return old


def assert_same_grid(a: xr.DataArray | Grid, b: xr.DataArray | Grid, *, atol: float = 1e-6) -> None:
    """Raise ``AssertionError`` unless ``a`` and ``b`` share CRS, transform and shape."""
    ga = a if isinstance(a, Grid) else Grid.of(a)
    gb = b if isinstance(b, Grid) else Grid.of(b)
    assert ga.shape == gb.shape, f"shapes differ: {ga.shape} != {gb.shape}"
    assert (ga.crs is None) == (gb.crs is None) and (ga.crs is None or ga.crs == gb.crs), (
        f"CRS differ: {ga.crs} != {gb.crs}"
    )
    assert ga.transform.almost_equals(gb.transform, precision=atol), (
        f"transforms differ: {tuple(ga.transform)[:6]} != {tuple(gb.transform)[:6]}"
    )


def assert_tilestack(stack: xr.DataArray) -> None:
    """Raise ``AssertionError`` unless ``stack`` follows the TileStack conventions."""
    try:
        check_tilestack(stack)
    except ValueError as exc:
        raise AssertionError(str(exc)) from None
    assert stack.dtype == np.float32, f"a TileStack is float32, got {stack.dtype}"
    assert stack.rio.crs is not None, "a TileStack carries a CRS (rioxarray)"


def counting_lazy(stack: xr.DataArray, chunks: tuple[int, ...]) -> tuple[xr.DataArray, list[tuple[int, ...]]]:
    """A dask-backed copy of ``stack`` (``chunks``) and the list into which each block computed from it
    records its shape: it stands for coregister's lazy warp, to count how often a stage computes a block
    (a stage that reads one block many times recomputes the warp as many times)."""
    import dask.array as da

    computed: list[tuple[int, ...]] = []

    def warp(block: np.ndarray) -> np.ndarray:
        if block.size:
            computed.append(block.shape)
        return block + 0

    source = da.from_array(stack.values, chunks=chunks)
    return stack.copy(data=source.map_blocks(warp, dtype=source.dtype)), computed


def make_nightly_catalog(root: str | Path, areas: dict[str, int]) -> dict[str, Path]:
    """A tiny nightly world under ``root``: per area (name -> seed) two 64 px dates in
    ``tiles/<area>/``, a one-permit register ``permits.gpkg``, a tiny model and a ``nightly.toml``
    that uses it (64 px windows, low thresholds so that the model's noise makes footprints).
    Returns the paths by name: ``root``, ``tiles``, ``permits``, ``config``."""
    root = Path(root)
    for area, seed in areas.items():
        write_stack(make_stack(n_dates=2, size=64, seed=seed), root / "tiles" / area, prefix=area)
    make_permits(make_footprints(make_stack(n_dates=2, size=64)).iloc[:1]).to_file(root / "permits.gpkg")
    model = make_model(root / "tiny-model", threshold=0.02)
    (root / "nightly.toml").write_text(f'[detect]\nmodel = "{model}"\nwindow = 64\noverlap = 8\n'
                                       "[vectorize]\nthreshold = 0.02\nlow_threshold = 0.02\n", encoding="utf-8")
    return {"root": root, "tiles": root / "tiles", "permits": root / "permits.gpkg", "config": root / "nightly.toml"}


__all__ = [
    "Building", "assert_same_grid", "assert_tilestack", "counting_lazy", "default_buildings", "make_footprints",
    "make_grid", "make_model", "make_nightly_catalog", "make_one_band", "make_permits", "make_run_inputs", "make_stack", "make_violations",
    "write_stack",
]
