#!/bin/sh
# The image's entry point: `timedeal <deployable> [command]`.
#   timedeal user|goods|order|payment|chat|gateway [serve|migrate|seed]   one service (serve by default)
#   timedeal goods-ledger-worker | order-outbox-relay                      a service's standalone worker
#   timedeal operator [run|apply ...]                                      the operator
set -eu
deployable="${1:-help}"
[ "$#" -gt 0 ] && shift
case "$deployable" in
  user | goods | order | payment | chat | gateway)
    exec node "/app/services/$deployable/src/main.ts" "$@" ;;
  goods-ledger-worker) exec node /app/services/goods/src/worker.ts "$@" ;;
  order-outbox-relay) exec node /app/services/order/src/relay.ts "$@" ;;
  operator) exec node /app/operator/src/main.ts "$@" ;;
  *)
    echo "usage: timedeal <user|goods|order|payment|chat|gateway|goods-ledger-worker|order-outbox-relay|operator> [command]" >&2
    [ "$deployable" = help ] && exit 0
    exit 2 ;;
esac
