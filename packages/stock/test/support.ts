import { randomUUID } from 'node:crypto'
import type { Redis } from '@timedeal/platform'
import { deleteRedisKeys, uniqueName } from '@timedeal/platform/testing'
import { type LedgerEntry, parseLedgerEntry, type StockStore } from '../src/index.ts'

/** A key prefix no other test uses: its own stock, ledger and expiries. */
export const testPrefix = () => uniqueName('test_stock')

export interface SaleShape {
  readonly stock: number
  /** Sale opens this many ms after the Redis clock's now (negative: already open). */
  readonly opensIn?: number
  readonly lastsMs?: number
  readonly purchaseLimit?: number | null
}

/** Loads a new goods into `store` with a window relative to Redis time; returns its id. */
export async function openSale(
  store: StockStore,
  shape: SaleShape,
): Promise<{ goodsId: string; startsAt: number; endsAt: number }> {
  const goodsId = `g-${randomUUID()}`
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

export async function ledgerOf(redis: Redis, store: StockStore, goodsId?: string): Promise<LedgerEntry[]> {
  const raw = (await redis.xrange(store.keys.ledger, '-', '+')) as [string, string[]][]
  return raw
    .map(([id, fields]) => parseLedgerEntry(id, fields))
    .filter((entry): entry is LedgerEntry => entry !== undefined && (!goodsId || entry.goodsId === goodsId))
}

export async function availableOf(redis: Redis, store: StockStore, goodsId: string): Promise<number> {
  return Number(await redis.get(store.keys.available(goodsId)))
}

/** Deletes every key under a prefix, on every primary of a cluster. */
export async function dropPrefix(redis: Redis, prefix: string): Promise<void> {
  const primaries = redis.isCluster ? (redis as unknown as { nodes(role: 'master'): Redis[] }).nodes('master') : [redis]
  for (const primary of primaries) await deleteRedisKeys(primary, prefix)
}

export const countBy = <T>(values: readonly T[]): Map<T, number> => {
  const counts = new Map<T, number>()
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1)
  return counts
}
