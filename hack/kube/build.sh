#!/usr/bin/env bash
# Builds kube-apiserver or etcd from the wrapper modules beside this script, into a folder.
#
#   hack/kube/build.sh kube-apiserver DIR    the API server of hack/kube/apiserver/go.mod
#   hack/kube/build.sh etcd DIR              the etcd server of hack/kube/etcd/go.mod
#   hack/kube/build.sh node DIR              kubelet, kubeadm, kubectl, kube-controller-manager,
#                                            kube-scheduler and kube-proxy of hack/kube/node/go.mod
#   hack/kube/build.sh version kube|etcd     print the pinned version (v1.37.2, v3.7.3)
#
# The binary is written next to DIR first (DIR.partial) and moved into place only once the
# build succeeded, so an interrupted build never leaves a half-written binary in the cache.
# `go install` cannot be used: it ignores the replace directives the API server needs.
set -euo pipefail
KUBE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

say() { printf '[kube] %s\n' "$*" >&2; }
fail() { printf '[kube] error: %s\n' "$*" >&2; exit 1; }

# The version a wrapper requires, read from its go.mod (one source of truth).
pinned() { # go.mod module-path
  awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$1"
}
kube_version() { pinned "$KUBE_DIR/apiserver/go.mod" k8s.io/kubernetes; }
etcd_version() { pinned "$KUBE_DIR/etcd/go.mod" go.etcd.io/etcd/server/v3; }

go_bin() {
  if command -v go >/dev/null; then command -v go
  elif [ -x /usr/local/go/bin/go ]; then echo /usr/local/go/bin/go
  else fail "Go is needed to build the API server and etcd (Go 1.26 or newer; see hack/kube/README.md)"
  fi
}

build() { # module-dir binary-name dest-dir ldflags [package]
  local src="$1" name="$2" dest="$3" ldflags="$4" package="${5:-.}" go started=$SECONDS
  go="$(go_bin)"
  mkdir -p "$dest.partial"
  # Modules come from the module proxy as pinned by go.mod/go.sum; nothing is rewritten.
  (cd "$src" && CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -trimpath -buildvcs=false -mod=readonly" \
    "$go" build -ldflags "-s -w $ldflags" -o "$dest.partial/$name" "$package") >&2 ||
    fail "go build of $name failed"
  say "built $name in $((SECONDS - started))s"
}

stamp_kube() { # version: what kubectl version and /version report
  local version="$1" major minor date
  major="$(echo "${version#v}" | cut -d. -f1)"
  minor="$(echo "${version#v}" | cut -d. -f2)"
  date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  local pkg flags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitCommit= -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  echo "$flags"
}

case "${1:-}" in
  version)
    case "${2:-}" in
      kube) kube_version ;;
      etcd) etcd_version ;;
      *) fail "usage: $0 version kube|etcd" ;;
    esac
    ;;
  kube-apiserver)
    dest="${2:?usage: $0 kube-apiserver DIR}"
    version="$(kube_version)"
    say "building kube-apiserver $version from the Go module proxy (a few minutes the first time)"
    build "$KUBE_DIR/apiserver" kube-apiserver "$dest" "$(stamp_kube "$version")"
    rm -rf "$dest" && mv "$dest.partial" "$dest"
    ;;
  etcd)
    dest="${2:?usage: $0 etcd DIR}"
    version="$(etcd_version)"
    say "building etcd $version from the Go module proxy"
    build "$KUBE_DIR/etcd" etcd "$dest" "-X go.etcd.io/etcd/api/v3/version.GitSHA=$version"
    rm -rf "$dest" && mv "$dest.partial" "$dest"
    ;;
  node)
    dest="${2:?usage: $0 node DIR}"
    version="$(kube_version)"
    node_version="$(pinned "$KUBE_DIR/node/go.mod" k8s.io/kubernetes)"
    [ "$node_version" = "$version" ] ||
      fail "hack/kube/node/go.mod pins k8s.io/kubernetes $node_version, hack/kube/apiserver $version: change them together"
    say "building the node programs of Kubernetes $version (kubelet is the slow one; 15-25 minutes cold)"
    # One at a time, each kept once built, so an interrupted run resumes where it stopped.
    mkdir -p "$dest.partial"
    for name in kubelet kubeadm kubectl kube-controller-manager kube-scheduler kube-proxy; do
      [ -x "$dest.partial/$name" ] && continue
      build "$KUBE_DIR/node" "$name" "$dest" "$(stamp_kube "$version")" "k8s.io/kubernetes/cmd/$name"
    done
    rm -rf "$dest" && mv "$dest.partial" "$dest"
    ;;
  *) fail "usage: $0 kube-apiserver|etcd|node DIR, or $0 version kube|etcd" ;;
esac
