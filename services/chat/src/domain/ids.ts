import { randomBytes } from 'node:crypto'

/** The 12-bit counter of ids made within one millisecond (rand_a of UUID version 7). */
const SEQUENCE_LIMIT = 0x1000

let lastMs = 0
let sequence = 0

/**
 * A new message id: a UUID version 7 whose first 48 bits are the time in ms and whose next 12
 * bits count ids made in the same ms by this process. Ids of one process only ever grow, even
 * within a millisecond or when the clock steps back, so "after message id X" is a range on the
 * (room, id) index and one sender's messages sort in the order they were sent.
 */
export function newMessageId(now: number = Date.now()): string {
  if (now > lastMs) {
    lastMs = now
    sequence = 0
  } else if (++sequence >= SEQUENCE_LIMIT) {
    // 4096 ids in one ms: borrow the next ms rather than repeat an order.
    lastMs += 1
    sequence = 0
  }
  return uuid7(lastMs, sequence)
}

/** A new room id; time-ordered too, so rooms list newest first by id. */
export function newRoomId(now: number = Date.now()): string {
  return uuid7(now, randomBytes(2).readUInt16BE(0) % SEQUENCE_LIMIT)
}

function uuid7(ms: number, counter: number): string {
  const bytes = randomBytes(16)
  bytes.writeUIntBE(ms, 0, 6)
  bytes[6] = 0x70 | (counter >> 8) // version 7, then the counter's high 4 bits
  bytes[7] = counter & 0xff
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80 // RFC 4122 variant
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** What a message or room id looks like; anything else is refused before it reaches a store. */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/
