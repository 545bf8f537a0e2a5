import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { judgeClaim, newClaim, type PlacementClaim } from '../src/domain/placement.ts'

const now = new Date('2030-01-01T10:00:00.000Z')
const at = (ms: number) => new Date(now.getTime() + ms)
const request = { buyerId: 'buyer-1', idempotencyKey: 'key-1', goodsId: 'goods-1', quantity: 2 }
const placing = newClaim(request, now, 30_000)
const refused: PlacementClaim = {
  ...placing,
  state: 'REFUSED',
  refusal: { status: 409, code: 'SOLD_OUT', detail: 'the goods are sold out', extensions: { stockAvailable: 0 } },
  until: at(60_000),
}

describe('who places the order of an Idempotency-Key', () => {
  test('each claim has a token and a reservation id of its own', () => {
    const other = newClaim(request, now, 30_000)
    assert.notEqual(other.token, placing.token)
    assert.notEqual(other.reservationId, placing.reservationId)
    assert.deepEqual([placing.state, placing.until], ['PLACING', at(30_000)])
  })

  test('a twin waits while the holder’s lease runs, and takes over once it ran out', () => {
    assert.deepEqual(judgeClaim(placing, request, at(29_999)), { kind: 'wait' })
    assert.deepEqual(judgeClaim(placing, request, at(30_000)), { kind: 'take-over' })
  })

  test('a remembered refusal is answered again until it is forgotten', () => {
    assert.deepEqual(judgeClaim(refused, request, at(59_999)), { kind: 'refused', refusal: refused.refusal })
    assert.deepEqual(judgeClaim(refused, request, at(60_000)), { kind: 'take-over' })
  })

  test('the same key for other goods or another quantity is refused whatever the claim’s state', () => {
    for (const claim of [placing, refused]) {
      assert.deepEqual(judgeClaim(claim, { ...request, quantity: 1 }, now), { kind: 'key-reused' })
      assert.deepEqual(judgeClaim(claim, { ...request, goodsId: 'goods-2' }, now), { kind: 'key-reused' })
    }
  })
})
