#!/usr/bin/env bash
# Install Debian's QGIS Python bindings for the test that opens a violation list in real QGIS
# (tests/io/test_qgis_style.py: the style stored in the GeoPackage colours it by status).
# Idempotent: does nothing when /usr/bin/python3 already imports qgis.core.  Never fails the
# caller: when it cannot install, it says why and exits 0 (the test then skips with the same reason).
set -uo pipefail
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import qgis.core" >/dev/null 2>&1; then
  echo "setup_qgis: QGIS's Python bindings are already installed"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup_qgis: skipped (no apt-get: not a Debian/Ubuntu machine); install QGIS's Python bindings yourself to run the QGIS test"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "setup_qgis: skipped (not root and no password-less sudo); run 'apt-get install python3-qgis' as root"
    exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update -qq; then
  echo "setup_qgis: skipped (apt-get update failed: no access to the Debian mirrors?)"
  exit 0
fi
if ! $SUDO apt-get install -y -qq --no-install-recommends python3-qgis >/dev/null; then
  echo "setup_qgis: skipped (apt-get install python3-qgis failed)"
  exit 0
fi
echo "setup_qgis: installed QGIS $(/usr/bin/python3 -c 'from qgis.core import Qgis; print(Qgis.version())' 2>/dev/null)"
