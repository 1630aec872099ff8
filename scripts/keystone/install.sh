#!/usr/bin/env bash
# Install a real OpenStack Keystone (Debian's python3-keystone) plus uWSGI for
# integration tests. Idempotent: does nothing when already installed.
#
# Deliberately NOT the `keystone` package: that one pulls dbconfig-common
# (debconf prompts), an init script and AppArmor profiles. We only need the
# Python library, keystone-manage and the WSGI entry point.
#
# Keystone imports only under Debian's /usr/bin/python3 (a pyenv/venv python3
# first on PATH cannot import it), so every check names /usr/bin/python3.
# The check imports only the keystone package (~50 ms; importing
# keystone.server.wsgi, even find_spec on it, takes 1-2.5 s) and looks for the
# WSGI module's file.
set -euo pipefail

PY=/usr/bin/python3
PLUGIN_DIR=/usr/lib/uwsgi/plugins

installed() {
  [ -x "$PY" ] \
    && "$PY" -c 'import keystone, os; assert os.path.isfile(os.path.join(os.path.dirname(keystone.__file__), "server", "wsgi.py"))' >/dev/null 2>&1 \
    && [ -x /usr/bin/keystone-manage ] \
    && command -v uwsgi-core >/dev/null 2>&1 \
    && ls "$PLUGIN_DIR"/python3*_plugin.so >/dev/null 2>&1
}

if installed; then
  echo "keystone-install: already installed, skipping" >&2
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi

echo "keystone-install: installing python3-keystone uwsgi-core uwsgi-plugin-python3" >&2
start=$(date +%s)
# The keystone and browser test setups may install at the same time: one apt at a time.
exec 9>/tmp/token-gateway-apt.lock
flock -w 900 9
if installed; then
  echo "$(basename "$0"): installed meanwhile by another run, skipping" >&2
  exit 0
fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  python3-keystone uwsgi-core uwsgi-plugin-python3

if ! installed; then
  echo "keystone-install: installation finished but keystone/uwsgi still not usable" >&2
  "$PY" -c 'import keystone.server.wsgi' || true
  ls -l "$PLUGIN_DIR" || true
  exit 1
fi
echo "keystone-install: done in $(( $(date +%s) - start ))s" >&2
