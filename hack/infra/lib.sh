# Shared helpers for hack/infra.sh and its component files (sourced, not run).
# Every component file hack/infra/<name>.sh defines:
#   <name>_install   install what is missing (idempotent, cached under $TIMEDEAL_CACHE)
#   <name>_start     start the server in the background (record the pid with start_daemon)
#   <name>_ready     exit 0 once the server really answers
#   <name>_version   print the server version (one word)
#   <name>_address   print where it listens
#   <name>_env       print KEY=VALUE settings services and tests use to reach it
# and sets <name>_PORT. Stopping is generic: the recorded pid is signalled.

TIMEDEAL_CACHE="${TIMEDEAL_CACHE:-$HOME/.cache/timedeal}"
TIMEDEAL_STATE_DIR="${TIMEDEAL_STATE_DIR:-$REPO_ROOT/.state}"
INFRA_HOST=127.0.0.1
INFRA_START_TIMEOUT="${TIMEDEAL_INFRA_START_TIMEOUT:-120}"

log() { printf '[infra] %s\n' "$*" >&2; }
die() { printf '[infra] error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root to run: $* (install it yourself or run as root)"
  fi
}

apt_updated=0
apt_install() {
  command -v apt-get >/dev/null || die "apt-get not found: install $* with your package manager"
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    as_root apt-get update -qq >/dev/null || die "apt-get update failed"
    apt_updated=1
  fi
  log "installing $* (Debian packages)"
  # policy-rc.d 101 stops the packages from starting system-wide servers; we start our own.
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ] && [ "$(id -u)" = 0 ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  local rc=$?
  [ "$created_policy" = 1 ] && rm -f "$policy"
  [ "$rc" = 0 ] || die "apt-get install $* failed"
}

validate_port() { # name value
  [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -ge 1 ] && [ "$2" -le 65535 ] ||
    die "invalid setting $1='$2': expected a TCP port number 1-65535"
}

port_open() { (exec 3<>"/dev/tcp/$INFRA_HOST/$1") 2>/dev/null; }

pid_file() { echo "$TIMEDEAL_STATE_DIR/run/$1.pid"; }
log_file() { echo "$TIMEDEAL_STATE_DIR/logs/$1.log"; }
data_dir() { echo "$TIMEDEAL_STATE_DIR/data/$1"; }

our_pid() { # prints the pid of a live process we started for component $1
  local f; f="$(pid_file "$1")"
  [ -f "$f" ] || return 1
  local pid; pid="$(cat "$f")"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; return 0; fi
  rm -f "$f"
  return 1
}

who_listens() { # best-effort description of the process holding a port
  command -v ss >/dev/null || return 0
  ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'users:(([^)]*' | head -1 | sed 's/users:((//'
}

ensure_port_free() { # component port setting-name
  if port_open "$2"; then
    local who; who="$(who_listens "$2")"
    die "$1: port $2 is already in use${who:+ by $who}; stop that process or set $3 to another port"
  fi
}

start_daemon() { # component command...  (runs detached, output to the component log)
  local name="$1"; shift
  mkdir -p "$TIMEDEAL_STATE_DIR/run" "$TIMEDEAL_STATE_DIR/logs"
  # Keep the previous run's log; readiness checks read only this run's.
  [ -f "$(log_file "$name")" ] && mv "$(log_file "$name")" "$(log_file "$name").1"
  setsid "$@" >>"$(log_file "$name")" 2>&1 </dev/null &
  echo $! >"$(pid_file "$name")"
}

wait_ready() { # component: poll <component>_ready until it answers, the process dies or time runs out
  local name="$1" deadline=$((SECONDS + INFRA_START_TIMEOUT))
  until "${name}_ready" >/dev/null 2>&1; do
    if ! our_pid "$name" >/dev/null; then
      log "last lines of $(log_file "$name"):"
      tail -n 15 "$(log_file "$name")" >&2 || true
      die "$name exited during start-up (full log: $(log_file "$name"))"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "last lines of $(log_file "$name"):"
      tail -n 15 "$(log_file "$name")" >&2 || true
      stop_component "$name"
      die "$name did not answer within ${INFRA_START_TIMEOUT}s (full log: $(log_file "$name"))"
    fi
    sleep 0.3
  done
}

stop_component() { # component
  local pid; pid="$(our_pid "$1")" || return 0
  log "stopping $1 (pid $pid)"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
  local i
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$1 did not stop within 20s; killing it"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$(pid_file "$1")"
}
