# MariaDB from Debian's packages: one server, one database per service.
mariadb_PORT="${TIMEDEAL_MYSQL_PORT:-3306}"
mariadb_PORT_SETTING=TIMEDEAL_MYSQL_PORT
MARIADB_APP_USER=timedeal
MARIADB_APP_PASSWORD=timedeal
MARIADB_DATABASES="timedeal_user timedeal_goods timedeal_order timedeal_payment timedeal_chat"

mariadb_bin() { command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || { [ -x "/usr/bin/$1" ] && echo "/usr/bin/$1"; }; }

mariadb_socket() {
  local s="$TIMEDEAL_STATE_DIR/run/mariadb.sock"
  # Unix socket paths are limited to 107 bytes; fall back to /tmp for deep checkouts.
  if [ "${#s}" -gt 100 ]; then s="/tmp/timedeal-mariadb-$(echo "$TIMEDEAL_STATE_DIR" | md5sum | cut -c1-8).sock"; fi
  echo "$s"
}

mariadb_install() {
  [ -n "$(mariadb_bin mariadbd)" ] && [ -n "$(mariadb_bin mariadb-install-db)" ] || apt_install mariadb-server mariadb-client
}

mariadb_start() {
  local data; data="$(data_dir mariadb)"
  if [ ! -d "$data/mysql" ]; then
    log "mariadb: initialising data directory $data"
    mkdir -p "$data"
    "$(mariadb_bin mariadb-install-db)" --no-defaults --datadir="$data" --user="$(id -un)" \
      --auth-root-authentication-method=socket --skip-test-db >>"$(log_file mariadb)" 2>&1 ||
      die "mariadb: mariadb-install-db failed (see $(log_file mariadb))"
  fi
  start_daemon mariadb "$(mariadb_bin mariadbd)" --no-defaults --datadir="$data" --user="$(id -un)" \
    --bind-address="$INFRA_HOST" --port="$mariadb_PORT" --socket="$(mariadb_socket)" \
    --pid-file="$TIMEDEAL_STATE_DIR/run/mariadbd.pid" --skip-name-resolve \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    --innodb-buffer-pool-size=256M --innodb-flush-log-at-trx-commit=1 --max-connections=1000 \
    --transaction-isolation=READ-COMMITTED
}

mariadb_root_sql() { "$(mariadb_bin mariadb)" --no-defaults --socket="$(mariadb_socket)" -uroot -N -B -e "$1"; }

mariadb_ready() { mariadb_root_sql 'SELECT 1' >/dev/null 2>&1 && port_open "$mariadb_PORT"; }

mariadb_after_start() {
  local sql="" db
  for db in $MARIADB_DATABASES; do sql+="CREATE DATABASE IF NOT EXISTS \`$db\`;"; done
  local host
  for host in 127.0.0.1 localhost; do
    sql+="CREATE USER IF NOT EXISTS '$MARIADB_APP_USER'@'$host' IDENTIFIED BY '$MARIADB_APP_PASSWORD';"
    # Tests create scratch databases named timedeal_test_*, so the grant covers the prefix.
    sql+="GRANT ALL PRIVILEGES ON \`timedeal\\_%\`.* TO '$MARIADB_APP_USER'@'$host';"
  done
  mariadb_root_sql "$sql" || die "mariadb: creating databases and the application user failed"
}

mariadb_version() { "$(mariadb_bin mariadbd)" --version | awk '{print $3}' | cut -d- -f1; }
mariadb_address() { echo "$INFRA_HOST:$mariadb_PORT"; }
mariadb_env() {
  echo "MYSQL_HOST=$INFRA_HOST"
  echo "MYSQL_PORT=$mariadb_PORT"
  echo "MYSQL_USER=$MARIADB_APP_USER"
  echo "MYSQL_PASSWORD=$MARIADB_APP_PASSWORD"
}
