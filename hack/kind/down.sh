#!/usr/bin/env bash
# `make kind-down`: deletes the kind cluster and puts the host back as kind-up found it: the
# kind network and its bridge, the firewall rules made for them, the host settings the
# kubelet and podman's networking changed. Images and build products stay cached.
set -euo pipefail
# shellcheck source=hack/kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=hack/kind/host.sh
source "$KIND_DIR/host.sh"

main() {
  local started=$SECONDS bridge="" subnet=""
  [ -f "$KIND_CONTAINERS_CONF" ] && export CONTAINERS_CONF="$KIND_CONTAINERS_CONF"
  if [ -x "$KIND_BIN" ] && kind_cmd get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
    say "deleting cluster $KIND_CLUSTER"
    kind_cmd delete cluster --name "$KIND_CLUSTER" --kubeconfig "$KIND_KUBECONFIG" >&2 || die "kind delete cluster failed"
  fi
  if command -v podman >/dev/null && podman network exists kind 2>/dev/null; then
    bridge="$(podman network inspect kind --format '{{.NetworkInterface}}' 2>/dev/null || true)"
    subnet="$(podman network inspect kind --format '{{range .Subnets}}{{.Subnet}} {{end}}' 2>/dev/null | awk '{ print $1 }')"
    # kind makes the network; it is removed when kind-up made it and no other container uses it.
    if [ ! -f "$HOST_RECORD/had-kind-network" ] && [ -z "$(podman ps -aq --filter network=kind)" ]; then
      podman network rm kind >/dev/null || say "could not remove the podman network kind"
    fi
  fi
  if [ -n "$bridge" ] && ip link show "$bridge" >/dev/null 2>&1 && ! podman network exists kind 2>/dev/null; then
    as_root ip link delete "$bridge" || say "could not remove the interface $bridge"
  fi
  remove_network_rules "$bridge" "$subnet"
  remove_idle_cni_chains
  restore_sysctls $KUBELET_SYSCTLS $NETWORK_SYSCTLS
  if [ -f "$HOST_RECORD/done" ] && [ ! -f "$HOST_RECORD/had-lib-modules" ] && [ -d /lib/modules ]; then
    as_root rmdir /lib/modules 2>/dev/null || true
  fi
  if host_differences; then
    as_root rm -rf "$HOST_RECORD"
  else
    say "kept the record in $HOST_RECORD to compare with; the lines above are what remains"
  fi
  rm -f "$KIND_KUBECONFIG"
  say "cluster $KIND_CLUSTER removed in $(elapsed "$started")"
}

main "$@"
