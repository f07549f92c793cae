"""Review: the nightly job refuses a register or parcel layer on a datum PROJ cannot place once, before any
pair runs, as ``changedetect run`` refuses it before any work.

A Shapefile's .prj loses VN-2000's ``+towgs84`` (:mod:`test_review_register_crs`): PROJ would place its
rows about 230 m off.  Each pair's run refused it (``check_register_datum``, ``check_parcels_datum``), so a
night failed every area with the same message, after their co-registration was done; now the night says
it once (exit 2) and changes nothing.  ``--permits-crs EPSG:9210`` (the ``[parcels]`` table's ``crs`` for
the layer) gives the real CRS, and the night goes on.

The world is :mod:`test_review_nightly_rerun_withdraw`'s (its first night sets the baseline), the lots
:mod:`test_review_nightly_parcels`'."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from test_review_nightly_parcels import _bytes, _lots, _night
from test_review_nightly_rerun_withdraw import NIGHTS, _world
from test_review_register_crs import VN2000_TOWGS84

from changedetect.errors import GeoreferenceError


class Reached(Exception):
    """The night got to its pairs."""


def _shapefile(frame: gpd.GeoDataFrame, path: Path) -> Path:
    """``frame`` as a Shapefile in VN-2000 drawn with its datum shift, whose .prj loses the shift."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame.to_crs(VN2000_TOWGS84).to_file(path, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """After the baseline night: the July date is new; the register and the lots as such Shapefiles."""
    world = _world(tmp_path_factory.mktemp("datum_once"))
    _night(world, NIGHTS[0])
    root = world["root"]
    register = _shapefile(gpd.read_file(world["permits"]), root / "giay_phep.shp")
    lots = _shapefile(gpd.read_file(_lots(root / "lots.gpkg")), root / "thua_dat.shp")
    return {**world, "register": register, "lots": lots}


def _files(world: dict[str, Any]) -> dict[str, bytes]:
    root = world["root"]
    return {**_bytes(root / "out"), **{f"state/{p.relative_to(root / 'state')}": p.read_bytes()
                                       for p in sorted((root / "state").rglob("*")) if p.is_file()}}


@pytest.fixture
def no_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pair that would run fails the test (the refusal comes first) or stops the night (``Reached``)."""
    from changedetect import nightly

    def stop(tasks: list[dict[str, Any]], **_: Any) -> list[dict[str, Any]]:
        assert tasks and all(t["pairs"] for t in tasks)
        raise Reached

    monkeypatch.setattr(nightly, "_compute", stop)


@pytest.mark.usefixtures("no_pair")
@pytest.mark.parametrize(("layer", "words"), [
    ("register", r"permit register '.*giay_phep\.shp' .*no transformation PROJ knows.*--permits-crs EPSG:9210"),
    ("lots", r"parcel layer '.*thua_dat\.shp' .*no transformation PROJ knows.*\[parcels\] table"),
])
def test_the_night_refuses_the_layer_once_before_any_pair(world: dict[str, Any], layer: str, words: str) -> None:
    before = _files(world)
    kwargs = {"permits": world["register"]} if layer == "register" else {"parcels": world["lots"]}
    with pytest.raises(GeoreferenceError, match=words):
        _night_with(world, NIGHTS[1], **kwargs)
    assert _files(world) == before  # nothing written, nothing committed
    assert not (world["root"] / "state" / "work").exists()


def _night_with(world: dict[str, Any], night: str, *, permits: Path | None = None, parcels: Path | None = None) -> Any:
    from changedetect.config import PipelineConfig
    from changedetect.nightly import run_nightly

    root = world["root"]
    return run_nightly(world["tiles"], permits=permits or world["permits"], state=root / "state", out=root / "out",
                       night=night, workers=1, config=PipelineConfig.from_toml(world["config"]), parcels=parcels)


def _cli(world: dict[str, Any], *args: str, config: Path | None = None) -> Any:
    from click.testing import CliRunner

    from changedetect.cli import cli

    root = world["root"]
    return CliRunner().invoke(cli, ["-q", "nightly", "--catalog", str(world["tiles"]), "--state", str(root / "state"),
                                    "--out", str(root / "out"), "--night", NIGHTS[1], "--config",
                                    str(config or world["config"]), *args])


@pytest.mark.usefixtures("no_pair")
def test_the_command_says_it_once_and_exits_2(world: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    from test_cli_errors import _exit

    before, root = _files(world), world["root"]
    code, err = _exit(["-q", "nightly", "--catalog", str(world["tiles"]), "--permits", str(world["register"]),
                       "--state", str(root / "state"), "--out", str(root / "out"), "--night", NIGHTS[1],
                       "--config", str(world["config"])], capsys)
    assert code == 2, err
    assert err.count("no transformation PROJ knows") == 1, err
    assert "giay_phep.shp" in err and "--permits-crs EPSG:9210" in err
    assert "Traceback" not in err and _files(world) == before


@pytest.mark.usefixtures("no_pair")
def test_the_real_crs_given_the_night_goes_on(world: dict[str, Any], tmp_path: Path) -> None:
    """``--permits-crs`` for the register, the ``[parcels]`` table's ``crs`` for the layer."""
    result = _cli(world, "--permits", str(world["register"]), "--permits-crs", "EPSG:9210")
    assert isinstance(result.exception, Reached), result.output
    toml = tmp_path / "nightly.toml"
    toml.write_text(world["config"].read_text(encoding="utf-8") + '[parcels]\ncrs = "EPSG:9210"\n', encoding="utf-8")
    result = _cli(world, "--permits", str(world["permits"]), "--parcels", str(world["lots"]), config=toml)
    assert isinstance(result.exception, Reached), result.output
