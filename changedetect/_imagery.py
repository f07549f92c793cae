"""Image sources of the report: one date of a scene, read window by window.

:class:`RasterImagery` reads a raster file through rasterio windows (the overview is a
decimated read that uses the COG's overviews); :class:`StackImagery` reads one date of a
lazy TileStack (only the windows asked for are computed).  Neither ever reads a whole
scene at full resolution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    import xarray as xr


class Imagery(Protocol):
    """Where image chips come from: one date of a scene, read window by window.

    An optional ``pixel`` attribute (the pixel's side in units of ``crs``) lets a chip's margin
    be counted in pixels too (:attr:`changedetect.config.ReportConfig.chip_margin_px`).
    """

    crs: Any

    def chip(self, bounds: tuple[float, float, float, float], size: int) -> np.ndarray:
        """``(size, size, 3)`` uint8 RGB of ``bounds`` (left, bottom, right, top) in ``crs``."""
        ...

    def overview(self, max_px: int) -> tuple[np.ndarray, tuple[float, float, float, float]]:
        """A downsampled ``(h, w, 3)`` uint8 RGB of the whole scene and its bounds."""
        ...


class RasterImagery:
    """Chips from a raster file through rasterio windows (decimated reads use overviews).

    Parameters
    ----------
    path
        A GeoTIFF/COG; bands are picked by description from ``rgb_bands``,
        else the first three (or one band as grey).
    """

    def __init__(self, path: str | Path, *, rgb_bands: Sequence[str] = ("red", "green", "blue")) -> None:
        import rasterio

        from changedetect.errors import TileReadError
        from changedetect.io._checks import check_raster
        from changedetect.io._inspect import inspect_raster

        self.path = Path(path)
        try:
            with rasterio.open(self.path) as src:
                self.crs = src.crs
                self.bounds = tuple(src.bounds)
                self._indexes = _pick_bands([d or "" for d in src.descriptions], src.count, rgb_bands)
                self._uint8 = src.dtypes[0] == "uint8"
                self._nodata = src.nodata
                self._size = max(src.width, src.height)
                self.pixel = float(max(abs(src.res[0]), abs(src.res[1])))
        except rasterio.errors.RasterioIOError as exc:
            raise TileReadError(f"report: cannot read raster '{self.path}': {exc}") from None
        check_raster(inspect_raster(self.path))  # GCPs or RPCs alone, a complex or palette band: as io's reads
        self._stretch: tuple[np.ndarray, np.ndarray] | None = None

    def _read(self, bounds: tuple[float, float, float, float], shape: tuple[int, int]) -> np.ndarray:
        import rasterio
        from rasterio.enums import Resampling
        from rasterio.windows import from_bounds

        with rasterio.open(self.path) as src:
            window = from_bounds(*bounds, transform=src.transform)
            data = src.read(self._indexes, window=window, out_shape=(len(self._indexes), *shape),
                            boundless=True, fill_value=0, resampling=Resampling.bilinear,
                            masked=self._nodata is not None)
        return np.ma.filled(data.astype(np.float32), np.nan)

    def overview(self, max_px: int) -> tuple[np.ndarray, tuple[float, float, float, float]]:
        shape = _fit(self.bounds, min(max_px, self._size))
        data = self._read(self.bounds, shape)
        if not self._uint8:
            self._stretch = _percentiles(data)
        return self._to_rgb(data), self.bounds  # type: ignore[return-value]

    def chip(self, bounds: tuple[float, float, float, float], size: int) -> np.ndarray:
        if not self._uint8 and self._stretch is None:
            self.overview(512)
        return self._to_rgb(self._read(bounds, (size, size)))

    def _to_rgb(self, data: np.ndarray) -> np.ndarray:
        return _rgb8(data, None if self._uint8 else self._stretch)


class StackImagery:
    """Chips from one date of a TileStack.  A dask-backed date of up to 2 GiB (its three bands) is
    computed once and held (coregister's lazy warp would otherwise be recomputed under the overview
    and under every chip); a larger one is read window by window."""

    def __init__(self, stack: xr.DataArray, date_index: int, *,
                 rgb_bands: Sequence[str] = ("red", "green", "blue")) -> None:
        from changedetect.types import Grid, band_names

        names = band_names(stack)  # a file's band descriptions, where rioxarray numbered its bands
        idx = [i - 1 for i in _pick_bands(names, len(names), rgb_bands)]
        from changedetect._pipeline_steps import hold

        self.da = hold(stack.isel(time=date_index, band=idx))
        self.crs = stack.rio.crs
        self.grid = Grid.of(stack)
        self.bounds = self.grid.bounds
        self.pixel = float(max(abs(self.grid.transform.a), abs(self.grid.transform.e)))
        self._stretch: tuple[np.ndarray, np.ndarray] | None = None

    def overview(self, max_px: int) -> tuple[np.ndarray, tuple[float, float, float, float]]:
        step = max(1, math.ceil(max(self.grid.shape) / max_px))
        data = np.asarray(self.da.isel(y=slice(None, None, step), x=slice(None, None, step)).values, dtype=np.float32)
        self._stretch = _percentiles(data)
        return _rgb8(data, self._stretch), self.bounds

    def chip(self, bounds: tuple[float, float, float, float], size: int) -> np.ndarray:
        from PIL import Image

        if self._stretch is None:
            self.overview(512)
        inv = ~self.grid.transform
        c0, r0 = inv @ (bounds[0], bounds[3])
        c1, r1 = inv @ (bounds[2], bounds[1])
        r0, r1 = sorted((int(math.floor(r0)), int(math.ceil(r1))))
        c0, c1 = sorted((int(math.floor(c0)), int(math.ceil(c1))))
        h, w = self.grid.shape
        out = np.zeros((3, r1 - r0, c1 - c0), dtype=np.float32)
        rr0, rr1, cc0, cc1 = max(r0, 0), min(r1, h), max(c0, 0), min(c1, w)
        if rr1 > rr0 and cc1 > cc0:
            win = self.da.isel(y=slice(rr0, rr1), x=slice(cc0, cc1)).values
            out[:, rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0] = win
        rgb = _rgb8(out, self._stretch)
        return np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.BILINEAR))


def _pick_bands(names: Sequence[str], count: int, wanted: Sequence[str]) -> list[int]:
    """1-based band indexes: by name when all are found, else the first three (or 1 as grey).

    Names match case-insensitively, directly or through the common aliases (Sentinel-2's
    B04/B03/B02/B08 are red/green/blue/nir): a Sentinel-2 stack's first three bands are
    B01 (aerosols, 60 m), B02 and B03, not a true-colour image.
    """
    found = bands_by_name(names, wanted)
    if found is not None:
        return [i + 1 for i in found]
    return [1, 2, 3] if count >= 3 else [1, 1, 1]


def bands_by_name(names: Sequence[str], wanted: Sequence[str]) -> list[int] | None:
    """0-based indexes of ``wanted`` among ``names``, case-insensitively, directly or through the
    common aliases; None when one is not found (:func:`_pick_bands` then takes the first three)."""
    from changedetect._detect_inputs import _canon

    for key in (str.lower, _canon):
        have = [key(n) for n in names]
        if all(key(w) in have for w in wanted):
            return [have.index(key(w)) for w in wanted]
    return None


def _fit(bounds: Sequence[float], max_px: int) -> tuple[int, int]:
    w, h = bounds[2] - bounds[0], bounds[3] - bounds[1]
    scale = max_px / max(w, h)
    return max(1, round(h * scale)), max(1, round(w * scale))


def _percentiles(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-band 2nd and 98th percentiles of ``(3, h, w)`` (or ``(3, n)``) data, NaN ignored; 0 and 1
    for a band with no data (a date its SCL masks whole: no data, and no numpy warning)."""
    flat = data.reshape(data.shape[0], -1)
    lo, hi = np.zeros(flat.shape[0]), np.ones(flat.shape[0])
    some = np.isfinite(flat).any(axis=1)
    if some.any():
        lo[some] = np.nanpercentile(flat[some], 2, axis=1)
        hi[some] = np.nanpercentile(flat[some], 98, axis=1)
    return lo, np.where(hi > lo, hi, lo + 1)


def _rgb8(data: np.ndarray, stretch: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """``(3, h, w)`` float -> ``(h, w, 3)`` uint8 (stretched unless ``stretch`` is None)."""
    if stretch is not None:
        lo, hi = stretch
        data = (data - lo[:, None, None]) / (hi - lo)[:, None, None] * 255.0
    return np.nan_to_num(data, nan=0).clip(0, 255).astype(np.uint8).transpose(1, 2, 0).copy()


__all__ = ["Imagery", "RasterImagery", "StackImagery"]
