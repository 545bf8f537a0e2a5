#!/usr/bin/env bash
# Prints the bin folder of the pinned Node.js (from .nvmrc), installing it from the npm
# registry's `node` package (which carries the binary) into the cache when it is missing.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="$(tr -d 'v \n' <"$REPO_ROOT/.nvmrc")"
cache="${TIMEDEAL_CACHE:-$HOME/.cache/timedeal}"
prefix="$cache/node-$version"
bin="$prefix/node_modules/node/bin"

if [ ! -x "$bin/node" ] || [ "$("$bin/node" --version 2>/dev/null)" != "v$version" ]; then
  command -v npm >/dev/null || { echo "[node] error: npm is needed to install Node.js $version" >&2; exit 1; }
  echo "[node] installing Node.js $version from the npm registry into $prefix" >&2
  rm -rf "$prefix.partial" && mkdir -p "$prefix.partial"
  npm install --prefix "$prefix.partial" --no-save --no-audit --no-fund --loglevel=error "node@$version" >&2 ||
    { echo "[node] error: npm install node@$version failed" >&2; exit 1; }
  rm -rf "$prefix" && mv "$prefix.partial" "$prefix"
  "$bin/node" --version >/dev/null || { echo "[node] error: the installed node binary does not run" >&2; exit 1; }
fi
echo "$bin"
