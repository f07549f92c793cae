"""Review: the nightly job's published files type their dates, as ``changedetect run``'s violations do.

Before, ``night``, ``before``, ``after``, ``first_seen``, ``before_date`` and ``withdrawn`` were ISO text in
``open_violations.gpkg``, ``violations-<night>.gpkg`` and ``withdrawn-<night>.gpkg`` (GeoPackage ``TEXT``;
``String`` in the CSVs' ``.csvt``), so QGIS could not filter, sort or animate them as dates; an empty
night's file even typed ``violation_id`` as ``Real``.  The state keeps ISO text (what every version
wrote, what the job compares), and a state and outputs written by an earlier version go on as before.

The nights are those of :mod:`test_review_nightly_rerun_withdraw` (a deterministic detector; night 2
reports a house and a cloud, night 3's late SCL withdraws the cloud)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from test_review_nightly_rerun_withdraw import NIGHTS, _night, _world

from changedetect import _merge, _nightly_outputs

DATES = {"night", "before", "after", "first_seen", "before_date", "withdrawn"}


def _types(path: Path) -> dict[str, str]:
    """Each attribute field's type as pyogrio reads it (``datetime64[D]`` is a GeoPackage DATE)."""
    info = pyogrio.read_info(path, layer=path.stem)
    return dict(zip(info["fields"], map(str, info["dtypes"]), strict=True))


def _csvt(csv: Path) -> dict[str, str]:
    header = csv.read_text(encoding="utf-8-sig").splitlines()[0].split(",")
    return dict(zip(header, csv.with_suffix(".csvt").read_text(encoding="ascii").strip().split(","), strict=True))


def _legacy(out: Path) -> None:
    """Rewrite ``out``'s GeoPackages and CSVs as the version before typed them: the state's ISO text as is."""
    from changedetect.io.vectors import write_vector

    for gpkg in out.glob("*.gpkg"):
        frame = gpd.read_file(gpkg, layer=gpkg.stem)
        for col in DATES & set(frame.columns):
            frame[col] = frame[col].dt.strftime("%Y-%m-%d").astype(object)
        write_vector(frame, gpkg, overwrite=True)
        if (csv := gpkg.with_suffix(".csv")).is_file():
            write_vector(frame, csv, overwrite=True)


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    world = _world(tmp_path_factory.mktemp("nightly_dates"))
    root = world["root"]
    _night(world, NIGHTS[0])
    _night(world, NIGHTS[1])
    shutil.copytree(root, root.parent / f"{root.name}-legacy", symlinks=True)  # the state after night 2
    shutil.copy(world["held"], world["tiles"] / "s2" / world["held"].name)  # the SCL lands a night late
    third = _night(world, NIGHTS[2])
    return {**world, "third": third}


def test_every_date_of_every_nightly_output_is_a_date(nights: dict[str, Any]) -> None:
    out = nights["root"] / "out"
    files = {p.name for p in out.glob("*.gpkg")}
    assert files == {"open_violations.gpkg", *(f"violations-{n}.gpkg" for n in NIGHTS[:3]),
                     f"withdrawn-{NIGHTS[2]}.gpkg"}, files
    for gpkg in sorted(out.glob("*.gpkg")):
        types = _types(gpkg)
        dates = {c: t for c, t in types.items() if c in DATES}
        assert {"night", "before", "after", "first_seen"} <= set(dates), (gpkg.name, types)
        assert set(dates.values()) == {"datetime64[D]"}, (gpkg.name, dates)  # DATE, not TEXT
        assert types["violation_id"] == "object", (gpkg.name, types)  # text, even in an empty night's file
        if gpkg.stem.startswith("withdrawn"):
            assert dates["withdrawn"] == "datetime64[D]"
        if (csv := gpkg.with_suffix(".csv")).is_file():
            csvt = _csvt(csv)
            assert {c: csvt[c] for c in dates} == dict.fromkeys(dates, "Date"), (csv.name, csvt)
            assert csvt["violation_id"] == "String", (csv.name, csvt)
    # the values: the same days as the state's text
    reg = gpd.read_file(out / "open_violations.gpkg", layer="open_violations")
    assert reg["night"].dt.strftime("%Y-%m-%d").tolist() == [NIGHTS[1]]
    assert reg[["before", "after"]].apply(lambda s: s.dt.strftime("%Y-%m-%d")).values.tolist() == [
        ["2020-01-05", "2020-07-04"]]
    assert reg["first_seen"].dt.strftime("%Y-%m-%d").tolist() == ["2020-07-04"]
    assert f",{NIGHTS[1]},2020-01-05,2020-07-04," in (out / f"violations-{NIGHTS[1]}.csv").read_text("utf-8-sig")


