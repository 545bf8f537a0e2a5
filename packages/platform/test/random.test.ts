import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { pooledRandomBytes, randomHex } from '../src/random.ts'

describe('pooled random bytes', () => {
  test('never hand out the same bytes twice, across many refills of the pool', () => {
    const drawn = 50_000
    const hex = new Set(Array.from({ length: drawn }, () => randomHex(8)))
    const raw = new Set(Array.from({ length: drawn }, () => pooledRandomBytes(8).toString('hex')))
    assert.equal(hex.size, drawn)
    assert.equal(raw.size, drawn)
    assert.match([...hex][0] ?? '', /^[0-9a-f]{16}$/)
  })

  test('bytes handed out stay as they were when the pool is filled again', () => {
    const first = pooledRandomBytes(16)
    const copy = Buffer.from(first)
    // More than a pool's worth of draws: the pool is filled again at least once.
    for (let draw = 0; draw < 600; draw += 1) pooledRandomBytes(16)
    assert.ok(first.equals(copy))
  })
})
