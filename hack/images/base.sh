#!/usr/bin/env bash
# Builds the local base images for sites without a registry (and for this project's own kind
# cluster), entirely from packages:
#   localhost/timedeal/debian:bookworm        debootstrap --variant=minbase of Debian bookworm
#   localhost/timedeal/node:<node>-bookworm   that, plus Node.js from the npm registry's `node`
#                                             package and npm (for build stages), user node (1000)
# The node image is laid out like the public node:24-bookworm-slim image (node and npm under
# /usr/local, user `node` with uid 1000), so one Containerfile builds on either.
#
#   hack/images/base.sh          build what is missing, then print the two image names
set -euo pipefail
# shellcheck source=hack/images/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEBIAN_IMAGE="localhost/timedeal/debian:$DEBIAN_SUITE"
NODE_IMAGE="localhost/timedeal/node:$NODE_VERSION-$DEBIAN_SUITE"
# ca-certificates: TLS to the mirrors and registries; tini is not needed (node handles signals
# itself in the services, and Kubernetes reaps nothing in a one-process container).
DEBIAN_INCLUDE=ca-certificates

build_debian() {
  local rootfs_archive="$IMAGES_CACHE/rootfs-debian-$DEBIAN_SUITE-$(inputs_hash "$DEBIAN_SUITE" "$DEBIAN_INCLUDE" --).tar"
  if [ ! -f "$rootfs_archive" ]; then
    need_packages debootstrap debootstrap
    local root="$IMAGES_CACHE/rootfs-debian-$DEBIAN_SUITE.partial"
    as_root rm -rf "$root"
    say "debootstrap --variant=minbase $DEBIAN_SUITE (about a minute)"
    nice -n 19 debootstrap --variant=minbase --include="$DEBIAN_INCLUDE" "$DEBIAN_SUITE" "$root" "$DEBIAN_MIRROR" \
      >"$IMAGES_CACHE/debootstrap.log" 2>&1 || fail "debootstrap failed (see $IMAGES_CACHE/debootstrap.log)"
    # What a container image does not need: package caches, lists and logs.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/tmp/*
    printf 'deb %s %s main\ndeb %s %s-updates main\ndeb http://deb.debian.org/debian-security %s-security main\n' \
      "$DEBIAN_MIRROR" "$DEBIAN_SUITE" "$DEBIAN_MIRROR" "$DEBIAN_SUITE" "$DEBIAN_SUITE" >"$root/etc/apt/sources.list"
    # Containers need no docs or man pages; apt in later layers keeps them out too.
    printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n' \
      >"$root/etc/dpkg/dpkg.cfg.d/docker-excludes"
    tar --numeric-owner -C "$root" -cf "$rootfs_archive.partial" . || fail "packing the root filesystem failed"
    mv "$rootfs_archive.partial" "$rootfs_archive"
    rm -rf "$root"
  fi
  if ! image_exists "$DEBIAN_IMAGE"; then
    say "importing $DEBIAN_IMAGE"
    podman import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' \
      "$rootfs_archive" "$DEBIAN_IMAGE" >/dev/null || fail "podman import failed"
  fi
}

build_node() {
  image_exists "$NODE_IMAGE" && return 0
  local context="$IMAGES_CACHE/context-node-$NODE_VERSION"
  rm -rf "$context" && mkdir -p "$context"
  local node_bin
  node_bin="$("$REPO_ROOT/hack/node.sh")"
  cp "$node_bin/node" "$context/node"
  say "fetching npm@$NPM_VERSION from the npm registry"
  (cd "$context" && npm pack --silent "npm@$NPM_VERSION" >/dev/null) || fail "npm pack npm@$NPM_VERSION failed"
  mv "$context"/npm-*.tgz "$context/npm.tgz"
  cat >"$context/Containerfile" <<CONTAINERFILE
FROM $DEBIAN_IMAGE
COPY node /usr/local/bin/node
ADD npm.tgz /usr/local/lib/node_modules/
RUN mv /usr/local/lib/node_modules/package /usr/local/lib/node_modules/npm \\
 && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \\
 && node --version && npm --version
ENV NODE_VERSION=$NODE_VERSION
CMD ["node"]
CONTAINERFILE
  say "building $NODE_IMAGE"
  podman_build -t "$NODE_IMAGE" "$context" >&2 || fail "building $NODE_IMAGE failed"
  rm -rf "$context"
}

podman_ready
build_debian
build_node
echo "$DEBIAN_IMAGE"
echo "$NODE_IMAGE"
