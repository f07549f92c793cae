"""Violation lists open in QGIS coloured by status: the style stored in the GeoPackage.

The last test opens the file in real QGIS (Debian's python3-qgis, which
``scripts/setup_qgis.sh`` installs) and checks the renderer QGIS built from it.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from changedetect.io.qgis_style import add_default_style, categorized_qml, read_default_style
from changedetect.io.vectors import feature_layer, write_vector
from changedetect.match import STATUSES
from changedetect.report import COLOURS, violations_qml

SYSTEM_PYTHON = "/usr/bin/python3"


def _violations() -> gpd.GeoDataFrame:
    statuses = [*STATUSES, "something_else"]
    return gpd.GeoDataFrame({"violation_id": [f"v{i}" for i in range(len(statuses))], "status": statuses},
                            geometry=[shapely.box(20 * i, 0, 20 * i + 15, 15) for i in range(len(statuses))],
                            crs=32648)


def _symbols(qml: str) -> dict[str, tuple[str, str]]:
    """value -> (fill colour, outline colour) as the QML says."""
    root = ET.fromstring(qml.split("\n", 1)[1])  # past the DOCTYPE line
    renderer = root.find("renderer-v2")
    assert renderer is not None and renderer.get("type") == "categorizedSymbol"
    assert renderer.get("attr") == "status"
    props = {}
    for symbol in renderer.iter("symbol"):
        layer = symbol.find("layer")
        assert layer is not None
        p = {e.get("name"): e.get("value") for e in layer.iter("Option") if e.get("name")}
        props[symbol.get("name")] = (p["color"], p["outline_color"])
    return {c.get("value"): props[c.get("symbol")] for c in renderer.iter("category")}


def test_the_violations_style_colours_every_status_as_the_report_does() -> None:
    symbols = _symbols(violations_qml())
    assert set(symbols) == set(STATUSES) | {""}  # "" is QGIS's catch-all category
    for status in STATUSES:
        fill, outline = symbols[status]
        rgb = ",".join(map(str, COLOURS[status]))
        assert outline == f"{rgb},255" and fill.startswith(rgb + ",") and fill != outline  # translucent fill
    assert list(symbols)[0] == "unlicensed", "the most urgent first in the legend"


def test_categorized_qml_escapes_values_and_labels() -> None:
    qml = categorized_qml("kind", {'a "quoted" <value>': ((1, 2, 3), "a & b")})
    root = ET.fromstring(qml.split("\n", 1)[1])
    category = next(root.iter("category"))
    assert category.get("value") == 'a "quoted" <value>' and category.get("label") == "a & b"
    with pytest.raises(ValueError, match="fill_alpha"):
        categorized_qml("kind", {}, fill_alpha=300)


def test_write_vector_stores_the_style_as_the_layers_default(tmp_path: Path) -> None:
    path = write_vector(_violations(), tmp_path / "violations.gpkg", qgis_style=violations_qml())
    assert read_default_style(path, "violations") == violations_qml()
    with sqlite3.connect(path) as db:  # a valid GeoPackage: the style table is registered
        kind = db.execute("SELECT data_type FROM gpkg_contents WHERE table_name = 'layer_styles'").fetchone()
        version = db.execute("PRAGMA user_version").fetchone()[0]
        rows = db.execute("SELECT f_table_name, f_geometry_column, useAsDefault FROM layer_styles").fetchall()
    assert kind == ("attributes",)
    assert version == 10200, "GeoPackage 1.2, which QGIS 3.22 LTR's GDAL reads without a warning"
    assert rows == [("violations", "geom", 1)]
    # the features read back as written, and a reader that names no layer gets them without a warning
    assert feature_layer(path) == "violations"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = gpd.read_file(path, layer=feature_layer(path))
    assert back["status"].tolist() == _violations()["status"].tolist()
    # a second default replaces the first one as the default
    add_default_style(path, "violations", categorized_qml("status", {}), name="plain")
    assert read_default_style(path, "violations") == categorized_qml("status", {})
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT SUM(useAsDefault), COUNT(*) FROM layer_styles").fetchone() == (1, 2)


def test_no_style_without_the_option_and_none_for_other_formats(tmp_path: Path) -> None:
    plain = write_vector(_violations(), tmp_path / "plain.gpkg")
    assert read_default_style(plain, "plain") is None and feature_layer(plain) is None
    geojson = write_vector(_violations(), tmp_path / "v.geojson", qgis_style=violations_qml())
    assert json.loads(geojson.read_text())["features"][0]["properties"]["status"] == STATUSES[0]
    with pytest.raises(ValueError, match="no feature table 'other'"):
        add_default_style(plain, "other", violations_qml())


_QGIS_CHECK = r"""
import json, sys
from qgis.core import QgsApplication, QgsVectorLayer
app = QgsApplication([], False)
app.initQgis()
layer = QgsVectorLayer(sys.argv[1], "violations", "ogr")
r = layer.renderer()
print(json.dumps({"valid": layer.isValid(), "features": layer.featureCount(), "renderer": r.type(),
                  "attr": r.classAttribute() if r.type() == "categorizedSymbol" else None,
                  "categories": {str(c.value()): c.symbol().symbolLayer(0).strokeColor().name()
                                 for c in r.categories()} if r.type() == "categorizedSymbol" else {}}),
      flush=True)
import os
os._exit(0)  # QGIS 3.22 can crash in its teardown (exitQgis with live layers): not what is tested
"""


def _qgis_python() -> str:
    if not Path(SYSTEM_PYTHON).is_file() or subprocess.run(
            [SYSTEM_PYTHON, "-c", "import qgis.core"], capture_output=True, check=False).returncode != 0:
        pytest.skip("QGIS's Python bindings are absent: run scripts/setup_qgis.sh "
                    "(Debian: apt-get install python3-qgis)")
    return SYSTEM_PYTHON


@pytest.mark.qgis
def test_qgis_opens_a_run_violation_list_coloured_by_status(tmp_path: Path) -> None:
    python = _qgis_python()
    path = write_vector(_violations(), tmp_path / "violations.gpkg", qgis_style=violations_qml())
    done = subprocess.run([python, "-c", _QGIS_CHECK, str(path)], capture_output=True, text=True, timeout=120,
                          check=False, env={"QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path),
                                            "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["valid"] and seen["features"] == len(_violations())
    assert seen["renderer"] == "categorizedSymbol" and seen["attr"] == "status"
    expected = {s: "#{:02x}{:02x}{:02x}".format(*COLOURS[s]) for s in STATUSES}
    assert {k: v for k, v in seen["categories"].items() if k} == expected
