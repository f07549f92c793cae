"""Readers of the real training and evaluation data, and a compact training cache.

Single-date VHR images with building masks (for pair synthesis):
:func:`load_fair_oam_area` (one mosaic per cluster of slippy-map tiles of an area),
:func:`load_spacenet_rio`, :func:`load_dubai_hitl`.
Bitemporal pairs with change labels: :func:`load_levir` (evaluation only, never
training), :func:`load_oscd_city`, :func:`load_sample_city`.

The training loop reads a cache (:func:`save_cache` / :func:`load_cache`, one ``.npz``)
so that it needs nothing but numpy and torch, e.g. on a GPU machine without GDAL.
The cache is built from ``../shared/data`` and must never be committed (licences).
"""

from __future__ import annotations

import json
import logging
import re
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from changedetect.errors import DatasetError

log = logging.getLogger(__name__)

#: Web-Mercator metres per pixel at zoom 0 on the equator (256-px tiles).
_MERC_RES0 = 156543.03392804097
_ORIGIN = 20037508.342789244
#: Building colour in the Dubai masks.
DUBAI_BUILDING_RGB = (60, 16, 152)
#: Sentinel-2 band names accepted for the usual colour names.
S2_ALIASES = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08"}


@dataclass
class LabelledImage:
    """One single-date image with its building mask.

    ``image``: ``(3, h, w)`` uint8 RGB; ``mask``: ``(h, w)`` bool buildings; ``valid``:
    ``(h, w)`` bool pixels with data; ``gsd_m``: metres per pixel; ``group``: the area it
    comes from (split by group, never by tile).
    """

    name: str
    image: np.ndarray
    mask: np.ndarray
    gsd_m: float
    group: str
    valid: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.valid is None:
            self.valid = np.ones(self.mask.shape, bool)


@dataclass
class ChangePair:
    """Two co-registered dates and the change label.

    ``before``, ``after``: ``(c, h, w)`` (uint8 or float32); ``label``: ``(h, w)`` bool;
    ``bands``: band names in order.
    """

    name: str
    before: np.ndarray
    after: np.ndarray
    label: np.ndarray
    bands: tuple[str, ...]
    gsd_m: float
    group: str = ""
    meta: dict[str, str] = field(default_factory=dict)


# -- fair_oam ---------------------------------------------------------------------------
_TILE_RE = re.compile(r"OAM-(\d+)-(\d+)-(\d+)\.png$")


def _tile_components(tiles: set[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    """4-connected clusters of tiles."""
    left, out = set(tiles), []
    while left:
        stack, comp = [left.pop()], []
        while stack:
            t = stack.pop()
            comp.append(t)
            for n in ((t[0] + 1, t[1]), (t[0] - 1, t[1]), (t[0], t[1] + 1), (t[0], t[1] - 1)):
                if n in left:
                    left.remove(n)
                    stack.append(n)
        out.append(sorted(comp))
    return out


def load_fair_oam_area(root: Path, area: int, *, zoom: int = 19, min_tiles: int = 1) -> list[LabelledImage]:
    """Mosaics of one fAIr/OpenAerialMap area at ``zoom``, one per cluster of adjacent tiles.

    Building masks are rasterised from the area's OpenStreetMap ``labels.geojson`` on the
    mosaic's Web-Mercator grid (the same for every area, whatever its per-tile labels).
    """
    import geopandas as gpd
    from affine import Affine
    from PIL import Image
    from rasterio.features import rasterize

    folder = Path(root) / "data" / str(area)
    if not folder.is_dir():
        raise DatasetError(f"fair_oam area folder '{folder}' is missing; expected "
                           "buildings/fair_oam/data/<area>/ with OAM-x-y-z.png tiles")
    tiles: dict[tuple[int, int], Path] = {}
    for p in folder.glob(f"OAM-*-*-{zoom}.png"):
        m = _TILE_RE.search(p.name)
        if m:
            tiles[(int(m[1]), int(m[2]))] = p
    if not tiles:
        raise DatasetError(f"no zoom-{zoom} tiles in '{folder}'")
    shapes = gpd.read_file(folder / "labels.geojson").to_crs(3857).geometry
    res = _MERC_RES0 / 2**zoom
    out = []
    for k, comp in enumerate(_tile_components(set(tiles))):
        if len(comp) < min_tiles:
            continue
        xs, ys = [t[0] for t in comp], [t[1] for t in comp]
        x0, y0 = min(xs), min(ys)
        w, h = (max(xs) - x0 + 1) * 256, (max(ys) - y0 + 1) * 256
        img = np.zeros((3, h, w), np.uint8)
        valid = np.zeros((h, w), bool)
        for tx, ty in comp:
            arr = np.asarray(Image.open(tiles[(tx, ty)]).convert("RGB"))
            r, c = (ty - y0) * 256, (tx - x0) * 256
            img[:, r:r + 256, c:c + 256] = arr.transpose(2, 0, 1)
            valid[r:r + 256, c:c + 256] = True
        transform = Affine(res, 0, -_ORIGIN + x0 * 256 * res, 0, -res, _ORIGIN - y0 * 256 * res)
        geoms = [g for g in shapes if g is not None and not g.is_empty]
        mask = rasterize(geoms, out_shape=(h, w), transform=transform, dtype=np.uint8).astype(bool) \
            if geoms else np.zeros((h, w), bool)
        lat = np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * (y0 + h / 512) / 2**zoom))))
        out.append(LabelledImage(f"fair_oam_{area}_{k}", img, mask & valid,
                                 float(res * np.cos(np.radians(lat))), f"fair_oam_{area}", valid))
    log.info("fair_oam area %s: %d mosaics from %d tiles", area, len(out), len(tiles))
    return out


