#!/usr/bin/env bash
# What `make test` runs once the environment is set up.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
# Services the tests need (PostgreSQL + PostGIS, chromium); each script is
# idempotent and prints why it skips when it cannot install.
for s in scripts/setup_*.sh; do
  [ -e "$s" ] && bash "$s"
done
.venv/bin/ruff check changedetect tests benchmarks scripts cli.py
# the package's type hints are checked too (pyproject's [tool.mypy])
.venv/bin/mypy changedetect
set +e
$PY -m pytest -q -p no:cacheprovider --timeout=900 "$@"
rc=$?
set -e
# pytest exits 5 when no test was collected: that is a failure here.
exit $rc
