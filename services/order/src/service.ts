import {
  type AppEnv,
  type EventBus,
  type EventSubscription,
  eventInbox,
  type Logger,
  type Redis,
  type RunningRelay,
  startOutboxRelay,
  type TokenVerifier,
  tokenVerifierFromSettings,
} from '@timedeal/platform'
import type { Hono } from 'hono'
import type { Registry } from 'prom-client'
import type { Sequelize } from 'sequelize'
import { createGoodsClient, type GoodsClient } from './adapters/goods-client.ts'
import { rememberingGoods } from './adapters/goods-memory.ts'
import { OrderStore } from './adapters/order-store.ts'
import { subscribePaymentEvents } from './adapters/payment-events.ts'
import { PlacementStore } from './adapters/placement-store.ts'
import { type SoldOutMarks, startSoldOutMarks } from './adapters/sold-out-marks.ts'
import type { OrderState } from './domain/order-state.ts'
import { createOrders, type Orders } from './flows/orders.ts'
import { type ScheduleRule, type Schedules, startSchedules } from './flows/schedules.ts'
import { publicRoutes } from './http/index.ts'
import { createOrderMetrics } from './metrics.ts'
import type { Settings } from './settings.ts'

export interface OrderServiceDeps {
  readonly settings: Settings
  readonly sequelize: Sequelize
  readonly bus: EventBus
  readonly logger: Logger
  readonly metrics: Registry
  /** Shares sold-out marks with the other instances; without it, every buyer asks goods-service. */
  readonly redis?: Redis
  /** Defaults to the HTTP client of `GOODS_URL`, with the policies its settings describe. */
  readonly goods?: GoodsClient
  /** Defaults to user-service's JWKS at `JWT_JWKS_URL`. */
  readonly verifier?: TokenVerifier
}

export interface OrderService {
  readonly publicRoutes: Hono<AppEnv>
  readonly orders: Orders
  readonly store: OrderStore
  readonly schedules: Schedules
  /** Present when this process publishes its own outbox (`OUTBOX_RELAY=true`). */
  readonly relay: RunningRelay | undefined
  /** Stops the consumer, the schedules and the relay, in that order. */
  stop(): Promise<void>
}

/**
 * Builds order-service from connected clients and starts its workers: the outbox relay, the
 * payment-event consumer and the schedules. `main.ts` and the tests build it the same way.
 */
export async function startOrderService(deps: OrderServiceDeps): Promise<OrderService> {
  const { settings, sequelize, bus, logger, metrics } = deps
  const verifier = deps.verifier ?? tokenVerifierFromSettings(settings)
  const orderMetrics = createOrderMetrics(metrics)
  const client =
    deps.goods ??
    createGoodsClient({
      baseUrl: settings.GOODS_URL,
      internalUrl: settings.GOODS_INTERNAL_URL,
      internalSecret: settings.INTERNAL_API_SECRET,
      timeoutMs: settings.GOODS_TIMEOUT_MS,
      maxConcurrentCalls: settings.GOODS_MAX_CONCURRENT_CALLS,
      maxQueuedCalls: settings.GOODS_MAX_QUEUED_CALLS,
      failureThreshold: settings.GOODS_BREAKER_THRESHOLD,
      openMs: settings.GOODS_BREAKER_OPEN_MS,
      logger: logger.child({ component: 'goods-client' }),
      metrics: orderMetrics.goodsCalls,
    })
  const soldOut: SoldOutMarks | undefined = deps.redis
    ? startSoldOutMarks({
        redis: deps.redis,
        stockPrefix: settings.STOCK_KEY_PREFIX,
        ttlMs: settings.SOLD_OUT_MARK_TTL_MS,
        maxGoods: settings.GOODS_CACHE_MAX_ENTRIES,
        logger: logger.child({ component: 'sold-out-marks' }),
      })
    : undefined
  const goods = rememberingGoods(client, {
    ttlMs: settings.GOODS_CACHE_TTL_MS,
    maxGoods: settings.GOODS_CACHE_MAX_ENTRIES,
    soldOut,
  })
  const store = new OrderStore(sequelize)
  const placements = new PlacementStore(sequelize)

  const relay = settings.OUTBOX_RELAY
    ? await startOutboxRelay({
        sequelize,
        bus,
        logger,
        metrics,
        settings,
      })
    : undefined
  const orders = createOrders({
    sequelize,
    store,
    placements,
    goods,
    placementRules: {
      paymentDeadlineMarginMs: settings.PAYMENT_DEADLINE_MARGIN_MS,
      leaseMs: settings.IDEMPOTENCY_LEASE_MS,
      refusalTtlMs: settings.IDEMPOTENCY_REFUSAL_TTL_MS,
    },
    placementBatches: {
      lingerMs: settings.PLACEMENT_BATCH_LINGER_MS,
      maxBatch: settings.PLACEMENT_BATCH_MAX,
      maxInFlight: settings.PLACEMENT_BATCHES_IN_FLIGHT,
    },
    claimBatches: {
      lingerMs: settings.PLACEMENT_CLAIM_LINGER_MS,
      maxBatch: settings.PLACEMENT_CLAIM_BATCH_MAX,
      maxInFlight: settings.PLACEMENT_CLAIMS_IN_FLIGHT,
    },
    logger,
    metrics: orderMetrics,
    ...(relay ? { afterCommit: relay.relay.wake } : {}),
  })

  const rules: ScheduleRule[] = []
  if (settings.ORDER_EXPIRY_ENABLED) {
    rules.push({
      name: 'payment-deadline',
      due: (now, limit) => store.idsPastPaymentDeadline(now, limit),
      command: 'EXPIRE',
    })
  }
  if (settings.FULFILMENT_AUTO) {
    const inStateFor = (state: OrderState, ms: number) => (now: Date, limit: number) =>
      store.idsInStateSince(state, new Date(now.getTime() - ms), limit)
    rules.push(
      { name: 'ship', due: inStateFor('PAID', settings.FULFILMENT_SHIP_AFTER_MS), command: 'SHIP' },
      { name: 'deliver', due: inStateFor('SHIPPED', settings.FULFILMENT_DELIVER_AFTER_MS), command: 'DELIVER' },
    )
  }
  const schedules = startSchedules({
    rules,
    chores: [{ name: 'forget-placements', run: (now) => placements.prune(now, 500) }],
    intervalMs: settings.SCHEDULER_INTERVAL_MS,
    orders,
    logger: logger.child({ component: 'schedules' }),
  })

  let subscription: EventSubscription | undefined
  if (settings.PAYMENT_EVENTS_ENABLED) {
    subscription = await subscribePaymentEvents({
      bus,
      group: settings.PAYMENT_EVENTS_GROUP,
      settings,
      // Keyed by the group name, which keeps two deployments' records apart.
      inbox: eventInbox({
        sequelize,
        consumer: settings.PAYMENT_EVENTS_GROUP,
        ...(relay ? { afterCommit: relay.relay.wake } : {}),
      }),
      orders,
      store,
      goods,
      logger: logger.child({ component: 'payment-events' }),
    })
  }

  return {
    publicRoutes: publicRoutes({ orders, verifier, returnWindowMs: settings.RETURN_WINDOW_MS }),
    orders,
    store,
    schedules,
    relay,
    async stop() {
      await subscription?.close()
      await schedules.stop()
      // Last, so events written by the steps above still leave before the producer closes.
      await relay?.stop()
      await soldOut?.stop()
      // Only the client this service built; one passed in belongs to its caller.
      if (!deps.goods) await client.close?.()
    },
  }
}
