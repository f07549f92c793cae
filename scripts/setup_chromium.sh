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
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup_chromium: skipped (no apt-get: not a Debian/Ubuntu machine); install chromium yourself to run the browser test"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "setup_chromium: skipped (not root and no password-less sudo); run 'apt-get install chromium' as root"
    exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update -qq; then
  echo "setup_chromium: skipped (apt-get update failed: no access to the Debian mirrors?)"
  exit 0
fi
if ! $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
  echo "setup_chromium: skipped (apt-get install chromium failed)"
  exit 0
fi
echo "setup_chromium: installed $(command -v chromium) ($(chromium --version 2>/dev/null))"
