#!/usr/bin/env bash
# `make e2e`: the whole path a user takes, on a real cluster. kind-up; the images into the
# node; the infrastructure chart; `kubectl apply -f crds/`; `helm install --wait` of the
# platform with the development values and a self-signed TLS Secret; the smoke test from
# the host through the gateway's NodePort (smoke.ts: sign-in, orders to PAID while one
# order-service pod is killed, a chat message over STOMP); the chart's KafkaTopics reconciled
# by the operator; `helm upgrade`; `helm uninstall`; kind-down. Each step is timed.
#
#   make e2e                       TIMEDEAL_E2E_KEEP=1 keeps the cluster when a step fails
set -euo pipefail
# shellcheck source=hack/kind/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAMESPACE="${TIMEDEAL_E2E_NAMESPACE:-timedeal}"
GATEWAY_NODEPORT="$KIND_NODEPORT_FIRST"
HELM_TIMEOUT="${TIMEDEAL_E2E_HELM_TIMEOUT:-15m}"
KEEP="${TIMEDEAL_E2E_KEEP:-0}"
TIMINGS="$KIND_STATE/e2e-timings.txt"

kc() { kubectl --kubeconfig "$KIND_KUBECONFIG" -n "$NAMESPACE" "$@"; }
hc() { helm --kubeconfig "$KIND_KUBECONFIG" -n "$NAMESPACE" "$@"; }

step_started=$SECONDS
step() { # name: closes the previous step's timing line and opens the next
  say "== $1"
  step_started=$SECONDS
  step_name="$1"
}
step_done() { printf '%-44s %s\n' "$step_name" "$(elapsed "$step_started")" | tee -a "$TIMINGS" >&2; }

on_exit() {
  local rc=$?
  if [ "$rc" != 0 ]; then
    say "FAILED during: ${step_name:-start} (exit $rc)"
    if kubectl --kubeconfig "$KIND_KUBECONFIG" get ns "$NAMESPACE" >/dev/null 2>&1; then
      kc get pods -o wide >&2 || true
      kc get events --sort-by=.lastTimestamp 2>/dev/null | tail -25 >&2 || true
    fi
    if [ "$KEEP" = 1 ]; then
      say "the cluster is kept (TIMEDEAL_E2E_KEEP=1): export KUBECONFIG=$KIND_KUBECONFIG; make kind-down removes it"
      return
    fi
    "$KIND_DIR/down.sh" || true
  fi
}

self_signed_tls() { # secret-name host
  local dir
  dir="$(mktemp -d)"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 -subj "/CN=$2" \
    -addext "subjectAltName=DNS:$2" -keyout "$dir/tls.key" -out "$dir/tls.crt" 2>/dev/null ||
    die "openssl could not make the self-signed certificate"
  kc create secret tls "$1" --cert "$dir/tls.crt" --key "$dir/tls.key" --dry-run=client -o yaml | kc apply -f - >/dev/null
  rm -rf "$dir"
}

# Every KafkaTopic of the release Ready, and each of its topics listed by the in-cluster broker.
check_topics() {
  local deadline=$((SECONDS + 180)) total ready
  while :; do
    total="$(kc get kafkatopics -o name | wc -l)"
    ready="$(kc get kafkatopics -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^True$' || true)"
    [ "$total" -gt 0 ] && [ "$ready" = "$total" ] && break
    [ "$SECONDS" -lt "$deadline" ] || die "KafkaTopics Ready: $ready of $total after 180 s"
    sleep 3
  done
  say "the operator reconciled all $total KafkaTopics (Ready)"
  local names broker listed missing=0 name
  names="$(kc get kafkatopics -o jsonpath='{range .items[*]}{.spec.topicName}{"\n"}{end}')"
  broker="$(kc get pods -l app.kubernetes.io/component=kafka -o name | head -1)"
  [ -n "$broker" ] || die "no Kafka pod in $NAMESPACE"
  # The broker image carries the broker's jars only (no CLI tools): its partition folders
  # (<topic>-<partition> under log.dirs) say which topics it holds.
  listed="$(kc exec "$broker" -- sh -c 'for d in $(sed -n "s/^log.dirs=//p" /var/lib/kafka/server.properties | tr , " "); do ls "$d"; done' |
    sed -n 's/-[0-9]*$//p' | sort -u)" || die "could not list the broker's log folders"
  for name in $names; do grep -qx "$name" <<<"$listed" || { say "missing in Kafka: $name"; missing=1; }; done
  [ "$missing" = 0 ] || die "some KafkaTopics are Ready but the broker has no partitions for them"
  say "the in-cluster broker holds the partitions of every one of them"
}

