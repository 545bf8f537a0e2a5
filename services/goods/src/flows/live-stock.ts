import { ANY_GOODS } from '@timedeal/contracts'
import { type Logger, Problem } from '@timedeal/platform'
import type {
  ConfirmOutcome,
  ReleaseOptions,
  ReleaseOutcome,
  ReserveOutcome,
  ReserveRequest,
  StockSnapshot,
  StockStore,
} from '@timedeal/stock'
import type { Catalog } from '../adapters/catalog.ts'
import { type Goods, stockSourceOf } from '../domain/goods.ts'
import type { GoodsMetrics } from '../metrics.ts'

/**
 * Live stock that works without a warm-up: whatever finds a goods' stock missing from Redis
 * loads it from MySQL first. Loads of one goods are shared within the process, and the
 * load-if-absent script makes sure only one load across all processes takes effect.
 */
export interface LiveStock {
  readonly store: StockStore
  /** True once the goods' stock is in Redis; false when the goods does not exist. */
  ensureLoaded(goodsId: string): Promise<boolean>
  snapshot(goods: Goods): Promise<StockSnapshot>
  reserve(request: ReserveRequest): Promise<ReserveOutcome | { ok: false; refusal: 'GOODS_NOT_FOUND' }>
  confirm(reservationId: string, goodsId?: string): Promise<ConfirmOutcome>
  release(reservationId: string, options?: ReleaseOptions): Promise<ReleaseOutcome>
  /** One pass of the expiry sweeper: how many reservations were due and how many went back. */
  expireDue(limit: number): Promise<{ due: number; released: number }>
}

export interface LiveStockOptions {
  readonly store: StockStore
  readonly catalog: Catalog
  readonly metrics: GoodsMetrics
  readonly logger: Logger
  /**
   * Resolves once the ledger entries written so far are applied to MySQL; a load waits for it,
   * so the count it reads is not missing changes still on their way.
   */
  readonly ledgerApplied?: () => Promise<void>
  /** Told after units of a goods (`*`: of any goods) went back to stock, once the script said so. */
  readonly unitsReturned?: (goodsId: string) => void
}

export function createLiveStock(options: LiveStockOptions): LiveStock {
  const { store, catalog, metrics, logger, ledgerApplied } = options
  const unitsReturned = options.unitsReturned ?? (() => {})
  const loading = new Map<string, Promise<boolean>>()

  async function load(goodsId: string): Promise<boolean> {
    if (await store.read(goodsId)) return true
    try {
      await ledgerApplied?.()
    } catch (error) {
      logger.warn({ err: error, goodsId }, 'cannot load stock yet: the write-behind is behind')
      throw new Problem({
        status: 503,
        code: 'STOCK_UNAVAILABLE',
        detail: 'the stock of these goods is being restored; try again shortly',
      })
    }
    const goods = await catalog.find(goodsId)
    if (!goods) return false
    if (await store.loadIfAbsent(stockSourceOf(goods))) {
      metrics.coldLoads.inc()
      unitsReturned(goodsId)
      logger.info({ goodsId, onHand: goods.stockOnHand }, 'stock was not in Redis: loaded it from MySQL')
    }
    return true
  }

  function ensureLoaded(goodsId: string): Promise<boolean> {
    let pending = loading.get(goodsId)
    if (!pending) {
      pending = load(goodsId).finally(() => loading.delete(goodsId))
      loading.set(goodsId, pending)
    }
    return pending
  }

  return {
    store,
    ensureLoaded,

    async snapshot(goods) {
      for (let attempt = 0; attempt < 3; attempt += 1) {
        const live = await store.read(goods.id)
        if (live) return live
        await ensureLoaded(goods.id)
      }
      throw new Error(`the stock of goods ${goods.id} could not be loaded into Redis`)
    },

    async reserve(request) {
      const outcome = await store.reserve(request)
      if (outcome.ok || outcome.refusal !== 'NOT_LOADED') return outcome
      if (!(await ensureLoaded(request.goodsId))) return { ok: false, refusal: 'GOODS_NOT_FOUND' }
      return store.reserve(request)
    },

    async confirm(reservationId, goodsId) {
      const outcome = await store.confirm(reservationId, goodsId)
      if (outcome.status !== 'NOT_LOADED') return outcome
      await ensureLoaded(outcome.goodsId)
      return store.confirm(reservationId, outcome.goodsId)
    },

    async release(reservationId, options) {
      let outcome = await store.release(reservationId, options)
      if (outcome.status === 'NOT_LOADED') {
        await ensureLoaded(outcome.goodsId)
        outcome = await store.release(reservationId, { ...options, goodsId: outcome.goodsId })
      }
      if (outcome.status === 'RELEASED' && outcome.changed) unitsReturned(options?.goodsId ?? ANY_GOODS)
      return outcome
    },

    async expireDue(limit) {
      const pass = await store.expireDue(limit)
      await Promise.all(pass.unloaded.map((goodsId) => ensureLoaded(goodsId)))
      if (pass.released > 0) {
        metrics.releases.inc({ reason: 'expired' }, pass.released)
        unitsReturned(ANY_GOODS)
      }
      return { due: pass.due, released: pass.released }
    },
  }
}
