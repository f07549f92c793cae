"""The co-registration quality report (``coregistration.json`` and its Python object)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass
class DateRegistration:
    """What co-registration did to one date.

    Attributes
    ----------
    date
        ISO date.
    status
        ``"reference"``; ``"local"`` (a local shift field was applied); ``"global"`` (one
        shift was applied); ``"unreliable"`` (nothing could be trusted: no shift applied).
    shift_px
        Global displacement ``(dx, dy)`` of the date against the reference, in pixels
        (columns, rows): the date's content sits ``dx`` columns right and ``dy`` rows down.
    shift_m
        The same displacement in CRS units (``east, north``; metres for a projected CRS).
    reliability, peak_ratio, snr
        Of the global estimate (see :class:`~changedetect.coregister.ShiftEstimate`).
    matching
        The image the date was matched on: ``"material"`` (material edges), ``"mean"`` (the band
        mean) or the name of the band given in the configuration.
    tie_points_found, tie_points_kept
        Matching windows measured, and kept after the texture, reliability and outlier tests.
    residual_rmse_px
        Root mean square distance of the kept tie points to the correction applied
        (the local field, or the global shift), in pixels; ``None`` without tie points.
    max_local_px
        Largest departure of the applied local field from the global shift, in pixels.
    gain, offset
        Radiometric normalisation per band (``ref ~= gain * date + offset``).
    invariant_fraction
        Share of sampled pixels taken as unchanged by the normalisation.
    warnings
        Human-readable warnings about this date.
    reason
        Why a date is ``"unreliable"`` (the test its global shift failed: a threshold, too few
        windows matched, windows that disagree, ``max_shift``); ``None`` otherwise.
    shift_field
        The correction applied (a :class:`~changedetect.coregister.ShiftField`; evaluate it with
        ``.evaluate(rows, cols)``); not written to JSON.
    """

    date: str
    status: str
    shift_px: tuple[float, float] = (0.0, 0.0)
    shift_m: tuple[float, float] = (0.0, 0.0)
    reliability: float = 1.0
    peak_ratio: float | None = None
    snr: float | None = None
    matching: str | None = None
    tie_points_found: int = 0
    tie_points_kept: int = 0
    residual_rmse_px: float | None = None
    max_local_px: float = 0.0
    gain: dict[str, float] = field(default_factory=dict)
    offset: dict[str, float] = field(default_factory=dict)
    invariant_fraction: float | None = None
    warnings: list[str] = field(default_factory=list)
    reason: str | None = None
    shift_field: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (without :attr:`shift_field`)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self) if f.name != "shift_field"}

    @property
    def reliable(self) -> bool:
        """Whether the date was registered (or is the reference)."""
        return self.status != "unreliable"


@dataclass
class CoregistrationReport:
    """Per-date results of :func:`changedetect.coregister.coregister`.

    Attributes
    ----------
    reference
        ISO date of the reference.
    crs
        The grid's CRS (WKT or ``EPSG:n``), or ``None``.
    transform
        The grid's affine transform (6 numbers, GDAL order ``a, b, c, d, e, f``).
    shape
        ``(height, width)`` of the grid.
    dates
        One :class:`DateRegistration` per date, in time order.
    config
        The configuration used.
    seconds
        Wall time of the estimation (the warp itself is lazy).
    """

    reference: str
    crs: str | None
    transform: tuple[float, ...]
    shape: tuple[int, int]
    dates: list[DateRegistration]
    config: dict[str, Any]
    seconds: float = 0.0

    @property
    def warnings(self) -> list[str]:
        """Every date's warnings, prefixed by the date."""
        return [f"{d.date}: {w}" for d in self.dates for w in d.warnings]

    @property
    def unreliable(self) -> list[str]:
        """Dates that could not be registered."""
        return [d.date for d in self.dates if not d.reliable]

    def __repr__(self) -> str:
        """One line for the grid, one per date (the whole record is :meth:`to_dict`)."""
        h, w = self.shape
        head = (f"CoregistrationReport(reference {self.reference}, {_crs_label(self.crs)}, {h}x{w} px, "
                f"{len(self.dates)} dates, {self.seconds:.1f} s)")
        return "\n".join([head, *(f"  {_date_line(d)}" for d in self.dates)])

    def _repr_html_(self) -> str:
        """A table of the dates, for Jupyter."""
        from html import escape

        h, w = self.shape
        cells = [[d.date, d.status, f"{d.shift_px[0]:+.2f}, {d.shift_px[1]:+.2f}", f"{d.reliability:.2f}",
                  f"{d.tie_points_kept}/{d.tie_points_found}",
                  "" if d.residual_rmse_px is None else f"{d.residual_rmse_px:.3f}", "; ".join(d.warnings)]
                 for d in self.dates]
        head = ("date", "status", "shift (px, dx, dy)", "reliability", "tie points kept/found",
                "residual RMSE (px)", "warnings")
        rows = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in cells)
        return (f"<b>CoregistrationReport</b>: reference {escape(self.reference)}, "
                f"{escape(_crs_label(self.crs))}, {h}&times;{w} px, {self.seconds:.1f} s"
                "<table><tr>" + "".join(f"<th>{escape(c)}</th>" for c in head) + f"</tr>{rows}</table>")

    def __getitem__(self, date: str) -> DateRegistration:
        for d in self.dates:
            if d.date == date:
                return d
        raise KeyError(f"no date {date!r} in this report; dates: {[d.date for d in self.dates]}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "dates"}
        out["dates"] = [d.to_dict() for d in self.dates]
        out["warnings"] = self.warnings
        out["unreliable"] = self.unreliable
        return _jsonable(out)

    def to_json(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write :meth:`to_dict` as indented JSON, atomically (temp file, then rename)."""
        from changedetect.io.atomic import atomic_path

        path = Path(path)
        with atomic_path(path, overwrite=overwrite) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path


def _crs_label(crs: str | None) -> str:
    """``EPSG:n`` as it is; a WKT by its name (a local grid's WKT is hundreds of characters)."""
    if crs is None:
        return "no CRS"
    if len(crs) <= 40:
        return crs
    try:
        from pyproj import CRS

        return f"{CRS.from_user_input(crs).name} (WKT)"
    except Exception:  # not a CRS pyproj reads: its start
        return crs[:37] + "..."


def _date_line(d: DateRegistration) -> str:
    if d.status == "reference":
        return f"{d.date}  reference"
    line = (f"{d.date}  {d.status:<10}  shift {d.shift_px[0]:+.2f}, {d.shift_px[1]:+.2f} px  "
            f"reliability {d.reliability:.2f}  tie points {d.tie_points_kept}/{d.tie_points_found}")
    if d.residual_rmse_px is not None:
        line += f"  residual {d.residual_rmse_px:.3f} px"
    return line + (f"  ({len(d.warnings)} warning{'s' * (len(d.warnings) > 1)})" if d.warnings else "")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float):
        # 10 significant digits, not 6 decimals: a pixel of 4.6e-06 degrees stays itself
        return float(f"{obj:.10g}") if obj == obj and abs(obj) != float("inf") else None
    if hasattr(obj, "item"):  # numpy scalars
        return _jsonable(obj.item())
    return obj
