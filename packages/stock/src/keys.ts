/**
 * The Redis key layout of live stock. goods-service reads and writes these keys and the
 * operator's warm-up writes them, so both build names here and nowhere else.
 *
 * Every key carries the hash tag `{<p>}` (the prefix itself), so every key one script touches,
 * the ledger stream, the expiry index and the reservation lookup shared by all goods included,
 * sits in one Redis Cluster slot: the scripts run unchanged on one Redis or on a cluster. Goods
 * ids never contain `/`, so no goods' key can be mistaken for another's or for a shared key.
 *
 * | key                                      | type   | holds                                            |
 * | ---------------------------------------- | ------ | ------------------------------------------------ |
 * | `<p>:{<p>}:goods/<goods>/available`       | string | units left to reserve                            |
 * | `<p>:{<p>}:goods/<goods>/sale`            | hash   | startsAt, endsAt (ms), purchaseLimit (0 = none), |
 * |                                          |        | initialStock, version (of the catalog row)       |
 * | `<p>:{<p>}:goods/<goods>/holders`         | hash   | userId → units in live reservations              |
 * | `<p>:{<p>}:goods/<goods>/reservation/<id>`| hash   | goods, user, quantity, state, times, reason      |
 * |                                          |        | (or a released marker: state, time, no user)     |
 * | `<p>:{<p>}:reservation-goods/<id>`        | string | goodsId of a reservation (confirm/release by id) |
 * | `<p>:{<p>}:expiries`                      | zset   | `<goods>\|<id>` scored by expiry time (ms)       |
 * | `<p>:{<p>}:ledger`                        | stream | one entry per stock change, for the write-behind |
 */
export interface StockKeys {
  readonly prefix: string
  available(goodsId: string): string
  sale(goodsId: string): string
  holders(goodsId: string): string
  reservation(goodsId: string, reservationId: string): string
  reservationGoods(reservationId: string): string
  readonly expiries: string
  readonly ledger: string
}

export const DEFAULT_STOCK_PREFIX = 'stock'

const PREFIX = /^[A-Za-z0-9_.:-]{1,64}$/
const GOODS_ID = /^[A-Za-z0-9_.:-]{1,64}$/

/**
 * Key names under `prefix` (default `stock`). Another prefix gives an isolated namespace:
 * tests use one of their own, so they never meet each other's ledger or expiries. A namespace
 * is one Redis Cluster slot, so one primary serves it.
 */
export function stockKeys(prefix: string = DEFAULT_STOCK_PREFIX): StockKeys {
  if (!PREFIX.test(prefix)) throw new Error(`stock key prefix ${JSON.stringify(prefix)} must match ${PREFIX}`)
  // The prefix is the hash tag: one slot for the namespace, so no script ever crosses slots.
  const namespace = `${prefix}:{${prefix}}`
  const goods = (goodsId: string) => {
    // A `/` would let one goods' key name another's; a `|` would break the expiry member.
    if (!GOODS_ID.test(goodsId)) throw new Error(`goods id ${JSON.stringify(goodsId)} must match ${GOODS_ID}`)
    return `${namespace}:goods/${goodsId}`
  }
  return {
    prefix,
    available: (goodsId) => `${goods(goodsId)}/available`,
    sale: (goodsId) => `${goods(goodsId)}/sale`,
    holders: (goodsId) => `${goods(goodsId)}/holders`,
    reservation: (goodsId, reservationId) => `${goods(goodsId)}/reservation/${reservationId}`,
    reservationGoods: (reservationId) => `${namespace}:reservation-goods/${reservationId}`,
    expiries: `${namespace}:expiries`,
    ledger: `${namespace}:ledger`,
  }
}

/** The member of the expiry index for one reservation; goods ids never contain `|`. */
export const expiryMember = (goodsId: string, reservationId: string): string => `${goodsId}|${reservationId}`

export function parseExpiryMember(member: string): { goodsId: string; reservationId: string } | undefined {
  const split = member.indexOf('|')
  if (split <= 0) return undefined
  return { goodsId: member.slice(0, split), reservationId: member.slice(split + 1) }
}
