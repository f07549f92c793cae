"""Whether the model a run was given suits its imagery, said where a user of ``run`` looks.

``detect`` logs a warning when the imagery's pixels lie well outside the model card's resolution
(``vhr-building``, made for 0.3-1 m, on 10 m Sentinel-2) and when a colour model is given a
panchromatic date (one grey band copied into red, green and blue).  A log line is all ``run`` had:
``-q`` drops it, ``--json`` leaves it out, and ``run.json`` and the report never had it, while the
run goes on to write its violations as usual (OSCD pisa with the default model: 28 'unlicensed'
footprints, nothing said).  :func:`model_fit` measures both before any work, for the run's summary,
its ``run.json`` (``model_fit``) and the report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from changedetect.types import Grid


def model_fit(card: Any, grid: Grid, scenes: Sequence[Any]) -> list[dict[str, Any]]:
    """What does not suit ``card``'s model in the imagery of ``scenes`` read on ``grid``: a record
    ``{"kind": "resolution", "model", "made_for", "pixel_m", "hint", "message"}`` when the grid's
    ground pixel lies well outside the card's range, and ``{"kind": "panchromatic", "model", "date",
    "file", "message"}`` per date whose red, green and blue are one grey image when the model reads
    them; ``[]`` when all is well."""
    from changedetect._detect_inputs import gsd_mismatch
    from changedetect._grey import rgb_positions
    from changedetect.io.geo import ground_pixel
    from changedetect.io.summary import _panchromatic

    name = str(getattr(card, "name", ""))
    found: list[dict[str, Any]] = []
    if grid.crs is not None:
        try:
            gsd = math.sqrt(ground_pixel(grid)[0])
        except Exception:  # an odd CRS: nothing to say, as detect says nothing
            gsd = math.nan
        said = gsd_mismatch(card, gsd)
        if said is not None:
            made, hint = said
            found.append({"kind": "resolution", "model": name, "made_for": made, "pixel_m": round(gsd, 2),
                          "hint": hint, "message": f"model '{name}' is made for {made} pixels, and the tiles "
                          f"have {gsd:.2f} m pixels: expect poor results, its violations unreliable; {hint}"})
    if rgb_positions([str(b) for b in getattr(card, "bands", ())]) is not None:
        for scene in scenes:
            if _panchromatic(scene.bands):
                day, file = scene.date.isoformat(), Path(scene.files[0]).name
                found.append({"kind": "panchromatic", "model": name, "date": day, "file": file,
                              "message": f"{day} ('{file}'): red, green and blue are identical, so the imagery "
                              f"looks panchromatic (one grey band copied three times); model '{name}' was "
                              "trained on colour and will do worse on it: give that date's colour "
                              "(multispectral or pansharpened) product if there is one"})
    return found


__all__ = ["model_fit"]
