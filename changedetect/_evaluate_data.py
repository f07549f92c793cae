"""The labelled pairs :mod:`changedetect.evaluate` scores, read from a LEVIR-style folder (``A/``, ``B/``,
``label/``) or an OSCD-style root (``images/<city>/imgs_1|2/*_B02.tif``, ``labels/<city>/cm/<city>-cm.tif``);
see that module's docstring for the layouts."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from changedetect.errors import DatasetError

logger = logging.getLogger("changedetect.evaluate")

_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
#: Sentinel-2 file suffix of the common band names.
_S2_NAME = {"blue": "B02", "green": "B03", "red": "B04", "nir": "B08"}
#: bands CVA reads from a Sentinel-2 (OSCD) pair: the 10 m bands (and any reader given no bands).
_CVA_S2_BANDS = ("B02", "B03", "B04", "B08")


@dataclass
class Pair:
    """One labelled pair: ``before``/``after`` ``(band, y, x)``, ``label`` (h, w) bool."""

    name: str
    before: xr.DataArray
    after: xr.DataArray
    label: np.ndarray
    source: str = ""  # the files it was read from, for messages


def _read_image(path: Path, *, kind: str) -> tuple[np.ndarray, list[str]]:
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                # a PNG's alpha band is a mask, not a colour: it is left out (not a GeoTIFF's: GDAL calls
                # the fourth band of any 4-band uint8 GeoTIFF alpha, a near-infrared band too)
                png = path.suffix.lower() not in {".tif", ".tiff"}
                keep = [i for i in range(src.count)
                        if not (png and src.count > 1 and src.colorinterp[i].name == "alpha")]
                data = src.read([i + 1 for i in keep])
                names = [(src.descriptions[i] or "").strip() or
                         (src.colorinterp[i].name if src.colorinterp[i].name in {"red", "green", "blue"}
                          else str(i + 1)) for i in keep]
    except RasterioIOError as exc:
        raise DatasetError(f"cannot read {kind} '{path}': {exc}") from exc
    _check_complete(path, kind)
    return data, names


def _check_complete(path: Path, kind: str) -> None:
    """DatasetError for a truncated file: GDAL reads a PNG's or JPEG's missing rows as zeros, and
    a cut label would be scored as "no change" without a word."""
    from changedetect.errors import TileReadError
    from changedetect.io._inspect import inspect_raster

    if path.suffix.lower() in {".png", ".jpg", ".jpeg"}:
        from PIL import Image

        try:
            with Image.open(path) as im:
                im.load()
        except (OSError, SyntaxError) as exc:  # PIL: "image file is truncated", broken chunks
            raise DatasetError(f"{kind} '{path}' is truncated or corrupt ({exc}); copy it again or "
                               "remove the pair") from exc
        return
    try:
        inspect_raster(path)
    except TileReadError as exc:
        raise DatasetError(f"{kind}: {exc}") from exc


def _as_da(data: np.ndarray, names: list[str]) -> xr.DataArray:
    return xr.DataArray(data.astype(np.float32), dims=("band", "y", "x"), coords={"band": names})


def _is_image(p: Path) -> bool:
    """An image file by its name; hidden files (macOS's '._name.png' beside each file on a USB drive) are not."""
    return p.suffix.lower() in _IMAGE_EXT and not p.name.startswith(".")


def _find(folder: Path, stem: str) -> Path | None:
    for ext in _IMAGE_EXT:
        for cand in (folder / f"{stem}{ext}", folder / f"{stem}{ext.upper()}"):
            if cand.is_file():
                return cand
    return None


def _levir_layout(root: Path) -> list[tuple[Path, Path, Path]]:
    """The ``(A, B, label)`` files of a LEVIR-style folder, every name matched (DatasetError if not)."""
    for sub in ("A", "B", "label"):
        if not (root / sub).is_dir():
            raise DatasetError(f"LEVIR-style folder '{root}' has no '{sub}/' folder (expected A/, B/, label/)"
                               + _oscd_hint(root))
    labels = sorted(p for p in (root / "label").iterdir() if _is_image(p))
    if not labels:
        raise DatasetError(f"'{root / 'label'}' holds no PNG/JPEG/GeoTIFF label")
    stems = [p.stem for p in labels]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:  # one A/B pair would be scored against each of them
        raise DatasetError(f"'{root / 'label'}' holds several labels named {twice} (different extensions); "
                           "keep one per pair")
    for sub in ("A", "B"):  # a pair without its label would be left out of the scores without a word
        unlabelled = sorted(p.name for p in (root / sub).iterdir()
                            if _is_image(p) and p.stem not in set(stems))
        if unlabelled:
            shown = ", ".join(repr(n) for n in unlabelled[:5]) + (" ..." if len(unlabelled) > 5 else "")
            raise DatasetError(f"{len(unlabelled)} image(s) in '{root / sub}' ({shown}) have no label in "
                               f"'{root / 'label'}': add their labels, or move the pairs out of '{root}'")
    found = []
    for lab in labels:
        a, b = (_find(root / sub, lab.stem) for sub in ("A", "B"))
        if a is None or b is None:
            raise DatasetError(f"label '{lab.name}' has no matching image in '{root / ('A' if a is None else 'B')}'")
        found.append((a, b, lab))
    return found


def _levir_pairs(files: list[tuple[Path, Path, Path]]) -> Iterator[Pair]:
    for path_a, path_b, lab in files:
        a, names_a = _read_image(path_a, kind="image")
        b, names_b = _read_image(path_b, kind="image")
        y, _ = _read_image(lab, kind="label")
        if a.shape[1:] != y.shape[1:] or b.shape[1:] != y.shape[1:]:
            raise DatasetError(f"pair '{lab.stem}': sizes differ (A '{path_a}' {_hw(a)}, B '{path_b}' {_hw(b)}, "
                               f"label '{lab}' {_hw(y)} pixels): crop or resample the three onto one grid")
        before = _as_da(a, names_a)
        before.attrs.update(_gsd(path_a))
        yield Pair(lab.stem, before, _as_da(b, names_b), _label_mask(y, lab), source=f"{path_a}, {path_b}")


def _gsd(path: Path) -> dict[str, object]:
    """``gsd_m`` (a pixel's side on the ground, metres) and ``gsd_of`` of a georeferenced image, for
    the model's check of its resolution; nothing for a PNG or JPEG without a CRS (units unknown)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    from changedetect.io.geo import ground_pixel
    from changedetect.types import Grid

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                if src.crs is None:
                    return {}
                grid = Grid(crs=src.crs, transform=src.transform, width=src.width, height=src.height)
        return {"gsd_m": float(np.sqrt(ground_pixel(grid)[0])), "gsd_of": f"'{path}'"}
    except Exception:  # an odd CRS: nothing to say
        return {}


def _hw(data: np.ndarray) -> str:
    return f"{data.shape[-2]}x{data.shape[-1]}"


#: how far apart a JPEG's red, green and blue may lie where they were one grey (chroma rounding)
_JPEG_GREY_SLACK = 48


def _spread(band: np.ndarray, grey: np.ndarray) -> float:
    """The largest difference between two bands of a label (0 when they are the same)."""
    if np.array_equal(band, grey):
        return 0.0
    return float(np.abs(band.astype(np.float64) - grey).max())


def _label_mask(y: np.ndarray, path: Path) -> np.ndarray:
    """The change mask of a LEVIR-style label ``y`` ``(band, h, w)`` read from ``path``: 0 = no change,
    255 (or 1) = change.  A grey label saved as RGB is read from its grey.  A JPEG rings around its
    edges (0/255 -> 1..14, 240..254; 0/1 -> 0..2): halfway up its scale decides.  DatasetError for a
    label of other values (0/1/2, 0/128/255: which of them is change is not for us to guess) or of
    bands that differ (a colour label)."""
    lossy = path.suffix.lower() in {".jpg", ".jpeg"}
    grey = y[0]
    if any(_spread(band, grey) > (_JPEG_GREY_SLACK if lossy else 0) for band in y[1:]):
        raise DatasetError(f"label '{path}' has {y.shape[0]} bands that differ (a colour label?): save it as "
                           "one grey band, 0 = no change and 255 (or 1) = change")
    if lossy:
        top = 255 if grey.max() > 127 else 1
        if top == 1 and grey.max() > 0:  # compression rounds much of a 0/1 label's change to 0 (all 0: no change)
            from changedetect._detect_inputs import warn_once

            warn_once("label '%s' is a JPEG of 0/1 values: JPEG compression turns part of such a label's "
                      "change into 0 (and the scores with it); save labels as PNG", path, key="jpeg 0/1 label")
        return grey > top / 2
    values = np.flatnonzero(np.bincount(grey.ravel())) if grey.dtype == np.uint8 else np.unique(grey)
    if not (set(values.tolist()) <= {0, 1} or set(values.tolist()) <= {0, 255}):
        shown = ", ".join(f"{v:g}" for v in values[:10].tolist()) + (", ..." if values.size > 10 else "")
        raise DatasetError(f"label '{path}' holds the values {shown}; a LEVIR-style label is 0 = no change and "
                           "255 (or 1) = change: map its values onto those (which of them are change is yours "
                           "to say), or remove the pair")
    return grey > 0


def _s2_file(folder: Path, band: str) -> Path:
    suffix = _S2_NAME.get(band.lower(), band.upper())
    hits = sorted(folder.glob(f"*_{suffix}.tif")) or sorted(folder.glob(f"{suffix}.tif"))
    if not hits:
        raise DatasetError(f"'{folder}' has no file for band {band} (expected '*_{suffix}.tif')")
    return hits[0]


def _s2_band(folder: Path, band: str, shape: tuple[int, int]) -> np.ndarray:
    import rasterio
    from rasterio.enums import Resampling

    path = _s2_file(folder, band)
    try:
        with rasterio.open(path) as src:
            if not _fits_grid((src.height, src.width), shape):
                raise DatasetError(f"band {band} '{path}' is {src.height}x{src.width} pixels, which is neither "
                                   f"the change map's {shape[0]}x{shape[1]} nor a whole fraction of it (a 20 m "
                                   "or 60 m band's): give every band and the change map of the same area")
            return src.read(1, out_shape=shape, resampling=Resampling.bilinear).astype(np.float32)
    except rasterio.errors.RasterioIOError as exc:
        raise DatasetError(f"cannot read band {band} '{path}': {exc}") from exc


def _fits_grid(band: tuple[int, int], label: tuple[int, int]) -> bool:
    """Whether a band of ``band`` pixels can cover the label's grid of ``label`` pixels: the same, or coarser
    by one whole factor on both axes (OSCD's 20 m bands of a 799x785 city are 399x393), give or take 2 %
    (OSCD's second dates of abudhabi and saclay_e cover the same bounds in 795x782 and 631x679 pixels)."""
    k = round(label[0] / band[0])
    return k >= 1 and all(abs(b * k - n) <= max(k, 0.02 * n) for b, n in zip(band, label, strict=True))


def _count_pairs(root: Path, oscd: bool, cities: Sequence[str] | None) -> int | None:
    """How many pairs :func:`iter_pairs` will give (labels or cities), or None when unknown."""
    folder = root / ("labels" if oscd else "label")
    if not folder.is_dir():
        return None
    if oscd:
        names = [p.name for p in folder.iterdir() if p.is_dir()]
        return len([c for c in names if not cities or c in set(cities)])
    return sum(1 for p in folder.iterdir() if _is_image(p))


def _oscd_layout(root: Path, bands: Sequence[str], cities: Sequence[str] | None) -> list[str]:
    """The cities of an OSCD-style root to score, each with its change map, both image folders and a
    file for every one of ``bands`` (DatasetError naming what is missing if not)."""
    images, labels = root / "images", root / "labels"
    for sub in (images, labels):
        if not sub.is_dir():
            raise DatasetError(f"OSCD-style root '{root}' has no '{sub.name}/' folder (expected images/ and labels/)")
    names = sorted(p.name for p in labels.iterdir() if p.is_dir())
    if not names:
        raise DatasetError(f"'{labels}' holds no city folder (expected labels/<city>/cm/<city>-cm.tif)")
    if cities:
        unknown = sorted(set(cities) - set(names))
        if unknown:
            raise DatasetError(f"cities {unknown} are not in '{labels}' (it has {names})")
        names = [c for c in names if c in set(cities)]
    for city in names:
        cm = labels / city / "cm" / f"{city}-cm.tif"
        if not cm.is_file():
            raise DatasetError(f"city '{city}' has no change map '{cm}'")
        for d in ("imgs_1", "imgs_2"):
            folder = images / city / d
            if not folder.is_dir():
                raise DatasetError(f"city '{city}' has no image folder '{folder}'")
            for band in bands:
                _s2_file(folder, band)
    return names


def _oscd_pairs(root: Path, bands: Sequence[str], names: list[str]) -> Iterator[Pair]:
    images, labels = root / "images", root / "labels"
    for city in names:
        cm = labels / city / "cm" / f"{city}-cm.tif"
        y, _ = _read_image(cm, kind="label")
        found = sorted(int(v) for v in np.unique(y[0]))
        if not set(found) <= {1, 2}:  # a 0/1 or 0/255 map would score every change as a miss
            raise DatasetError(f"change map '{cm}' holds values {found[:10]}; an OSCD-style map has 1 = no change, "
                               "2 = change: convert it (e.g. 0/1 -> 1/2), or give the pair as a LEVIR-style "
                               "folder (A/, B/, label/ with 0/255 or 0/1 labels)")
        shape = y.shape[1:]
        dates = [_as_da(np.stack([_s2_band(images / city / d, b, shape) for b in bands]), list(bands))
                 for d in ("imgs_1", "imgs_2")]
        dates[0].attrs.update(gsd_m=10.0, gsd_of=f"OSCD city '{city}'")  # read onto the 10 m change map's grid
        yield Pair(city, dates[0], dates[1], y[0] == 2)


def _is_oscd(root: Path) -> bool:
    return (root / "images").is_dir() or (root / "labels").is_dir()


def _oscd_hint(root: Path) -> str:
    """Where the OSCD-style root is, when ``root`` lies inside one (its ``images/`` or ``labels/``, or a
    city of them): evaluate takes the root, which holds both; "" otherwise."""
    where = root if root.name not in ("", ".", "..") else root.resolve()  # as the user wrote it, where it can
    for up, city in ((where.parent, None), (where.parent.parent, where.name)):
        if _is_oscd(up) and where.resolve() != up.resolve():
            pick = f" --cities {city}" if city else ""
            return f"; '{root}' lies inside the OSCD-style root '{up}' (images/, labels/): give that{pick}"
    return ""


def iter_pairs(path: str | Path, *, bands: Sequence[str] | None = None,
               cities: Sequence[str] | None = None) -> Iterator[Pair]:
    """The labelled pairs of a LEVIR-style folder or an OSCD-style root.

    ``bands`` (needed for OSCD) are the band names to read; ``cities`` restricts OSCD.  The layout is
    checked when this is called (a DatasetError naming the missing folder or file, before any pair
    is read, and so before a progress bar over the pairs starts); the pairs are read as they are taken.
    """
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"evaluation data '{root}' is not a folder (expected A/, B/, label/ or images/, labels/)")
    if _is_oscd(root):
        s2_bands = tuple(bands or _CVA_S2_BANDS)
        return _oscd_pairs(root, s2_bands, _oscd_layout(root, s2_bands, cities))
    if cities:
        raise DatasetError(f"'{root}' is a LEVIR-style folder (A/, B/, label/): --cities / cities= choose "
                           "cities of an OSCD-style root (images/<city>/, labels/<city>/); drop it")
    return _levir_pairs(_levir_layout(root))
