#!/usr/bin/env bash
# Install PostgreSQL + PostGIS (Debian packages) for tests/test_postgis.py.
#
# Idempotent and quiet: does nothing when PostGIS is already installed for the
# newest PostgreSQL major version found; prints one line saying why it skips when
# it cannot install (not root, no apt-get, no network).  It never starts a server:
# the tests start a throwaway cluster of their own on a free localhost port.
set -uo pipefail

say() { echo "setup_postgis: $*"; }

pg_major() {
  ls -1 /usr/lib/postgresql 2>/dev/null | sort -n | tail -1
}

have_postgis() {
  local v
  v="$(pg_major)"
  [ -n "$v" ] && [ -x "/usr/lib/postgresql/$v/bin/initdb" ] \
    && ls "/usr/share/postgresql/$v/extension/"postgis.control >/dev/null 2>&1
}

if have_postgis; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  say "skipped: apt-get not found (install PostgreSQL and PostGIS by hand to run the PostGIS tests)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo -n"
  if ! $SUDO true 2>/dev/null; then
    say "skipped: not root and no passwordless sudo (PostGIS tests will be skipped)"
    exit 0
  fi
else
  SUDO=""
fi

export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null 2>&1; then
  say "skipped: apt-get update failed (offline?); PostGIS tests will be skipped"
  exit 0
fi
# The server first, so that we know its major version, then the matching PostGIS.
if [ -z "$(pg_major)" ]; then
  $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends postgresql >/dev/null 2>&1 \
    || { say "skipped: could not install postgresql"; exit 0; }
fi
v="$(pg_major)"
pkg="$(apt-cache search --names-only "^postgresql-${v}-postgis-[0-9]+$" 2>/dev/null | awk '{print $1}' | sort -V | tail -1)"
[ -n "$pkg" ] || pkg="postgis"
if ! $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$pkg" "${pkg}-scripts" >/dev/null 2>&1; then
  $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$pkg" >/dev/null 2>&1 \
    || { say "skipped: could not install $pkg"; exit 0; }
fi
if have_postgis; then
  say "installed $pkg for PostgreSQL $v"
else
  say "installed $pkg but postgis.control is missing for PostgreSQL $v; PostGIS tests will be skipped"
fi
exit 0
