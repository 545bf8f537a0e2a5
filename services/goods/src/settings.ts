import { hostname } from 'node:os'
import {
  authSettings,
  bool,
  eventConsumerSettings,
  kafkaSettings,
  mysqlSettings,
  nonNegativeInt,
  positiveInt,
  redisSettings,
  serviceSettings,
} from '@timedeal/platform'
import { DEFAULT_STOCK_PREFIX, DEFAULT_STOCK_SHARDS, MAX_STOCK_SHARDS } from '@timedeal/stock'
import { z } from 'zod'

const MINUTE = 60_000
const DAY = 24 * 60 * MINUTE

/** Settings of the live stock and of the ledger write-behind, shared by the service and its worker. */
export const stockSettings = () => ({
  STOCK_KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'expected letters, digits and _ . : -')
    .default(DEFAULT_STOCK_PREFIX),
  // Fixed for the life of a namespace: a goods' keys are found by its shard (README, "Shards").
  STOCK_SHARDS: z.coerce
    .number({ error: 'expected a number' })
    .int('expected a whole number')
    .min(1, `expected 1-${MAX_STOCK_SHARDS}`)
    .max(MAX_STOCK_SHARDS, `expected 1-${MAX_STOCK_SHARDS}`)
    .default(DEFAULT_STOCK_SHARDS),
  RESERVATION_HOLD_MS: positiveInt(10 * MINUTE),
  RESERVATION_RETENTION_MS: positiveInt(7 * DAY),
  LEDGER_BATCH_SIZE: positiveInt(500),
  LEDGER_CLAIM_IDLE_MS: positiveInt(30_000),
  LEDGER_IDLE_POLL_MS: positiveInt(100),
  LEDGER_BATCH_LINGER_MS: nonNegativeInt(50),
  LEDGER_CONSUMER_NAME: z.string().min(1).default(`${hostname()}-${process.pid}`),
})

/** Every setting of goods-service, read from environment variables once at start. */
export const settingsSchema = z.object({
  ...serviceSettings('goods-service', 8082),
  ...mysqlSettings('timedeal_goods'),
  ...redisSettings(),
  ...kafkaSettings(),
  ...authSettings(),
  ...stockSettings(),
  LEDGER_WORKER_ENABLED: bool(true),
  EXPIRY_SWEEP_INTERVAL_MS: positiveInt(1_000),
  COLD_LOAD_TIMEOUT_MS: positiveInt(5_000),
  ...eventConsumerSettings('ORDER', 'goods-service'),
  DEMO_SELLER_ID: z.string().min(1).max(64).default('00000000-0000-4000-8000-00000000a001'),
})

export type Settings = z.infer<typeof settingsSchema>

/** What the live stock and the write-behind read, in the service and in its worker alike. */
export type StockSettings = z.infer<z.ZodObject<ReturnType<typeof stockSettings>>>

/**
 * The settings of the standalone ledger worker (`src/worker.ts`). It serves `/healthz`, `/readyz`
 * and `/metrics` on HTTP_PORT like every process started through runService.
 */
export const workerSettingsSchema = z.object({
  ...serviceSettings('goods-ledger-worker', 8092),
  ...mysqlSettings('timedeal_goods'),
  ...redisSettings(),
  ...stockSettings(),
  // Its own pool is small: one batch transaction at a time.
  MYSQL_POOL_MAX: positiveInt(2),
})

export type WorkerSettings = z.infer<typeof workerSettingsSchema>
