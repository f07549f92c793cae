"""Review of the `changedetect run` path after the network: the presence check, rebuilds, the
same-sun rule and how detect / pipeline call them (edge cases: no data, explicit pairs)."""

from __future__ import annotations

import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from affine import Affine
from test_rebuilds import LOT
from test_rebuilds import raster as _raster  # the same 0.5 m UTM grid as the rebuild tests

from changedetect._rebuilds import rebuilds
from changedetect.vectorize import VectorizeConfig, vectorize


class _Dates:
    """A stand-in for DatePresence; ``blind`` dates have no data at all."""

    def __init__(self, levels: tuple[float, ...], blind: tuple[int, ...] = ()) -> None:
        self.levels, self.blind = levels, blind

    def raster(self, t: int) -> xr.DataArray:
        a = np.full((48, 48), 0.05, np.float32)
        a[LOT] = self.levels[t]
        if t in self.blind:
            a[:] = np.nan
        return _raster(a)


def test_a_rebuild_where_the_first_date_has_no_data_is_still_traced() -> None:
    """Four dates; the first (July 2023) does not cover the lot, so the pair 0 -> 1 has no data
    there.  The lot's house is demolished between January and July 2024 and a new one stands the
    next January: the second event must still be a probability (not NaN) that vectorize traces.
    (It was set to NaN wherever the *first* consecutive pair had no data.)"""
    times = np.array(["2023-07-10", "2024-01-15", "2024-07-12", "2025-01-20"], dtype="datetime64[ns]")
    events = []
    for (i, j), level in (((0, 1), 0.0), ((1, 2), 0.9), ((2, 3), 0.8), ((1, 3), 0.9)):
        a = np.zeros((48, 48), np.float32)
        a[LOT] = level
        if i == 0:
            a[:] = np.nan  # date 0 covers none of the scene
        a[:, 44:] = np.nan  # ... and no pair has data on the right edge
        events.append((i, j, _raster(a)))
    found = rebuilds(events, times, 0.5, _Dates((0.5, 0.9, 0.1, 0.9), blind=(0,)), pixel_m2=0.25)
    assert found is not None
    prob, seen = found
    assert (seen.values[LOT] == times[3]).all()
    assert float(prob.values[20, 20]) == pytest.approx(0.8)  # the second event's probability, not NaN
    fp = vectorize(prob, first_seen=seen, config=VectorizeConfig(regularize=False))
    assert len(fp) == 1 and fp["area_m2"].iloc[0] == pytest.approx(100.0)
    # where no pair has data the result stays no data; elsewhere outside the lot it is 0
    assert np.isnan(prob.values[:, 44:]).all() and not np.isnan(prob.values[:, :44]).any()
    assert float(prob.values[:, 30:44].max()) == 0.0


