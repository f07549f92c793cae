"""Which of a stack's bands the stages after co-registration read (private, for
:func:`changedetect.pipeline.run`).

A Sentinel-2 band-per-file delivery has 13 bands; ``s2-urban`` reads four of them, the report's
true colour three of those, the change-type heuristic red, green, blue and nir.  ``run`` measures
co-registration on every band (its matching image is the mean of all bands, its radiometric
normalisation weighs pixels on all bands together: the same shift and gains as before), then
warps, holds or spills and detects on these bands only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: the bands the change-type heuristic reads by name (``_change_types._built``): red, green and
#: blue must all be there (else it takes the first three), nir when there is one (NDVI)
_HEURISTIC = ("red", "green", "blue")


def chain_bands(names: Sequence[str], cards: Sequence[Any], rgb_bands: Sequence[str]) -> list[str] | None:
    """The bands of ``names`` that detection (``cards``: the change model's, and its building
    segmenter's when there is one), the report's images (``rgb_bands``) and the change-type
    heuristic read, in the stack's order; None (every band, as before) when one of them would
    pick bands by position: unnamed bands (``B1..Bn``), or RGB bands not found by name.
    """
    from changedetect._detect_inputs import _canon, resolve_bands, unnamed
    from changedetect._imagery import bands_by_name
    from changedetect.errors import ModelError

    names = [str(n) for n in names]
    if unnamed(names):
        return None
    keep: set[int] = set()
    for card in cards:
        try:
            keep.update(resolve_bands(names, list(card.bands),
                                      aliases=dict(getattr(card, "band_aliases", None) or {}), source="the tiles"))
        except ModelError:  # its own stage says so, as before
            return None
    canon = [_canon(n) for n in names]
    if not all(c in canon for c in _HEURISTIC):
        return None
    keep.update(canon.index(c) for c in (*_HEURISTIC, "nir") if c in canon)
    rgb = bands_by_name(names, rgb_bands)  # as the report's images pick them
    if rgb is None:
        return None
    keep.update(rgb)
    return [n for i, n in enumerate(names) if i in keep]


__all__ = ["chain_bands"]
