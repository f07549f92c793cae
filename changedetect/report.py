"""The inspectors' report: one self-contained HTML file.

Everything is inline (images as ``data:`` URIs: the imagery JPEG, a drawing PNG; CSS in a ``<style>``
element, no script, no font or CDN): the file opens offline on a laptop and
prints one card per page region without breaking a card.

The page holds an overview map of the scene (the after date, violations
outlined and numbered) and one card per violation, most urgent first
(status severity, then area, then confidence): before/after image chips with
the footprint outlined, the status and its one-line reason, the matched
permits, the evidence numbers and the coordinates (lat/lon and working CRS).

Image chips are read window by window from rasters on disk
(:class:`RasterImagery`, rasterio windows and decimated reads) or from a
:data:`~changedetect.types.TileStack` (:class:`StackImagery`: a dask-backed date of up to 2 GiB,
such as coregister's lazy warp, is computed once for the overview and all chips; a larger one is
read window by window).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from changedetect._config_toml import stage_config
from changedetect._imagery import Imagery, RasterImagery, StackImagery, _fit
from changedetect._report_card import card as _card
from changedetect._report_card import fmt as _fmt
from changedetect._report_text import TEXT, term
from changedetect.config import ReportConfig

if TYPE_CHECKING:
    import geopandas as gpd
    import xarray as xr
    from PIL import Image

log = logging.getLogger(__name__)

#: Most urgent first.
SEVERITY: dict[str, int] = {
    "unlicensed": 0, "exceeds_permit": 1, "permit_expired": 2, "type_mismatch": 3,
    "before_permit": 4, "permitted": 9,
}
#: Outline colours on the images (RGB).
COLOURS: dict[str, tuple[int, int, int]] = {
    "unlicensed": (230, 25, 45), "exceeds_permit": (250, 130, 0), "permit_expired": (200, 60, 200),
    "type_mismatch": (240, 220, 0), "before_permit": (0, 170, 230), "permitted": (40, 200, 80),
}
_DEFAULT_COLOUR = (255, 255, 255)


def violations_qml() -> str:
    """The QGIS style of a violation list: each ``status`` in :data:`COLOURS`' colour, as on the
    report's chips, most urgent first in the legend (what ``changedetect run``, ``match`` and
    ``nightly`` store in their GeoPackages, :func:`changedetect.io.qgis_style.add_default_style`)."""
    from changedetect.io.qgis_style import categorized_qml

    order = sorted(COLOURS, key=lambda k: SEVERITY.get(k, 99))
    return categorized_qml("status", {k: (COLOURS[k], k.replace("_", " ")) for k in order})
_DEFAULT_CONFIG = ReportConfig()
#: The files of a run directory the report reads.
RUN_FILES = {"violations": "violations.gpkg", "before": "before_rgb.tif", "after": "after_rgb.tif"}


def _to_pixels(geom: Any, bounds: Sequence[float], size: tuple[int, int]) -> list[list[tuple[float, float]]]:
    """Exterior rings of a (multi)polygon in pixel coordinates of an image of ``bounds``."""
    h, w = size
    sx, sy = w / (bounds[2] - bounds[0]), h / (bounds[3] - bounds[1])
    polys = getattr(geom, "geoms", [geom])
    return [[((x - bounds[0]) * sx, (bounds[3] - y) * sy) for x, y in p.exterior.coords]
            for p in polys if hasattr(p, "exterior")]


def _png(img: Image.Image | np.ndarray) -> str:
    """A drawing (flat colours: the overview without imagery) as a PNG ``data:`` URI."""
    from PIL import Image

    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _jpeg(img: Image.Image) -> str:
    """Imagery (a chip, the overview over the last date) as a JPEG ``data:`` URI, quality 90 with colour at
    full resolution (4:4:4: the 2 px status outlines keep their colour).  A PNG of a photo barely compresses:
    the sample city's 200 px chips took 49 kB each and 30 ms to encode, its overview 2.4 MB, a 500-card
    report 51 MB; as JPEG a chip takes 11 kB and under 1 ms."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=90, subsampling=0)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _draw_overview(imagery: Imagery | None, gdf: gpd.GeoDataFrame, cfg: ReportConfig) -> str:
    from PIL import Image, ImageDraw

    if imagery is not None:
        rgb, bounds = imagery.overview(cfg.overview_px)
        img = Image.fromarray(rgb).convert("RGB")
        factor = max(1, min(cfg.overview_px, 800) // max(img.size))
        if factor > 1:  # small scenes: enlarge (nearest) so outlines and numbers stay crisp
            img = img.resize((img.width * factor, img.height * factor), Image.Resampling.NEAREST)
    else:
        b = gdf.total_bounds
        pad = max(b[2] - b[0], b[3] - b[1], 1.0) * 0.1
        bounds = (b[0] - pad, b[1] - pad, b[2] + pad, b[3] + pad)
        img = Image.new("RGB", _fit(bounds, cfg.overview_px)[::-1], (60, 60, 60))
    draw = ImageDraw.Draw(img)
    fsize = max(12, img.width // 60)
    font = _font(fsize)
    width = max(2, img.width // 250)
    for number, (_, row) in enumerate(gdf.iterrows(), start=1):
        colour = COLOURS.get(str(row["status"]), _DEFAULT_COLOUR)
        rings = _to_pixels(row.geometry, bounds, (img.height, img.width))
        for ring in rings:
            draw.line(ring, fill=colour, width=width)
        if rings and rings[0]:
            x = min(max(p[0] for p in rings[0]) + 2, img.width - fsize * 2)
            y = max(min(p[1] for p in rings[0]) - 2, fsize + 2)
            draw.text((x, y), str(number), fill=colour, font=font, anchor="lb",
                      stroke_width=2, stroke_fill=(0, 0, 0))
    return _jpeg(img) if imagery is not None else _png(img)


def _chip(imagery: Imagery, geom: Any, cfg: ReportConfig, colour: tuple[int, int, int]) -> str:
    from PIL import Image, ImageDraw

    x0, y0, x1, y1 = geom.bounds
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    pixel = float(getattr(imagery, "pixel", 0.0))  # in the CRS's units; 0 when the imagery does not say
    margin = max(cfg.chip_margin_m / _metres_per_unit(imagery.crs), cfg.chip_margin_px * pixel)
    half = max(x1 - x0, y1 - y0) / 2 + margin
    bounds = (cx - half, cy - half, cx + half, cy + half)
    img = Image.fromarray(imagery.chip(bounds, cfg.chip_px)).convert("RGB")
    draw = ImageDraw.Draw(img)
    for ring in _to_pixels(geom, bounds, (img.height, img.width)):
        draw.line(ring, fill=colour, width=2)
    return _jpeg(img)


def _metres_per_unit(crs: Any) -> float:
    """Ground metres per unit of ``crs`` (a degree of latitude for a geographic one; 1 without)."""
    if crs is None:
        return 1.0
    from pyproj import CRS

    from changedetect.io.geo import metres_per_unit

    crs = CRS.from_user_input(crs)
    return 111_320.0 if crs.is_geographic else metres_per_unit(crs)


def sort_by_urgency(violations: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Most urgent first: status severity, then (the nightly register) those a same-season pair
    has checked before those still ``pending`` (the likelier to be withdrawn), then larger area,
    then higher confidence."""
    df = violations.copy()
    df["_sev"] = df["status"].map(lambda s: SEVERITY.get(str(s), 5))
    df["_pend"] = (df["same_sun"] == "pending") if "same_sun" in df else False
    area = df["area_m2"] if "area_m2" in df else df.geometry.area  # noqa: SIM401 (get() would compute the area)
    df["_area"] = -area.fillna(0).astype(float)
    df["_conf"] = -np.asarray(df.get("confidence", 0.0), dtype=float)
    df = df.sort_values(["_sev", "_pend", "_area", "_conf"], kind="stable")
    return df.drop(columns=["_sev", "_pend", "_area", "_conf"])


def render_report(
    violations: gpd.GeoDataFrame,
    *,
    before: Imagery | None = None,
    after: Imagery | None = None,
    before_label: str | None = None,
    after_label: str | None = None,
    run_info: Mapping[str, Any] | None = None,
    config: ReportConfig | Mapping[str, Any] = _DEFAULT_CONFIG,
    coverage: Mapping[str, Any] | None = None,
) -> str:
    """The report as an HTML string (see :func:`write_report`)."""
    config = stage_config(config, ReportConfig, call="render_report", table="report")
    crs = after.crs if after is not None else (before.crs if before is not None else violations.crs)
    gdf = violations
    if crs is not None and gdf.crs is not None and gdf.crs != crs:
        gdf = gdf.to_crs(crs)
    if not config.include_permitted and "status" in gdf:
        gdf = gdf[gdf["status"] != "permitted"]
    gdf = sort_by_urgency(gdf)
    counts = gdf["status"].value_counts().to_dict() if "status" in gdf else {}  # of all, not only the cards
    hidden = max(len(gdf) - config.max_cards, 0) if config.max_cards else 0
    if config.max_cards:
        gdf = gdf.iloc[: config.max_cards]
    overview = _draw_overview(after or before, gdf, config) if len(gdf) or after or before else ""
    t = TEXT[config.lang]
    labels = {"before": before_label or t["before"], "after": after_label or t["after"]}
    cards = []
    for number, (_, row) in enumerate(gdf.iterrows(), start=1):
        colour = COLOURS.get(str(row["status"]), _DEFAULT_COLOUR)
        chips = {key: _chip(img, row.geometry, config, colour)
                 for key, img in (("before", before), ("after", after))
                 if img is not None and row.geometry is not None and not row.geometry.is_empty}
        cards.append(_card(number, row, gdf.crs, chips, labels, config.lang))
    if hidden:
        cards.append(f'<p class="card empty">{html.escape(t["hidden"].format(n=hidden, max=config.max_cards))}</p>')
    title = t["title"] if config.title == ReportConfig.title else config.title  # the default: in the language
    return _page(title=title, overview=overview, cards=cards, counts=counts, lang=config.lang,
                 run_info=dict(run_info or {}), coverage=_coverage_section(coverage, config.lang))


def _page(*, title: str, overview: str, cards: list[str], counts: Mapping[str, int],
          run_info: Mapping[str, Any], coverage: str = "", lang: str = "en") -> str:
    """Fill ``templates/report.html`` in ``lang`` (every value escaped here)."""
    from importlib.resources import files
    from string import Template

    e, t = html.escape, TEXT[lang]
    template = Template(files("changedetect").joinpath("templates/report.html").read_text(encoding="utf-8"))
    facts = "".join(f"<span>{e(term(lang, 'fact', k))}: <b>{e(_fmt(v, lang=lang))}</b></span>"
                    for k, v in run_info.items() if k != "generated")
    total = sum(counts.values())
    count_items = [f"<li><b>{total}</b> {e(t['to_inspect'])}</li>"] + [
        f'<li><span class="swatch" style="background:rgb{COLOURS.get(k, _DEFAULT_COLOUR)}"></span>'
        f"{e(term(lang, 'status', k))}: <b>{n}</b></li>"
        for k, n in sorted(counts.items(), key=lambda kv: SEVERITY.get(kv[0], 5))
    ]
    legend = "".join(
        f'<span><span class="swatch" style="background:rgb{c}"></span>{e(term(lang, "status", k))}</span>'
        for k, c in COLOURS.items()
    )
    overview_html = (
        f'<section class="overview"><h2>{e(t["overview"])}</h2><img src="{overview}" alt="{e(t["overview_alt"])}">'
        f'<div class="legend">{legend}</div></section>'
        if overview else ""
    )
    badges = "\n".join(f".badge-{k} {{ background: rgb{c}; color: {'#000' if sum(c) > 450 else '#fff'}; }}"
                       for k, c in COLOURS.items())
    generated = run_info.get("generated") or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return template.substitute(
        lang=lang, title=e(title), facts=facts, counts="".join(count_items), overview=overview_html, badges=badges,
        coverage=coverage,
        cards="\n".join(cards) or f'<p class="card empty">{e(t["no_violations"])}</p>',
        footer=e(t["footer"].format(generated=generated)),
    )


def _coverage_section(coverage: Mapping[str, Any] | None, lang: str = "en") -> str:
    from changedetect._report_coverage import section

    return section(coverage, lang)


def write_report(
    violations: gpd.GeoDataFrame | str | Path,
    *,
    out_path: str | Path,
    before: str | Path | Imagery | None = None,
    after: str | Path | Imagery | None = None,
    stack: xr.DataArray | None = None,
    run_info: Mapping[str, Any] | None = None,
    config: ReportConfig | Mapping[str, Any] = _DEFAULT_CONFIG,
    overwrite: bool = False,
    coverage: Mapping[str, Any] | None = None,
) -> Path:
    """Write the inspectors' self-contained HTML report.

    Parameters
    ----------
    violations
        The match stage's GeoDataFrame, or a path to it (GeoPackage, GeoJSON, ...).
    out_path
        The ``.html`` file to write (atomically).
    before, after
        Rasters (paths or :class:`Imagery`) of the first and last dates, for the chips.
    stack
        Or an aligned TileStack: its first and last dates are used.
    run_info
        Key facts shown in the header (dates, model, counts of footprints, ...).
    config
        :class:`~changedetect.config.ReportConfig` (or its ``[report]`` table as a mapping): title,
        language, whether permitted footprints are listed, chip size.
    overwrite
        Replace an existing ``out_path`` (else :class:`~changedetect.errors.OutputExistsError`).
    coverage
        What each compared pair could compare, shown below the header (low pairs marked):
        ``run.json``'s ``coverage`` (``pairs``, ``dates``) with its ``clouds``
        (:mod:`changedetect._report_coverage`); None: no such section.

    Returns
    -------
    Path
        ``out_path``.
    """
    config = stage_config(config, ReportConfig, call="write_report", table="report")
    from changedetect.io.atomic import atomic_path, not_an_input

    not_an_input(out_path, {"violation list": violations, "BEFORE raster": before, "AFTER raster": after},
                 becomes="the HTML report", where="--out, e.g. report.html")

    source = "the violations given"
    if isinstance(violations, (str, Path)):
        import geopandas as gpd

        from changedetect.io.vectors import feature_layer

        source = f"'{violations}'"
        try:
            violations = gpd.read_file(violations, layer=feature_layer(violations))
        except Exception as exc:  # noqa: BLE001 - pyogrio raises many kinds
            from changedetect.errors import ConfigError
            from changedetect.io._unreadable import vector_reason

            raise ConfigError(f"cannot read the violations {source}: {vector_reason(violations, exc)} (the "
                              "output of `changedetect match`, or violations.gpkg of `changedetect run`)") from None
    missing = [c for c in ("status", "geometry") if c not in violations.columns]
    if missing:
        from changedetect.errors import ConfigError

        raise ConfigError(f"{source} has no {' and no '.join(missing)} column: it is not a violation list "
                          "(columns " + ", ".join(map(str, violations.columns[:8])) + "); give the output of "
                          "`changedetect match` or violations.gpkg of `changedetect run`")
    info = dict(run_info or {})
    if stack is not None:
        before = before or StackImagery(stack, 0, rgb_bands=config.rgb_bands)
        after = after or StackImagery(stack, stack.sizes["time"] - 1, rgb_bands=config.rgb_bands)
        times = [str(t)[:10] for t in stack["time"].values]
        info.setdefault("before", times[0])
        info.setdefault("after", times[-1])
    before_img = RasterImagery(before, rgb_bands=config.rgb_bands) if isinstance(before, str | Path) else before
    after_img = RasterImagery(after, rgb_bands=config.rgb_bands) if isinstance(after, str | Path) else after
    t = TEXT[config.lang]
    before_label, after_label = (t["dated"].format(label=t[k], date=info[k]) if k in info else t[k]
                                 for k in ("before", "after"))
    text = render_report(
        violations, before=before_img, after=after_img, run_info=info, config=config,  # type: ignore[arg-type]
        coverage=coverage, before_label=before_label, after_label=after_label,
    )
    out_path = Path(out_path)
    with atomic_path(out_path, overwrite=overwrite) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    log.info("wrote report %s (%d bytes)", out_path, len(text.encode()))
    return out_path


def report_from_run(run_dir: str | Path, *, out_path: str | Path | None = None,
                    config: ReportConfig | Mapping[str, Any] = _DEFAULT_CONFIG, overwrite: bool = False) -> Path:
    """Re-write the report of a run directory (``violations.gpkg``, ``*_rgb.tif``, ``run.json``).

    Raises
    ------
    FileNotFoundError
        ``run_dir`` has no ``violations.gpkg`` (a :class:`~changedetect.errors.TileReadError`).
    """
    import json

    config = stage_config(config, ReportConfig, call="report_from_run", table="report")

    from changedetect.errors import TileReadError

    run_dir = Path(run_dir)
    violations = run_dir / RUN_FILES["violations"]
    if not violations.is_file():
        raise TileReadError(f"report: '{run_dir}' holds no {RUN_FILES['violations']}; "
                            "give a directory written by `changedetect run`")
    from changedetect._report_coverage import from_run

    info: dict[str, Any] = {}
    coverage = None
    run_json = run_dir / "run.json"
    if run_json.is_file():
        try:
            run = json.loads(run_json.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
            raise TileReadError(f"report: '{run_json}' is not valid JSON ({exc}): it is the run's provenance, "
                                "written by `changedetect run`; run it again into a new folder, or move "
                                "run.json away to write the report without the run's details") from None
        if not isinstance(run, dict) or not isinstance(run.get("report_info", {}), dict):
            raise TileReadError(f"report: '{run_json}' is not a run's provenance (a JSON object with "
                                "report_info), as `changedetect run` writes it; run it again into a new "
                                "folder, or move run.json away to write the report without the run's details")
        info = dict(run.get("report_info", {}))
        coverage = from_run(run)
    before, after = run_dir / RUN_FILES["before"], run_dir / RUN_FILES["after"]
    _say_missing_imagery(run_dir, before, after)
    return write_report(
        violations, out_path=out_path or run_dir / "report.html", run_info=info, config=config,
        before=before if before.is_file() else None, after=after if after.is_file() else None,
        overwrite=overwrite, coverage=coverage,
    )


def _say_missing_imagery(run_dir: Path, before: Path, after: Path) -> None:
    """One warning naming the run's image rasters that are gone and what the report lacks without them."""
    gone = [p for p in (before, after) if not p.is_file()]
    if not gone:
        return
    what = {2: f"'{before}' and '{after}' are missing: the cards have no before and after image chips and the "
               "overview map shows the footprints on grey, without imagery",
            1: f"'{gone[0]}' is missing: the cards have no {'before' if gone[0] == before else 'after'} image "
               f"chip (the overview map shows {(after if gone[0] == before else before).name})"}[len(gone)]
    log.warning("%s; run `changedetect run` again into a new folder to have %s, or give the images: "
                "`changedetect report --violations %s --before BEFORE.tif --after AFTER.tif --out report.html`",
                what, "them" if len(gone) == 2 else "it", run_dir / RUN_FILES["violations"])


__all__ = ["RUN_FILES", "SEVERITY", "report_from_run", "Imagery", "RasterImagery", "StackImagery", "render_report", "sort_by_urgency",
           "write_report"]
