#!/usr/bin/env bash
# Install Debian's redis-server for the multi-replica tests (test/cluster/). Idempotent: does
# nothing when redis-server is already on PATH (or in /usr/bin). The tests start their own
# instance (loopback, a free port, no persistence); the Debian package's service is not used.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"

installed() { command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ]; }

apt_install redis-install installed redis-server
