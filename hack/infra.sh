#!/usr/bin/env bash
# Local infrastructure for development and tests: real servers, installed from packages,
# listening on loopback, with logs and data under one state folder.
#
#   hack/infra.sh up [component...]      install what is missing, start, wait until each answers
#   hack/infra.sh down [component...]    stop only the processes this script started
#   hack/infra.sh status                 what runs where, with versions
#   hack/infra.sh logs [component...]    follow the logs
#   hack/infra.sh env                    the settings services use to reach the servers
#
# Components: mariadb redis kafka ferretdb etcd kube (default set, without etcd and kube:
# $TIMEDEAL_INFRA_COMPONENTS).
set -uo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=hack/infra/lib.sh
source "$REPO_ROOT/hack/infra/lib.sh"

ALL_COMPONENTS="mariadb redis kafka ferretdb"
for component_file in "$REPO_ROOT"/hack/infra/*.sh; do
  name="$(basename "$component_file" .sh)"
  [ "$name" = lib ] && continue
  # shellcheck disable=SC1090
  source "$component_file"
  case " $ALL_COMPONENTS " in *" $name "*) ;; *) ALL_COMPONENTS+=" $name" ;; esac
done
DEFAULT_COMPONENTS="${TIMEDEAL_INFRA_COMPONENTS:-mariadb redis kafka ferretdb}"

selected() { # components named on the command line, or the default set
  local c
  if [ "$#" -eq 0 ]; then set -- $DEFAULT_COMPONENTS; fi
  for c in "$@"; do
    case " $ALL_COMPONENTS " in *" $c "*) ;; *) die "unknown component '$c' (known: $ALL_COMPONENTS)" ;; esac
  done
  echo "$@"
}

write_env_file() {
  local c out="$TIMEDEAL_STATE_DIR/infra.env"
  mkdir -p "$TIMEDEAL_STATE_DIR"
  {
    echo "# Written by hack/infra.sh: how services and tests reach the local servers."
    for c in $ALL_COMPONENTS; do
      if our_pid "$c" >/dev/null; then "${c}_env"; fi
    done
  } >"$out.tmp" && mv "$out.tmp" "$out"
}

up_one() {
  local c="$1" port_var="${1}_PORT" setting_var="${1}_PORT_SETTING"
  validate_port "${!setting_var}" "${!port_var}"
  if our_pid "$c" >/dev/null; then
    if "${c}_ready" >/dev/null 2>&1; then
      log "$c already running on $("${c}_address")"
      return 0
    fi
    wait_ready "$c"
    return 0
  fi
  ensure_port_free "$c" "${!port_var}" "${!setting_var}"
  "${c}_install"
  log "starting $c on $("${c}_address")"
  "${c}_start"
  wait_ready "$c"
  if declare -F "${c}_after_start" >/dev/null; then "${c}_after_start"; fi
}

print_table() {
  local c pid state
  printf '%-10s %-10s %-22s %-8s %s\n' COMPONENT VERSION ADDRESS PID STATE
  for c in $ALL_COMPONENTS; do
    if pid="$(our_pid "$c")"; then
      if "${c}_ready" >/dev/null 2>&1; then state=ready; else state=starting; fi
    else
      pid=-; state=stopped
    fi
    printf '%-10s %-10s %-22s %-8s %s\n' "$c" "$("${c}_version" 2>/dev/null || echo '?')" "$("${c}_address")" "$pid" "$state"
  done
  printf 'state folder: %s (logs in logs/, data in data/, settings in infra.env)\n' "$TIMEDEAL_STATE_DIR"
}

command="${1:-}"
[ "$#" -gt 0 ] && shift
case "$command" in
  up)
    components="$(selected "$@")" || exit 1
    mkdir -p "$TIMEDEAL_STATE_DIR/run" "$TIMEDEAL_STATE_DIR/logs" "$TIMEDEAL_STATE_DIR/data"
    for c in $components; do up_one "$c"; done
    write_env_file
    print_table
    ;;
  down)
    components="$(selected "${@:-$ALL_COMPONENTS}")" || exit 1
    # Stop in reverse start order whatever order they were named in (kube before its etcd).
    reversed=""
    for c in $ALL_COMPONENTS; do
      case " $components " in *" $c "*) reversed="$c $reversed" ;; esac
    done
    for c in $reversed; do stop_component "$c"; done
    write_env_file
    ;;
  status) print_table ;;
  logs)
    components="$(selected "${@:-$ALL_COMPONENTS}")" || exit 1
    files=()
    for c in $components; do [ -f "$(log_file "$c")" ] && files+=("$(log_file "$c")"); done
    [ "${#files[@]}" -gt 0 ] || die "no logs yet under $TIMEDEAL_STATE_DIR/logs"
    exec tail -n 50 -F "${files[@]}"
    ;;
  env) cat "$TIMEDEAL_STATE_DIR/infra.env" 2>/dev/null || die "nothing started yet: run hack/infra.sh up" ;;
  *) echo "usage: hack/infra.sh up|down|status|logs|env [component...]" >&2; exit 2 ;;
esac
