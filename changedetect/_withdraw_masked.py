"""The nightly job withdraws what a late scene classification shows was a cloud (private;
:func:`changedetect._merge.merge_and_withdraw`).

A date whose Sentinel-2 SCL arrives late, or changes, is compared again
(:mod:`changedetect._nightly_scl`): its pairs run once more, now masking its clouds, cloud shadows
and no data.  What the first run reported under such a cloud (a white blob read as a new roof) is
then no longer found, and the merge alone would leave it open: a false alarm an inspector would
be sent to.  :func:`withdraw_masked` withdraws, from the register, each violation of a rerun pair
(its row's ``before`` and ``after`` are the pair's, reported on an earlier night) that

- the rerun no longer finds: none of the rerun's footprints (``footprints.gpkg``, any status) is the
  same building by the merge's rule (IoU >= 0.5, or the footprint id the rerun carried over and
  touching: :func:`changedetect._merge._same`), so a building still found, whatever its status
  now, is not touched; and
- lies mostly (:data:`MOSTLY`) where the late date now has no data in the rerun: the no data of that
  date's image in the rerun's folder (``before_rgb.tif`` for the pair's before date,
  ``after_rgb.tif`` for its after date), counted only when the rerun's ``run.json`` says that
  date's SCL masked it.  The date's bands are those of the first run (the same checksum), which
  found the violation on data: so what has no data there now is what the SCL masks.

A pair that runs again because the late date is one of its fill dates (its BEFORE's no data was filled
from it, the last clear view: ``pair["scl_fill"]``) withdraws by the same rule, the second condition read
as where its first run took BEFORE from the late date's clouds: ``before_rgb.tif`` (BEFORE's own pixels)
has no data there, the late date's SCL masks it, and so does the SCL of every fill date tried before it
(:func:`_filled_shares`) as the first run had it: a later fill date whose SCL came late too had none
then, and filled everything (:func:`_fill_scls`).

A date delivered again with new content (a corrected re-delivery) is withdrawn from likewise
(:func:`withdraw_replaced`): what its own pairs and the pairs that took it as their same-season partner
no longer find, and what a pair that read it as a fill date no longer finds where it filled from it.

A violation the rerun does not find for any other reason (outside the mask) stays open.  The
withdrawn rows keep their columns, with ``withdrawn`` (the night) and ``withdrawn_reason``
(``under a cloud a late SCL masks: ...``), as the same-sun withdrawals
(:func:`changedetect._merge.withdraw_unconfirmed`) are kept.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import geopandas as gpd

log = logging.getLogger("changedetect._merge")

#: The share of a violation under the late date's mask from which it is withdrawn.
MOSTLY = 0.5
#: ``withdrawn_reason`` starts with this (then ``": "`` and the details).
KIND = "under a cloud a late SCL masks"
#: ... or this, for what a file delivered again with new content no longer shows (:func:`withdraw_replaced`)
KIND_REPLACED = "not in the file delivered again"


def withdraw_masked(violations: gpd.GeoDataFrame, results: list[dict[str, Any]],
                    night: str, committed: Collection[str] = ()) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """``(kept, withdrawn)``: the earlier nights' violations of tonight's rerun pairs (``pair["scl_rerun"]``:
    date -> why, the pair's dates whose SCL arrived late or changed; ``pair["scl_fill"]``: its fill dates',
    each with its ``scl`` in ``pair["fill"]``) that the rerun no longer finds and that lie mostly under what
    the late SCL now masks (see the module docstring).  ``committed``: the ids of the night's own rows committed
    before, when it is done again (:func:`_pair_rows`)."""
    drop = np.zeros(len(violations), dtype=bool)
    reason = np.full(len(violations), "", dtype=object)
    for pair, run_dir, gone in _not_found_again(violations, results, night, drop, ("scl_rerun", "scl_fill"),
                                                committed):
        late, fill_late = pair.get("scl_rerun") or {}, pair.get("scl_fill") or {}
        clouds = _clouds(run_dir)
        pair_words = (f"that SCL came after the pair {pair['before']} -> {pair['after']} was first compared, "
                      "and compared again with it the pair no longer finds this")
        for date in sorted(late):
            c = clouds.get(date)
            if c is None or not c.get("masked") or not len(gone):
                continue
            image = run_dir / ("before_rgb.tif" if date == pair["before"] else "after_rgb.tif")
            where = f"the Sentinel-2 scene classification (SCL) of {date}{_named(c)}"
            gone = _judge(gone, _masked_shares(image, violations.geometry.iloc[gone]), drop, reason,
                          _under(where, pair_words))
        for date in sorted(fill_late, reverse=True):  # a fill date (in fill order, the latest first):
            # where BEFORE's no data was filled from its clouds
            c = clouds.get(date)
            if c is None or not c.get("masked") or not len(gone):
                continue
            shares = _filled_shares(run_dir / "before_rgb.tif", violations.geometry.iloc[gone],
                                    *_fill_scls(pair.get("fill") or [], date, set(fill_late)))
            where = (f"{pair['before']} had no data and the pair filled it from {date}, where the Sentinel-2 "
                     f"scene classification (SCL) of {date}{_named(c)}")
            gone = _judge(gone, shares, drop, reason, _under(where, pair_words))
    return _split(violations, drop, reason, night, KIND)


def withdraw_replaced(violations: gpd.GeoDataFrame, results: list[dict[str, Any]],
                      night: str, committed: Collection[str] = ()) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """``(kept, withdrawn)``: the earlier nights' violations of tonight's pairs that run again because a
    date they read was delivered again under its name with new content (a corrected re-delivery,
    :func:`changedetect._nightly_redelivery.replaced`; ``pair["replaced_files"]``: which band files of a
    date of several changed), which the pair, compared again with the new file, no longer finds (the
    merge's rule, as :func:`withdraw_masked`):

    - one of the pair's own dates (``pair["replaced"]``) or its same-season partner
      (``pair["replaced_partner"]``: its partner pair decided, and its mask pair hid, across the whole
      scene): every such violation;
    - one of its fill dates (``pair["replaced_fill"]``): such a violation that lies mostly (:data:`MOSTLY`)
      where the pair's first run took its BEFORE from that date (:func:`_filled_shares`: BEFORE's own
      pixels have no data, the SCL of every fill date tried before it masks, its own does not); the
      rest of the scene read the same pixels both times.

    A tile delivered 15 m off and then corrected left its 51 artefacts open beside the corrected file's 10.
    ``committed``: the ids of the night's own rows committed before, when it is done again (:func:`_pair_rows`)."""
    drop = np.zeros(len(violations), dtype=bool)
    reason = np.full(len(violations), "", dtype=object)
    wanted = ("replaced", "replaced_partner", "replaced_fill")
    for pair, run_dir, gone in _not_found_again(violations, results, night, drop, wanted, committed):
        dates, partner = pair.get("replaced") or [], pair.get("replaced_partner")
        fill = pair.get("replaced_fill") or []
        files = pair.get("replaced_files") or {}
        words = f"the pair {pair['before']} -> {pair['after']} no longer finds this"
        if dates or partner:
            drop[gone] = True
            reason[gone] = (f"{KIND_REPLACED}: {_what_replaced(dates or [partner], files)} delivered again with "
                            "new content after this was reported, and compared again with it"
                            f"{'' if dates else ' as its same-season partner,'} {words}")
            continue
        for date in sorted(fill, reverse=True):  # in fill order, the latest first
            scl, later = _fill_scls(pair.get("fill") or [], date)
            shares = _filled_shares(run_dir / "before_rgb.tif", violations.geometry.iloc[gone], scl, later,
                                    took=True)
            head = (f"{KIND_REPLACED}: {_what_replaced([date], files)} delivered again with new content after "
                    "this was reported; ")
            tail = (f" of it lies where {pair['before']} had no data and the pair filled it from {date}, and "
                    f"compared again with it {words}")
            gone = _judge(gone, shares, drop, reason, _share_said(head, tail))
    return _split(violations, drop, reason, night, KIND_REPLACED)