# -- other single-date sets --------------------------------------------------------------
def load_spacenet_rio(root: Path) -> list[LabelledImage]:
    """SpaceNet-1 Rio examples (0.5 m RGB) with their 0/255 building masks."""
    import rasterio

    base = Path(root) / "example_outputs"
    out = []
    for p in sorted((base / "3band").glob("*.tif")):
        mpath = base / "building_mask_vis" / p.name
        if not mpath.is_file():
            log.warning("spacenet_rio: no mask for %s", p.name)
            continue
        with rasterio.open(p) as src:
            img = src.read()
        with rasterio.open(mpath) as src:
            mask = src.read(1) > 127
        if img.dtype != np.uint8:
            img = _to_uint8(img.astype(np.float32))
        out.append(LabelledImage(f"spacenet_rio_{p.stem}", img[:3], mask, 0.5, "spacenet_rio"))
    if not out:
        raise DatasetError(f"no images in '{base / '3band'}'")
    return out


def load_dubai_hitl(root: Path, *, gsd_m: float = 0.5) -> list[LabelledImage]:
    """Dubai Humans-in-the-Loop tiles; buildings are RGB (60, 16, 152) in the masks.

    No licence is stated for this copy: the shipped models do not train on it.
    """
    from PIL import Image

    out = []
    for img_path in sorted(Path(root).glob("tile_*/images/*.jpg")):
        mpath = img_path.parent.parent / "masks" / (img_path.stem + ".png")
        if not mpath.is_file():
            continue
        img = np.asarray(Image.open(img_path).convert("RGB")).transpose(2, 0, 1)
        m = np.asarray(Image.open(mpath).convert("RGB"))
        mask = np.all(m == np.array(DUBAI_BUILDING_RGB, np.uint8), axis=-1)
        out.append(LabelledImage(f"dubai_{img_path.parent.parent.name}_{img_path.stem}",
                                 np.ascontiguousarray(img), mask, gsd_m, "dubai_hitl"))
    return out


