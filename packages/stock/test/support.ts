import { randomUUID } from 'node:crypto'
import type { Redis } from '@timedeal/platform'
import { uniqueName } from '@timedeal/platform/testing'
import { type LedgerEntry, parseLedgerEntry, type StockStore } from '../src/index.ts'

/** A key prefix no other test uses: its own stock, ledger and expiries. */
export const testPrefix = () => uniqueName('test_stock')

export interface SaleShape {
  readonly stock: number
  /** Sale opens this many ms after the Redis clock's now (negative: already open). */
  readonly opensIn?: number
  readonly lastsMs?: number
  readonly purchaseLimit?: number | null
  /** A fresh id of the test's choosing (say, of a given shard); a new random one otherwise. */
  readonly goodsId?: string
}

/** Loads a new goods into `store` with a window relative to Redis time; returns its id. */
export async function openSale(
  store: StockStore,
  shape: SaleShape,
): Promise<{ goodsId: string; startsAt: number; endsAt: number }> {
  const goodsId = shape.goodsId ?? `g-${randomUUID()}`
  const now = await store.now()
  const startsAt = now + (shape.opensIn ?? -1_000)
  const endsAt = startsAt + (shape.lastsMs ?? 3_600_000)
  const loaded = await store.loadIfAbsent({
    goodsId,
    onHand: shape.stock,
    initialStock: shape.stock,
    startsAt,
    endsAt,
    purchaseLimit: shape.purchaseLimit ?? null,
    version: 1,
  })
  if (!loaded) throw new Error('a fresh goods id was already loaded')
  return { goodsId, startsAt, endsAt }
}

/** The ledger entries of a goods (from its shard's stream) or of every shard, in shard order. */
export async function ledgerOf(redis: Redis, store: StockStore, goodsId?: string): Promise<LedgerEntry[]> {
  const shards = goodsId ? [store.keys.shardOf(goodsId)] : store.keys.shards
  const entries: LedgerEntry[] = []
  for (const shard of shards) {
    const raw = (await redis.xrange(shard.ledger, '-', '+')) as [string, string[]][]
    for (const [id, fields] of raw) {
      const entry = parseLedgerEntry(id, fields, shard.index)
      if (entry && (!goodsId || entry.goodsId === goodsId)) entries.push(entry)
    }
  }
  return entries
}

/** A goods id of the given shard of the store's namespace, found by trying fresh ids. */
export function goodsIdInShard(store: StockStore, shard: number): string {
  for (;;) {
    const goodsId = `g-${randomUUID()}`
    if (store.keys.shardOf(goodsId).index === shard) return goodsId
  }
}

export async function availableOf(redis: Redis, store: StockStore, goodsId: string): Promise<number> {
  return Number(await redis.get(store.keys.available(goodsId)))
}

export const countBy = <T>(values: readonly T[]): Map<T, number> => {
  const counts = new Map<T, number>()
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1)
  return counts
}
