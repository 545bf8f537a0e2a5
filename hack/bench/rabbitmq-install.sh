#!/usr/bin/env bash
# Installs Debian's rabbitmq-server for `make bench-chat` without starting its system service
# (the benchmark starts its own broker as a plain process) and enables Web-STOMP offline.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=../infra/lib.sh
source "$REPO_ROOT/hack/infra/lib.sh"

if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
  apt_install rabbitmq-server
fi
# The plugin list lives in the state folder, so the system's /etc/rabbitmq stays as installed.
mkdir -p "$TIMEDEAL_STATE_DIR/rabbitmq"
RABBITMQ_ENABLED_PLUGINS_FILE="$TIMEDEAL_STATE_DIR/rabbitmq/enabled_plugins" \
  RABBITMQ_MNESIA_BASE="$TIMEDEAL_STATE_DIR/rabbitmq/mnesia" \
  RABBITMQ_LOG_BASE="$TIMEDEAL_STATE_DIR/rabbitmq/log" \
  /usr/lib/rabbitmq/bin/rabbitmq-plugins --offline enable rabbitmq_web_stomp >/dev/null
