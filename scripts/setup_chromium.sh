#!/usr/bin/env bash
# Install Debian's chromium for the report's browser test (tests/test_report_browser.py).
# Idempotent: does nothing when chromium is already on PATH.  Never fails the
# caller: when it cannot install, it says why and exits 0 (the test then skips
# with the same reason).
set -uo pipefail
for exe in chromium chromium-browser; do
  if command -v "$exe" >/dev/null 2>&1; then
    echo "setup_chromium: $(command -v "$exe") is already installed"
    exit 0
  fi
done
. "$(dirname "$0")/_apt.sh"
apt_ready setup_chromium "run 'apt-get install chromium'" || exit 0
apt_install setup_chromium chromium || exit 0
echo "setup_chromium: installed $(command -v chromium) ($(chromium --version 2>/dev/null))"
