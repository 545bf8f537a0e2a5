#!/usr/bin/env bash
# Debian's Chromium for the browser tests: installed once when missing (idempotent, as root or
# through sudo), then its path on stdout. TIMEDEAL_CHROMIUM names another Chromium to use instead.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=../infra/lib.sh
. "$REPO_ROOT/hack/infra/lib.sh"

if [ -n "${TIMEDEAL_CHROMIUM:-}" ]; then
  [ -x "$TIMEDEAL_CHROMIUM" ] || die "TIMEDEAL_CHROMIUM=$TIMEDEAL_CHROMIUM is not an executable"
  echo "$TIMEDEAL_CHROMIUM"
  exit 0
fi

find_chromium() { command -v chromium || command -v chromium-browser; }

if ! find_chromium >/dev/null; then
  mkdir -p "$TIMEDEAL_CACHE"
  # Suites run in parallel: one installs, the others wait for it and then find it.
  exec 9>"$TIMEDEAL_CACHE/chromium-install.lock"
  flock 9
  if ! find_chromium >/dev/null; then
    # Chromium's fonts: without a CJK font the Korean text of the screenshots is boxes.
    apt_install chromium fonts-noto-cjk
  fi
fi
find_chromium
