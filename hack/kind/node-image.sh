#!/usr/bin/env bash
# Builds kind's node image for Kubernetes $KUBE_VERSION from Debian packages and the programs
# of hack/kind/binaries.sh, without a registry: a debootstrap root filesystem with kind's own
# node files (from its Go module), the node programs, and every image kubeadm and the add-ons
# use already imported into the node's containerd store.
#
#   hack/kind/node-image.sh      build what is missing; print the node image's name
#
# Products, each cached under $TIMEDEAL_CACHE/kind with its versions in the name:
#   debootstrap-<suite>-<hash>.tar   the Debian root filesystems (node, kube-proxy)
#   images/<name>.tar                one docker-archive per component image
#   node-<version>-<hash>.tar        the finished node root filesystem (imported into podman)
# The hash covers this script and the versions, so changing either builds anew.
set -euo pipefail
# shellcheck source=hack/kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NODE_PACKAGES=systemd,systemd-sysv,dbus,iptables,nftables,iproute2,mount,util-linux,procps,ca-certificates,conntrack,ethtool,socat,containerd,runc,containernetworking-plugins,libseccomp2,kmod,jq,curl,bash,e2fsprogs,pigz
PROXY_PACKAGES=iptables,nftables,conntrack,kmod,ipset
KIND_MODULE_DIR=""

content_hash() { # words...: a short hash of this script, lib.sh and the given words
  { cat "$KIND_DIR/node-image.sh" "$KIND_DIR/lib.sh"; printf '%s\n' "$@"; } | sha256sum | cut -c1-12
}

NODE_KEY="$(content_hash "$KIND_VERSION" "$KUBE_VERSION" "$ETCD_VERSION" "$COREDNS_VERSION" "$PAUSE_VERSION" \
  "$CRICTL_VERSION" "$METRICS_SERVER_VERSION" "$LOCAL_PATH_VERSION" "$NODE_PACKAGES" "$PROXY_PACKAGES")"
NODE_IMAGE="localhost/timedeal/kind-node:$KUBE_VERSION-$NODE_KEY"
NODE_TAR="$KIND_CACHE/node-$KUBE_VERSION-$NODE_KEY.tar"
WORK="$KIND_CACHE/work"

# Component image names: the ones kubeadm asks for, and ours for the add-ons.
IMAGE_PAUSE="registry.k8s.io/pause:$PAUSE_VERSION"
IMAGE_ETCD="registry.k8s.io/etcd:${ETCD_VERSION#v}-0"
IMAGE_COREDNS="registry.k8s.io/coredns/coredns:$COREDNS_VERSION"
IMAGE_KUBE_PROXY="registry.k8s.io/kube-proxy:$KUBE_VERSION"
IMAGE_METRICS_SERVER="localhost/timedeal/metrics-server:$METRICS_SERVER_VERSION"
IMAGE_LOCAL_PATH="localhost/timedeal/local-path-provisioner:$LOCAL_PATH_VERSION"
IMAGE_LOCAL_PATH_HELPER="localhost/timedeal/local-path-helper:busybox-static"

kind_module_dir() {
  [ -n "$KIND_MODULE_DIR" ] && { echo "$KIND_MODULE_DIR"; return; }
  KIND_MODULE_DIR="$("$(go_bin)" mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$KIND_MODULE_DIR/images/base/files" ] || die "sigs.k8s.io/kind@$KIND_VERSION has no images/base/files"
  echo "$KIND_MODULE_DIR"
}

# A Debian root filesystem as a tar, made once per package list.
debootstrap_tar() { # name packages: prints the tar's path
  local name="$1" packages="$2" key tar dir started=$SECONDS
  key="$(printf '%s %s %s' "$DEBIAN_SUITE" "$DEBIAN_MIRROR" "$packages" | sha256sum | cut -c1-12)"
  tar="$KIND_CACHE/debootstrap-$DEBIAN_SUITE-$name-$key.tar"
  if [ ! -f "$tar" ]; then
    dir="$WORK/debootstrap-$name"
    as_root rm -rf "$dir" && mkdir -p "$dir"
    say "debootstrap $DEBIAN_SUITE for the $name image (about a minute)"
    as_root nice -n 19 debootstrap --variant=minbase --include="$packages" "$DEBIAN_SUITE" "$dir" "$DEBIAN_MIRROR" \
      >"$WORK/debootstrap-$name.log" 2>&1 || die "debootstrap failed: see $WORK/debootstrap-$name.log"
    as_root rm -rf "$dir/var/cache/apt/archives/"*.deb "$dir/var/lib/apt/lists/"*
    as_root tar --numeric-owner --xattrs -C "$dir" -cf "$tar.partial" . && mv "$tar.partial" "$tar"
    as_root rm -rf "$dir"
    say "debootstrap $name took $(elapsed "$started")"
  fi
  echo "$tar"
}