def test_what_the_segmenter_confirmed_under_the_same_sun_survives_the_same_sun_rule() -> None:
    """A new house that the network only hints at on January -> July and misses on January ->
    January (the sample city's S008 in docs/detection.md: 0.00 on the January pair) is confirmed
    by the presence check *against the two Januaries* (the segmenter sees it come between them)
    and raised on January -> July.  `run`'s same-sun rule then asks the January -> January
    *network* decisions to cover 5 % of it, finds none, and drops it: the cross-season presence
    check can never add a footprint the same-season network pair misses, which is the one case
    it exists for."""
    import geopandas as gpd  # noqa: F401  (vectorize's frame)

    from changedetect._pipeline_steps import drop_unconfirmed
    from changedetect.detect import DetectConfig
    from changedetect.presence import PresenceCheck, confirmed_change

    times = np.array(["2024-01-15", "2024-07-12", "2025-01-20"], dtype="datetime64[ns]")
    jan, jul, jan2 = (np.full((48, 48), 0.05, np.float32) for _ in range(3))
    jul[LOT] = jan2[LOT] = 0.95  # the segmenter: no house in January, a house in July and the next January
    hint = np.zeros((48, 48), np.float32)
    hint[20, 20] = 0.35  # the network's hint on January -> July, nothing on the other pairs
    p01 = confirmed_change(jan, jul, hint, pixel_m2=0.25, same_sun=(jan, jan2))
    assert float(p01[20, 20]) == pytest.approx(0.525)  # confirmed under the same sun, raised
    events = [(0, 1, _raster(p01)), (1, 2, _raster(np.zeros((48, 48)))), (0, 2, _raster(np.zeros((48, 48))))]
    seen = _raster(np.zeros((48, 48))).copy(data=np.where(p01 >= 0.5, times[1], np.datetime64("NaT")))
    fp = vectorize(events[0][2], first_seen=seen, config=VectorizeConfig(regularize=False))
    assert len(fp) == 1 and str(fp["first_seen"].iloc[0])[:10] == "2024-07-12"
    assert len(drop_unconfirmed(fp, events, times, DetectConfig(), 0.5)) == 0  # the network's decisions alone

    class Dates:  # what DatePresence gives drop_unconfirmed: the bracket and the segmenter's rasters
        check = PresenceCheck()

        def same_sun(self, i: int, j: int) -> tuple[int, int] | None:
            return (0, 2) if (i, j) == (0, 1) else None

        def raster(self, k: int) -> xr.DataArray:
            return _raster((jan, jul, jan2)[k])

    kept = drop_unconfirmed(fp, events, times, DetectConfig(), 0.5, dates=Dates())
    assert len(kept) == 1 and "unconfirmed_across_seasons" not in kept.attrs
    # a moved shadow: the segmenter sees nothing come between the two Januaries either
    still = _raster(np.full((48, 48), 0.05, np.float32))
    Dates.raster = lambda self, k: (_raster(jan), _raster(jul), still)[k]  # type: ignore[method-assign]
    assert len(drop_unconfirmed(fp, events, times, DetectConfig(), 0.5, dates=Dates())) == 0
    # the check off: the network's decisions alone
    off = DetectConfig(presence_check=False)
    Dates.raster = lambda self, k: _raster((jan, jul, jan2)[k])  # type: ignore[method-assign]
    assert len(drop_unconfirmed(fp, events, times, off, 0.5, dates=Dates())) == 0


def _regrid(stack: xr.DataArray, crs: str, transform: Affine) -> xr.DataArray:
    """``stack`` with its pixels put on another grid (coords follow the transform)."""
    h, w = stack.sizes["y"], stack.sizes["x"]
    xs = transform.c + transform.a * (np.arange(w) + 0.5)
    ys = transform.f + transform.e * (np.arange(h) + 0.5)
    out = stack.drop_vars("spatial_ref", errors="ignore").assign_coords(x=xs, y=ys)
    return out.rio.write_crs(crs).rio.write_transform(transform)


def test_the_presence_checks_minimum_area_is_in_ground_metres_on_any_grid() -> None:
    """DatePresence measures a pixel in ground m² whatever the grid: on a geographic grid (a pixel
    of 5e-6° is ~0.3 m², not 2.5e-11 "m²", which would make the 15 m² minimum billions of pixels
    and confirm nothing), on a non-square projected pixel, and 1 m² without georeferencing."""
    from pyproj import Geod
    from test_detect import CFG, FakeCard, Loaded
    from test_presence import Bright, _series

    from changedetect.presence import DatePresence, PresenceCheck

    stack = _series()
    segmenter = Loaded(Bright(), FakeCard(name="bright", version="1"))
    hint = np.full((64, 64), 0.01, np.float32)
    hint[28, 28] = 0.35  # the network's hint inside the 16 x 16 px house (January -> next January)
    deg = _regrid(stack, "EPSG:4326", Affine(5e-6, 0, 105.0, 0, -5e-6, 10.8))
    dates = DatePresence(deg, segmenter, CFG)
    geod = Geod(ellps="WGS84")
    lon, lat = 105.0 + 32 * 5e-6, 10.8 - 32 * 5e-6
    dx = geod.inv(lon, lat, lon + 5e-6, lat)[2]
    dy = geod.inv(lon, lat, lon, lat + 5e-6)[2]
    assert dates.pixel_m2 == pytest.approx(dx * dy, rel=0.01)
    # the 16 x 16 px house is ~77 m² there: confirmed (January -> January, same season)
    assert float(dates.confirm(0, 2, hint)[28, 28]) == pytest.approx(0.525)
    # a non-square projected pixel: 0.5 m x 0.25 m
    flat = _regrid(stack, "EPSG:32648", Affine(0.5, 0, 600_000, 0, -0.25, 1_200_000))
    assert DatePresence(flat, segmenter, CFG).pixel_m2 == pytest.approx(0.125)
    # 0.125 m² x 256 px = 32 m² >= 15: confirmed; with a 40 m² minimum it is not
    assert float(DatePresence(flat, segmenter, CFG).confirm(0, 2, hint)[28, 28]) == pytest.approx(0.525)
    strict = DatePresence(flat, segmenter, CFG, check=PresenceCheck(min_area_m2=40))
    assert float(strict.confirm(0, 2, hint)[28, 28]) == pytest.approx(0.35)
    # no georeferencing at all: a pixel is taken as 1 m²
    bare = xr.DataArray(stack.values, dims=stack.dims, coords={"time": stack["time"], "band": stack["band"]})
    assert DatePresence(bare, segmenter, CFG).pixel_m2 == 1.0


