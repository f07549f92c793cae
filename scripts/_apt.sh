# Shared by scripts/setup_*.sh (sourced, not run): install Debian packages when this machine can.
# Each function prints one line saying why it skips and returns 1; the caller then exits 0, so that
# `make test` goes on and the tests that need the package skip with the same reason.

# apt_ready TOOL "what to run by hand": apt-get is there, we are root or have password-less sudo
# (sets SUDO), and the package lists are fresh.
apt_ready() {
  local tool="$1" by_hand="$2"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$tool: skipped (no apt-get: not a Debian/Ubuntu machine); $by_hand"
    return 1
  fi
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      SUDO="sudo -n"
    else
      echo "$tool: skipped (not root and no password-less sudo); $by_hand as root"
      return 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq >/dev/null 2>&1; then
    echo "$tool: skipped (apt-get update failed: no access to the Debian mirrors?)"
    return 1
  fi
}

# apt_install TOOL PACKAGE...: install without recommends, quietly.
apt_install() {
  local tool="$1"
  shift
  if ! $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@" >/dev/null 2>&1; then
    echo "$tool: skipped (apt-get install $* failed)"
    return 1
  fi
}
