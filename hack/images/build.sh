#!/usr/bin/env bash
# `make images`: builds the platform's image and the development infrastructure's images with
# podman and saves each as an archive under $TIMEDEAL_CACHE/images/archives (what
# `kind load image-archive` takes). An archive is named by a hash of its inputs, so an
# unchanged image is neither rebuilt nor saved again.
#
#   hack/images/build.sh [all|app|infra]   build what is missing (all by default)
#   hack/images/build.sh list              print "<image> <archive>" for every image of the
#                                          current sources, building what is missing
#
# TIMEDEAL_BASE=local (default) builds on the base images hack/images/base.sh makes from
# Debian packages and the npm registry; TIMEDEAL_BASE=public uses docker.io's node and debian
# images instead (needs a registry).
set -euo pipefail
# shellcheck source=hack/images/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ARCHIVES="$IMAGES_CACHE/archives"
APP_VERSION="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$REPO_ROOT/charts/timedeal/Chart.yaml")"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$REPO_ROOT/hack/kafka/pom.xml")"
FERRETDB_VERSION="$(sed -n 's/^FERRETDB_VERSION=//p' "$REPO_ROOT/hack/infra/ferretdb.sh")"
MARIADB_TAG=10.11-bookworm # Debian bookworm's MariaDB release line
REDIS_TAG=7.0-bookworm     # Debian bookworm's Redis release line

base_images() {
  case "${TIMEDEAL_BASE:-local}" in
    local)
      local names
      names="$("$REPO_ROOT/hack/images/base.sh")" || fail "building the local base images failed"
      DEBIAN_IMAGE="$(sed -n 1p <<<"$names")"
      NODE_IMAGE="$(sed -n 2p <<<"$names")"
      PULL=never ;;
    public)
      DEBIAN_IMAGE=docker.io/library/debian:bookworm-slim
      NODE_IMAGE="docker.io/library/node:$NODE_VERSION-bookworm-slim"
      PULL=missing ;;
    *) fail "TIMEDEAL_BASE='${TIMEDEAL_BASE}': expected local or public" ;;
  esac
}

# Builds (when its archive is missing) and prints "<image> <archive>".
build_one() { # image hash containerfile context [build-arg...]
  local image="$1" hash="$2" file="$3" context="$4"; shift 4
  local archive="$ARCHIVES/$(basename "${image%%:*}")-${image##*:}-$hash.tar"
  if [ ! -f "$archive" ]; then
    say "building $image"
    nice -n 19 podman build --network=host --pull="$PULL" --layers -f "$file" "$@" -t "$image" "$context" >&2 ||
      fail "building $image failed"
    mkdir -p "$ARCHIVES"
    save_archive "$image" "$archive"
    # Older archives of the same image are of no further use.
    find "$ARCHIVES" -name "$(basename "${image%%:*}")-${image##*:}-*.tar" ! -path "$archive" -delete
    say "saved $archive ($(du -h "$archive" | cut -f1))"
  fi
  echo "$image $archive"
}

# The machine's CA bundle, so npm in the build trusts what this machine trusts (a proxy's CA).
ca_bundle() {
  local f
  for f in "${NODE_EXTRA_CA_CERTS:-}" /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
    [ -n "$f" ] && [ -f "$f" ] && { echo "$f"; return 0; }
  done
  fail "no CA bundle found (set NODE_EXTRA_CA_CERTS to one)"
}

build_app() {
  local files
  mapfile -t files < <(cd "$REPO_ROOT" && git ls-files -co --exclude-standard -- package.json package-lock.json .npmrc \
    packages services operator web/package.json web/index.html web/vite.config.ts web/public web/src Containerfile .containerignore hack/images/entrypoint.sh |
    grep -Ev '/(test|dist)/' | while read -r f; do [ -f "$f" ] && echo "$f"; done)
  build_one "localhost/timedeal/timedeal:$APP_VERSION" "$(inputs_hash "$NODE_IMAGE" -- "${files[@]}")" \
    "$REPO_ROOT/Containerfile" "$REPO_ROOT" --build-arg "NODE_IMAGE=$NODE_IMAGE" \
    --secret "id=ca-certificates,src=$(ca_bundle)"
}

