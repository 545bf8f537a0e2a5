# Shared settings and helpers of the kind scripts (sourced, not run). See hack/kind/README.md.
# shellcheck shell=bash

KIND_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$KIND_DIR/../.." && pwd)"
TIMEDEAL_CACHE="${TIMEDEAL_CACHE:-$HOME/.cache/timedeal}"
TIMEDEAL_STATE_DIR="${TIMEDEAL_STATE_DIR:-$REPO_ROOT/.state}"

# Versions: Kubernetes and etcd come from hack/kube's wrapper modules (one source of truth).
KIND_VERSION=v0.33.0
KUBE_VERSION="$("$REPO_ROOT/hack/kube/build.sh" version kube)"
ETCD_VERSION="$("$REPO_ROOT/hack/kube/build.sh" version etcd)"
COREDNS_VERSION=v1.14.6            # what kubeadm 1.37 deploys (CoreDNSVersion)
PAUSE_VERSION=3.10.2               # what kubeadm 1.37 asks for (PauseVersion)
CRICTL_VERSION=v1.37.0             # sigs.k8s.io/cri-tools
METRICS_SERVER_VERSION=v0.9.0      # sigs.k8s.io/metrics-server
LOCAL_PATH_VERSION=v0.0.30         # github.com/rancher/local-path-provisioner
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR="${TIMEDEAL_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

KIND_CACHE="$TIMEDEAL_CACHE/kind"
KIND_BIN="$KIND_CACHE/bin/kind-$KIND_VERSION"
KUBE_BIN_DIR="$KIND_CACHE/kubernetes-$KUBE_VERSION"
ETCD_BIN="$TIMEDEAL_CACHE/etcd-$ETCD_VERSION/etcd"
KIND_TOOLS_DIR="$KIND_CACHE/bin"
KIND_IMAGES_DIR="$KIND_CACHE/images"     # image archives preloaded into the node image
KIND_STATE="$TIMEDEAL_STATE_DIR/kind"
KIND_CLUSTER="${TIMEDEAL_KIND_CLUSTER:-timedeal}"
KIND_KUBECONFIG="$KIND_STATE/kubeconfig"
# NodePorts published on the host, same number on both sides, loopback only (below 32768,
# where the ephemeral range starts). The platform's gateway is the first.
KIND_NODEPORT_FIRST="${TIMEDEAL_KIND_NODEPORT_FIRST:-30080}"
KIND_NODEPORT_COUNT="${TIMEDEAL_KIND_NODEPORT_COUNT:-10}"
# Where Docker and a registry exist: TIMEDEAL_KIND_PROVIDER=docker and
# TIMEDEAL_KIND_NODE_IMAGE=kindest/node:v1.37.2 use kind's published node image instead.
KIND_PROVIDER="${TIMEDEAL_KIND_PROVIDER:-podman}"
KIND_NODE_IMAGE_OVERRIDE="${TIMEDEAL_KIND_NODE_IMAGE:-}"

export KIND_EXPERIMENTAL_PROVIDER="$KIND_PROVIDER"
export PATH="$TIMEDEAL_CACHE/bin:$PATH"

say() { printf '[kind] %s\n' "$*" >&2; }
die() { printf '[kind] error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root for: $* (kind's podman provider runs rootful here)"
  fi
}

go_bin() {
  if command -v go >/dev/null; then command -v go
  elif [ -x /usr/local/go/bin/go ]; then echo /usr/local/go/bin/go
  else die "Go 1.26 or newer is needed to build kind and the node programs (see hack/kube/README.md)"
  fi
}

apt_updated=0
apt_install() { # package...: installs those not installed yet
  local missing=() p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "apt-get not found: install ${missing[*]} with your package manager"
  if [ "$apt_updated" = 0 ]; then
    as_root apt-get update -qq >/dev/null || die "apt-get update failed"
    apt_updated=1
  fi
  say "installing ${missing[*]} (Debian packages)"
  # policy-rc.d 101 keeps the packages from starting system-wide daemons (containerd).
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e "$policy" ]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' >$policy && chmod +x $policy" && created=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  local rc=$?
  [ "$created" = 1 ] && as_root rm -f "$policy"
  [ "$rc" = 0 ] || die "apt-get install ${missing[*]} failed"
}

# Time spent, for the summary line of each script.
elapsed() { local s=$((SECONDS - $1)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

kind_cmd() { "$KIND_BIN" "$@"; }

# podman reads this file instead of the system's (nothing under /etc is changed): the
# capability bounding set here lacks CAP_SYS_RESOURCE, so the default rlimits podman applies
# to containers cannot be set ("error setting rlimit type 7"); these are within the host's.
# runc, not crun: crun refuses the hybrid cgroup layout here ("cgroups in hybrid mode not
# supported") that kind's --cgroupns=private node gets.
KIND_CONTAINERS_CONF="$KIND_STATE/containers.conf"
write_containers_conf() {
  local nofile nproc
  nofile="$(ulimit -Hn)"; nproc="$(ulimit -Hu)"
  [ "$nofile" = unlimited ] && nofile=1048576
  [ "$nproc" = unlimited ] && nproc=1048576
  [ "$nproc" -gt 32768 ] && nproc=32768
  mkdir -p "$KIND_STATE"
  cat >"$KIND_CONTAINERS_CONF.tmp" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
CONF
  mv "$KIND_CONTAINERS_CONF.tmp" "$KIND_CONTAINERS_CONF"
  export CONTAINERS_CONF="$KIND_CONTAINERS_CONF"
}

# What the host needs for kind's podman provider and for building the node image.
host_packages() {
  apt_install podman debootstrap containerd runc busybox-static iptables uidmap
  # kind's podman provider bind-mounts /lib/modules; a kernel without modules has none.
  [ -d /lib/modules ] || as_root mkdir -p /lib/modules
  write_containers_conf
}
