/**
 * The warm-up half of `make bench-operator`: warm N goods from a catalog of their own (goods-
 * service's schema) into a Redis key prefix of their own, beside a bare pipelined load of the
 * same keys (SET + HSET per goods, no MySQL, no script): the ceiling. The goal is a warm-up
 * within 2× the bare load. Everything it creates is removed afterwards.
 */
import { randomBytes } from 'node:crypto'
import { createLogger, createRedis, type Logger, type Redis } from '@timedeal/platform'
import { stockKeys } from '@timedeal/stock'
import { createGoodsCatalog } from './goods-catalog.ts'
import type { MysqlSource } from './source.ts'
import { planOf } from './spec.ts'
import { warm } from './warm.ts'

export interface BenchWarmupOptions {
  readonly goods: number
  readonly chunkSize?: number
  /** The MySQL server (a database of the bench's own is created on it) and Redis. */
  readonly mysql?: Omit<MysqlSource, 'database'>
  readonly redisUrl?: string
  readonly logger?: Logger
}

export interface WarmupFigures {
  readonly goods: number
  readonly chunkSize: number
  readonly warmupMs: number
  /** Requests the warm-up sent to Redis (pipelined chunks and its ledger check). */
  readonly warmupRoundTrips: number
  readonly bareLoadMs: number
  readonly bareRoundTrips: number
  /** warmupMs / bareLoadMs; the goal is at most 2. */
  readonly ratio: number
  readonly goalMet: boolean
  readonly loaded: number
}

const HOUR = 3_600_000

export async function benchWarmup(options: BenchWarmupOptions): Promise<WarmupFigures> {
  const chunkSize = options.chunkSize ?? 1_000
  const logger = options.logger ?? createLogger('bench-warmup', 'warn')
  const mysql = options.mysql ?? {
    host: process.env.MYSQL_HOST ?? '127.0.0.1',
    port: Number(process.env.MYSQL_PORT ?? 3306),
    user: process.env.MYSQL_USER ?? 'timedeal',
    password: process.env.MYSQL_PASSWORD ?? 'timedeal',
  }
  const redis = createRedis({ url: options.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', logger })
  const run = randomBytes(4).toString('hex')
  const warmPrefix = `bench-warmup-${run}`
  const barePrefix = `bench-bare-${run}`
  const catalog = await createGoodsCatalog(mysql, 'bench_warmup')
  try {
    const opens = Date.now() + 24 * HOUR
    const goods = Array.from({ length: options.goods }, (_, index) => ({
      id: `bench-${index.toString().padStart(7, '0')}`,
      stockOnHand: 100 + (index % 50),
      saleStartsAt: opens,
      saleEndsAt: opens + HOUR,
      purchaseLimit: index % 3 === 0 ? null : 2,
    }))
    await catalog.insert(goods)

    const planned = planOf({
      goods: { opensBetween: { from: new Date(opens).toISOString(), to: new Date(opens + 1).toISOString() } },
      target: { keyPrefix: warmPrefix },
      policy: { chunkSize },
    })
    if (!planned.ok) throw new Error(planned.error)
    const warmStarted = performance.now()
    const warmed = await warm(planned.plan, { redis, mysql: catalog.source }, { ledgerTimeoutMs: 10_000 })
    const warmupMs = performance.now() - warmStarted
    if (warmed.loaded !== options.goods)
      throw new Error(`the warm-up loaded ${warmed.loaded} of ${options.goods} goods`)

    const keys = stockKeys(barePrefix)
    const bareStarted = performance.now()
    let bareRoundTrips = 0
    for (let start = 0; start < goods.length; start += chunkSize) {
      const pipeline = redis.pipeline()
      for (const item of goods.slice(start, start + chunkSize)) {
        pipeline.set(keys.available(item.id), item.stockOnHand)
        pipeline.hset(keys.sale(item.id), {
          startsAt: item.saleStartsAt,
          endsAt: item.saleEndsAt,
          purchaseLimit: item.purchaseLimit ?? 0,
          initialStock: item.stockOnHand,
          version: 1,
        })
      }
      await pipeline.exec()
      bareRoundTrips += 1
    }
    const bareLoadMs = performance.now() - bareStarted
    const ratio = warmupMs / bareLoadMs
    return {
      goods: options.goods,
      chunkSize,
      warmupMs: Math.round(warmupMs),
      warmupRoundTrips: warmed.roundTrips,
      bareLoadMs: Math.round(bareLoadMs),
      bareRoundTrips,
      ratio: Math.round(ratio * 100) / 100,
      goalMet: ratio <= 2,
      loaded: warmed.loaded,
    }
  } finally {
    await deleteKeys(redis, warmPrefix)
    await deleteKeys(redis, barePrefix)
    await catalog.drop()
    await redis.quit()
  }
}

async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 5_000)
    if (keys.length > 0) await redis.unlink(...keys)
    cursor = next
  } while (cursor !== '0')
}
