# Redis from Debian's packages, with the append-only file on: live stock must survive a restart.
redis_PORT="${TIMEDEAL_REDIS_PORT:-6379}"
redis_PORT_SETTING=TIMEDEAL_REDIS_PORT

redis_install() { command -v redis-server >/dev/null && command -v redis-cli >/dev/null || apt_install redis-server redis-tools; }

redis_start() {
  local data; data="$(data_dir redis)"
  mkdir -p "$data"
  start_daemon redis redis-server --bind "$INFRA_HOST" --port "$redis_PORT" --dir "$data" \
    --appendonly yes --appendfsync everysec --save "" --daemonize no --logfile "" \
    --maxclients 10000
}

redis_ready() { [ "$(redis-cli -h "$INFRA_HOST" -p "$redis_PORT" ping 2>/dev/null)" = PONG ]; }
redis_version() { redis-server --version | grep -o 'v=[0-9.]*' | cut -d= -f2; }
redis_address() { echo "$INFRA_HOST:$redis_PORT"; }
redis_env() { echo "REDIS_URL=redis://$INFRA_HOST:$redis_PORT"; }
