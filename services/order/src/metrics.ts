/**
 * Every metric order-service exports besides the platform's own (HTTP, outbox, consumers),
 * created once per registry and handed to the parts that count.
 */
import { Counter, Gauge, type Registry } from 'prom-client'

/** The goods client's queue and breaker as they are now, read when metrics are scraped. */
export interface GoodsCallsState {
  inFlight(): number
  queued(): number
  breakerOpen(): boolean
}

export interface GoodsCallMetrics {
  readonly refused: Counter<'reason'>
  /** Points the gauges at the client whose queue and breaker they show. */
  watch(state: GoodsCallsState): void
}

export interface OrderMetrics {
  readonly transitions: Counter<'command' | 'outcome'>
  readonly placements: Counter<'outcome'>
  /** Transactions that wrote placed orders: `batch` for several at once, `single` for one. */
  readonly placementWrites: Counter<'kind'>
  /** Statements that claimed Idempotency-Keys: `batch` for several at once, `single` for one. */
  readonly placementClaims: Counter<'kind'>
  readonly goodsCalls: GoodsCallMetrics
}

export function createOrderMetrics(registry: Registry): OrderMetrics {
  const registers = [registry]
  return {
    transitions: new Counter({
      name: 'order_transitions_total',
      help: 'State machine commands applied to orders, by command and outcome.',
      labelNames: ['command', 'outcome'],
      registers,
    }),
    placements: new Counter({
      name: 'orders_placed_total',
      help: 'Order placements, by outcome (created, replayed, refused, failed).',
      labelNames: ['outcome'],
      registers,
    }),
    placementWrites: new Counter({
      name: 'order_placement_write_transactions_total',
      help: 'Committed transactions that wrote placed orders, by kind (batch: several orders, single: one).',
      labelNames: ['kind'],
      registers,
    }),
    placementClaims: new Counter({
      name: 'order_placement_claim_statements_total',
      help: 'Statements that claimed Idempotency-Keys for placements, by kind (batch: several keys, single: one).',
      labelNames: ['kind'],
      registers,
    }),
    goodsCalls: goodsCallMetrics(registers),
  }
}

function goodsCallMetrics(registers: Registry[]): GoodsCallMetrics {
  let watched: GoodsCallsState | undefined
  const gauge = (name: string, help: string, read: (state: GoodsCallsState) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        if (watched) this.set(read(watched))
      },
    })
  gauge('goods_calls_in_flight', 'Calls to goods-service in flight now.', (state) => state.inFlight())
  gauge('goods_calls_queued', 'Calls to goods-service waiting for a free slot now.', (state) => state.queued())
  gauge('goods_breaker_open', '1 while calls to goods-service are refused after repeated failures.', (state) =>
    state.breakerOpen() ? 1 : 0,
  )
  return {
    refused: new Counter({
      name: 'goods_calls_refused_total',
      help: 'Calls to goods-service refused before they went out, by reason (queue_full, breaker_open).',
      labelNames: ['reason'],
      registers,
    }),
    watch(state) {
      watched = state
    },
  }
}
