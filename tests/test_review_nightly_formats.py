"""Review: the nightly job's lists follow the ``[output]`` switches ``changedetect run``'s list follows.

Since ae766a9 ``run`` writes its violation list as GeoJSON and GeoParquet too when ``[output] geojson`` /
``parquet`` ask; the nightly job, reading the same configuration, still wrote its own lists
(``violations-<night>``, ``withdrawn-<night>``, ``open_violations``) as GeoPackage and CSV only: a city that
feeds its web map from GeoJSON had to convert every night.  Now each list is written in every format asked
(the open register in all but CSV, as before), atomically, the same bytes when the night runs again,
restored when missing; a format switched off goes from the night processed (and from the open register),
earlier nights' files stay as written.

The nights are those of :mod:`test_review_nightly_rerun_withdraw` (a deterministic detector; night 2
reports a house and a cloud, night 3's late SCL withdraws the cloud)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely
from test_review_nightly_rerun_withdraw import NIGHTS, _night, _world

DATES = {"night", "before", "after", "first_seen", "before_date", "withdrawn"}
ALL = ("gpkg", "csv", "geojson", "parquet")


def _lists(night: str, *, withdrawn: bool) -> dict[str, str]:
    """The files (key -> name) of a night with every format on."""
    names = {f"night_{f}": f"violations-{night}.{f}" for f in ALL}
    names |= {f"open_{f}": f"open_violations.{f}" for f in ALL if f != "csv"}
    if withdrawn:
        names |= {f"withdrawn_{f}": f"withdrawn-{night}.{f}" for f in ALL}
    return names


def _bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    world = _world(tmp_path_factory.mktemp("nightly_formats"))
    with world["config"].open("a", encoding="utf-8") as f:
        f.write("\n[output]\ngeojson = true\nparquet = true\n")
    summaries = [_night(world, NIGHTS[0]), _night(world, NIGHTS[1])]
    shutil.copy(world["held"], world["tiles"] / "s2" / world["held"].name)  # the SCL lands a night late
    summaries.append(_night(world, NIGHTS[2]))
    return {**world, "summaries": summaries}


def test_every_list_is_written_in_every_format_asked(nights: dict[str, Any]) -> None:
    out = nights["root"] / "out"
    for night, summary in zip(NIGHTS[:3], nights["summaries"], strict=True):
        want = _lists(night, withdrawn=night == NIGHTS[2])
        assert {k: Path(v).name for k, v in summary.outputs.items() if not k.startswith("report_")} == want
    assert nights["summaries"][2].withdrawn and nights["summaries"][1].new_violations == 2
    for night in NIGHTS[:3]:
        names = {f"violations-{night}", "open_violations"} | ({f"withdrawn-{night}"} if night == NIGHTS[2] else set())
        for name in names:
            gpkg = gpd.read_file(out / f"{name}.gpkg", layer=name)
            geojson = gpd.read_file(out / f"{name}.geojson")
            parquet = gpd.read_parquet(out / f"{name}.parquet")
            for other in (geojson, parquet):  # the same rows, in the same order
                assert len(other) == len(gpkg), name
                if len(gpkg):  # (a GeoJSON without features has no fields)
                    assert other["violation_id"].tolist() == gpkg["violation_id"].tolist(), name
                    assert other["status"].tolist() == gpkg["status"].tolist(), name
            assert geojson.crs.to_epsg() == 4326, name  # RFC 7946
            assert parquet.crs == gpkg.crs and gpkg.crs.to_epsg() != 4326, name  # the register's CRS
            if len(gpkg):
                # (RFC 7946 turns the rings counter-clockwise, 7 decimals)
                far = shapely.hausdorff_distance(geojson.geometry.values, gpkg.geometry.to_crs(4326).values)
                assert far.max() < 1e-6, name  # degrees
                assert parquet.geometry.geom_equals_exact(gpkg.geometry, 1e-9).all(), name


def test_dates_are_dates_in_every_format(nights: dict[str, Any]) -> None:
    out = nights["root"] / "out"
    for name in ("open_violations", f"violations-{NIGHTS[1]}", f"violations-{NIGHTS[2]}", f"withdrawn-{NIGHTS[2]}"):
        schema = pq.read_schema(out / f"{name}.parquet")
        dates = {n: str(schema.field(n).type) for n in schema.names if n in DATES}
        assert {"night", "before", "after"} <= set(dates), (name, schema)
        assert set(dates.values()) == {"date32[day]"}, (name, dates)
        assert str(schema.field("violation_id").type) == "string", (name, schema)
        info = pyogrio.read_info(out / f"{name}.geojson")
        types = dict(zip(info["fields"], map(str, info["dtypes"]), strict=True))
        if info["features"]:  # (a GeoJSON without features has no fields)
            assert {types[c] for c in DATES & set(types)} == {"datetime64[D]"}, (name, types)
    reg = gpd.read_parquet(out / "open_violations.parquet")
    assert [str(d) for d in reg["night"]] == [NIGHTS[1]] * len(reg)


def test_the_night_again_changes_no_byte_and_restores_what_is_missing(nights: dict[str, Any]) -> None:
    out = nights["root"] / "out"
    before = _bytes(out)
    again = _night(nights, NIGHTS[2])
    assert (again.pairs, again.new_violations, again.withdrawn) == (0, 0, []), again
    assert {k: Path(v).name for k, v in again.outputs.items()} == _lists(NIGHTS[2], withdrawn=True)
    assert _bytes(out) == before
    for name in ("open_violations.geojson", f"violations-{NIGHTS[2]}.parquet", f"withdrawn-{NIGHTS[2]}.geojson",
                 f"withdrawn-{NIGHTS[2]}.parquet"):
        (out / name).unlink()
    _night(nights, NIGHTS[2])
    assert _bytes(out) == before  # restored, byte for byte; the others untouched
    (out / f"withdrawn-{NIGHTS[2]}.gpkg").unlink()  # (a GeoPackage written again has new timestamps)
    _night(nights, NIGHTS[2])
    assert {n: b for n, b in _bytes(out).items() if n != f"withdrawn-{NIGHTS[2]}.gpkg"} == {
        n: b for n, b in before.items() if n != f"withdrawn-{NIGHTS[2]}.gpkg"}
    name = f"withdrawn-{NIGHTS[2]}"
    assert gpd.read_file(out / f"{name}.gpkg", layer=name)["violation_id"].tolist() == gpd.read_parquet(
        out / f"{name}.parquet")["violation_id"].tolist() != []


def test_a_format_switched_off_goes_from_the_night_and_the_register(nights: dict[str, Any],
                                                                    tmp_path: Path) -> None:
    """The same nights' folder, night 3 run again with ``geojson`` and ``csv`` off: that night's GeoJSON and
    CSV (with its side files) and the open register's GeoJSON go; the GeoParquet stays, and earlier nights'
    files stay as they were written (they were right for their night)."""
    root = tmp_path / "copy"
    shutil.copytree(nights["root"], root, symlinks=True)
    world = {**nights, "root": root, "tiles": root / "tiles", "config": root / "off.toml"}
    text = nights["config"].read_text(encoding="utf-8").replace("geojson = true", "geojson = false")
    world["config"].write_text(text.replace("[output]\n", "[output]\ncsv = false\n"), encoding="utf-8")
    out = root / "out"
    before = _bytes(out)
    again = _night(world, NIGHTS[2])
    keys = {k for k in again.outputs}
    assert keys == {"night_gpkg", "night_parquet", "open_gpkg", "open_parquet", "withdrawn_gpkg",
                    "withdrawn_parquet"}, keys
    gone = {n for n in before if n not in _bytes(out)}
    off = [f"{stem}{ext}" for stem in (f"violations-{NIGHTS[2]}", f"withdrawn-{NIGHTS[2]}")
           for ext in (".geojson", ".csv", ".prj", ".csvt")]
    assert gone == {*off, "open_violations.geojson"}, gone
    assert {n: b for n, b in _bytes(out).items()} == {n: b for n, b in before.items() if n not in gone}
    assert (out / f"violations-{NIGHTS[1]}.geojson").is_file() and (out / f"violations-{NIGHTS[1]}.csv").is_file()
