"""``changedetect info``: what a stack of tiles holds."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from changedetect.cli.options import json_opt, pattern_opt


@click.command(name="info", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@pattern_opt
@json_opt
def command(paths: tuple[Path, ...], pattern: str | None, as_json: bool) -> None:
    """Describe a stack of tiles: dates, bands with their resolutions, CRS, bounds, size, nodata.

    PATHS is a folder of dated GeoTIFF/COG tiles, a manifest (.csv/.json with
    path,date[,bands]), a Sentinel-2 band-per-file city folder (imgs_1/, imgs_2/,
    dates.txt), a STAC item, or several raster files.  Only metadata is read;
    the nodata share comes from a decimated read (overviews when present).

    \b
    Examples:
      changedetect info sample_tiles
      changedetect info ../shared/data/oscd/images/paris
      changedetect info --json sample_tiles/manifest.json | jq '.bands[].name'
      changedetect info a_20240101.tif b_20240301.tif
    """
    from changedetect.io.summary import describe

    source: Any = [str(p) for p in paths] if len(paths) > 1 else paths[0]
    info = describe(source, pattern=pattern)
    if as_json:  # what describe() said on stderr, also where a script reading the JSON looks
        info["warnings"] = info_warnings(info)
        click.echo(json.dumps(info, indent=2, ensure_ascii=False))
    else:
        click.echo(format_info(info))


def format_info(info: dict[str, Any]) -> str:
    """The human-readable summary printed by ``changedetect info``."""
    grid, size = info["grid"], info["size"]
    dates = info["dates"]
    lines = [f"{info['source']} ({info['kind']}): {len(dates)} date(s), {size['bands']} band(s)"]
    if info["placeholder_dates"]:
        lines.append(
            f"Dates:  none in the file names (placeholders {', '.join(dates)} in file order)"
        )
    else:
        lines.append("Dates:  " + ", ".join(dates))
    for scene in info["scenes"]:
        files = scene["files"]
        shown = Path(files[0]).name + (f" (+{len(files) - 1} files)" if len(files) > 1 else "")
        lines.append(
            f"  {scene['date']}  nodata {100 * (scene['nodata_share'] or 0):5.1f} %  {shown}"
            + _cloud_text(scene)
        )
    lines.append("Bands:")
    for band in info["bands"]:
        lines.append("  " + _band_line(band))
    if info.get("scl"):
        lines.append("  " + _band_line(info["scl"]) + " (scene classification, not a band: masks clouds, their "
                     "shadows and no data; --no-cloud-mask keeps them)")
    others = _other_resolutions(info)
    if others:
        lines.append(f"        the first date's; the dates differ: {', '.join(others)} (changedetect run "
                     "resamples every date onto the first date's grid)")
    if info["crs"] is None:
        lines.append("CRS:    none (pixel coordinates)")
    else:
        lines.append(f"CRS:    {_crs_text(info['crs'], info['crs_name'])}")
        others = [f"{sc['date']} {_crs_text(sc['crs'])}" for sc in info["scenes"] if sc.get("crs") != info["crs"]]
        if others:
            lines.append(f"        the first date's; the dates differ: {', '.join(others)} (changedetect run "
                         "reprojects every date onto the first date's grid)")
        b = info["bounds"]
        lines.append(
            f"Bounds: {b[0]:.6f}, {b[1]:.6f}, {b[2]:.6f}, {b[3]:.6f} (left, bottom, right, top)"
        )
        ll = info["bounds_lonlat"]
        lines.append(f"        lon {ll[0]:.5f} to {ll[2]:.5f}, lat {ll[1]:.5f} to {ll[3]:.5f}" if ll is not None
                     else "        no longitude/latitude: the CRS has no transformation to WGS 84 (a local grid)")
    res = f", {grid['resolution']:g} m pixels" if grid["resolution"] is not None else ""
    lines.append(
        f"Grid:   {grid['width']} x {grid['height']} px (finest band of the first date{res})"
    )
    lines.append(
        f"Size:   {size['files']} file(s), {_human(size['bytes'])} on disk; "
        f"nodata {100 * (info['nodata_share'] or 0):.1f} % overall"
    )
    return "\n".join(lines)


def _cloud_text(scene: dict[str, Any]) -> str:
    """``  cloud 12.0 % (SCL)``, with the share its SCL masks when that reads otherwise (an SCL of
    another tile masks its whole date at 0 % cloud); empty without an SCL."""
    cloud, masked = scene.get("cloud_share"), scene.get("masked_share")
    if cloud is None:
        return ""
    shown = f"{100 * cloud:.1f} %"
    if masked is not None and f"{100 * masked:.1f} %" != shown:
        shown += f", masked {100 * masked:.1f} %"
    return f"  cloud {shown} (SCL)"


def info_warnings(info: dict[str, Any]) -> list[str]:
    """The warnings :func:`changedetect.io.summary.describe` logs for ``info``, one line each, in the
    words it logs: a date whose red, green and blue look like one grey band (``panchromatic``), the
    dates mostly cloud or masked by their SCL (:func:`changedetect.io.clouds.warn_cloudy`)."""
    import logging

    from changedetect._grey import grey_warning
    from changedetect.io.clouds import warn_cloudy

    said: list[str] = []

    def say(fmt: str, *args: Any) -> None:
        said.append(fmt % args)

    for scene in info["scenes"]:
        if scene.get("panchromatic"):
            grey_warning(logging.getLogger(__name__), f"{scene['date']} ('{Path(scene['files'][0]).name}')", None,
                         say=say)
    warn_cloudy([{"date": sc["date"], "cloud_share": sc["cloud_share"], "masked_share": sc.get("masked_share") or 0.0,
                  "scl": sc.get("scl_file")} for sc in info["scenes"] if sc.get("cloud_share") is not None],
                masked=True, say=say)
    return said


def _other_resolutions(info: dict[str, Any]) -> list[str]:
    """``2024-02-20 0.6 m`` for each date whose finest band's pixel differs from the first date's by over 1 %."""
    first = info["grid"]["resolution"]
    if first is None:
        return []
    return [f"{sc['date']} {round(sc['resolution'], 2):g} m" for sc in info["scenes"]
            if sc.get("resolution") is not None and abs(sc["resolution"] - first) > 0.01 * first]


def _crs_text(crs: str | None, name: str | None = None) -> str:
    """``EPSG:32648 (WGS 84 / UTM zone 48N)``; a CRS without an authority code (given as WKT) by its name."""
    if crs is None:
        return "none"
    if not re.fullmatch(r"[A-Za-z]+:\w+", crs):  # WKT: its name, not a screenful
        from pyproj import CRS

        return f"{name or CRS.from_user_input(crs).name} (no EPSG code; its WKT is in --json)"
    return f"{crs} ({name})" if name else crs


def _band_line(band: dict[str, Any]) -> str:
    if band["resolution"] is None:
        res = "pixels"
    else:
        x, y = band["resolution_xy"]
        res = f"{band['resolution']:6.2f} m ({x:.2f} x {y:.2f} m)"
        if band["nominal_resolution"]:
            res += f", nominal {band['nominal_resolution']:g} m"
    nodata = f", nodata {band['nodata']:g}" if band["nodata"] is not None else ""
    return (
        f"{band['name']:<6} {res}  {band['width']} x {band['height']} px  {band['dtype']}{nodata}"
    )


def _human(nbytes: int) -> str:
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover
