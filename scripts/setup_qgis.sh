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
. "$(dirname "$0")/_apt.sh"
apt_ready setup_qgis "run 'apt-get install python3-qgis'" || exit 0
apt_install setup_qgis python3-qgis || exit 0
echo "setup_qgis: installed QGIS $(/usr/bin/python3 -c 'from qgis.core import Qgis; print(Qgis.version())' 2>/dev/null)"
