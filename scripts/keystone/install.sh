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
source "$(dirname "${BASH_SOURCE[0]}")/../apt-install.sh"

PY=/usr/bin/python3
PLUGIN_DIR=/usr/lib/uwsgi/plugins

installed() {
  [ -x "$PY" ] \
    && "$PY" -c 'import keystone, os; assert os.path.isfile(os.path.join(os.path.dirname(keystone.__file__), "server", "wsgi.py"))' >/dev/null 2>&1 \
    && [ -x /usr/bin/keystone-manage ] \
    && command -v uwsgi-core >/dev/null 2>&1 \
    && ls "$PLUGIN_DIR"/python3*_plugin.so >/dev/null 2>&1
}

if ! apt_install keystone-install installed python3-keystone uwsgi-core uwsgi-plugin-python3; then
  "$PY" -c 'import keystone.server.wsgi' || true
  ls -l "$PLUGIN_DIR" || true
  exit 1
fi