def _not_found_again(violations: gpd.GeoDataFrame, results: list[dict[str, Any]], night: str, drop: np.ndarray,
                     wanted: tuple[str, ...], committed: Collection[str] = ()
                     ) -> Iterator[tuple[dict[str, Any], Path, np.ndarray]]:
    """``(pair, its run folder, rows)`` per tonight's pair of a successful area that has any of the
    ``wanted`` keys set (why it runs again) and earlier violations of its own (not yet in ``drop``) that,
    compared again, it no longer finds: those rows' positions in ``violations``."""
    for r in results:
        if r["error"] or not len(violations):
            continue
        for pair in r["runs"]:
            if not any(pair.get(k) for k in wanted):
                continue
            rows = _pair_rows(violations, r["area"], pair, night, drop, committed)
            if not len(rows):
                continue
            run_dir = Path(pair["run_dir"])
            yield pair, run_dir, rows[~_found_again(violations.iloc[rows], run_dir, pair.get("carried") or [])]


def _split(violations: gpd.GeoDataFrame, drop: np.ndarray, reason: np.ndarray, night: str,
           kind: str) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """``(kept, withdrawn)``: the rows of ``drop`` withdrawn tonight with their ``reason``, logged as ``kind``."""
    withdrawn = violations[drop].assign(withdrawn=night, withdrawn_reason=list(reason[drop]))
    if drop.any():
        log.info("night %s: %d earlier violation(s) withdrawn, %s: %s", night, int(drop.sum()), kind,
                 ", ".join(withdrawn["violation_id"].astype(str)))
    return violations[~drop].reset_index(drop=True), withdrawn.reset_index(drop=True)


