# Shared helpers for the image scripts in hack/images (sourced, not run).
# Images are built with podman (no Docker daemon needed) and saved as archives under
# $TIMEDEAL_CACHE/images, named by a hash of their inputs so an unchanged image is never rebuilt.

REPO_ROOT="${REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
TIMEDEAL_CACHE="${TIMEDEAL_CACHE:-$HOME/.cache/timedeal}"
IMAGES_CACHE="$TIMEDEAL_CACHE/images"
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR="${TIMEDEAL_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
NODE_VERSION="$(tr -d 'v \n' <"$REPO_ROOT/.nvmrc")"
NPM_VERSION=11.21.2 # used by the build stage only (installing production dependencies)

say() { printf '[images] %s\n' "$*" >&2; }
fail() { printf '[images] error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    fail "need root to run: $*"
  fi
}

apt_updated=0
need_packages() { # command package...  (installs the packages when the command is missing)
  local cmd="$1"; shift
  command -v "$cmd" >/dev/null && return 0
  command -v apt-get >/dev/null || fail "$cmd not found: install $* with your package manager"
  if [ "$apt_updated" = 0 ]; then
    say "apt-get update"
    as_root apt-get update -qq >/dev/null || fail "apt-get update failed"
    apt_updated=1
  fi
  say "installing $* (Debian packages)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
    fail "apt-get install $* failed"
}

# podman here cannot raise rlimits (no CAP_SYS_RESOURCE), so every container it starts gets
# limits at or below the machine's; crun refuses the hybrid cgroup layout of such machines
# where runc does not. A private containers.conf keeps the host's untouched.
podman_ready() {
  need_packages podman podman uidmap slirp4netns fuse-overlayfs
  need_packages runc runc
  mkdir -p "$IMAGES_CACHE" "$TIMEDEAL_CACHE/podman"
  export CONTAINERS_CONF="$TIMEDEAL_CACHE/podman/containers.conf"
  cat >"$CONTAINERS_CONF.tmp" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
CONF
  mv "$CONTAINERS_CONF.tmp" "$CONTAINERS_CONF"
}

# Builds with the host's network: RUN steps reach the package mirrors, and no bridge,
# interface or firewall rule is created for a build.
podman_build() { # podman build arguments...
  nice -n 19 podman build --network=host --pull=never --layers "$@"
}

image_exists() { podman image exists "$1" 2>/dev/null; }

# Saves an image as a docker-archive (what `kind load image-archive` and `docker load` take).
save_archive() { # image archive
  rm -f "$2.partial"
  podman save -q --format docker-archive -o "$2.partial" "$1" >/dev/null || fail "podman save $1 failed"
  mv "$2.partial" "$2"
}

# A short hash of files (paths relative to the repository) and extra words.
inputs_hash() { # word... -- file...
  local words=() files=()
  while [ "$#" -gt 0 ] && [ "$1" != -- ]; do words+=("$1"); shift; done
  [ "${1:-}" = -- ] && shift
  files=("$@")
  {
    printf '%s\n' "${words[@]}"
    (cd "$REPO_ROOT" && sha256sum "${files[@]}")
  } | sha256sum | cut -c1-12
}
