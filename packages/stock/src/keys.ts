/**
 * The Redis key layout of live stock. goods-service reads and writes these keys and the
 * operator's warm-up writes them, so both build names here and nowhere else.
 *
 * Every key of one goods carries the hash tag `{goodsId}`, so a goods' stock, sale terms,
 * holders and reservation records sit in one Redis Cluster slot. Three keys are shared by all
 * goods of a namespace: the ledger stream, the expiry index and the reservation lookup.
 *
 * | key                                   | type   | holds                                            |
 * | ------------------------------------- | ------ | ------------------------------------------------ |
 * | `<p>:{<goods>}:available`             | string | units left to reserve                            |
 * | `<p>:{<goods>}:sale`                  | hash   | startsAt, endsAt (ms), purchaseLimit (0 = none), |
 * |                                       |        | initialStock, version (of the catalog row)       |
 * | `<p>:{<goods>}:holders`               | hash   | userId → units in live reservations              |
 * | `<p>:{<goods>}:reservation:<id>`      | hash   | goods, user, quantity, state, times, reason      |
 * |                                       |        | (or a released marker: state, time, no user)     |
 * | `<p>:reservation-goods:<id>`          | string | goodsId of a reservation (confirm/release by id) |
 * | `<p>:expiries`                        | zset   | `<goods>\|<id>` scored by expiry time (ms)       |
 * | `<p>:ledger`                          | stream | one entry per stock change, for the write-behind |
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
 * tests use one of their own, so they never meet each other's ledger or expiries.
 */
export function stockKeys(prefix: string = DEFAULT_STOCK_PREFIX): StockKeys {
  if (!PREFIX.test(prefix)) throw new Error(`stock key prefix ${JSON.stringify(prefix)} must match ${PREFIX}`)
  const tag = (goodsId: string) => {
    // Braces or a separator in a goods id would break the hash tag or the expiry member.
    if (!GOODS_ID.test(goodsId)) throw new Error(`goods id ${JSON.stringify(goodsId)} must match ${GOODS_ID}`)
    return `${prefix}:{${goodsId}}`
  }
  return {
    prefix,
    available: (goodsId) => `${tag(goodsId)}:available`,
    sale: (goodsId) => `${tag(goodsId)}:sale`,
    holders: (goodsId) => `${tag(goodsId)}:holders`,
    reservation: (goodsId, reservationId) => `${tag(goodsId)}:reservation:${reservationId}`,
    reservationGoods: (reservationId) => `${prefix}:reservation-goods:${reservationId}`,
    expiries: `${prefix}:expiries`,
    ledger: `${prefix}:ledger`,
  }
}

/** The member of the expiry index for one reservation; goods ids never contain `|`. */
export const expiryMember = (goodsId: string, reservationId: string): string => `${goodsId}|${reservationId}`

export function parseExpiryMember(member: string): { goodsId: string; reservationId: string } | undefined {
  const split = member.indexOf('|')
  if (split <= 0) return undefined
  return { goodsId: member.slice(0, split), reservationId: member.slice(split + 1) }
}
