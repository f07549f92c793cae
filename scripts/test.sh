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
# one pytest worker per core, up to 4 (pytest-xdist; PYTEST_WORKERS=0 runs in this process), each
# test file on one worker (--dist loadfile: a module's fixtures, such as the sample city's runs, are
# computed once). On this 2-core machine: 884 s instead of 1513 s (2026-12-02, docs/benchmarks.md).
WORKERS=${PYTEST_WORKERS:-$($PY -c 'import os; print(min(4, len(os.sched_getaffinity(0))))')}
$PY -m pytest -q -p no:cacheprovider --timeout=900 -n "$WORKERS" --dist loadfile "$@"
rc=$?
set -e
# pytest exits 5 when no test was collected: that is a failure here.
exit $rc
