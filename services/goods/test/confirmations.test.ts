import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import type { TestIssuer } from '@timedeal/platform/testing'
import { call, type GoodsUnderTest, saleDraft, startGoodsUnderTest, type TestGoods } from './support.ts'

describe('confirming many reservations in one call (real MariaDB and Redis)', () => {
  let fixture: GoodsUnderTest
  let issuer: TestIssuer
  let goods: TestGoods

  before(async () => {
    // A hold short enough to let one reservation run out inside the test.
    fixture = await startGoodsUnderTest({ settings: { RESERVATION_HOLD_MS: '400', EXPIRY_SWEEP_INTERVAL_MS: '60000' } })
    ;({ issuer, goods } = fixture)
  })

  after(async () => {
    await fixture?.stop()
  })

  async function createSale(stock: number): Promise<string> {
    const seller = await issuer.sign({ sub: `seller-${randomUUID()}`, role: 'SELLER' })
    const now = await goods.service.live.store.now()
    const created = await call(goods.app, 'POST', '/api/goods', { token: seller, body: saleDraft(now, { stock }) })
    assert.equal(created.status, 201)
    return String(created.body.id)
  }

  const reserve = async (goodsId: string, reservationId = randomUUID()) => {
    const reserved = await call(goods.app, 'POST', '/internal/reservations', {
      internal: true,
      body: { reservationId, goodsId, userId: `buyer-${randomUUID()}`, quantity: 1 },
    })
    assert.equal(reserved.status, 201)
    return reservationId
  }

  const confirmMany = (reservations: readonly { reservationId: string; goodsId: string }[]) =>
    call(goods.app, 'POST', '/internal/reservations/confirmations', { internal: true, body: { reservations } })

  const stateOf = async (reservationId: string) =>
    (await call(goods.app, 'GET', `/internal/reservations/${reservationId}`, { internal: true })).body.state

  test('answers each reservation of a batch with its own outcome, in the order asked, and confirming again changes nothing', async () => {
    const sale = await createSale(20)
    const expired = await reserve(sale)
    await new Promise((resolve) => setTimeout(resolve, 600))
    const held = [await reserve(sale), await reserve(sale), await reserve(sale)]
    const released = await reserve(sale)
    const releasing = await call(goods.app, 'POST', `/internal/reservations/${released}/release`, {
      internal: true,
      body: { goodsId: sale, reason: 'order-cancelled' },
    })
    assert.equal(releasing.status, 200)
    const unknown = randomUUID()

    const asked = [
      ...held.map((reservationId) => ({ reservationId, goodsId: sale })),
      { reservationId: expired, goodsId: sale },
      { reservationId: released, goodsId: sale },
      { reservationId: unknown, goodsId: sale },
    ]
    const answer = await confirmMany(asked)
    assert.equal(answer.status, 200)
    assert.deepEqual(answer.body, {
      outcomes: [
        ...held.map((reservationId) => ({ reservationId, outcome: 'CONFIRMED' })),
        { reservationId: expired, outcome: 'EXPIRED' },
        { reservationId: released, outcome: 'RELEASED' },
        { reservationId: unknown, outcome: 'NOT_FOUND' },
      ],
    })
    for (const reservationId of held) assert.equal(await stateOf(reservationId), 'CONFIRMED')
    // Confirmed reservations no longer run out: past the hold they are still the buyer's.
    await new Promise((resolve) => setTimeout(resolve, 600))
    assert.deepEqual((await confirmMany(held.map((reservationId) => ({ reservationId, goodsId: sale })))).body, {
      outcomes: held.map((reservationId) => ({ reservationId, outcome: 'CONFIRMED' })),
    })
    // Taken: the three confirmed; back in stock: the expired and the released one.
    assert.equal((await call(goods.app, 'GET', `/api/goods/${sale}/stock`)).body.stockAvailable, 17)
  })

  test('refuses an empty, oversized or malformed batch with a problem, and a call without the service credential', async () => {
    const empty = await confirmMany([])
    assert.deepEqual([empty.status, empty.body.code], [400, 'VALIDATION_FAILED'])
    const tooMany = await confirmMany(
      Array.from({ length: 201 }, () => ({ reservationId: randomUUID(), goodsId: 'goods-1' })),
    )
    assert.deepEqual([tooMany.status, tooMany.body.code], [400, 'VALIDATION_FAILED'])
    const noGoods = await call(goods.app, 'POST', '/internal/reservations/confirmations', {
      internal: true,
      body: { reservations: [{ reservationId: randomUUID() }] },
    })
    assert.equal(noGoods.status, 400)
    const anonymous = await call(goods.app, 'POST', '/internal/reservations/confirmations', {
      body: { reservations: [{ reservationId: randomUUID(), goodsId: 'goods-1' }] },
    })
    assert.equal(anonymous.status, 401)
  })
})
