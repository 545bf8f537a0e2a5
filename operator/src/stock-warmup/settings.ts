import { positiveInt } from '@timedeal/platform'

/** The warm-up's own settings, spread into the operator's settings schema. */
export const stockWarmupSettings = () => ({
  /** How long a warm-up waits for goods-service's ledger write-behind before reading MySQL. */
  STOCK_WARMUP_LEDGER_TIMEOUT_MS: positiveInt(10_000),
  /** The wait after a warm-up's first failed attempt (MySQL or Redis); it doubles up to the max. */
  STOCK_WARMUP_RETRY_BASE_MS: positiveInt(5_000),
  STOCK_WARMUP_RETRY_MAX_MS: positiveInt(300_000),
})

/** What a warm-up reads of the operator's settings: the default source and target, and its own. */
export interface WarmupSettings {
  readonly MYSQL_HOST: string
  readonly MYSQL_PORT: number
  readonly MYSQL_USER: string
  readonly MYSQL_PASSWORD: string
  readonly MYSQL_DATABASE: string
  readonly REDIS_URL: string
  /** Set, the default target is this Redis Cluster instead of REDIS_URL's Redis. */
  readonly REDIS_CLUSTER_NODES?: readonly string[]
  readonly STOCK_WARMUP_LEDGER_TIMEOUT_MS: number
  readonly STOCK_WARMUP_RETRY_BASE_MS: number
  readonly STOCK_WARMUP_RETRY_MAX_MS: number
}
