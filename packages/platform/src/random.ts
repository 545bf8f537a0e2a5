import { randomFillSync } from 'node:crypto'

// Random bytes come from a pool filled a few KiB at a time: ids made on every request (span ids,
// order ids, claim tokens) would otherwise cost a call to the random source each, more than the
// rest of making them. Each byte is handed out once.
const pool = Buffer.alloc(4096)
let poolOffset = pool.length

/** Where `size` (at most the pool's size) fresh random bytes start in the pool. */
function take(size: number): number {
  if (poolOffset + size > pool.length) {
    randomFillSync(pool)
    poolOffset = 0
  }
  const start = poolOffset
  poolOffset += size
  return start
}

/** `size` fresh random bytes, in a buffer of their own. */
export function pooledRandomBytes(size: number): Buffer {
  const start = take(size)
  return Buffer.from(pool.subarray(start, start + size))
}

/** `size` fresh random bytes as hex (twice as many characters). */
export function randomHex(size: number): string {
  const start = take(size)
  return pool.toString('hex', start, start + size)
}