# An image with a few files and an entrypoint, FROM scratch, saved as a docker-archive.
scratch_image() { # image archive entrypoint-json [src:dest]...
  local image="$1" archive="$2" entrypoint="$3" ctx spec
  shift 3
  [ -f "$archive" ] && return 0
  ctx="$(mktemp -d "$WORK/ctx.XXXXXX")"
  {
    echo "FROM scratch"
    for spec in "$@"; do
      mkdir -p "$ctx/$(dirname "${spec#*:}")"
      cp -a "${spec%%:*}" "$ctx/${spec#*:}"
      echo "COPY ${spec#*:} ${spec#*:}"
    done
    echo 'ENV PATH=/usr/local/bin:/usr/bin:/bin'
    echo "ENTRYPOINT $entrypoint"
  } >"$ctx/Containerfile"
  podman build -q --network=none -t "$image" -f "$ctx/Containerfile" "$ctx" >/dev/null || die "building $image failed"
  save_image "$image" "$archive"
  rm -rf "$ctx"
}

save_image() { # image archive
  rm -f "$2.partial"
  podman save -q --format docker-archive -o "$2.partial" "$1" || die "saving $1 failed"
  mv "$2.partial" "$2"
  podman rmi -f "$1" >/dev/null 2>&1 || true
}

# The busybox helper the storage provisioner runs to make and remove volume folders.
helper_image() {
  local archive="$KIND_IMAGES_DIR/local-path-helper.tar" ctx app
  [ -f "$archive" ] && return 0
  ctx="$(mktemp -d "$WORK/ctx.XXXXXX")"
  mkdir -p "$ctx/bin"
  cp /bin/busybox "$ctx/bin/busybox"
  for app in $(/bin/busybox --list); do [ "$app" = busybox ] || ln -s busybox "$ctx/bin/$app"; done
  printf 'FROM scratch\nCOPY bin /bin\nENV PATH=/bin\nENTRYPOINT ["/bin/sh"]\n' >"$ctx/Containerfile"
  podman build -q --network=none -t "$IMAGE_LOCAL_PATH_HELPER" -f "$ctx/Containerfile" "$ctx" >/dev/null ||
    die "building $IMAGE_LOCAL_PATH_HELPER failed"
  save_image "$IMAGE_LOCAL_PATH_HELPER" "$archive"
  rm -rf "$ctx"
}

# kube-proxy programs the node's iptables: it needs iptables and conntrack from Debian.
kube_proxy_image() {
  local archive="$KIND_IMAGES_DIR/kube-proxy-$KUBE_VERSION.tar" base dir
  [ -f "$archive" ] && return 0
  base="$(debootstrap_tar kube-proxy "$PROXY_PACKAGES")"
  dir="$WORK/kube-proxy-root"
  as_root rm -rf "$dir" && mkdir -p "$dir"
  as_root tar --numeric-owner -C "$dir" -xf "$base"
  install -m 0755 "$KUBE_BIN_DIR/kube-proxy" "$dir/usr/local/bin/kube-proxy"
  as_root tar --numeric-owner -C "$dir" -cf - . |
    podman import -q --change 'ENTRYPOINT ["/usr/local/bin/kube-proxy"]' \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$IMAGE_KUBE_PROXY" >/dev/null ||
    die "importing the kube-proxy image failed"
  save_image "$IMAGE_KUBE_PROXY" "$archive"
  as_root rm -rf "$dir"
}

component_images() {
  local name
  mkdir -p "$KIND_IMAGES_DIR"
  scratch_image "$IMAGE_PAUSE" "$KIND_IMAGES_DIR/pause-$PAUSE_VERSION.tar" '["/pause"]' \
    "$KIND_TOOLS_DIR/pause-$PAUSE_VERSION:/pause"
  scratch_image "$IMAGE_ETCD" "$KIND_IMAGES_DIR/etcd-$ETCD_VERSION.tar" '["/usr/local/bin/etcd"]' \
    "$ETCD_BIN:/usr/local/bin/etcd"
  for name in kube-apiserver kube-controller-manager kube-scheduler; do
    scratch_image "registry.k8s.io/$name:$KUBE_VERSION" "$KIND_IMAGES_DIR/$name-$KUBE_VERSION.tar" \
      "[\"/usr/local/bin/$name\"]" "$KUBE_BIN_DIR/$name:/usr/local/bin/$name"
  done
  kube_proxy_image
  scratch_image "$IMAGE_COREDNS" "$KIND_IMAGES_DIR/coredns-$COREDNS_VERSION.tar" '["/coredns"]' \
    "$KIND_TOOLS_DIR/coredns-$COREDNS_VERSION:/coredns"
  scratch_image "$IMAGE_METRICS_SERVER" "$KIND_IMAGES_DIR/metrics-server-$METRICS_SERVER_VERSION.tar" \
    '["/metrics-server"]' "$KIND_TOOLS_DIR/metrics-server-$METRICS_SERVER_VERSION:/metrics-server"
  scratch_image "$IMAGE_LOCAL_PATH" "$KIND_IMAGES_DIR/local-path-provisioner-$LOCAL_PATH_VERSION.tar" \
    '["/usr/bin/local-path-provisioner"]' \
    "$KIND_TOOLS_DIR/local-path-provisioner-$LOCAL_PATH_VERSION:/usr/bin/local-path-provisioner"
  helper_image
}

# kind's default storage manifest (from its module), pointed at the images built here.
storage_manifest() {
  sed -n '/^const defaultStorageManifest = `/,/^`/p' "$(kind_module_dir)/pkg/build/nodeimage/const_storage.go" |
    sed '1d;$d' |
    sed "s|\` + storageProvisionerImage + \`|$IMAGE_LOCAL_PATH|; s|\` + storageHelperImage + \`|$IMAGE_LOCAL_PATH_HELPER|"
}

# The steps of kind's images/base/Dockerfile, replayed on a Debian root filesystem.
kind_base_files() { # root
  local root="$1" files
  files="$(kind_module_dir)/images/base/files"
  install -m 0755 "$files"/usr/local/bin/* "$root/usr/local/bin/"
  mkdir -p "$root/kind/bin" "$root/kind/manifests" "$root/etc/kubernetes/manifests" "$root/LICENSES"
  cp -r "$files/kind/." "$root/kind/" && chmod 0755 "$root/kind" "$root/kind/bin" "$root"/kind/bin/*
  install -m 0644 "$files/etc/crictl.yaml" "$root/etc/crictl.yaml"
  install -m 0644 "$files"/etc/default/* "$root/etc/default/"
  install -m 0644 "$files"/etc/sysctl.d/* "$root/etc/sysctl.d/"
  install -m 0644 "$files"/etc/systemd/system/*.service "$files"/etc/systemd/system/*.slice "$root/etc/systemd/system/"
  mkdir -p "$root/etc/systemd/system/kubelet.service.d"
  install -m 0644 "$files"/etc/systemd/system/kubelet.service.d/* "$root/etc/systemd/system/kubelet.service.d/"
  # Debian's containerd lives in /usr/bin. A container here cannot raise rlimits or lower its
  # OOM score (no CAP_SYS_RESOURCE), so those unit settings would stop containerd starting.
  sed -i -e 's|^ExecStart=/usr/local/bin/containerd|ExecStart=/usr/bin/containerd|' \
    -e '/^LimitNOFILE=/d' -e '/^LimitNPROC=/d' -e '/^OOMScoreAdjust=/d' "$root/etc/systemd/system/containerd.service"
  rm -f "$root/etc/systemd/system/containerd-fuse-overlayfs.service"
  find "$root/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
  rm -f "$root"/lib/systemd/system/multi-user.target.wants/* "$root"/etc/systemd/system/*.wants/* \
    "$root"/lib/systemd/system/local-fs.target.wants/* "$root"/lib/systemd/system/sockets.target.wants/*udev* \
    "$root"/lib/systemd/system/sockets.target.wants/*initctl* "$root"/lib/systemd/system/basic.target.wants/*
  echo "ReadKMsg=no" >>"$root/etc/systemd/journald.conf"
  ln -sfn /usr/lib/systemd/systemd "$root/sbin/init"
  chroot "$root" systemctl enable kubelet.service containerd.service undo-mount-hacks.service >/dev/null 2>&1 ||
    die "enabling the node's services failed"
  chroot "$root" systemctl mask systemd-binfmt.service >/dev/null 2>&1
}

containerd_config() { # root
  local root="$1"
  mkdir -p "$root/etc/containerd"
  # kind's base runtime spec: its product-files hook, no rlimits (they cannot be raised here).
  chroot "$root" ctr oci spec |
    jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' |
    jq 'del(.process.rlimits)' >"$root/etc/containerd/cri-base.json"
  cat >"$root/etc/containerd/config.toml" <<TOML
# containerd 1.6 (Debian) in a kind node: kind's settings, plus restrict_oom_score_adj
# (without CAP_SYS_RESOURCE runc cannot lower a container's OOM score).
version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$IMAGE_PAUSE"
  tolerate_missing_hugepages_controller = true
  restrict_oom_score_adj = true
[plugins."io.containerd.grpc.v1.cri".containerd]
  discard_unpacked_layers = true
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  base_runtime_spec = "/etc/containerd/cri-base.json"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/opt/cni/bin"
  conf_dir = "/etc/cni/net.d"
TOML
}

# One node: a Linux bridge with host-local addresses from kind's pod subnet, portmap for hostPorts.
cni_config() { # root
  local root="$1"
  mkdir -p "$root/opt/cni/bin" "$root/etc/cni/net.d"
  cp -a "$root"/usr/lib/cni/* "$root/opt/cni/bin/"
  cat >"$root/etc/cni/net.d/10-timedeal-bridge.conflist" <<'JSON'
{
  "cniVersion": "1.0.0",
  "name": "timedeal-bridge",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "10.244.0.0/16" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
JSON
}

# Imports the component images into the node's containerd store with a containerd of the
# host running on the node's /var/lib/containerd for the time of the import.
preload_images() { # root
  local root="$1" run pid archive deadline
  run="$(mktemp -d "$WORK/containerd.XXXXXX")"
  cat >"$run/config.toml" <<TOML
version = 2
root = "$root/var/lib/containerd"
state = "$run/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$run/containerd.sock"
TOML
  as_root containerd --config "$run/config.toml" >"$run/containerd.log" 2>&1 &
  pid=$!
  deadline=$((SECONDS + 30))
  until ctr -a "$run/containerd.sock" version >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || die "the import containerd did not start: $(tail -3 "$run/containerd.log")"
    [ "$SECONDS" -lt "$deadline" ] || die "the import containerd did not answer within 30s"
    sleep 0.3
  done
  for archive in "$KIND_IMAGES_DIR"/*.tar; do
    ctr -a "$run/containerd.sock" -n k8s.io images import --snapshotter overlayfs "$archive" >/dev/null ||
      { kill "$pid"; die "importing $archive into the node failed"; }
  done
  ctr -a "$run/containerd.sock" -n k8s.io images ls -q | grep -v '^sha256:' | sed 's/^/[kind]   preloaded /' >&2
  kill "$pid" && wait "$pid" 2>/dev/null || true
  as_root rm -rf "$run"
}

node_rootfs() {
  local base root started=$SECONDS
  base="$(debootstrap_tar node "$NODE_PACKAGES")"
  root="$WORK/node-root"
  as_root rm -rf "$root" && mkdir -p "$root"
  as_root tar --numeric-owner -C "$root" -xf "$base"
  kind_base_files "$root"
  install -m 0755 "$KUBE_BIN_DIR/kubelet" "$KUBE_BIN_DIR/kubeadm" "$KUBE_BIN_DIR/kubectl" "$root/usr/bin/"
  install -m 0755 "$KIND_TOOLS_DIR/crictl-$CRICTL_VERSION" "$root/usr/local/bin/crictl"
  containerd_config "$root"
  cni_config "$root"
  echo "$KUBE_VERSION" >"$root/kind/version"
  storage_manifest >"$root/kind/manifests/default-storage.yaml"
  preload_images "$root"
  as_root tar --numeric-owner --xattrs -C "$root" -cf "$NODE_TAR.partial" . && mv "$NODE_TAR.partial" "$NODE_TAR"
  as_root rm -rf "$root"
  say "node root filesystem ready in $(elapsed "$started"): $NODE_TAR"
}

main() {
  local started=$SECONDS
  if [ -n "$KIND_NODE_IMAGE_OVERRIDE" ]; then echo "$KIND_NODE_IMAGE_OVERRIDE"; return; fi
  if podman image exists "$NODE_IMAGE"; then echo "$NODE_IMAGE"; return; fi
  mkdir -p "$WORK"
  if [ ! -f "$NODE_TAR" ]; then
    "$KIND_DIR/binaries.sh"
    component_images
    node_rootfs
  fi
  say "importing the node image $NODE_IMAGE"
  podman import -q --change 'ENV container=docker' --change 'STOPSIGNAL SIGRTMIN+3' \
    --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' "$NODE_TAR" "$NODE_IMAGE" >/dev/null ||
    die "podman import of $NODE_TAR failed"
  # Older builds of the node image are of no further use.
  podman images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/timedeal/kind-node:' |
    grep -vx "$NODE_IMAGE" | xargs -r podman rmi >/dev/null 2>&1 || true
  say "node image ready in $(elapsed "$started")"
  echo "$NODE_IMAGE"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  host_packages
  main "$@"
fi
