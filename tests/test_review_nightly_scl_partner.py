"""Review: a date compared again for its late SCL ran again only its consecutive pairs.  A pair that took
it as its same-season partner (a year later's ``(previous, new)`` pair, compared with ``(partner, new)``
and masked by ``(partner, previous)``) had read its clouds as ground too: its partner pair's decisions,
which confirm or withdraw earlier nights' violations, and its mask, which hid from its list whatever
the clouds covered.  That pair runs again as well, once."""

from __future__ import annotations

import shutil
from pathlib import Path

import test_review_nightly_late_scl as late_scl
import test_review_s2_clouds as s2

from changedetect.testing import make_nightly_catalog

DAYS = ("20200105", "20200704", "20210105")  # the first, cloudy, is the third's same-season partner


def _world(root: Path) -> tuple[dict, Path]:
    world = make_nightly_catalog(root, {})
    area = world["tiles"] / "bands"
    area.mkdir(parents=True)
    for k, day in enumerate(DAYS):
        data = s2._bands(cloudy=k == 0, seed=k)
        for b, name in enumerate(s2.BANDS):
            s2._write(area / f"T32TPP_{day}T101021_{name}_10m.tif", data[b:b + 1], s2.ORIGIN)
        s2._write(area / f"T32TPP_{day}T101021_SCL_20m.tif", s2._scl(k == 0)[None], s2.ORIGIN @ s2.Affine.scale(2))
    (root / "held").mkdir()
    scl = next(area.glob(f"*{DAYS[0]}*SCL*"))
    return world, Path(shutil.move(scl, root / "held" / scl.name))


def test_a_late_scl_of_a_same_season_partner_runs_its_pair_again(tmp_path: Path) -> None:
    world, held = _world(tmp_path)
    for night in ("2020-01-06", "2020-07-05", "2021-01-06"):
        done = late_scl._night(world, night)
        assert not done.failed, done.failed
    shutil.copy(held, world["tiles"] / "bands" / held.name)  # the partner's SCL lands late
    night = late_scl._night(world, "2021-01-07")
    assert not night.failed, night.failed
    assert [r["date"] for r in night.reruns] == ["2020-01-05"], night.reruns
    ran = sorted((c["before"], c["after"]) for c in night.coverage["bands"])
    assert ran == [("2020-01-05", "2020-07-04"), ("2020-07-04", "2021-01-05")], ran  # before: the first only
    assert night.pairs == 2
    after = late_scl._night(world, "2021-01-08")
    assert (after.pairs, after.reruns) == (0, []), after
