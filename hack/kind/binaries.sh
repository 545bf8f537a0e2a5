#!/usr/bin/env bash
# Builds every program the kind node and its images need, from the Go module proxy (and the
# pause container from the Kubernetes module's own C source), into $TIMEDEAL_CACHE/kind.
# Each product is kept under a name carrying its version, so a second run builds nothing.
#
#   hack/kind/binaries.sh        build what is missing, print where everything is
set -euo pipefail
# shellcheck source=hack/kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# `go install module/path@version`: the module's own go.mod and go.sum decide the dependencies
# (none of these modules has replace directives, so no wrapper module is needed).
go_install() { # name package version [ldflags]
  local name="$1" package="$2" version="$3" ldflags="${4:-}" dest="$KIND_TOOLS_DIR/$1-$3" started=$SECONDS
  [ -x "$dest" ] && return 0
  say "building $name $version from the Go module proxy"
  local gobin; gobin="$(mktemp -d "$KIND_TOOLS_DIR/.gobin.XXXXXX")"
  CGO_ENABLED=0 GOBIN="$gobin" GOFLAGS="-trimpath -buildvcs=false" \
    nice -n 19 "$(go_bin)" install -ldflags "-s -w $ldflags" "$package@$version" >&2 ||
    { rm -rf "$gobin"; die "go install $package@$version failed"; }
  mv "$gobin/$(basename "${package}")" "$dest" && rm -rf "$gobin"
  say "built $name in $(elapsed "$started")"
}

# The pause container: Kubernetes' own pause.c, linked statically so the image needs nothing else.
build_pause() {
  local dest="$KIND_TOOLS_DIR/pause-$PAUSE_VERSION" src
  [ -x "$dest" ] && return 0
  command -v gcc >/dev/null || apt_install gcc libc6-dev
  src="$("$(go_bin)" mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -f "$src/build/pause/linux/pause.c" ] || die "no build/pause/linux/pause.c in k8s.io/kubernetes@$KUBE_VERSION"
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-timedeal" -o "$dest.partial" "$src/build/pause/linux/pause.c" ||
    die "compiling pause failed (gcc and libc6-dev's static libc are needed)"
  strip "$dest.partial" && mv "$dest.partial" "$dest"
}

main() {
  local started=$SECONDS
  mkdir -p "$KIND_TOOLS_DIR"
  go_install kind sigs.k8s.io/kind "$KIND_VERSION"
  go_install crictl sigs.k8s.io/cri-tools/cmd/crictl "$CRICTL_VERSION" \
    "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION"
  build_pause
  [ -x "$ETCD_BIN" ] || nice -n 19 "$REPO_ROOT/hack/kube/build.sh" etcd "$(dirname "$ETCD_BIN")"
  [ -x "$KUBE_BIN_DIR/kube-proxy" ] || nice -n 19 "$REPO_ROOT/hack/kube/build.sh" node "$KUBE_BIN_DIR"
  [ -x "$KUBE_BIN_DIR/kube-apiserver" ] || {
    [ -x "$TIMEDEAL_CACHE/kube-$KUBE_VERSION/kube-apiserver" ] ||
      nice -n 19 "$REPO_ROOT/hack/kube/build.sh" kube-apiserver "$TIMEDEAL_CACHE/kube-$KUBE_VERSION"
    ln -f "$TIMEDEAL_CACHE/kube-$KUBE_VERSION/kube-apiserver" "$KUBE_BIN_DIR/kube-apiserver" 2>/dev/null ||
      cp "$TIMEDEAL_CACHE/kube-$KUBE_VERSION/kube-apiserver" "$KUBE_BIN_DIR/kube-apiserver"
  }
  go_install coredns github.com/coredns/coredns "$COREDNS_VERSION" \
    "-X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION"
  go_install metrics-server sigs.k8s.io/metrics-server/cmd/metrics-server "$METRICS_SERVER_VERSION" \
    "-X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION"
  go_install local-path-provisioner github.com/rancher/local-path-provisioner "$LOCAL_PATH_VERSION" \
    "-X main.VERSION=$LOCAL_PATH_VERSION"
  ln -sfn "$KIND_BIN" "$TIMEDEAL_CACHE/bin/kind"
  say "programs ready in $(elapsed "$started") (kind, crictl, pause, etcd, Kubernetes $KUBE_VERSION, CoreDNS, metrics-server, local-path-provisioner)"
}

# Concurrent runs (kind-up and e2e started together) wait for each other instead of building twice.
mkdir -p "$KIND_CACHE"
exec 9>"$KIND_CACHE/.binaries.lock"
flock 9
main "$@"
