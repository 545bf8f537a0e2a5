import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { newOrderId, newReservationId } from '../src/domain/ids.ts'
import { newClaim } from '../src/domain/placement.ts'

describe('ids, tokens and reservation ids', () => {
  test('order ids are UUID version 7 that sort by the time they were made', () => {
    const earlier = newOrderId(Date.parse('2030-01-01T10:00:00.000Z'))
    const later = newOrderId(Date.parse('2030-01-01T10:00:00.001Z'))
    for (const id of [earlier, later])
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    assert.ok(earlier < later)
  })

  test('none repeats, however many are made (the random bytes are drawn many times over)', () => {
    const made = 20_000
    const orders = new Set(Array.from({ length: made }, () => newOrderId(0)))
    const reservations = new Set(Array.from({ length: made }, newReservationId))
    const tokens = new Set(
      Array.from(
        { length: made },
        () => newClaim({ buyerId: 'b', idempotencyKey: 'k', goodsId: 'g', quantity: 1 }, new Date(0), 1).token,
      ),
    )
    assert.deepEqual([orders.size, reservations.size, tokens.size], [made, made, made])
    assert.match([...tokens][0] ?? '', /^[0-9a-f]{32}$/)
    assert.match(newReservationId(), /^rsv-[0-9a-f]{24}$/)
  })
})