def _what_replaced(dates: list[str], files: dict[str, list[str]]) -> str:
    """``the file of <date> was`` (a date of one file), or naming the band files of a date of several
    (``files``: date -> their paths), ``<date>'s band file '<name>' was`` (names, not paths: a reason is one
    cell of the register)."""
    if not files:
        return f"the file of {' and '.join(dates)} was"
    parts = [f"{date}'s band file{'s' if len(files[date]) > 1 else ''} " + ", ".join(
        f"'{Path(f).name}'" for f in files[date]) if files.get(date) else f"the file of {date}" for date in dates]
    many = len(dates) > 1 or any(len(files.get(d) or []) > 1 for d in dates)
    return f"{' and '.join(parts)} {'were' if many else 'was'}"


def _pair_rows(violations: gpd.GeoDataFrame, area: str, pair: dict[str, Any], night: str,
               drop: np.ndarray, committed: Collection[str] = ()) -> np.ndarray:
    """The rows a rerun pair may withdraw: its area's and its dates', reported before tonight's runs (on an
    earlier night, or committed by this night when it is done again: ``committed``, their ids), not yet dropped.
    A re-delivery (or a late SCL) taken up by running the last committed night again withdrew none of that
    night's own rows until 2026-12-03, and the next night, the date committed, had nothing to run again: the
    replaced file's artefacts stayed open for good."""
    before = (violations["night"] != night).to_numpy(copy=True)
    if len(committed):
        before |= violations["violation_id"].astype(str).isin(list(committed)).to_numpy()
    return np.flatnonzero((violations["area"] == area).to_numpy()
                          & (violations["before"].astype(str) == pair["before"]).to_numpy()
                          & (violations["after"].astype(str) == pair["after"]).to_numpy()
                          & before & ~drop)


def _named(cloud: dict[str, Any]) -> str:
    """`` ('<SCL file>')`` for a reason, when the run recorded the SCL's file."""
    return f" ('{cloud['scl']}')" if cloud.get("scl") else ""


def _judge(gone: np.ndarray, shares: np.ndarray, drop: np.ndarray, reason: np.ndarray,
           say: Callable[[float], str]) -> np.ndarray:
    """Withdraw the rows of ``gone`` with at least :data:`MOSTLY` of them masked (``shares``; NaN, off the
    image: not judged), each with its reason (``say(share)``); the rows left to judge."""
    hit = shares >= MOSTLY
    drop[gone[hit]] = True
    for k, share in zip(gone[hit], shares[hit], strict=True):
        reason[k] = say(float(share))
    return gone[~hit]


