#!/usr/bin/env bash
# The end-to-end suites that need Node.js and Chromium, against the debug binaries:
#   tests/browser/   the pages in real headless Chromium (playwright-core)
#   tests/interop/   SSO and device login against node-oidc-provider, with Chromium
#   editors/vscode/  the VS Code extension's sign-in against a real coder-server
# Each installs its npm packages (npm ci) and Chromium (apt) when missing. Logs go to
# target/e2e-<suite>.log. Exit status: 0 when every suite passed.
set -uo pipefail
cd "$(dirname "$0")/.."

cargo build --locked --bins --quiet || exit 1
mkdir -p target
status=0
run() {
  local name=$1
  shift
  echo "== e2e: $name"
  "$@" 2>&1 | tee "target/e2e-$name.log"
  if [ "${PIPESTATUS[0]}" -ne 0 ]; then
    echo "== e2e: $name FAILED"
    status=1
  fi
}
run browser tests/browser/run.sh
run interop tests/interop/run.sh
run vscode bash -c 'cd editors/vscode && { [ -d node_modules/typescript ] || npm ci --no-audit --no-fund; } && npm test'
exit $status
