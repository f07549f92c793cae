#!/usr/bin/env bash
# What `make demo` runs once the environment is set up: the whole chain on the
# generated sample city and the sample permit register, then its agreement
# with the generator's truth.
set -euo pipefail
cd "$(dirname "$0")/.."
CD=".venv/bin/changedetect"
# The sample city is committed; regenerate it only if it is missing.
[ -f sample_tiles/manifest.json ] || .venv/bin/python -m changedetect.samplecity
$CD info sample_tiles
$CD run sample_tiles --permits permits/sample_register.gpkg --parcels permits/sample_parcels.gpkg --out demo_out --overwrite
.venv/bin/python benchmarks/sample_city_agreement.py demo_out
echo
echo "Open demo_out/report.html in a browser; the violation list is demo_out/violations.gpkg (QGIS) and .csv."
