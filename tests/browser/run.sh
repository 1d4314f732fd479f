#!/usr/bin/env bash
# Browser tests of the CoderFlow pages: real Debian Chromium (playwright-core, no browser
# download) against the real coder-server binary.
#
#   tests/browser/run.sh            # uses target/debug/coder-server
#   CODER_SERVER_BIN=target/release/coder-server tests/browser/run.sh
#
# Env: CODER_SERVER_BIN, CHROMIUM_BIN (default /usr/bin/chromium), KEEP_TMP=1, RUST_LOG.
# Installs Chromium (apt) and the npm packages (npm ci) when missing. Screenshots go to
# target/browser-screenshots/, daemon logs to target/browser-logs/.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x "${CHROMIUM_BIN:-/usr/bin/chromium}" ]; then
  apt-get update -qq
  apt-get install -y -qq chromium
fi
if [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund
fi
exec npm test
