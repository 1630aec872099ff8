#!/usr/bin/env bash
# Install Debian's chromium for the browser tests (test/browser/, driven by playwright-core).
# Idempotent: does nothing when /usr/bin/chromium is already there. Never downloads
# Playwright's own browser builds (`npx playwright install` is not used).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"

installed() { [ -x /usr/bin/chromium ]; }

apt_install chromium-install installed chromium