def _share_said(head: str, tail: str) -> Callable[[float], str]:
    """A reason with a row's share in it: ``head``, the share (``42%``), ``tail``."""
    return lambda share: f"{head}{share:.0%}{tail}"


def _under(where: str, pair_words: str) -> Callable[[float], str]:
    """The reason of a row withdrawn under a late SCL's mask: its share lies ``where`` ... masks."""
    return _share_said(f"{KIND}: ", f" of it lies where {where} masks cloud, cloud shadow or no data; {pair_words}")


def withdraw_all(merged: gpd.GeoDataFrame, results: list[dict[str, Any]], night: str, *, share: float | None,
                 season_days: int | None, committed: Collection[str] = ()) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """:func:`withdraw_masked`, :func:`withdraw_replaced`, then what the same sun does not confirm
    (:func:`changedetect._merge.withdraw_unconfirmed`): ``(kept, withdrawn)``, both kinds in one table.
    ``committed``: the ids of the night's own rows committed before, when it is done again."""
    import geopandas as gpd
    import pandas as pd

    from changedetect._merge import withdraw_unconfirmed

    kept, masked = withdraw_masked(merged, results, night, committed)
    kept, replaced = withdraw_replaced(kept, results, night, committed)
    kept, unseen = withdraw_unconfirmed(kept, results, night, share=share, season_days=season_days)
    parts = [w for w in (masked, replaced, unseen) if len(w)]
    if len(parts) < 2:
        return kept, parts[0] if parts else unseen
    return kept, gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=merged.crs)


def _found_again(rows: gpd.GeoDataFrame, run_dir: Path, carried: list[str]) -> np.ndarray:
    """Per row: one of the rerun's footprints is the same building (the merge's rule)."""
    import geopandas as gpd

    from changedetect._merge import _ids, _same

    found = gpd.read_file(run_dir / "footprints.gpkg")
    if not len(found):
        return np.zeros(len(rows), dtype=bool)
    found = found.to_crs(rows.crs)
    fids = np.where(np.isin(_ids(found), list(carried)), _ids(found), "")  # the carried ids only
    row_ids = _ids(rows)
    return np.array([any(_same(f, fid, g, row_ids[k]) for f, fid in zip(found.geometry, fids, strict=True))
                     for k, g in enumerate(rows.geometry)], dtype=bool)


