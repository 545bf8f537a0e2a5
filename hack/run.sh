#!/usr/bin/env bash
# Runs a command the way every project script expects: the pinned Node.js first on PATH, npm
# packages installed from the lock file, and the settings of the local servers loaded.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_BIN="$("$REPO_ROOT/hack/node.sh")"
export PATH="$NODE_BIN:$PATH"
cd "$REPO_ROOT"

# npm ci again only when the lock file changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[run] installing npm packages (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
  touch node_modules/.package-lock.json
fi

STATE_DIR="${TIMEDEAL_STATE_DIR:-$REPO_ROOT/.state}"
if [ -f "$STATE_DIR/infra.env" ]; then
  set -a
  # shellcheck disable=SC1091
  . "$STATE_DIR/infra.env"
  set +a
fi
exec "$@"