# Installs a server the way hack/infra.sh does (its <name>_install), without starting it.
infra_install() { # component
  (
    export PATH="$PATH:/usr/local/go/bin"
    # shellcheck disable=SC1090,SC1091
    . "$REPO_ROOT/hack/infra/lib.sh" && . "$REPO_ROOT/hack/infra/$1.sh" && "$1_install"
  ) >&2 || fail "installing $1 as hack/infra.sh does failed"
}

infra_context() { # name files...  (a build context of the Containerfile's folder plus extra files)
  local context="$IMAGES_CACHE/context-$1"; shift
  rm -rf "$context" && mkdir -p "$context"
  cp -a "$@" "$context/"
  echo "$context"
}

build_infra() {
  local infra="$REPO_ROOT/hack/images/infra" context
  # Kafka: the same jars hack/infra.sh resolves from Maven Central.
  local kafka_libs="$TIMEDEAL_CACHE/kafka-$KAFKA_VERSION/libs"
  [ -f "$kafka_libs/kafka_2.13-$KAFKA_VERSION.jar" ] || infra_install kafka
  context="$(infra_context kafka "$infra/kafka.sh" "$REPO_ROOT/hack/kafka/log4j.properties" "$kafka_libs")"
  build_one "localhost/timedeal/kafka:$KAFKA_VERSION" \
    "$(inputs_hash "$DEBIAN_IMAGE" "$(ls "$kafka_libs")" -- hack/images/infra/kafka.Containerfile hack/images/infra/kafka.sh hack/kafka/log4j.properties)" \
    "$infra/kafka.Containerfile" "$context" --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE"
  context="$(infra_context mariadb "$infra/mariadb.sh")"
  build_one "localhost/timedeal/mariadb:$MARIADB_TAG" \
    "$(inputs_hash "$DEBIAN_IMAGE" -- hack/images/infra/mariadb.Containerfile hack/images/infra/mariadb.sh)" \
    "$infra/mariadb.Containerfile" "$context" --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE"
  context="$(infra_context redis "$infra/redis.Containerfile")"
  build_one "localhost/timedeal/redis:$REDIS_TAG" \
    "$(inputs_hash "$DEBIAN_IMAGE" -- hack/images/infra/redis.Containerfile)" \
    "$infra/redis.Containerfile" "$context" --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE"
  # FerretDB: the binary hack/infra.sh builds from the Go module proxy.
  local ferretdb_bin="$TIMEDEAL_CACHE/ferretdb-$FERRETDB_VERSION/ferretdb"
  [ -x "$ferretdb_bin" ] || infra_install ferretdb
  context="$(infra_context ferretdb "$ferretdb_bin")"
  build_one "localhost/timedeal/ferretdb:${FERRETDB_VERSION#v}" \
    "$(inputs_hash "$DEBIAN_IMAGE" "$FERRETDB_VERSION" -- hack/images/infra/ferretdb.Containerfile)" \
    "$infra/ferretdb.Containerfile" "$context" --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE"
}

podman_ready
# One build at a time: `make images` and `make kind-load` may be started side by side.
exec 9>"$IMAGES_CACHE/build.lock"
flock 9
base_images
case "${1:-all}" in
  all | list) build_app; build_infra ;;
  app) build_app ;;
  infra) build_infra ;;
  *) fail "unknown command '$1': expected all, app, infra or list" ;;
esac >"$IMAGES_CACHE/last-build.txt"
if [ "${1:-all}" = list ]; then cat "$IMAGES_CACHE/last-build.txt"; else
  sed 's/^/[images] /' "$IMAGES_CACHE/last-build.txt" >&2
fi
