"""Render a run folder's violation list over its after image with real QGIS, as an inspector sees it.

Run with the Python that has QGIS's bindings (Debian: ``apt-get install python3-qgis``), not the
project's virtual environment::

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 scripts/qgis_view.py demo_out docs/img/qgis_sample_city.png

The violation layer is drawn with the style stored in its GeoPackage (``layer_styles``), which is
what QGIS applies when the file is opened; nothing is styled here.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    from qgis.core import (
        QgsApplication,
        QgsMapRendererParallelJob,
        QgsMapSettings,
        QgsRasterLayer,
        QgsVectorLayer,
    )
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor

    if len(sys.argv) != 3:
        sys.exit("usage: qgis_view.py RUN_DIR OUT.png|OUT.jpg")
    run_dir, out = sys.argv[1], sys.argv[2]
    app = QgsApplication([], False)
    app.initQgis()
    violations = QgsVectorLayer(f"{run_dir}/violations.gpkg|layername=violations", "violations", "ogr")
    after = QgsRasterLayer(f"{run_dir}/after_rgb.tif", "after")
    if not (violations.isValid() and after.isValid()):
        sys.exit(f"cannot open {run_dir}/violations.gpkg or {run_dir}/after_rgb.tif")
    print(f"renderer: {violations.renderer().type()}, {violations.featureCount()} footprints")
    settings = QgsMapSettings()
    settings.setLayers([violations, after])
    settings.setDestinationCrs(violations.crs())
    settings.setOutputSize(QSize(900, 900))
    settings.setExtent(after.extent())
    settings.setBackgroundColor(QColor("white"))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    job.renderedImage().save(out, None, 85)
    print(f"wrote {out}")
    sys.stdout.flush()
    os._exit(0)  # QGIS 3.22 can crash in its own teardown


if __name__ == "__main__":
    main()
