#!/usr/bin/env bash
# Runs a command the way every project script expects: the pinned Node.js first on PATH, npm
# packages installed from the lock file, and the settings of the local servers loaded.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_BIN="$("$REPO_ROOT/hack/node.sh")"
export PATH="$NODE_BIN:$PATH"
cd "$REPO_ROOT"

# npm ci again only when the lock file changed since the last install. Several commands may
# start at once (parallel make targets, test runs beside a benchmark): one installs while the
# others wait on the lock, then see the fresh install and go on, so no two npm ci runs race.
needs_install() { [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; }
if needs_install; then
  mkdir -p "$REPO_ROOT/.state"
  exec 9>"$REPO_ROOT/.state/npm-install.lock"
  flock 9
  if needs_install; then
    echo "[run] installing npm packages (npm ci)" >&2
    npm ci --no-audit --no-fund --loglevel=error >&2
    touch node_modules/.package-lock.json
  fi
  flock -u 9
  exec 9>&-
fi

STATE_DIR="${TIMEDEAL_STATE_DIR:-$REPO_ROOT/.state}"
if [ -f "$STATE_DIR/infra.env" ]; then
  set -a
  # shellcheck disable=SC1091
  . "$STATE_DIR/infra.env"
  set +a
fi
exec "$@"
