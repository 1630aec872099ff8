# Sourced by the project's install scripts (scripts/install-chromium.sh, scripts/keystone/install.sh).
#
# apt_install NAME CHECK PACKAGE...
#   Installs the Debian PACKAGEs unless CHECK (a command) already succeeds, as root or through
#   sudo, without prompts. The keystone and browser test setups may install at the same time:
#   one apt at a time (flock on /tmp/token-gateway-apt.lock, and apt's own lock timeout).
#   Returns non-zero when apt fails or CHECK still fails afterwards.
apt_install() {
  local name=$1 check=$2
  shift 2
  if "$check"; then
    echo "$name: already installed, skipping" >&2
    return 0
  fi
  local sudo=
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
  echo "$name: installing $* (Debian packages)" >&2
  local start
  start=$(date +%s)
  exec 9>/tmp/token-gateway-apt.lock
  flock -w 900 9 || return 1
  if "$check"; then
    echo "$name: installed meanwhile by another run, skipping" >&2
    return 0
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update || return 1
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "$@" || return 1
  if ! "$check"; then
    echo "$name: installation finished but it is still not usable" >&2
    return 1
  fi
  echo "$name: done in $(( $(date +%s) - start ))s" >&2
}