def test_the_state_keeps_iso_text_and_the_night_again_changes_no_byte(nights: dict[str, Any]) -> None:
    root, out = nights["root"], nights["root"] / "out"
    state = root / "state"
    (register,) = state.glob("violations-*.parquet")
    kept = pd.read_parquet(register)
    # ISO text, as every earlier version wrote it: what the job compares
    assert kept[["night", "before", "after"]].values.tolist() == [[NIGHTS[1], "2020-01-05", "2020-07-04"]]
    (gone,) = state.glob("withdrawn-*.parquet")
    assert pd.read_parquet(gone)["withdrawn"].tolist() == [NIGHTS[2]]
    files = sorted(p for p in [*out.iterdir(), *state.iterdir()] if p.is_file() and p.name != "lock")
    before = {p.name: p.read_bytes() for p in files}
    again = _night(nights, NIGHTS[2])
    assert (again.pairs, again.new_violations, again.withdrawn) == (0, 0, []), again
    assert {p.name: p.read_bytes() for p in files} == before
    (out / "open_violations.gpkg").unlink()  # restored from the state, typed
    _night(nights, NIGHTS[2])
    assert _types(out / "open_violations.gpkg")["night"] == "datetime64[D]"


def test_a_state_and_outputs_of_the_earlier_version_go_on(nights: dict[str, Any]) -> None:
    """Night 2's state and outputs as the version before wrote them (TEXT dates), then night 3 with this
    one: the same register, withdrawals and night files as without the upgrade, typed."""
    legacy = nights["root"].parent / f"{nights['root'].name}-legacy"
    _legacy(legacy / "out")
    assert _types(legacy / "out" / "open_violations.gpkg")["night"] == "object"  # TEXT, as it was
    assert _csvt(legacy / "out" / f"violations-{NIGHTS[1]}.csv")["night"] == "String"
    world = {**nights, "root": legacy, "tiles": legacy / "tiles"}
    assert world["tiles"].is_dir() and world["tiles"] != nights["tiles"]
    shutil.copy(nights["held"], world["tiles"] / "s2" / nights["held"].name)
    third = _night(world, NIGHTS[2])
    assert (third.new_violations, third.withdrawn, third.open_violations) == (
        nights["third"].new_violations, nights["third"].withdrawn, nights["third"].open_violations), third
    for name in ("open_violations", f"violations-{NIGHTS[2]}", f"withdrawn-{NIGHTS[2]}"):
        mine = gpd.read_file(legacy / "out" / f"{name}.gpkg", layer=name)
        want = gpd.read_file(nights["root"] / "out" / f"{name}.gpkg", layer=name)
        assert _types(legacy / "out" / f"{name}.gpkg") == _types(nights["root"] / "out" / f"{name}.gpkg")
        assert "datetime64[D]" in _types(legacy / "out" / f"{name}.gpkg").values()
        cols = [c for c in want.columns if c != "geometry"]
        assert mine[cols].astype(str).values.tolist() == want[cols].astype(str).values.tolist(), name


# ------------------------------------------------------------------------------------- unit level
def test_published_types_what_any_state_holds() -> None:
    """ISO text, blanks, dates already typed, an empty list; a column with a non-date is left as text."""
    frame = gpd.GeoDataFrame({
        "violation_id": ["a-1", "a-2", "a-3"], "night": ["2025-01-21", "2025-01-21", "2024-07-13"],
        "before": pd.to_datetime(["2024-07-12", "2024-01-15", None]), "after": ["2025-01-20", "", None],
        "first_seen": [np.nan, "2025-01-20T00:00:00", "2024-07-12"], "withdrawn": ["x", "2025-01-21", None],
        "status": ["unlicensed"] * 3}, geometry=gpd.points_from_xy([0, 1, 2], [0, 1, 2]), crs=4326)
    out = _nightly_outputs.published(frame)
    for col in ("night", "before", "after", "first_seen"):
        assert pd.api.types.is_datetime64_any_dtype(out[col]), (col, out[col])
    assert out["after"].isna().tolist() == [False, True, True]
    assert out["first_seen"].dt.strftime("%Y-%m-%d").tolist()[1:] == ["2025-01-20", "2024-07-12"]
    assert out["withdrawn"].equals(frame["withdrawn"])  # not a date: as it was
    assert frame["night"].tolist() == ["2025-01-21", "2025-01-21", "2024-07-13"]  # the caller's, untouched
    empty = _nightly_outputs.published(_merge._empty(4326).assign(violation_id=pd.Series(dtype=float)))
    assert pd.api.types.is_datetime64_any_dtype(empty["night"]) and empty["violation_id"].dtype == object