def _to_uint8(x: np.ndarray) -> np.ndarray:
    lo, hi = np.nanpercentile(x, [0.1, 99.9])
    return np.clip((x - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)


# -- bitemporal pairs --------------------------------------------------------------------
def load_levir(root: Path) -> list[ChangePair]:
    """LEVIR-CD style folder (``A/``, ``B/``, ``label/``): for evaluation only, never training."""
    from PIL import Image

    # the files and labels as `changedetect evaluate` reads them: every name matched, a label of other values
    # (0/1/2, 0/128/255) or colours refused naming it (it was read as 'anything > 0 is change')
    from changedetect._evaluate_data import _label_mask, _levir_layout, _read_image

    out = []
    for path_a, path_b, path_label in _levir_layout(Path(root)):
        a = np.asarray(Image.open(path_a).convert("RGB")).transpose(2, 0, 1)
        b = np.asarray(Image.open(path_b).convert("RGB")).transpose(2, 0, 1)
        lab = _label_mask(_read_image(path_label, kind="label")[0], path_label)
        if a.shape[1:] != lab.shape or b.shape[1:] != lab.shape:
            raise DatasetError(f"LEVIR pair '{path_label.stem}': A '{path_a}', B '{path_b}' and label '{path_label}' "
                               f"differ in size ({a.shape[1:]}, {b.shape[1:]}, {lab.shape}): crop or resample them "
                               "onto one grid")
        n = path_label.name
        out.append(ChangePair(f"levir_{Path(n).stem}", np.ascontiguousarray(a),
                              np.ascontiguousarray(b), lab, ("red", "green", "blue"), 0.5, "levir"))
    return out


def load_oscd_city(root: Path, city: str, *, bands: Sequence[str] = ("B02", "B03", "B04", "B08")
                   ) -> ChangePair:
    """One OSCD city: both dates' ``bands`` resampled (bilinear) onto the 10 m label grid.

    Returns float32 top-of-atmosphere reflectance (the files' uint16 values) and the
    change label (file value 2 = change).
    """
    import rasterio
    from rasterio.warp import Resampling, reproject

    root = Path(root)
    lpath = root / "labels" / city / "cm" / f"{city}-cm.tif"
    if not lpath.is_file():
        raise DatasetError(f"OSCD label '{lpath}' is missing (expected labels/<city>/cm/<city>-cm.tif)")
    with rasterio.open(lpath) as src:
        label = src.read(1) == 2
    dates = []
    grid = None  # the label grid: the first date's B02 grid (the second date's may differ)
    for d in ("imgs_1", "imgs_2"):
        files = {f.stem.rsplit("_", 1)[-1]: f for f in (root / "images" / city / d).glob("*.tif")}
        ref = files.get("B02")
        if ref is None:
            raise DatasetError(f"OSCD city '{city}' has no B02 file in images/{city}/{d}/")
        if grid is None:
            with rasterio.open(ref) as src:
                grid = (src.transform, src.crs, src.shape)
        grid_t, grid_crs, shape = grid
        if shape != label.shape:
            raise DatasetError(f"OSCD '{city}': B02 grid {shape} differs from the label {label.shape}")
        stack = np.zeros((len(bands), *shape), np.float32)
        for i, b in enumerate(bands):
            if b not in files:
                raise DatasetError(f"OSCD city '{city}' lacks band {b} in images/{city}/{d}/")
            with rasterio.open(files[b]) as src:
                reproject(rasterio.band(src, 1), stack[i], dst_transform=grid_t, dst_crs=grid_crs,
                          resampling=Resampling.bilinear)
        dates.append(stack)
    meta = {}
    dpath = root / "images" / city / "dates.txt"
    if dpath.is_file():
        meta["dates"] = dpath.read_text().strip()
    return ChangePair(f"oscd_{city}", dates[0], dates[1], label, tuple(bands), 10.0, city, meta)


def load_sample_city(folder: Path, *, first_last: bool = False) -> list[ChangePair]:
    """Consecutive-date pairs of the generated sample city with their truth change masks.

    Pairs ``<name>_<YYYYMMDD>.tif`` files in date order with ``truth/*<d1>*<d2>*.tif``;
    pair ``k`` (from 1) gets group ``sample_city_<k>`` so that pairs can be split.
    ``first_last`` adds the pair of the first and the last date (group ``sample_city_1<n>``
    for ``n`` dates, e.g. ``sample_city_13``): in the generated cities the same season, the
    kind of pair ``changedetect.detect.detect_series`` adds.
    """
    import rasterio

    folder = Path(folder)
    tifs = sorted(t for t in folder.glob("*.tif") if re.search(r"_(\d{8})\.tif$", t.name))
    todo = [(t1, t2, f"sample_city_{k + 1}") for k, (t1, t2) in enumerate(zip(tifs, tifs[1:], strict=False))]
    if first_last and len(tifs) > 2:
        todo.append((tifs[0], tifs[-1], f"sample_city_1{len(tifs)}"))
    out = []
    for t1, t2, group in todo:
        d1 = re.search(r"(\d{8})", t1.name)[1]  # type: ignore[index]
        d2 = re.search(r"(\d{8})", t2.name)[1]  # type: ignore[index]
        cands = [p for p in (folder / "truth").glob("*.tif") if d1 in p.name and d2 in p.name]
        if not cands:
            continue
        with rasterio.open(t1) as a, rasterio.open(t2) as b, rasterio.open(cands[0]) as lab:
            names = [str(n or f"b{i + 1}").lower() for i, n in enumerate(a.descriptions)]
            label = lab.read(1) > 0
            out.append(ChangePair(f"sample_{d1}_{d2}", a.read(), b.read(), label, tuple(names),
                                  float(abs(a.transform.a)), group))
    return out


def sample_city_manifest(folder: Path) -> dict[str, object] | None:
    """The sample city's ``manifest.json``, if any."""
    p = Path(folder) / "manifest.json"
    return json.loads(p.read_text()) if p.is_file() else None


# -- cache -------------------------------------------------------------------------------
def save_cache(path: Path, *, images: Sequence[LabelledImage] = (), pairs: Sequence[ChangePair] = (),
               source: Mapping[str, Any] | None = None) -> Path:
    """Write images and pairs into one compressed ``.npz`` (uint8 pixels stay uint8).

    ``source`` records what the cache was built from (``data_root``, task, groups, bands;
    :func:`changedetect.training.loaders.cache_key`), read back by :func:`cache_source`.
    """
    arrays: dict[str, Any] = {}
    index: dict[str, Any] = {"images": [], "pairs": []}
    if source is not None:
        index["source"] = dict(source)
    for i, im in enumerate(images):
        arrays[f"im{i}_image"], arrays[f"im{i}_mask"] = im.image, im.mask
        assert im.valid is not None
        arrays[f"im{i}_valid"] = im.valid
        index["images"].append({"name": im.name, "gsd_m": im.gsd_m, "group": im.group})
    for i, p in enumerate(pairs):
        arrays[f"pr{i}_before"], arrays[f"pr{i}_after"], arrays[f"pr{i}_label"] = p.before, p.after, p.label
        index["pairs"].append({"name": p.name, "gsd_m": p.gsd_m, "group": p.group,
                               "bands": list(p.bands), "meta": p.meta})
    arrays["index"] = np.frombuffer(json.dumps(index).encode(), np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return path


def cache_source(path: Path) -> dict[str, Any] | None:
    """What the cache at ``path`` was built from (see :func:`save_cache`); ``None`` if unrecorded."""
    try:
        with np.load(Path(path)) as z:
            index = json.loads(bytes(z["index"]).decode())
    except _UNREADABLE as exc:
        raise _unreadable(path, exc) from exc
    src = index.get("source") if isinstance(index, dict) else None
    return dict(src) if isinstance(src, dict) else None


def load_cache(path: Path) -> tuple[list[LabelledImage], list[ChangePair]]:
    """Read what :func:`save_cache` wrote."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"training cache '{path}' is missing; build it with "
                           "`python -m changedetect.training.cache` or point the config at the data")
    try:
        with np.load(path) as z:
            index = json.loads(bytes(z["index"]).decode())
            images = [LabelledImage(m["name"], z[f"im{i}_image"], z[f"im{i}_mask"], m["gsd_m"], m["group"],
                                    z[f"im{i}_valid"]) for i, m in enumerate(index["images"])]
            pairs = [ChangePair(m["name"], z[f"pr{i}_before"], z[f"pr{i}_after"], z[f"pr{i}_label"],
                                tuple(m["bands"]), m["gsd_m"], m["group"], m.get("meta", {}))
                     for i, m in enumerate(index["pairs"])]
    except _UNREADABLE as exc:
        raise _unreadable(path, exc) from exc
    return images, pairs


#: what numpy raises on a cache cut short or not a cache at all (a copy stopped half way, another file)
_UNREADABLE = (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, zlib.error)


def _unreadable(path: Path, exc: Exception) -> DatasetError:
    return DatasetError(f"training cache '{path}' cannot be read ({type(exc).__name__}: {exc}); it is cut "
                        "short or not a cache: delete it to rebuild it from the config's data_root, or copy it again")


__all__ = ["ChangePair", "LabelledImage", "cache_source", "load_cache", "load_dubai_hitl", "load_fair_oam_area",
           "load_levir", "load_oscd_city", "load_sample_city", "load_spacenet_rio", "save_cache"]


_GENERATED = ("HELD_OUT_CITY_SEED", "SHADED_SEEDS", "add_pairs_to_cache", "city_config", "ensure_city",
              "generated_city_pairs", "_to_reference")


def __getattr__(name: str) -> Any:
    """The generated cities' names (:mod:`changedetect.training.generated`), re-exported lazily:
    that module reads this one's cache and pairs."""
    if name in _GENERATED:
        from changedetect.training import generated

        return getattr(generated, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    from changedetect.training.generated import _main

    _main()
