# etcd, the store behind the local Kubernetes API server (component kube), built from the
# published etcd server module (hack/kube/etcd). One member, plain HTTP on loopback only.
# Not in the default set: `hack/infra.sh up etcd kube` (kube starts it on its own too).
etcd_PORT="${TIMEDEAL_ETCD_PORT:-2379}"
etcd_PORT_SETTING=TIMEDEAL_ETCD_PORT
ETCD_PEER_PORT="${TIMEDEAL_ETCD_PEER_PORT:-2380}"
ETCD_VERSION="$("$REPO_ROOT/hack/kube/build.sh" version etcd)"
ETCD_BIN="$TIMEDEAL_CACHE/etcd-$ETCD_VERSION/etcd"

etcd_install() {
  command -v curl >/dev/null || apt_install curl ca-certificates
  [ -x "$ETCD_BIN" ] && return 0
  "$REPO_ROOT/hack/kube/build.sh" etcd "$(dirname "$ETCD_BIN")" || die "etcd: building etcd $ETCD_VERSION failed"
}

etcd_start() {
  validate_port TIMEDEAL_ETCD_PEER_PORT "$ETCD_PEER_PORT"
  ensure_port_free etcd "$ETCD_PEER_PORT" TIMEDEAL_ETCD_PEER_PORT
  local data client peer
  data="$(data_dir etcd)"
  client="http://$INFRA_HOST:$etcd_PORT"
  peer="http://$INFRA_HOST:$ETCD_PEER_PORT"
  mkdir -p "$data" && chmod 700 "$data"
  # The --initial-* settings only matter the first time; afterwards the member's data wins.
  start_daemon etcd "$ETCD_BIN" --name timedeal --data-dir "$data" \
    --listen-client-urls "$client" --advertise-client-urls "$client" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "timedeal=$peer" --initial-cluster-state new --initial-cluster-token timedeal-local \
    --log-level=warn
}

etcd_ready() { curl -fsS --max-time 2 "http://$INFRA_HOST:$etcd_PORT/health" 2>/dev/null | grep -q '"health":"true"'; }
etcd_version() { echo "${ETCD_VERSION#v}"; }
etcd_address() { echo "$INFRA_HOST:$etcd_PORT"; }
etcd_env() { echo "ETCD_ENDPOINTS=http://$INFRA_HOST:$etcd_PORT"; }