def test_an_object_beside_a_building_the_network_decided_is_left_alone() -> None:
    """docs/detection.md: an object that lies within 2 px of a detection of the network outside
    it is not raised (raised, it would merge with that detection into one bloated outline).  The
    rule counted only detections where the segmenter sees no building; the usual neighbour is
    another new house, which the segmenter *does* see, so the hinted house beside it was raised."""
    from changedetect.presence import confirmed_change

    before = np.full((40, 40), 0.05, np.float32)
    after = before.copy()
    after[10:22, 10:22] = 0.95  # house A: the network only hints at it
    after[10:22, 23:30] = 0.95  # house B, 1 px away: new too, and the network outlines it
    prob = np.zeros_like(before)
    prob[15, 15] = 0.35
    prob[10:22, 23:30] = 0.9
    np.testing.assert_array_equal(confirmed_change(before, after, prob, pixel_m2=0.25), prob)
    # ... and when another pair of the series decided B
    hint = np.zeros_like(before)
    hint[15, 15] = 0.35
    decided = np.zeros(before.shape, bool)
    decided[10:22, 23:30] = True
    np.testing.assert_array_equal(confirmed_change(before, after, hint, pixel_m2=0.25, decided=decided), hint)
    # B 4 px away: A is raised (and B, the network's own, is left as it is)
    after[10:22, 23:26] = 0.05
    prob[10:22, 23:26] = 0.0
    out = confirmed_change(before, after, prob, pixel_m2=0.25)
    assert float(out[15, 15]) == pytest.approx(0.525)
    np.testing.assert_array_equal(out[10:22, 26:30], prob[10:22, 26:30])
    # the network's own decisions inside A's own outline never count against A
    prob[10:12, 10:14] = 0.9
    assert float(confirmed_change(before, after, prob, pixel_m2=0.25)[20, 20]) == pytest.approx(0.525)


