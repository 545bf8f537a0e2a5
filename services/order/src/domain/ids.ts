import { pooledRandomBytes, randomHex } from '@timedeal/platform'

/**
 * A new order id: a UUID version 7, whose first 48 bits are the time in ms. Ids made later sort
 * after earlier ones, so the id doubles as the stable cursor of "newest first" pages.
 */
export function newOrderId(now: number = Date.now()): string {
  const bytes = pooledRandomBytes(16)
  bytes.writeUIntBE(now, 0, 6)
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x70 // version 7
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80 // RFC 4122 variant
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** A reservation id of its own per placement attempt, so an abandoned attempt never shadows a later one. */
export function newReservationId(): string {
  return `rsv-${randomHex(12)}`
}

/** The token a placement holds its Idempotency-Key's claim by. */
export function newClaimToken(): string {
  return randomHex(16)
}