def _clouds(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Date -> the rerun's ``run.json`` ``clouds`` entry ({} when it cannot be read)."""
    try:
        doc = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        return {str(c["date"]): c for c in doc.get("clouds") or []}
    except (OSError, ValueError, TypeError, KeyError):
        return {}


def _masked_shares(image: Path, geoms: gpd.GeoSeries) -> np.ndarray:
    """Share of each geometry's pixels that ``image`` (a run's uint8 RGB, 0 = no data) has no data on,
    read window by window; NaN where it covers no pixel of the image."""
    return _shares(image, geoms, lambda src, win: src.read_masks(1, window=win) == 0)


def _shares(image: Path, geoms: gpd.GeoSeries, masked: Callable[[Any, Any], np.ndarray]) -> np.ndarray:
    """Share of each geometry's pixels where ``masked(src, window)`` (bool, on ``image``'s window around
    it) holds; NaN where it covers no pixel of the image, all NaN without the image."""
    import rasterio
    from rasterio.windows import Window

    from changedetect._change_presence import presence_means
    from changedetect._change_types import window

    out = np.full(len(geoms), np.nan)
    if not image.is_file():
        return out
    with rasterio.open(image) as src:
        for k, geom in enumerate(geoms.to_crs(src.crs).values):
            box = window(geom.bounds, src.transform, (src.height, src.width))
            if box is None:
                continue
            win = Window.from_slices(*box)
            share = masked(src, win).astype(np.float32)
            out[k] = presence_means(np.array([geom], dtype=object), share, src.window_transform(win))[0]
    return out


def _fill_scls(fill: list[dict[str, Any]], date: str, late: set[str] | frozenset[str] = frozenset()
               ) -> tuple[str | None, list[str | None]]:
    """The SCL of the fill date ``date`` and those the pair's first run had of the fill dates tried before
    it (the later ones: :func:`changedetect._fill_before.fill_order`), from the pair's ``fill``; None: no
    SCL.  A later date whose SCL is ``late`` too had none then (or another one): it filled everything its
    data reached, and ``date`` filled nothing after it (:func:`_filled_shares`), whatever its SCL masks now."""
    scl = {str(d["date"]): d.get("scl") for d in fill}
    return scl.get(date), [None if d in late else scl[d] for d in sorted(scl) if d > date]


def _filled_shares(image: Path, geoms: gpd.GeoSeries, late: str | None, later: list[str | None], *,
                   took: bool = False) -> np.ndarray:
    """Share of each geometry's pixels where the pair's first run took its BEFORE from the late fill date
    and the rerun cannot: ``image`` (the rerun's ``before_rgb.tif``, BEFORE's own pixels) has no data, the
    late date's SCL ``late`` masks, and so does the SCL of every fill date tried before it (``later``: one
    without an SCL had data there, and filled it both times).  ``took``: where both runs took it from that
    date (its file delivered again), its SCL ``late`` clear there instead (None: none, it had data wherever
    its tiles reach).  The SCLs are read onto the image's grid by nearest neighbour, without the shift
    co-registration gave their dates (a building's outline pixels may be misjudged by that much: it is
    judged on its share).  NaN where a geometry covers no pixel of the image or an SCL cannot be read."""
    from rasterio.errors import RasterioError

    if late is None and not took or not image.is_file():
        return np.full(len(geoms), np.nan)
    if any(s is None for s in later):  # that date had data wherever its tiles reach: it filled them
        return np.zeros(len(geoms))

    def filled(src: Any, win: Any) -> np.ndarray:
        grid = (src.crs, src.window_transform(win), (int(win.height), int(win.width)))
        out = src.read_masks(1, window=win) == 0
        for scl in later:
            out &= _scl_masked(str(scl), *grid)
        if late is not None:
            out &= ~_scl_masked(late, *grid) if took else _scl_masked(late, *grid)
        return out

    try:
        return _shares(image, geoms, filled)
    except (OSError, RasterioError) as exc:
        log.warning("not judging what the pair filled from %s: %s", late, exc)
        return np.full(len(geoms), np.nan)


def _scl_masked(path: str, crs: Any, transform: Any, shape: tuple[int, int]) -> np.ndarray:
    """``shape`` bool on the grid (``crs``, ``transform``): where the SCL at ``path``, read by nearest
    neighbour, is a class the cloud mask masks (:data:`changedetect.io.clouds.SCL_MASKED`), has no data
    or does not reach, as :func:`changedetect.io.clouds.scl_mask` masks a date."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    from changedetect.io.clouds import SCL_MASKED

    classes = np.full(shape, np.nan, dtype=np.float32)
    with rasterio.open(path) as src:
        reproject(rasterio.band(src, 1), classes, dst_transform=transform, dst_crs=crs, dst_nodata=np.nan,
                  resampling=Resampling.nearest)
    return np.isnan(classes) | np.isin(classes, SCL_MASKED)


def reasons(withdrawn: gpd.GeoDataFrame) -> dict[str, int]:
    """How many of ``withdrawn`` for each kind of reason (``withdrawn_reason`` up to its first ``:``)."""
    if not len(withdrawn) or "withdrawn_reason" not in withdrawn:
        return {}
    kinds = withdrawn["withdrawn_reason"].fillna("").astype(str).str.split(":").str[0]
    return dict(sorted(Counter(kinds).items()))


def said(counts: dict[str, int], *, counted: bool = False) -> str:
    """``counts`` (:func:`reasons`) in words: the kind alone when there is one (unless ``counted``), else
    each with its count (``1 under a cloud a late SCL masks, 5 not seen under the same sun``)."""
    if len(counts) == 1 and not counted:
        return next(iter(counts))
    return ", ".join(f"{n} {kind}" for kind, n in counts.items())


__all__ = ["KIND", "KIND_REPLACED", "MOSTLY", "reasons", "said", "withdraw_all", "withdraw_masked",
           "withdraw_replaced"]
