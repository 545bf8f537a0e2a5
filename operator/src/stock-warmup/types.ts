/**
 * The StockWarmup resource (group timedeal.io, version v1alpha1, namespaced): which goods to warm,
 * where their stock comes from (MySQL) and goes to (Redis), when, and how. The CRD schema in
 * `crds/stockwarmups.timedeal.io.yaml` describes exactly these fields.
 */
import type { Condition } from '../conditions.ts'
import type { KubeResource } from '../runtime/controller.ts'

export const STOCK_WARMUP_KIND = 'StockWarmup'
export const STOCK_WARMUP_PLURAL = 'stockwarmups'

/**
 * Which goods to warm: exactly one of `goodsIds` and `opensBetween` (a CEL rule enforces it).
 */
export interface GoodsSelection {
  /** Goods ids (1 to 10,000, each `^[A-Za-z0-9_.:-]{1,64}$`, no duplicates). */
  goodsIds?: string[]
  /** Every goods whose sale opens in `[from, to)` (RFC 3339; `from` < `to`, at most 31 days apart). */
  opensBetween?: { from: string; to: string }
}

/** A reference to a Secret in the resource's own namespace. */
export interface SecretReference {
  name: string
}

/**
 * Where the stock is read from. Absent (or without `secretRef`): the operator's own MySQL
 * settings. The Secret's keys `host`, `port`, `user`, `password`, `database` each replace the
 * operator's default when present. The CLI (`timedeal-operator apply`) always uses its own settings.
 */
export interface WarmupSource {
  secretRef?: SecretReference
}

/**
 * Where the stock goes. `secretRef` names a Secret whose key `url` is a Redis URL (absent: the
 * operator's REDIS_URL). `keyPrefix` is the stock package's key prefix (default `stock`), and
 * `shards` the namespace's number of shards (goods-service's STOCK_SHARDS, default 16).
 */
export interface WarmupTarget {
  secretRef?: SecretReference
  /** `^[A-Za-z0-9_.:-]{1,64}$`, default `stock`. */
  keyPrefix?: string
  /** 1 to 1024, default 16: the same number goods-service uses for the namespace. */
  shards?: number
}

/**
 * When to warm: at `opensAt` minus `leadTime`; without `opensAt`, at `opensBetween.from` minus
 * `leadTime` for a window selection, and at once for a goods list. The time the sale opens is the
 * warm-up's deadline: a warm-up that finishes after it is reported with `DeadlinePassed`.
 */
export interface WarmupSchedule {
  /** RFC 3339 instant the sale opens. */
  opensAt?: string
  /** Go-style duration, `^([0-9]+(ms|s|m|h))+$`, e.g. `10m` or `1h30m`. Default `10m`. */
  leadTime?: string
}

/**
 * `IfAbsent` (default): load only goods whose stock is not in Redis; live stock is never touched.
 * `Overwrite`: also replace stock already loaded (through the stock package's configure script,
 * which refuses while the sale window is open); refused as a whole, with the condition
 * `OverwriteRefused`, once the sale has opened.
 */
export const WARMUP_MODES = ['IfAbsent', 'Overwrite'] as const
export type WarmupMode = (typeof WARMUP_MODES)[number]

export interface WarmupPolicy {
  mode?: WarmupMode
  /** Goods per pipelined Redis round trip, 1 to 10,000. Default 1,000. */
  chunkSize?: number
  /** Attempts per chunk on a Redis error (1 to 20), with exponential backoff. Default 5. */
  maxAttempts?: number
}

export interface StockWarmupSpec {
  goods: GoodsSelection
  source?: WarmupSource
  target?: WarmupTarget
  schedule?: WarmupSchedule
  policy?: WarmupPolicy
}

export const WARMUP_PHASES = ['Scheduled', 'Warming', 'Ready', 'Failed'] as const
export type WarmupPhase = (typeof WARMUP_PHASES)[number]

/**
 * Condition types: `Ready` (reasons `Scheduled`, `Warming`, `Warmed`, `Paused`, `SourceError`,
 * `RedisError`, `OverwriteRefused`, `InvalidSpec`), `DeadlinePassed` (the warm-up was not done
 * before the sale opened), `SourceError` (MySQL or its Secret), `RedisError`, `OverwriteRefused`.
 */
export const WARMUP_CONDITIONS = ['Ready', 'DeadlinePassed', 'SourceError', 'RedisError', 'OverwriteRefused'] as const
export type WarmupConditionType = (typeof WARMUP_CONDITIONS)[number]

export interface StockWarmupStatus {
  observedGeneration?: number
  phase?: WarmupPhase
  /** RFC 3339: when the warm-up starts (phase Scheduled) or started. */
  scheduledAt?: string
  /** RFC 3339: the deadline (the sale opening), when one is known. */
  opensAt?: string
  /** Goods selected and found in MySQL. */
  total?: number
  /** Goods whose stock this warm-up wrote (absent keys loaded, or overwritten before opening). */
  loaded?: number
  /** Goods left as they were: their stock was already in Redis (or, for `Overwrite`, their sale had opened). */
  skipped?: number
  /** Of `skipped`, the goods an `Overwrite` left alone because their sale had opened. */
  refused?: number
  /** Goods ids asked for by `goodsIds` that MySQL does not have. */
  missing?: number
  /** `sha256:<hex>` over the loaded goods' records, in goods id order (see `warmupChecksum`). */
  checksum?: string
  /** RFC 3339: when the last warm-up finished. */
  warmedAt?: string
  /** RFC 3339: when the last attempt that failed (SourceError, RedisError) ended; retries wait from it. */
  lastAttemptAt?: string
  /** Attempts that failed in a row; the wait before the next grows with it. Reset by a success. */
  failures?: number
  conditions?: Condition[]
}

export type StockWarmup = KubeResource<StockWarmupSpec, StockWarmupStatus>

export const DEFAULT_LEAD_TIME = '10m'
export const DEFAULT_CHUNK_SIZE = 1000
export const DEFAULT_MAX_ATTEMPTS = 5
export const DEFAULT_KEY_PREFIX = 'stock'
export const MAX_GOODS_IDS = 10_000
