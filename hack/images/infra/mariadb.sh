#!/bin/sh
# Initialises the data folder on the first start, then runs mariadbd; every start makes sure
# the application user and databases exist. Settings:
#   MARIADB_USER, MARIADB_PASSWORD   the application user (required)
#   MARIADB_DATABASES                space-separated databases the user owns
set -eu
: "${MARIADB_USER:?set MARIADB_USER}" "${MARIADB_PASSWORD:?set MARIADB_PASSWORD}"
data=/var/lib/mysql
if [ ! -d "$data/mysql" ]; then
  mariadb-install-db --no-defaults --datadir="$data" --auth-root-authentication-method=socket \
    --skip-test-db >/dev/null
fi
init=/tmp/init.sql
password="$(printf '%s' "$MARIADB_PASSWORD" | sed "s/'/''/g")"
{
  for db in ${MARIADB_DATABASES:-}; do echo "CREATE DATABASE IF NOT EXISTS \`$db\`;"; done
  echo "CREATE USER IF NOT EXISTS '$MARIADB_USER'@'%' IDENTIFIED BY '$password';"
  echo "ALTER USER '$MARIADB_USER'@'%' IDENTIFIED BY '$password';"
  echo "GRANT ALL PRIVILEGES ON \`timedeal\\_%\`.* TO '$MARIADB_USER'@'%';"
} >"$init"
exec mariadbd --no-defaults --datadir="$data" --bind-address=0.0.0.0 --port=3306 \
  --socket=/tmp/mysqld.sock --pid-file=/tmp/mysqld.pid --skip-name-resolve --init-file="$init" \
  --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
  --innodb-buffer-pool-size="${MARIADB_BUFFER_POOL:-128M}" --max-connections=500 \
  --transaction-isolation=READ-COMMITTED
