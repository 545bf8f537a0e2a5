/**
 * A payment that arrives while goods-service cannot confirm the reservation: the order becomes
 * PAID only once its units are confirmed for it, and an order whose hold ran out meanwhile ends
 * EXPIRED and is refunded once, so its unit is never sold twice.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { deadLetterTopicOf, TOPIC_PAYMENTS } from '@timedeal/contracts'
import { eventually, startTestIssuer, type TestIssuer, uniqueName } from '@timedeal/platform/testing'
import {
  type EventWatch,
  rows,
  spawnGoodsService,
  spawnPaymentService,
  startTestOrderService,
  type TestGoodsService,
  type TestOrderService,
  type TestPaymentService,
  watchEvents,
} from './support.ts'

interface OrderBody {
  id: string
  state: string
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe('payments while goods-service cannot confirm (real goods-service and payment-service)', () => {
  const SHORT_HOLD_MS = 4_000
  let issuer: TestIssuer
  let shortHold: TestGoodsService
  let longHold: TestGoodsService
  let payment: TestPaymentService
  let shortOrders: TestOrderService
  let longOrders: TestOrderService
  let deadLetters: EventWatch
  let sellerToken: string

  before(async () => {
    issuer = await startTestIssuer()
    ;[shortHold, longHold, payment] = await Promise.all([
      spawnGoodsService(issuer, { RESERVATION_HOLD_MS: String(SHORT_HOLD_MS), EXPIRY_SWEEP_INTERVAL_MS: '200' }),
      spawnGoodsService(issuer, { RESERVATION_HOLD_MS: '120000' }),
      // The charge takes a moment, so goods-service is down before order-service hears of it.
      spawnPaymentService(issuer, { SANDBOX_LATENCY_MS: '1500' }),
    ])
    ;[shortOrders, longOrders] = await Promise.all([
      startTestOrderService(shortHold, issuer, {
        PAYMENT_DEADLINE_MARGIN_MS: '1000',
        // The breaker the outage opened lets calls through again soon after goods-service is back.
        GOODS_BREAKER_OPEN_MS: '500',
      }),
      startTestOrderService(longHold, issuer),
    ])
    deadLetters = await watchEvents(deadLetterTopicOf(TOPIC_PAYMENTS))
    sellerToken = await issuer.sign({ sub: uniqueName('seller'), role: 'SELLER' })
  })

  after(async () => {
    await deadLetters?.close()
    await Promise.all([shortOrders?.stop(), longOrders?.stop()])
    await Promise.all([shortHold?.stop(), longHold?.stop(), payment?.stop()])
    await issuer?.close()
  })

  const buyer = () => issuer.sign({ sub: uniqueName('buyer'), role: 'BUYER' })

  async function place(orders: TestOrderService, token: string, goodsId: string): Promise<OrderBody> {
    const response = await orders.call('POST', '/api/orders', {
      token,
      body: { goodsId, quantity: 1 },
      headers: { 'idempotency-key': randomUUID() },
    })
    const body = (await response.json()) as OrderBody
    assert.equal(response.status, 201, JSON.stringify(body))
    return body
  }

  const stateOf = async (orders: TestOrderService, id: string) =>
    (await rows<{ state: string }>(orders.database.sequelize, 'SELECT state FROM orders WHERE id = :id', { id }))[0]
      ?.state

  const reaches = (orders: TestOrderService, id: string, state: string, timeoutMs = 30_000) =>
    eventually(
      async () => ((await stateOf(orders, id)) === state ? true : undefined),
      timeoutMs,
      `order ${id} to become ${state}`,
    )

  /** Takes goods-service down, and checks the charge had not been made yet (else nothing is tested). */
  async function haltBeforeTheCharge(goods: TestGoodsService, orderId: string) {
    await goods.halt()
    assert.deepEqual(await payment.payments(orderId), [], 'the charge came before goods-service was down')
    await eventually(
      async () => ((await payment.payments(orderId))[0]?.status === 'COMPLETED' ? true : undefined),
      20_000,
      'the charge',
    )
  }

  const paymentCompletedId = async (orderId: string) => {
    const [row] = await rows<{ event: string | { id: string } }>(
      payment.database.sequelize,
      "SELECT event FROM outbox WHERE message_key = :orderId AND event_type = 'timedeal.payment.completed.v1'",
      { orderId },
    )
    assert.ok(row, 'the PaymentCompleted event')
    return (typeof row.event === 'string' ? (JSON.parse(row.event) as { id: string }) : row.event).id
  }

  const refundEvents = async (orderId: string) =>
    Number(
      (
        await rows<{ n: number }>(
          payment.database.sequelize,
          "SELECT COUNT(*) AS n FROM outbox WHERE message_key = :orderId AND event_type = 'timedeal.payment.refunded.v1'",
          { orderId },
        )
      )[0]?.n,
    )

  test('never marks two orders PAID for one unit when confirm was unavailable and the hold ran out', async () => {
    const goodsId = await shortHold.createGoods(sellerToken, { price: 9_100, stock: 1 })
    const first = await place(shortOrders, await buyer(), goodsId)
    const placedAt = Date.now()
    await haltBeforeTheCharge(shortHold, first.id)

    // goods-service stays down until the hold has certainly run out.
    await sleep(Math.max(0, placedAt + SHORT_HOLD_MS + 1_000 - Date.now()))
    await shortHold.resume()

    await eventually(
      async () => ((await shortHold.stockAvailable(goodsId)) === 1 ? true : undefined),
      30_000,
      'the unit back on sale',
    )
    const second = await place(shortOrders, await buyer(), goodsId)
    await reaches(shortOrders, second.id, 'PAID')

    const paid = await rows<{ id: string }>(
      shortOrders.database.sequelize,
      "SELECT id FROM orders WHERE goods_id = :goodsId AND state = 'PAID'",
      { goodsId },
    )
    assert.deepEqual(
      paid.map((row) => row.id),
      [second.id],
      'two PAID orders for one unit',
    )
    assert.equal(await stateOf(shortOrders, first.id), 'EXPIRED')
    await eventually(
      async () => ((await payment.payments(first.id))[0]?.status === 'REFUNDED' ? true : undefined),
      30_000,
      'the refund of the expired order',
    )
    assert.equal(await refundEvents(first.id), 1)
    assert.equal(await shortHold.stockAvailable(goodsId), 0)
  })

  test('a payment that arrives while goods-service is down waits for the confirmation, then is paid', async () => {
    const goodsId = await longHold.createGoods(sellerToken, { price: 9_200, stock: 1 })
    const order = await place(longOrders, await buyer(), goodsId)
    await haltBeforeTheCharge(longHold, order.id)
    const eventId = await paymentCompletedId(order.id)

    // Longer than a handful of quick retries would take.
    await sleep(5_000)
    assert.equal(await stateOf(longOrders, order.id), 'PENDING_PAYMENT', 'paid while goods-service was down')
    await longHold.resume()

    await reaches(longOrders, order.id, 'PAID')
    const [row] = await rows<{ reservation_id: string }>(
      longOrders.database.sequelize,
      'SELECT reservation_id FROM orders WHERE id = :id',
      { id: order.id },
    )
    assert.equal((await longHold.reservation(row?.reservation_id ?? ''))?.state, 'CONFIRMED')
    assert.equal(deadLetters.seen.has(eventId), false, 'the payment event was dead-lettered')
    assert.deepEqual(
      (await payment.payments(order.id)).map((p) => p.status),
      ['COMPLETED'],
    )
  })
})
