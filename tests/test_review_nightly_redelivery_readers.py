"""Review: a date delivered again with new content (a corrected re-delivery) that other processed pairs
read without comparing it: as their same-season partner or as a fill date.

Until 2026-12-03 only the date's own two pairs ran again; a pair that read the replaced file kept what it
had decided with it.  Now such a pair runs again too (as for a late SCL of that date,
``_nightly_plan._reading_reruns``), and what it no longer finds is withdrawn, ``not in the file delivered
again``: as a partner, every such violation of the pair (the partner pair decides across the scene);
as a fill date, those lying mostly where the pair filled its BEFORE from that date.

The worlds are those of the late-SCL tests (``test_review_nightly_rerun_withdraw``: one 4-band file per
date, the detector reads any brightening as change); the replaced file's first delivery is dark (100)
over ``SHADOW`` (a shadow the correction does not have)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from test_review_nightly_fillscl import CLOUD, DATES, HOUSE, SHADOW
from test_review_nightly_rerun_withdraw import ORIGIN, _night, _open, _px, _under, _world_of
from test_review_s2_clouds import BANDS, _write

KIND = "not in the file delivered again"


def _bad_first(world: dict[str, Any], day: str) -> Path:
    """Deliver ``day``'s file dark over SHADOW; its right content is kept in ``root/good`` (returned)."""
    path = world["tiles"] / "s2" / f"s2_{day}.tif"
    (world["root"] / "good").mkdir()
    good = Path(shutil.copy(path, world["root"] / "good" / path.name))
    with rasterio.open(path) as src:
        data = src.read()
    data[(slice(None), *SHADOW)] = 100
    _write(path, data, ORIGIN, names=BANDS)
    return good


def _world(root: Path, dates: tuple[str, ...], paint: Any, bad: str) -> dict[str, Any]:
    world = _world_of(root, dates, paint)
    shutil.move(world["held"], world["tiles"] / "s2" / world["held"].name)  # every SCL on time here
    return {**world, "good": _bad_first(world, bad)}


def _redeliver(world: dict[str, Any]) -> None:
    shutil.copy(world["good"], world["tiles"] / "s2" / world["good"].name)  # same name, the right content


def _reasons(world: dict[str, Any], night: str) -> dict[str, str]:
    import geopandas as gpd

    gone = gpd.read_file(world["root"] / "out" / f"withdrawn-{night}.gpkg", layer=f"withdrawn-{night}")
    return dict(zip(gone["violation_id"], gone["withdrawn_reason"], strict=True))


def test_a_fill_dates_file_delivered_again_reruns_the_pair_that_filled_from_it(tmp_path: Path) -> None:
    """Four dates, the third cloudy over CLOUD (its SCL masks it): (d2, d3) fills d2's no data from d1, whose
    first delivery is dark over SHADOW, a 'new roof' by d3.  d1's correction reruns (d2, d3) too, and that
    violation is withdrawn, naming the file; the house under the cloud is found both times and stays."""
    def paint(k: int, data: np.ndarray, scl: np.ndarray) -> None:
        data[:, 0:16, 0:32] = 3000  # on every date: it sets each scene's spread, so z-scores compare
        if k >= 2:
            data[(slice(None), *HOUSE)] = 3000
        if k == 2:
            data[(slice(None), *CLOUD)] = 9000
            scl[10:18, 9:17] = 9

    world = _world(tmp_path, DATES, paint, bad=DATES[1])
    nights = ("2020-01-06", "2020-03-06", "2020-05-06", "2020-07-06", "2020-07-07", "2020-07-08")
    for night in nights[:4]:
        assert not _night(world, night).failed
    first = _open(world["root"] / "out")
    (shadow,) = _under(first, _px(*SHADOW))  # the premise: filled from the dark first delivery
    (house,) = _under(first, _px(*HOUSE))
    assert str(first.set_index("violation_id").loc[shadow, "before"])[:10] == "2020-05-05", first
    _redeliver(world)
    done = _night(world, nights[4])
    assert not done.failed, done.failed
    assert any("s2_20200305.tif" in w and "new content" in w for w in done.warnings), done.warnings
    ran = sorted((c["before"], c["after"]) for c in done.coverage["s2"])
    assert ran == [("2020-01-05", "2020-03-05"), ("2020-03-05", "2020-05-05"), ("2020-05-05", "2020-07-05")], ran
    assert done.withdrawn == [shadow] and done.withdrawn_reasons == {KIND: 1}, done
    why = _reasons(world, nights[4])[shadow]
    assert why.startswith(f"{KIND}: the file of 2020-03-05 was delivered again") and "100% of it lies where " \
        "2020-05-05 had no data and the pair filled it from 2020-03-05" in why and "2020-05-05 -> 2020-07-05" in why, why
    now = set(_open(world["root"] / "out")["violation_id"])
    assert house in now and shadow not in now
    again = _night(world, nights[5])
    assert (again.pairs, again.withdrawn, again.new_violations) == (0, [], 0), again


