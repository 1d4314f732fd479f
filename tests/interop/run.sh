#!/usr/bin/env bash
# The interop suite: real coder-server and coder against node-oidc-provider and Debian Chromium.
#
#   tests/interop/run.sh        # after `cargo build`; uses target/debug/coder-server and coder
#
# Env: CODER_SERVER_BIN, CODER_BIN, CHROMIUM_PATH, INTEROP_FILTER, INTEROP_FILES, INTEROP_KEEP_TMP,
# RUST_LOG (see README.md). Installs Chromium (apt) and the npm packages (npm ci) when missing; never
# builds the Rust binaries.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  apt-get update -qq
  apt-get install -y -qq chromium
fi
if [ ! -d node_modules/oidc-provider ] || [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund
fi
exec npm test