main() {
  local started=$SECONDS gateway_values
  mkdir -p "$KIND_STATE"
  : >"$TIMINGS"
  trap on_exit EXIT
  step "kind-up"
  "$KIND_DIR/up.sh"
  step_done
  export KUBECONFIG="$KIND_KUBECONFIG"

  step "images built and loaded into the node"
  "$KIND_DIR/load-images.sh"
  step_done

  step "infrastructure chart (helm install --wait)"
  kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  hc upgrade --install timedeal-infra "$REPO_ROOT/charts/timedeal-infra" --wait --timeout "$HELM_TIMEOUT" >&2
  step_done

  step "CRDs (kubectl apply -f crds/)"
  kubectl apply -f "$REPO_ROOT/crds/" >&2
  kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
  step_done

  step "platform chart (helm install --wait)"
  self_signed_tls timedeal-tls timedeal.localtest.me
  gateway_values=(--set services.gateway.serviceType=NodePort --set "services.gateway.nodePort=$GATEWAY_NODEPORT"
    --set ingress.host=timedeal.localtest.me --set ingress.tls.secretName=timedeal-tls)
  hc install timedeal "$REPO_ROOT/charts/timedeal" -f "$REPO_ROOT/charts/timedeal/values-development.yaml" \
    "${gateway_values[@]}" --wait --timeout "$HELM_TIMEOUT" >&2
  kc get pods >&2
  step_done

  step "smoke test through NodePort $GATEWAY_NODEPORT"
  SMOKE_BASE_URL="http://127.0.0.1:$GATEWAY_NODEPORT" SMOKE_NAMESPACE="$NAMESPACE" \
    SMOKE_KUBECTL="$TIMEDEAL_CACHE/bin/kubectl" SMOKE_KUBECONFIG="$KIND_KUBECONFIG" \
    "$REPO_ROOT/hack/run.sh" node "$REPO_ROOT/hack/kind/smoke.ts"
  step_done

  step "KafkaTopics reconciled in the in-cluster Kafka"
  check_topics
  step_done

  step "helm upgrade --wait (migrations hook again)"
  hc upgrade timedeal "$REPO_ROOT/charts/timedeal" -f "$REPO_ROOT/charts/timedeal/values-development.yaml" \
    "${gateway_values[@]}" --set logLevel=debug --wait --timeout "$HELM_TIMEOUT" >&2
  [ "$(hc history timedeal -o json | jq -r '.[-1].status')" = deployed ] || die "the upgrade is not deployed"
  curl -fsS "http://127.0.0.1:$GATEWAY_NODEPORT/readyz" >/dev/null || die "the gateway is not ready after the upgrade"
  step_done

  step "helm uninstall"
  hc uninstall timedeal --wait --timeout 5m >&2
  hc uninstall timedeal-infra --wait --timeout 5m >&2
  step_done

  step "kind-down"
  "$KIND_DIR/down.sh"
  step_done
  trap - EXIT
  printf '%-44s %s\n' "make e2e, in all" "$(elapsed "$started")" | tee -a "$TIMINGS" >&2
  say "passed; timings in $TIMINGS"
}

main "$@"