def test_a_partners_file_delivered_again_reruns_the_pair_that_took_it_as_partner(tmp_path: Path) -> None:
    """January, July, the next January: (July, January) takes the first January as its same-season partner.
    The July date is dark over SHADOW (a summer shadow), so (July, January) sees it brighten; the right
    partner pair does not, and drops it, but the partner's first delivery, as dark there, 'confirmed' it.
    The partner's correction reruns (July, January), and the violation is withdrawn, naming the file."""
    def paint(k: int, data: np.ndarray, scl: np.ndarray) -> None:
        data[:, 0:16, 0:32] = 3000
        if k == 1:
            data[(slice(None), *SHADOW)] = 100

    days = ("20200105", "20200704", "20210105")
    world = _world(tmp_path, days, paint, bad=days[0])
    nights = ("2020-01-06", "2020-07-05", "2021-01-06", "2021-01-07", "2021-01-08")
    for night in nights[:3]:
        assert not _night(world, night).failed
    first = _open(world["root"] / "out")
    (shadow,) = _under(first, _px(*SHADOW))  # the premise: confirmed by the dark first delivery
    row = first.set_index("violation_id").loc[shadow]
    assert (str(row["before"])[:10], str(row["after"])[:10], row["same_sun"]) == ("2020-07-04", "2021-01-05", "confirmed"), row
    _redeliver(world)
    done = _night(world, nights[3])
    assert not done.failed, done.failed
    ran = sorted((c["before"], c["after"]) for c in done.coverage["s2"])
    assert ran == [("2020-01-05", "2020-07-04"), ("2020-07-04", "2021-01-05")], ran
    assert done.withdrawn == [shadow] and done.withdrawn_reasons == {KIND: 1}, done
    why = _reasons(world, nights[3])[shadow]
    assert why == (f"{KIND}: the file of 2020-01-05 was delivered again with new content after this was reported, "
                   "and compared again with it as its same-season partner, the pair 2020-07-04 -> 2021-01-05 no "
                   "longer finds this"), why
    assert shadow not in set(_open(world["root"] / "out")["violation_id"])
    again = _night(world, nights[4])
    assert (again.pairs, again.withdrawn, again.new_violations) == (0, [], 0), again


def test_a_fill_dates_redelivery_withdraws_only_what_the_pair_filled_from_it(tmp_path: Path) -> None:
    """The rule at unit level (the late-SCL test's rerun folder: BEFORE has no data over CLOUD).  d1 (tried
    first) is clear but over the lower rows, where d0 filled.  d1 delivered again: what lay where BEFORE was
    filled from d1; d0: what lay where d1's SCL masks; both: each with its own date.  Never what BEFORE had
    data on, nor what the rerun finds again."""
    from test_review_nightly_fillscl import PAIR, _register, _rerun_folder, _scl_file

    from changedetect._withdraw_masked import withdraw_replaced

    d0 = _scl_file(tmp_path / "s2_20200105_SCL.tif", None)
    d1 = _scl_file(tmp_path / "s2_20200305_SCL.tif", (slice(28, 36), slice(18, 34)))
    found_again = _px(slice(28, 36), slice(24, 30))
    run_dir = _rerun_folder(tmp_path / "rerun", found=[found_again])
    register = _register([("from_d1", _px(slice(20, 28), slice(18, 30))),
                          ("from_d0", _px(slice(28, 36), slice(18, 24))),
                          ("found", found_again),
                          ("before_has_data", _px(slice(20, 36), slice(10, 18)))])
    fill = [{"path": "d0.tif", "date": "2020-01-05", "scl": d0}, {"path": "d1.tif", "date": "2020-03-05", "scl": d1}]

    def gone(dates: list[str]) -> dict[str, str]:
        pair = {**PAIR, "run_dir": str(run_dir), "fill": fill, "replaced_fill": dates}
        out = withdraw_replaced(register, [{"area": "s2", "error": None, "runs": [pair]}], "2020-07-07")[1]
        return dict(zip(out["violation_id"], out["withdrawn_reason"], strict=True))

    assert list(gone(["2020-03-05"])) == ["from_d1"]
    assert list(gone(["2020-01-05"])) == ["from_d0"]
    both = gone(["2020-01-05", "2020-03-05"])
    assert sorted(both) == ["from_d0", "from_d1"]
    assert both["from_d0"].startswith(f"{KIND}: the file of 2020-01-05 was") and "filled it from 2020-01-05" in \
        both["from_d0"] and "filled it from 2020-03-05" in both["from_d1"], both
