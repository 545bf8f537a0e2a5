/**
 * What order-service remembers of goods-service between placements, so a sale's burst does not
 * ask it the same things thousands of times:
 *
 * - the price and seller of a goods, for `ttlMs` (a bounded LRU). They do not change while a
 *   sale runs in a way that matters within seconds; a price change reaches new orders at most
 *   `ttlMs` (plus one call's time) later. Misses for one goods share one call.
 * - that a goods is sold out (the sold-out marks): the reservation is refused here, with the
 *   same problem goods-service answers, until units come back or the mark lapses.
 *
 * Everything else passes straight through to the client.
 */
import { Problem } from '@timedeal/platform'
import { LRUCache } from 'lru-cache'
import type { CallContext, GoodsClient, GoodsSummary } from './goods-client.ts'
import type { SoldOutMarks } from './sold-out-marks.ts'

export interface GoodsMemoryOptions {
  /** How long a goods' price and seller are used before they are asked again. */
  readonly ttlMs: number
  /** Goods remembered at most; the least recently used go first. */
  readonly maxGoods: number
  readonly soldOut?: SoldOutMarks | undefined
  readonly clock?: () => number
}

/** goods-service's own answer for a sold-out goods (its reservation route). */
export const soldOutProblem = () => new Problem({ status: 409, code: 'SOLD_OUT', detail: 'the goods are sold out' })

export function rememberingGoods<C extends Pick<GoodsClient, 'goods' | 'reserve'>>(
  client: C,
  options: GoodsMemoryOptions,
): C {
  const clock = options.clock ?? Date.now
  const { soldOut } = options
  const summaries = new LRUCache<string, GoodsSummary, CallContext | undefined>({
    max: options.maxGoods,
    ttl: options.ttlMs,
    perf: { now: clock },
    // A failed call or a missing goods (undefined) is not kept: the next placement asks again.
    fetchMethod: async (goodsId, _stale, { context }) => client.goods(goodsId, context),
  })

  return {
    ...client,

    async goods(goodsId, context) {
      return summaries.fetch(goodsId, { context })
    },

    async reserve(request, context) {
      if (!soldOut) return client.reserve(request, context)
      if (soldOut.isSoldOut(request.goodsId)) throw soldOutProblem()
      const askedAt = clock()
      try {
        return await client.reserve(request, context)
      } catch (error) {
        if (error instanceof Problem && error.code === 'SOLD_OUT') soldOut.markSoldOut(request.goodsId, askedAt)
        throw error
      }
    },
  }
}
