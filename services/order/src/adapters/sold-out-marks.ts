/**
 * Sold-out marks: once goods-service answers SOLD_OUT for a goods, the buyers still arriving are
 * refused from memory instead of each making the trip to goods-service and Redis.
 *
 * - A mark is set when goods-service answers SOLD_OUT here, and is shared with the other
 *   order-service instances over Redis pub/sub (`<prefix>:sold-out`).
 * - goods-service publishes on `<prefix>:units-returned` when units of a goods come back (a
 *   release, an expiry, a reload); the goods' mark is cleared then (`*` clears every mark).
 * - Pub/sub delivers at most once, so a mark also lapses after `ttlMs` on its own, and every mark
 *   is dropped whenever the subscriber's connection drops: a lost message can only leave a mark
 *   standing for `ttlMs`.
 *
 * The prefix is goods-service's `STOCK_KEY_PREFIX`, so the marks of one stock namespace never
 * mix with another's. PUBLISH reaches every node of a Redis Cluster, so this works there too.
 */
import { ANY_GOODS, soldOutChannel, unitsReturnedChannel } from '@timedeal/contracts'
import type { Logger, Redis } from '@timedeal/platform'
import { LRUCache } from 'lru-cache'

export interface SoldOutMarks {
  /** True while the goods is known sold out. */
  isSoldOut(goodsId: string): boolean
  /**
   * goods-service answered SOLD_OUT to a call sent at `askedAt` (ms): marks the goods here and on
   * the other instances, unless units came back since the call was sent.
   */
  markSoldOut(goodsId: string, askedAt: number): void
  stop(): Promise<void>
}

export interface SoldOutMarksOptions {
  /** Publishes the marks this instance sets. */
  readonly redis: Redis
  readonly stockPrefix: string
  /** How long a mark stands without news. */
  readonly ttlMs: number
  /** Goods remembered at most; the least recently used go first. */
  readonly maxGoods?: number
  readonly logger: Logger
  readonly clock?: () => number
}

/** How long a "units came back" is remembered, to refuse a SOLD_OUT answer that was sent before it. */
const RETURN_MEMORY_MS = 60_000

/** Starts listening in the background: Redis being away never holds up or fails the service. */
export function startSoldOutMarks(options: SoldOutMarksOptions): SoldOutMarks {
  const { redis, logger } = options
  const clock = options.clock ?? Date.now
  const max = options.maxGoods ?? 10_000
  const marks = new LRUCache<string, true>({ max, ttl: options.ttlMs, perf: { now: clock } })
  const returnedAt = new LRUCache<string, number>({ max, ttl: RETURN_MEMORY_MS, perf: { now: clock } })
  let anyReturnedAt = 0
  const soldOut = soldOutChannel(options.stockPrefix)
  const unitsReturned = unitsReturnedChannel(options.stockPrefix)

  const subscriber = redis.duplicate()
  // Marks are trusted only while the subscription is up: a message missed while it is down
  // could be the one that clears them.
  let listening = false
  const forgetAll = () => {
    listening = false
    marks.clear()
  }
  subscriber.on('close', forgetAll)
  subscriber.on('end', forgetAll)
  subscriber.on('error', (error: Error) => logger.debug({ err: error }, 'sold-out subscriber connection error'))
  // On every (re)connection: subscribe, and trust marks only from then on. Placements never
  // wait for it; until then every buyer simply asks goods-service.
  subscriber.on('ready', () => {
    marks.clear()
    subscriber.subscribe(soldOut, unitsReturned).then(
      () => {
        listening = subscriber.status === 'ready'
      },
      (error: unknown) =>
        logger.warn({ err: error }, 'cannot subscribe to sold-out marks; every buyer asks goods-service'),
    )
  })
  subscriber.on('message', (channel: string, goodsId: string) => {
    if (channel === soldOut) {
      if (listening) marks.set(goodsId, true)
      return
    }
    if (channel !== unitsReturned) return
    const now = clock()
    if (goodsId === ANY_GOODS) {
      anyReturnedAt = now
      marks.clear()
      return
    }
    returnedAt.set(goodsId, now)
    marks.delete(goodsId)
  })

  /** Units of the goods came back at or after `since`. */
  function returnedSince(goodsId: string, since: number): boolean {
    return anyReturnedAt >= since || (returnedAt.get(goodsId) ?? 0) >= since
  }

  return {
    isSoldOut(goodsId) {
      return listening && marks.has(goodsId)
    },

    markSoldOut(goodsId, askedAt) {
      if (!listening || returnedSince(goodsId, askedAt)) return
      marks.set(goodsId, true)
      redis.publish(soldOut, goodsId).catch((error: unknown) => {
        logger.debug({ err: error, goodsId }, 'could not share a sold-out mark; the other instances ask goods-service')
      })
    },

    async stop() {
      forgetAll()
      subscriber.removeAllListeners('message')
      subscriber.removeAllListeners('ready')
      await subscriber.quit().catch(() => subscriber.disconnect())
    },
  }
}
