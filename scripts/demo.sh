#!/usr/bin/env bash
# What `make demo` runs once the environment is set up: the whole chain on the
# generated sample city and the sample permit register.
set -euo pipefail
cd "$(dirname "$0")/.."
CD=".venv/bin/changedetect"
# The sample city is committed; regenerate it only if it is missing.
[ -f sample_tiles/manifest.json ] || .venv/bin/python -m changedetect.samplecity
$CD info sample_tiles
if $CD --help | grep -q ' run '; then
  rm -rf demo_out
  $CD run sample_tiles --permits permits/sample_register.gpkg --out demo_out
fi
