/**
 * The Redis key layout of live stock. goods-service reads and writes these keys and the
 * operator's warm-up writes them, so both build names here and nowhere else.
 *
 * A namespace (the prefix) is split into a fixed number of shards. A goods belongs to shard
 * `crc32(goodsId) mod shards`, and every key of a goods, with its shard's expiry index, ledger
 * stream and reservation lookup, carries the hash tag `{<p>/<shard>}`: every key one script
 * touches sits in one Redis Cluster slot, while the shards of a namespace spread over the
 * primaries. Goods ids never contain `/`, so no goods' key can be mistaken for another's or for a
 * shard's own key; prefixes never contain `/` either, so `<p>/<shard>` names one shard of one prefix.
 *
 * | key                                              | type   | holds                                         |
 * | ------------------------------------------------ | ------ | --------------------------------------------- |
 * | `<p>:{<p>/<s>}:goods/<goods>/available`          | string | units left to reserve                         |
 * | `<p>:{<p>/<s>}:goods/<goods>/sale`               | hash   | startsAt, endsAt (ms), purchaseLimit (0 =     |
 * |                                                  |        | none), initialStock, version (of the catalog) |
 * | `<p>:{<p>/<s>}:goods/<goods>/holders`            | hash   | userId → units in live reservations           |
 * | `<p>:{<p>/<s>}:goods/<goods>/reservation/<id>`   | hash   | goods, user, quantity, state, times, reason   |
 * |                                                  |        | (or a released marker: state, time, no user)  |
 * | `<p>:{<p>/<s>}:reservation-goods/<id>`           | string | goodsId of a reservation made in the shard    |
 * | `<p>:{<p>/<s>}:expiries`                         | zset   | `<goods>\|<id>` scored by expiry time (ms)    |
 * | `<p>:{<p>/<s>}:ledger`                           | stream | one entry per stock change of the shard       |
 */
import { crc32 } from 'node:zlib'

/** The keys one shard's goods share: its expiry index, ledger stream and reservation lookup. */
export interface ShardKeys {
  readonly index: number
  readonly expiries: string
  readonly ledger: string
  reservationGoods(reservationId: string): string
}

export interface StockKeys {
  readonly prefix: string
  /** Every shard of the namespace, by index. */
  readonly shards: readonly ShardKeys[]
  /** Every shard's ledger stream, by shard index. */
  readonly ledgers: readonly string[]
  /** The shard a goods belongs to, for as long as the namespace keeps its number of shards. */
  shardOf(goodsId: string): ShardKeys
  available(goodsId: string): string
  sale(goodsId: string): string
  holders(goodsId: string): string
  reservation(goodsId: string, reservationId: string): string
}

export const DEFAULT_STOCK_PREFIX = 'stock'
/**
 * Shards of a namespace unless told otherwise. Enough that a handful of hot goods rarely share a
 * shard, and that the shards spread over the primaries of a cluster of a dozen or so.
 */
export const DEFAULT_STOCK_SHARDS = 16
export const MAX_STOCK_SHARDS = 1024

const PREFIX = /^[A-Za-z0-9_.:-]{1,64}$/
/** Goods whose key names a namespace keeps worked out at most (then it starts over). */
const KNOWN_GOODS = 10_000
const GOODS_ID = /^[A-Za-z0-9_.:-]{1,64}$/

/** The shard of a goods among `shards`: a hash every process computes the same way. */
export function shardIndexOf(goodsId: string, shards: number): number {
  return crc32(goodsId) % shards
}

/**
 * Key names under `prefix` (default `stock`) split into `shards` shards. Another prefix gives an
 * isolated namespace: tests use one of their own, so they never meet each other's ledger or
 * expiries. Every process that uses a namespace must be given the same number of shards.
 */
export function stockKeys(prefix: string = DEFAULT_STOCK_PREFIX, shards: number = DEFAULT_STOCK_SHARDS): StockKeys {
  if (!PREFIX.test(prefix)) throw new Error(`stock key prefix ${JSON.stringify(prefix)} must match ${PREFIX}`)
  if (!Number.isInteger(shards) || shards < 1 || shards > MAX_STOCK_SHARDS) {
    throw new Error(`stock shards must be a whole number from 1 to ${MAX_STOCK_SHARDS}, got ${shards}`)
  }
  const all: ShardKeys[] = Array.from({ length: shards }, (_, index) => {
    // The shard is the hash tag: one slot per shard, so no script ever crosses slots.
    const tagged = `${prefix}:{${prefix}/${index}}`
    return {
      index,
      expiries: `${tagged}:expiries`,
      ledger: `${tagged}:ledger`,
      reservationGoods: (reservationId) => `${tagged}:reservation-goods/${reservationId}`,
    }
  })
  // A reservation names its goods' keys five times over; a hot goods' are worked out once.
  const known = new Map<string, { readonly base: string; readonly shard: ShardKeys }>()
  const goodsOf = (goodsId: string) => {
    let goods = known.get(goodsId)
    if (!goods) {
      // A `/` would let one goods' key name another's; a `|` would break the expiry member.
      if (!GOODS_ID.test(goodsId)) throw new Error(`goods id ${JSON.stringify(goodsId)} must match ${GOODS_ID}`)
      const index = shardIndexOf(goodsId, shards)
      goods = { base: `${prefix}:{${prefix}/${index}}:goods/${goodsId}`, shard: all[index] as ShardKeys }
      if (known.size >= KNOWN_GOODS) known.clear()
      known.set(goodsId, goods)
    }
    return goods
  }
  const goods = (goodsId: string) => goodsOf(goodsId).base
  return {
    prefix,
    shards: all,
    ledgers: all.map((shard) => shard.ledger),
    shardOf: (goodsId) => known.get(goodsId)?.shard ?? (all[shardIndexOf(goodsId, shards)] as ShardKeys),
    available: (goodsId) => `${goods(goodsId)}/available`,
    sale: (goodsId) => `${goods(goodsId)}/sale`,
    holders: (goodsId) => `${goods(goodsId)}/holders`,
    reservation: (goodsId, reservationId) => `${goods(goodsId)}/reservation/${reservationId}`,
  }
}

/** The member of the expiry index for one reservation; goods ids never contain `|`. */
export const expiryMember = (goodsId: string, reservationId: string): string => `${goodsId}|${reservationId}`

export function parseExpiryMember(member: string): { goodsId: string; reservationId: string } | undefined {
  const split = member.indexOf('|')
  if (split <= 0) return undefined
  return { goodsId: member.slice(0, split), reservationId: member.slice(split + 1) }
}
