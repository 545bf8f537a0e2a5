import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { createEvent, type EventName, TOPIC_ORDERS } from '@timedeal/contracts'
import type { EventBus, EventPublisher } from '@timedeal/platform'
import { eventually, type TestIssuer, testEventBus } from '@timedeal/platform/testing'
import {
  call,
  type GoodsUnderTest,
  ledgerRowsOf,
  saleDraft,
  startGoodsUnderTest,
  type TestDatabase,
  type TestGoods,
} from './support.ts'

describe('order events release stock (real Kafka, MariaDB and Redis)', () => {
  let fixture: GoodsUnderTest
  let database: TestDatabase
  let issuer: TestIssuer
  let bus: EventBus
  let publisher: EventPublisher
  let goods: TestGoods

  before(async () => {
    bus = testEventBus('goods-events-test')
    // The publisher creates the run's topics (the operator's apply) if this suite runs alone.
    publisher = await bus.publisher()
    fixture = await startGoodsUnderTest({ bus })
    ;({ database, issuer, goods } = fixture)
  })

  after(async () => {
    await fixture?.stop()
    await publisher?.close()
  })

  test("cancelled, failed, expired and returned orders give their units back once; a paid order's confirmed reservation keeps its units", async () => {
    const seller = await issuer.sign({ sub: `seller-${randomUUID()}`, role: 'SELLER' })
    const now = await goods.service.live.store.now()
    const created = await call(goods.app, 'POST', '/api/goods', { token: seller, body: saleDraft(now, { stock: 10 }) })
    const goodsId = String(created.body.id)

    const orders = ['cancelled', 'failed', 'expired', 'returned', 'paid'].map((outcome, index) => ({
      outcome,
      orderId: `order-${outcome}-${randomUUID()}`,
      reservationId: `reservation-${outcome}-${randomUUID()}`,
      buyerId: `buyer-${index}`,
      quantity: 1 + (index % 2),
    }))
    for (const order of orders) {
      const reserved = await call(goods.app, 'POST', '/internal/reservations', {
        internal: true,
        body: { reservationId: order.reservationId, goodsId, userId: order.buyerId, quantity: order.quantity },
      })
      assert.equal(reserved.status, 201)
    }
    const [returned, paid] = [orders[3], orders[4]]
    assert.ok(returned && paid)
    await call(goods.app, 'POST', `/internal/reservations/${returned.reservationId}/confirm`, { internal: true })
    // What order-service does before it writes PAID: confirm, here for the batch of one.
    const confirmed = await call(goods.app, 'POST', '/internal/reservations/confirmations', {
      internal: true,
      body: { reservations: [{ reservationId: paid.reservationId, goodsId }] },
    })
    assert.deepEqual(confirmed.body, { outcomes: [{ reservationId: paid.reservationId, outcome: 'CONFIRMED' }] })
    const stock = async () => (await call(goods.app, 'GET', `/api/goods/${goodsId}/stock`)).body.stockAvailable
    assert.equal(await stock(), 10 - orders.reduce((sum, order) => sum + order.quantity, 0))

    const at = new Date().toISOString()
    const line = (order: (typeof orders)[number]) => ({
      orderId: order.orderId,
      buyerId: order.buyerId,
      goodsId,
      reservationId: order.reservationId,
      quantity: order.quantity,
    })
    const eventOf = (order: (typeof orders)[number]) => {
      const base = { source: 'order-service', subject: order.orderId }
      const name: Record<string, EventName> = {
        cancelled: 'orderCancelled',
        failed: 'orderFailed',
        expired: 'orderExpired',
        returned: 'orderReturned',
        paid: 'orderPaid',
      }
      switch (name[order.outcome]) {
        case 'orderCancelled':
          return createEvent('orderCancelled', { ...base, data: { ...line(order), wasPaid: false, cancelledAt: at } })
        case 'orderFailed':
          return createEvent('orderFailed', {
            ...base,
            data: { ...line(order), reason: 'card declined', failedAt: at },
          })
        case 'orderExpired':
          return createEvent('orderExpired', { ...base, data: { ...line(order), expiredAt: at } })
        case 'orderReturned':
          return createEvent('orderReturned', { ...base, data: { ...line(order), returnedAt: at } })
        default:
          return createEvent('orderPaid', { ...base, data: { ...line(order), paymentId: randomUUID(), paidAt: at } })
      }
    }
    const events = orders.map(eventOf)
    // Every event twice, the way a redelivery would bring it.
    await publisher.publish(TOPIC_ORDERS, [...events, ...events])

    await eventually(
      async () => ((await stock()) === 10 - paid.quantity ? true : undefined),
      60_000,
      'the released units back in stock',
    )
    const stateOf = async (reservationId: string) => {
      const record = await call(goods.app, 'GET', `/internal/reservations/${reservationId}`, { internal: true })
      return [record.body.state, record.body.releaseReason]
    }
    assert.equal((await stateOf(paid.reservationId))[0], 'CONFIRMED')
    for (const order of orders.filter((order) => order !== paid)) {
      assert.deepEqual(await stateOf(order.reservationId), ['RELEASED', `order-${order.outcome}`])
    }
    // One reserve entry per order and one release per released order, nothing doubled.
    await eventually(async () => ((await ledgerRowsOf(database.sequelize, goodsId)) === 9 ? true : undefined))
    assert.equal(await stock(), 10 - paid.quantity)
  })
})
