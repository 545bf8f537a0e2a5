#!/usr/bin/env bash
# Loads every image of the platform and its development infrastructure into the kind cluster:
# `hack/images/build.sh list` builds what is missing and names each image with its archive;
# each archive goes in with `kind load image-archive`, unless the node holds that very image.
#
#   hack/kind/load-images.sh     (the cluster of make kind-up must be running)
set -euo pipefail
# shellcheck source=hack/kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NODE="$KIND_CLUSTER-control-plane"

# The image id (its config's digest) an archive holds, and the one the node has for the name.
archive_id() { tar -xOf "$1" manifest.json | jq -r '.[0].Config' | sed 's/^blobs\/sha256\///; s/\.json$//; s/^sha256://'; }
node_id() {
  podman exec "$NODE" crictl inspecti -o go-template --template '{{.status.id}}' "$1" 2>/dev/null | sed 's/^sha256://'
}

main() {
  local started=$SECONDS image archive loaded=0 kept=0 list
  [ -f "$KIND_CONTAINERS_CONF" ] && export CONTAINERS_CONF="$KIND_CONTAINERS_CONF"
  kind_cmd get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER" || die "no cluster $KIND_CLUSTER: run make kind-up first"
  list="$("$REPO_ROOT/hack/images/build.sh" list)" || die "building the images failed (hack/images/build.sh)"
  while read -r image archive; do
    [ -n "$image" ] || continue
    [ -f "$archive" ] || die "$image: no archive at $archive"
    if [ "$(archive_id "$archive")" = "$(node_id "$image")" ]; then
      kept=$((kept + 1))
      continue
    fi
    say "loading $image ($(du -h "$archive" | cut -f1))"
    kind_cmd load image-archive --name "$KIND_CLUSTER" "$archive" >&2 || die "kind load image-archive $archive failed"
    loaded=$((loaded + 1))
  done <<<"$list"
  say "images: $loaded loaded, $kept already on the node, in $(elapsed "$started")"
}

main "$@"
