#!/usr/bin/env bash
# `make kind-up`: a one-node kind cluster named $KIND_CLUSTER (default timedeal) with Service
# networking, DNS, a default StorageClass and metrics-server, reachable with the kubeconfig
# .state/kind/kubeconfig. Builds the node image on first use (tens of minutes; see README.md).
set -euo pipefail
# shellcheck source=hack/kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=hack/kind/host.sh
source "$KIND_DIR/host.sh"

KIND_API_PORT="${TIMEDEAL_KIND_API_PORT:-16443}"
KIND_READY_TIMEOUT="${TIMEDEAL_KIND_READY_TIMEOUT:-300}"

validate_settings() {
  local name value
  for name in KIND_API_PORT KIND_NODEPORT_FIRST KIND_NODEPORT_COUNT KIND_READY_TIMEOUT; do
    value="${!name}"
    [[ "$value" =~ ^[0-9]+$ ]] || die "invalid setting TIMEDEAL_${name#KIND_}: '$value' is not a number"
  done
  [ "$KIND_API_PORT" -lt 32768 ] || die "TIMEDEAL_KIND_API_PORT=$KIND_API_PORT: choose a port below 32768"
  [ "$KIND_NODEPORT_FIRST" -ge 30000 ] && [ $((KIND_NODEPORT_FIRST + KIND_NODEPORT_COUNT - 1)) -lt 32768 ] ||
    die "TIMEDEAL_KIND_NODEPORT_FIRST/COUNT: the NodePorts must lie within 30000-32767"
}

cluster_exists() { kind_cmd get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; }

kind_config() { # node-image
  local port
  cat <<YAML
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  apiServerAddress: 127.0.0.1
  apiServerPort: $KIND_API_PORT
  # The node image carries a bridge CNI configuration (kindnetd is not published as a module).
  disableDefaultCNI: true
  kubeProxyMode: iptables
nodes:
  - role: control-plane
    image: $1
    extraPortMappings:
YAML
  for ((port = KIND_NODEPORT_FIRST; port < KIND_NODEPORT_FIRST + KIND_NODEPORT_COUNT; port++)); do
    printf '      - { containerPort: %d, hostPort: %d, listenAddress: 127.0.0.1, protocol: TCP }\n' "$port" "$port"
  done
  cat <<YAML
kubeadmConfigPatches:
  # This machine has cgroup v1 only; kubelets from 1.35 on refuse it unless told otherwise.
  - |
    kind: KubeletConfiguration
    failCgroupV1: false
YAML
  if [ -z "$KIND_NODE_IMAGE_OVERRIDE" ]; then
    cat <<YAML
  # etcd is the release hack/kube builds, not the one kubeadm defaults to.
  - |
    kind: ClusterConfiguration
    etcd:
      local:
        imageTag: "${ETCD_VERSION#v}-0"
YAML
  fi
}

metrics_server_manifest() {
  local dir
  dir="$("$(go_bin)" mod download -json "sigs.k8s.io/metrics-server@$METRICS_SERVER_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  # The kubelet's serving certificate in kind is self-signed, hence --kubelet-insecure-tls.
  kubectl kustomize "$dir/manifests/base" |
    sed -e "s|image: .*metrics-server:.*|image: localhost/timedeal/metrics-server:$METRICS_SERVER_VERSION|" \
      -e 's|^\( *\)- --cert-dir=/tmp|&\n\1- --kubelet-insecure-tls|'
}

wait_ready() {
  local kc=(kubectl --kubeconfig "$KIND_KUBECONFIG")
  "${kc[@]}" wait --for=condition=Ready node --all --timeout="${KIND_READY_TIMEOUT}s" >/dev/null ||
    die "the node did not become Ready (kubectl --kubeconfig $KIND_KUBECONFIG describe node)"
  "${kc[@]}" -n kube-system rollout status deployment/coredns --timeout="${KIND_READY_TIMEOUT}s" >/dev/null ||
    die "CoreDNS did not become available"
  "${kc[@]}" -n local-path-storage rollout status deployment/local-path-provisioner --timeout="${KIND_READY_TIMEOUT}s" >/dev/null ||
    die "the storage provisioner did not become available"
  "${kc[@]}" -n kube-system rollout status deployment/metrics-server --timeout="${KIND_READY_TIMEOUT}s" >/dev/null ||
    die "metrics-server did not become available"
}

main() {
  local started=$SECONDS image
  validate_settings
  host_packages
  "$KIND_DIR/binaries.sh"
  "$REPO_ROOT/hack/kube/tools.sh" >/dev/null || die "installing kubectl and helm failed (hack/kube/tools.sh)"
  image="$("$KIND_DIR/node-image.sh")"
  mkdir -p "$KIND_STATE"
  if cluster_exists; then
    say "cluster $KIND_CLUSTER exists already"
    kind_cmd export kubeconfig --name "$KIND_CLUSTER" --kubeconfig "$KIND_KUBECONFIG" >/dev/null 2>&1
  else
    record_host
    kind_config "$image" >"$KIND_STATE/config.yaml"
    say "creating cluster $KIND_CLUSTER from $image"
    # `--wait 0`: readiness is checked below, piece by piece, with clearer messages.
    kind_cmd create cluster --name "$KIND_CLUSTER" --config "$KIND_STATE/config.yaml" \
      --kubeconfig "$KIND_KUBECONFIG" --retain=false >&2 ||
      die "kind create cluster failed (logs: $(kind_cmd export logs --name "$KIND_CLUSTER" 2>/dev/null | tail -1))"
    # The kubelet has started: put back the host settings it rewrote.
    restore_sysctls $KUBELET_SYSCTLS
    metrics_server_manifest | kubectl --kubeconfig "$KIND_KUBECONFIG" apply -f - >/dev/null ||
      die "applying metrics-server failed"
  fi
  wait_ready
  restore_sysctls $KUBELET_SYSCTLS
  say "cluster $KIND_CLUSTER ready in $(elapsed "$started") (Kubernetes $KUBE_VERSION)"
  say "  export KUBECONFIG=$KIND_KUBECONFIG"
  say "  NodePorts $KIND_NODEPORT_FIRST-$((KIND_NODEPORT_FIRST + KIND_NODEPORT_COUNT - 1)) answer on 127.0.0.1; make kind-down removes it all"
}

main "$@"
