#!/usr/bin/env bash
# Install Debian's chromium for the browser tests (test/browser/, driven by playwright-core).
# Idempotent: does nothing when /usr/bin/chromium is already there. Never downloads
# Playwright's own browser builds (`npx playwright install` is not used).
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "chromium-install: already installed, skipping" >&2
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi

echo "chromium-install: installing chromium (Debian package)" >&2
start=$(date +%s)
# The keystone and browser test setups may install at the same time: one apt at a time.
exec 9>/tmp/token-gateway-apt.lock
flock -w 900 9
if [ -x /usr/bin/chromium ]; then
  echo "$(basename "$0"): installed meanwhile by another run, skipping" >&2
  exit 0
fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  chromium

if [ ! -x /usr/bin/chromium ]; then
  echo "chromium-install: installation finished but /usr/bin/chromium is missing" >&2
  exit 1
fi
echo "chromium-install: done in $(( $(date +%s) - start ))s" >&2
