import { randomFillSync } from 'node:crypto'

// Random bytes are drawn from a pool filled a few KiB at a time: a placement makes three ids, and
// a call to the random source for each costs more than the rest of making them. Each byte is
// handed out once.
const pool = Buffer.alloc(4096)
let poolOffset = pool.length

/** Where `size` fresh random bytes start in the pool. */
function take(size: number): number {
  if (poolOffset + size > pool.length) {
    randomFillSync(pool)
    poolOffset = 0
  }
  const start = poolOffset
  poolOffset += size
  return start
}

/** `size` random bytes as hex (twice as many characters). */
export function randomHex(size: number): string {
  const start = take(size)
  return pool.toString('hex', start, start + size)
}

/**
 * A new order id: a UUID version 7, whose first 48 bits are the time in ms. Ids made later sort
 * after earlier ones, so the id doubles as the stable cursor of "newest first" pages.
 */
export function newOrderId(now: number = Date.now()): string {
  const bytes = Buffer.allocUnsafe(16)
  const start = take(16)
  pool.copy(bytes, 0, start, start + 16)
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
