"""Whether the model a run was given suits its imagery, said where a user of ``run`` looks.

``detect`` logs a warning when the imagery's pixels lie well outside the model card's resolution
(``vhr-building``, made for 0.3-1 m, on 10 m Sentinel-2), when a colour model is given a panchromatic
date (one grey band copied into red, green and blue), and when bands without names are read in the
model's order (a Maxar blue, green, red, NIR file read as red, green, blue).  A log line was all
``run`` had: ``-q`` dropped it, ``--json``, ``run.json`` and the report never had it, while the run
wrote its violations as usual (OSCD pisa with the default model: 28 'unlicensed' footprints, nothing
said).  :func:`model_fit` measures them before any work, for the run's ``warnings`` (its summary's
``Warning:`` lines, ``run.json`` and the report), and logs each once (``extra=SAID_IN_RESULT``: the
``run`` command says them in its summary instead); within the run, detection does not measure them again
(:func:`changedetect._detect_inputs.fit_measured`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from changedetect.errors import SAID_IN_RESULT
from changedetect.types import Grid

#: detection's logger: a library user of ``run`` hears these where detection said them before
logger = logging.getLogger("changedetect.detect")


def model_fit(card: Any, grid: Grid, scenes: Sequence[Any]) -> list[dict[str, Any]]:
    """What does not suit ``card``'s model in the imagery of ``scenes`` read on ``grid``: a record
    ``{"kind": "resolution", "model", "made_for", "pixel_m", "hint", "fits", "message"}`` (``fits``: a shipped
    model made for such pixels, or "") when the grid's
    ground pixel lies well outside the card's range, and ``{"kind": "panchromatic", "model", "date",
    "file", "message"}`` per date whose red, green and blue are one grey image when the model reads
    them, and ``{"kind": "unnamed_bands", "model", "bands", "taken", "message"}`` when the tiles' bands
    have no names and the model takes the first ones in its order; ``[]`` when all is well.  Each
    record's message is logged as a warning."""
    from changedetect._detect_inputs import _fitting_models, gsd_mismatch
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
            fitting = _fitting_models(gsd, name)  # the report says the hint in its own language
            fits = fitting[0] if fitting else ""
            found.append({"kind": "resolution", "model": name, "made_for": made, "pixel_m": round(gsd, 2),
                          "hint": hint, "fits": fits, "message": f"model '{name}' is made for {made} pixels, and the tiles "
                          f"have {gsd:.2f} m pixels: expect poor results, its violations unreliable; {hint}"})
    wanted = [str(b) for b in getattr(card, "bands", ())]
    names = [str(b.info.name) for b in scenes[0].bands] if scenes else []
    if wanted and _taken_in_order(names, wanted, dict(getattr(card, "band_aliases", None) or {})):
        taken = ", ".join(f"{n} as {w}" for n, w in zip(names, wanted, strict=False))
        found.append({"kind": "unnamed_bands", "model": name, "bands": names, "taken": taken,
                      "message": f"the tiles' bands have no names ({', '.join(names)}), and model '{name}' reads "
                      f"them in order: {taken}; if they are in another order (Maxar's 4-band "
                      "products are blue, green, red, NIR), name them (band descriptions in the files, or \"bands\" in a manifest)"})
    if rgb_positions(wanted) is not None:
        for scene in scenes:
            if _panchromatic(scene.bands):
                day, file = scene.date.isoformat(), Path(scene.files[0]).name
                found.append({"kind": "panchromatic", "model": name, "date": day, "file": file,
                              "message": f"{day} ('{file}'): red, green and blue are identical, so the imagery "
                              f"looks panchromatic (one grey band copied three times); model '{name}' was "
                              "trained on colour and will do worse on it: give that date's colour "
                              "(multispectral or pansharpened) product if there is one"})
    for record in found:
        logger.warning("%s", record["message"], extra=SAID_IN_RESULT)
    return found


def _taken_in_order(names: Sequence[str], wanted: Sequence[str], aliases: dict[str, Any]) -> bool:
    """Whether a model reads bands ``names`` in order because they have no names
    (:func:`changedetect._detect_inputs.resolve_bands`' fallback, which logs a line and nothing more)."""
    from changedetect._detect_inputs import _canon, unnamed

    canon = {_canon(n) for n in names}
    by_name = all(any(_canon(n) in canon for n in [w, *aliases.get(w, ())]) for w in wanted)
    return not by_name and unnamed(names) and len(names) >= len(wanted)


__all__ = ["model_fit"]
