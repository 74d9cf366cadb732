#!/usr/bin/env bash
# Installs the npm packages the integration tests use (tus-js-client, and
# playwright-core to drive Debian's Chromium; pinned in
# tests/integration/js/package-lock.json) into tests/integration/js/
# node_modules. Idempotent: does nothing when node_modules is newer than the
# lock file. Needs node (>= 18) and npm, e.g. `apt-get install nodejs npm`.
set -euo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/tests/integration/js"
command -v node >/dev/null || { echo "test-js-deps: node is not installed" >&2; exit 1; }
command -v npm >/dev/null || { echo "test-js-deps: npm is not installed" >&2; exit 1; }
cd "$dir"
if [ -d node_modules ] && [ node_modules -nt package-lock.json ] &&
   [ -f node_modules/tus-js-client/package.json ] &&
   [ -f node_modules/playwright-core/package.json ]; then
  exit 0
fi
npm ci --no-audit --no-fund
touch node_modules
