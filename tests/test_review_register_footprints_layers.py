"""`changedetect match` on footprints in a GeoPackage of several layers (the sample city's truth file
holds 'footprints' and 'structures'): the message told to give --layer, which is the register's."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import box

X0, Y0 = 680_000.0, 1_200_000.0


def test_footprints_with_several_layers_say_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from test_cli_errors import _exit

    foot = tmp_path / "truth.gpkg"
    frame = gpd.GeoDataFrame({"footprint_id": ["F-1"]}, geometry=[box(X0, Y0, X0 + 10, Y0 + 8)], crs="EPSG:32648")
    frame.to_file(foot, layer="footprints")
    frame.to_file(foot, layer="structures")
    register = tmp_path / "permits.gpkg"
    gpd.GeoDataFrame({"permit_id": ["GP-1"], "permit_type": ["new_construction"], "issued_on": ["2024-01-01"],
                      "valid_until": ["2025-01-01"], "permitted_area_m2": [80.0], "status": ["active"]},
                     geometry=[box(X0, Y0, X0 + 10, Y0 + 8)], crs="EPSG:32648").to_file(register)
    out = tmp_path / "violations.gpkg"
    code, err = _exit(["match", str(foot), "--permits", str(register), "--out", str(out)], capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1, err
    assert "truth.gpkg" in lines[0] and "footprints, structures" in lines[0], lines[0]
    assert "--layer" not in lines[0] and "[permits]" not in lines[0], lines[0]  # the register's options
    assert "ogr2ogr" in lines[0], lines[0]
    assert not out.exists()
    # nor a warning before it: the CLI printed pyogrio's "More than one layer found" through py.warnings
    import warnings

    from changedetect.io.vectors import vector_columns

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        assert vector_columns(foot) is None
    assert [str(w.message) for w in said] == []