def test_run_with_explicit_pairs_hands_the_later_steps_the_pairs_own_dates(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """The nightly call on a series with an earlier date no pair compares: the event indices the
    same-sun rule and the masked pair's raster read must name the requested dates (the aligned
    stack is cut to the first pair's BEFORE only after detection)."""
    import dataclasses

    import rasterio

    from changedetect import _same_sun
    from changedetect.config import PipelineConfig
    from changedetect.pipeline import OUTPUTS, run
    from changedetect.testing import (
        make_footprints,
        make_model,
        make_permits,
        make_stack,
        write_stack,
    )

    stack = make_stack(dates=["2023-07-10", "2024-01-15", "2024-07-12", "2025-01-20"], size=64, seed=5)
    write_stack(stack, tmp_path / "tiles", prefix="d1")
    make_permits(make_footprints(stack).iloc[:1]).to_file(tmp_path / "permits.gpkg")
    config = PipelineConfig().with_model(str(make_model(tmp_path / "model")))
    config = dataclasses.replace(config, detect=dataclasses.replace(config.detect, window=64, overlap=8))
    seen: list[list[tuple[str, str]]] = []
    real = _same_sun.unconfirmed

    def spy(footprints, events, times, *args):  # noqa: ANN001, ANN002, ANN202
        seen.append([(str(times[i])[:10], str(times[j])[:10]) for i, j, _ in events])
        return real(footprints, events, times, *args)

    monkeypatch.setattr(_same_sun, "unconfirmed", spy)
    pairs = [("2024-07-12", "2025-01-20"), ("2024-01-15", "2025-01-20")]
    summary = run(tmp_path / "tiles", permits=tmp_path / "permits.gpkg", out=tmp_path / "out", config=config,
                  pairs=pairs, mask_pairs=[("2024-01-15", "2024-07-12")])
    assert seen == [pairs]
    assert summary.dates == ["2024-07-12", "2025-01-20"]
    with rasterio.open(tmp_path / "out" / OUTPUTS["same_season"]) as src:
        assert src.tags()["PAIR"] == "2024-01-15/2025-01-20"


def test_a_confirmed_object_becomes_a_footprint_whatever_the_models_threshold() -> None:
    """docs/detection.md: a confirmed object is raised to just above the network's threshold, "it
    becomes a footprint".  `run` reads that threshold from DetectConfig (default: the model card's)
    but traces footprints with the default VectorizeConfig (0.5): with a card of 0.4 (or
    `[detect] threshold = 0.4`) the raised core is 0.43 and is never traced; first_seen, the
    same-sun rule and the rebuilds read 0.4 too, so pixels in [0.4, 0.5) are change for them and
    not for the footprints."""
    from changedetect.config import PipelineConfig
    from changedetect.presence import confirmed_change

    before = np.full((48, 48), 0.05, np.float32)
    after = before.copy()
    after[LOT] = 0.95
    hint = np.zeros_like(before)
    hint[20, 20] = 0.35
    prob = confirmed_change(before, after, hint, pixel_m2=0.25, threshold=0.4)
    assert float(prob[20, 20]) == pytest.approx(0.43)  # confirmed, raised just above 0.4
    raster = _raster(prob)
    raster.attrs["threshold"] = 0.4  # as detection writes it (DetectConfig.threshold or the card's)
    fp = vectorize(raster, config=PipelineConfig().vectorize)  # as run traces it
    assert len(fp) == 1
    # a threshold set in [vectorize] is used as it is; without the attribute, 0.5
    assert len(vectorize(raster, config=VectorizeConfig(threshold=0.5))) == 0
    assert len(vectorize(_raster(prob), config=PipelineConfig().vectorize)) == 0


def test_a_detection_of_another_pair_where_this_pair_has_no_data_still_keeps_an_object_beside_it() -> None:
    """``decided`` (another pair's decisions) was cut to this pair's valid pixels, so a house that
    another pair outlines just where this pair has no data (BEFORE does not cover it) did not
    keep the hinted house beside it from being raised: combined, the two join into one outline,
    which is what the rule is there to prevent."""
    from changedetect.presence import confirmed_change

    before = np.full((40, 40), 0.05, np.float32)
    before[:, 24:] = np.nan  # BEFORE covers the left part only
    after = np.full((40, 40), 0.05, np.float32)
    after[10:22, 10:23] = 0.95  # the hinted house
    after[10:22, 24:30] = 0.95  # the house another pair outlines, 1 px away, where this pair has no data
    prob = np.zeros_like(before)
    prob[15, 15] = 0.35
    prob[:, 24:] = np.nan
    decided = np.zeros(before.shape, bool)
    decided[10:22, 24:30] = True
    out = confirmed_change(before, after, prob, pixel_m2=0.25, decided=decided)
    np.testing.assert_array_equal(out, prob)
    decided[10:22, 24:27] = False  # 4 px away: raised
    assert float(confirmed_change(before, after, prob, pixel_m2=0.25, decided=decided)[15, 15]) == pytest.approx(0.525)
