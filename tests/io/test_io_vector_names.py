"""What a reader sees of a written vector file: its layer name is the target's, never the temporary file's."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from shapely.geometry import box

from changedetect.io.vectors import write_vector


def _frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"footprint_id": ["f1"]}, geometry=[box(683_000, 1_192_000, 683_010, 1_192_015)],
                            crs="EPSG:32648")


@pytest.mark.parametrize("suffix", [".geojson", ".json", ".gpkg"])
def test_layer_is_named_after_the_target(tmp_path: Path, suffix: str) -> None:
    out = write_vector(_frame(), tmp_path / f"violations{suffix}")
    assert [name for name, _ in pyogrio.list_layers(out)] == ["violations"]
    if suffix != ".gpkg":
        assert json.loads(out.read_text())["name"] == "violations"


def test_explicit_layer_name_is_kept(tmp_path: Path) -> None:
    out = write_vector(_frame(), tmp_path / "v.geojson", layer="tonight")
    assert json.loads(out.read_text())["name"] == "tonight"
