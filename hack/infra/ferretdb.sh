# FerretDB 1.x (MongoDB wire protocol) on its SQLite backend, built from the Go module proxy.
# FerretDB 2.x needs PostgreSQL with the DocumentDB extension, which Debian does not package.
ferretdb_PORT="${TIMEDEAL_MONGO_PORT:-27017}"
ferretdb_PORT_SETTING=TIMEDEAL_MONGO_PORT
FERRETDB_VERSION=v1.24.2
FERRETDB_BIN="$TIMEDEAL_CACHE/ferretdb-$FERRETDB_VERSION/ferretdb"

ferretdb_install() {
  [ -x "$FERRETDB_BIN" ] && return 0
  command -v go >/dev/null || die "ferretdb: Go is needed to build FerretDB $FERRETDB_VERSION (install Go 1.22 or newer)"
  log "ferretdb: building FerretDB $FERRETDB_VERSION from the Go module proxy (first run only)"
  local mod src
  GOFLAGS=-mod=mod go mod download github.com/FerretDB/FerretDB@"$FERRETDB_VERSION" >&2 ||
    die "ferretdb: could not download the module"
  mod="$(go mod download -json github.com/FerretDB/FerretDB@"$FERRETDB_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  # The version is embedded from a generated file the module zip leaves out, so build a copy.
  src="$TIMEDEAL_CACHE/src/ferretdb-$FERRETDB_VERSION"
  rm -rf "$src" && mkdir -p "$(dirname "$src")" && cp -r "$mod" "$src" && chmod -R u+w "$src"
  echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$FERRETDB_BIN.partial" ./cmd/ferretdb) >&2 ||
    die "ferretdb: go build failed"
  mv "$FERRETDB_BIN.partial" "$FERRETDB_BIN"
}

ferretdb_start() {
  local data; data="$(data_dir ferretdb)"
  mkdir -p "$data/sqlite" "$data/state"
  start_daemon ferretdb "$FERRETDB_BIN" --listen-addr="$INFRA_HOST:$ferretdb_PORT" \
    --handler=sqlite --sqlite-url="file:$data/sqlite/" --state-dir="$data/state" \
    --debug-addr=- --telemetry=disable --log-level=warn
}

ferretdb_ready() { port_open "$ferretdb_PORT"; }
ferretdb_version() { echo "${FERRETDB_VERSION#v}"; }
ferretdb_address() { echo "$INFRA_HOST:$ferretdb_PORT"; }
ferretdb_env() { echo "MONGO_URL=mongodb://$INFRA_HOST:$ferretdb_PORT"; }
