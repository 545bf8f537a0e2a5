# What a kind cluster changes on the host, recorded before the first kind-up and put back
# (sourced by up.sh and down.sh). See hack/kind/README.md, "What it changes on the host".
# shellcheck shell=bash

HOST_RECORD="$KIND_STATE/host"
# Settings the kubelet rewrites at start (its "kernel tunables"; these are not namespaced, so a
# kubelet inside the node container writes the host's) and those podman's networking turns on.
KUBELET_SYSCTLS="vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes"
NETWORK_SYSCTLS="net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.ipv4.conf.all.route_localnet"

sysctl_path() { echo "/proc/sys/${1//.//}"; }

# Taken once, before the first cluster, and kept until kind-down has put everything back
# (a second kind-up while the cluster runs must not record the cluster's own changes).
record_host() {
  [ -f "$HOST_RECORD/done" ] && return 0
  as_root rm -rf "$HOST_RECORD" && mkdir -p "$HOST_RECORD"
  local name
  for name in $KUBELET_SYSCTLS $NETWORK_SYSCTLS; do
    [ -r "$(sysctl_path "$name")" ] && echo "$name=$(cat "$(sysctl_path "$name")")"
  done >"$HOST_RECORD/sysctl"
  ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | sort >"$HOST_RECORD/links"
  for table in filter nat mangle raw; do
    as_root iptables -t "$table" -S 2>/dev/null | sort >"$HOST_RECORD/iptables-$table" || true
  done
  findmnt -rn -o TARGET | sort >"$HOST_RECORD/mounts"
  [ -d /lib/modules ] && touch "$HOST_RECORD/had-lib-modules"
  podman network exists kind 2>/dev/null && touch "$HOST_RECORD/had-kind-network"
  touch "$HOST_RECORD/done"
}

restore_sysctls() { # names...: write back the recorded values of those that changed
  local line name value now
  [ -f "$HOST_RECORD/sysctl" ] || return 0
  while IFS='=' read -r name value; do
    case " $* " in *" $name "*) ;; *) continue ;; esac
    now="$(cat "$(sysctl_path "$name")" 2>/dev/null)" || continue
    if [ "$now" != "$value" ]; then
      say "putting back $name=$value (it was changed to $now)"
      echo "$value" | as_root tee "$(sysctl_path "$name")" >/dev/null || say "could not put back $name"
    fi
  done <"$HOST_RECORD/sysctl"
}

# Rules and chains that appeared since the record and belong to the kind network (its bridge
# or its subnet), or are chains of ours left empty: removed, rules first, then the chains.
remove_network_rules() { # bridge subnet
  local bridge="$1" subnet="$2" table rule chain
  [ -f "$HOST_RECORD/iptables-filter" ] || return 0
  for table in filter nat mangle raw; do
    as_root iptables -t "$table" -S 2>/dev/null | sort | comm -13 "$HOST_RECORD/iptables-$table" - >"$HOST_RECORD/new-$table" || true
    while read -r rule; do
      case "$rule" in -A*) ;; *) continue ;; esac
      if { [ -n "$bridge" ] && [[ "$rule" == *" $bridge "* || "$rule" == *" $bridge" ]]; } ||
        { [ -n "$subnet" ] && [[ "$rule" == *"$subnet"* ]]; }; then
        # shellcheck disable=SC2086
        as_root iptables -t "$table" ${rule/-A/-D} 2>/dev/null || true
      fi
    done <"$HOST_RECORD/new-$table"
    # New chains nothing jumps to any more and that hold no rules are ours to remove.
    for chain in $(awk '$1 == "-N" { print $2 }' "$HOST_RECORD/new-$table"); do
      if [ "$(as_root iptables -t "$table" -S "$chain" 2>/dev/null | grep -c '^-A')" = 0 ] &&
        ! as_root iptables -t "$table" -S 2>/dev/null | grep -q -- "-j $chain\( \|$\)"; then
        as_root iptables -t "$table" -X "$chain" 2>/dev/null || true
      fi
    done
    rm -f "$HOST_RECORD/new-$table"
  done
}

# podman's CNI plugins leave shared chains (CNI-FORWARD, CNI-HOSTPORT-*) and the rules that
# jump to them. Once no podman container runs, nothing needs those made since the record.
remove_idle_cni_chains() {
  local table rule chain
  [ -f "$HOST_RECORD/iptables-filter" ] && [ -z "$(podman ps -q 2>/dev/null)" ] || return 0
  for table in filter nat mangle raw; do
    as_root iptables -t "$table" -S 2>/dev/null | sort | comm -13 "$HOST_RECORD/iptables-$table" - >"$HOST_RECORD/new-$table" || true
    while read -r rule; do
      # shellcheck disable=SC2086
      [[ "$rule" == -A*CNI-* ]] && as_root iptables -t "$table" ${rule/-A/-D} 2>/dev/null
    done <"$HOST_RECORD/new-$table"
    for chain in $(awk '$1 == "-N" && $2 ~ /^CNI-/ { print $2 }' "$HOST_RECORD/new-$table"); do
      as_root iptables -t "$table" -F "$chain" 2>/dev/null || true
    done
    for chain in $(awk '$1 == "-N" && $2 ~ /^CNI-/ { print $2 }' "$HOST_RECORD/new-$table"); do
      as_root iptables -t "$table" -X "$chain" 2>/dev/null || true
    done
    rm -f "$HOST_RECORD/new-$table"
  done
}

# What is still different from the record: printed, and a non-zero status if anything is.
host_differences() {
  local left=0 link
  [ -f "$HOST_RECORD/links" ] || return 0
  for link in $(ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | sort | comm -13 "$HOST_RECORD/links" -); do
    case "$link" in veth* | cni-podman* | podman* | kind*) say "left behind: interface $link"; left=1 ;; esac
  done
  # The node's /var volume and its network namespace; other podman users' layer mounts are theirs.
  if findmnt -rn -o TARGET | sort | comm -13 "$HOST_RECORD/mounts" - | grep -E 'storage/volumes|/netns/|kind' >&2; then
    say "left behind: the mounts above"; left=1
  fi
  for table in filter nat mangle raw; do
    if as_root iptables -t "$table" -S 2>/dev/null | sort | comm -13 "$HOST_RECORD/iptables-$table" - | grep . >&2; then
      say "left behind: the iptables rules above (table $table; another podman container may still use them)"; left=1
    fi
  done
  return "$left"
}
