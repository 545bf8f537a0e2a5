import {
  authSettings,
  bool,
  eventConsumerSettings,
  kafkaSettings,
  mysqlSettings,
  nonNegativeInt,
  positiveInt,
  redisSettings,
  relaySettings,
  serviceSettings,
} from '@timedeal/platform'
import { z } from 'zod'

const MINUTE = 60_000
const DAY = 24 * 60 * MINUTE

/** Every setting of order-service, read from environment variables once at start. */
export const settingsSchema = z.object({
  ...serviceSettings('order-service', 8083),
  ...mysqlSettings('timedeal_order'),
  ...kafkaSettings(),
  ...authSettings(),
  ...relaySettings(),
  ...redisSettings(),
  GOODS_URL: z.url({ error: 'expected the base URL of goods-service' }).default('http://127.0.0.1:8082'),
  /** goods-service's internal listener (reservations), never routed by the gateway or the Ingress. */
  GOODS_INTERNAL_URL: z
    .url({ error: 'expected the base URL of the goods-service internal listener' })
    .default('http://127.0.0.1:8182'),
  /** How long one call to goods-service may take, counted from when it leaves the queue. */
  GOODS_TIMEOUT_MS: positiveInt(2_000),
  /** Calls to goods-service in flight at once; the rest wait in a queue of GOODS_MAX_QUEUED_CALLS. */
  GOODS_MAX_CONCURRENT_CALLS: positiveInt(32),
  /** Calls that may wait for goods-service; past this a buyer gets 429 with Retry-After. */
  GOODS_MAX_QUEUED_CALLS: positiveInt(5_000),
  GOODS_BREAKER_THRESHOLD: positiveInt(5),
  GOODS_BREAKER_OPEN_MS: positiveInt(5_000),
  /** How long the price and seller of a goods are used before goods-service is asked again. */
  GOODS_CACHE_TTL_MS: positiveInt(3_000),
  /** Goods whose price, seller or sold-out mark are remembered at most. */
  GOODS_CACHE_MAX_ENTRIES: positiveInt(10_000),
  /**
   * goods-service's STOCK_KEY_PREFIX: names the Redis channels where sold-out marks are shared
   * and where goods-service says units came back.
   */
  STOCK_KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'expected letters, digits and _ . : -')
    .default('stock'),
  /** A sold-out mark stands at most this long without news (pub/sub may lose a message). */
  SOLD_OUT_MARK_TTL_MS: positiveInt(1_500),
  /**
   * How long a placement holds its Idempotency-Key; a request with the same key waits for it,
   * and takes the key over only after this (its holder died).
   */
  IDEMPOTENCY_LEASE_MS: positiveInt(30_000),
  /**
   * Placements that reach their write within this long share one transaction (group commit);
   * 0 writes each placement in a transaction of its own.
   */
  PLACEMENT_BATCH_LINGER_MS: nonNegativeInt(2),
  /** Placements written in one transaction at most. */
  PLACEMENT_BATCH_MAX: positiveInt(100),
  /** Placement transactions open at once at most; placements arriving meanwhile form the next batch. */
  PLACEMENT_BATCHES_IN_FLIGHT: positiveInt(2),
  /**
   * The Idempotency-Key claims of placements arriving together go to MySQL in one statement of at
   * most this many; 1 claims each key in a statement of its own.
   */
  PLACEMENT_CLAIM_BATCH_MAX: positiveInt(100),
  /** How long the first claim of a group waits for others; 0 groups the claims that arrived in one turn. */
  PLACEMENT_CLAIM_LINGER_MS: nonNegativeInt(0),
  /** Claim statements running at once at most; claims arriving meanwhile form the next group. */
  PLACEMENT_CLAIMS_IN_FLIGHT: positiveInt(2),
  /** How long a refused Idempotency-Key answers the same refusal again. */
  IDEMPOTENCY_REFUSAL_TTL_MS: positiveInt(MINUTE),
  /** Publish the outbox from this process; false when the relay runs on its own (`src/relay.ts`). */
  OUTBOX_RELAY: bool(true),
  ...eventConsumerSettings('PAYMENT', 'order-service'),
  /** A paid order is shipped, then delivered, on its own after these delays: for demos. */
  FULFILMENT_AUTO: bool(false),
  FULFILMENT_SHIP_AFTER_MS: positiveInt(30_000),
  FULFILMENT_DELIVER_AFTER_MS: positiveInt(60_000),
  RETURN_WINDOW_MS: positiveInt(7 * DAY),
  /**
   * An unpaid order expires this long before its reservation's hold runs out (goods-service's
   * `expiresAt`), so the expiry runs while the units are still held: cover the scheduler's
   * interval and any clock difference with Redis.
   */
  PAYMENT_DEADLINE_MARGIN_MS: positiveInt(30_000),
  ORDER_EXPIRY_ENABLED: bool(true),
  SCHEDULER_INTERVAL_MS: positiveInt(5_000),
})

export type Settings = z.infer<typeof settingsSchema>

/** Settings of the standalone outbox relay process. */
export const relayProcessSettingsSchema = z.object({
  ...serviceSettings('order-outbox-relay', 8093),
  ...mysqlSettings('timedeal_order'),
  ...kafkaSettings(),
  ...relaySettings(),
})

export type RelayProcessSettings = z.infer<typeof relayProcessSettingsSchema>
