import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { type CloudEvent, TOPIC_ORDERS } from '@timedeal/contracts'
import { assertEveryRouteDocumented } from '@timedeal/platform'
import { eventually, type TestIssuer, uniqueName } from '@timedeal/platform/testing'
import {
  type OrderStack,
  rows,
  startOrderStack,
  type TestGoodsService,
  type TestOrderService,
  type TestPaymentService,
  testBus,
  waitForGroupsPast,
} from './support.ts'

interface OrderBody {
  id: string
  state: string
  version: number
  totalAmount: number
  paymentId: string | null
  failureReason: string | null
  buyerId: string
}

describe('orders and payments end to end (real goods-service and payment-service, MariaDB, Redis, Kafka)', () => {
  let stack: OrderStack
  let issuer: TestIssuer
  let goods: TestGoodsService
  let payment: TestPaymentService
  let orders: TestOrderService
  let sellerToken: string

  before(async () => {
    stack = await startOrderStack()
    ;({ issuer, goods, payment, orders, sellerToken } = stack)
  })

  after(() => stack?.stop())

  const buyer = () => issuer.sign({ sub: uniqueName('buyer'), role: 'BUYER' })

  async function place(token: string, goodsId: string, quantity = 1, key = randomUUID()) {
    const response = await orders.call('POST', '/api/orders', {
      token,
      body: { goodsId, quantity },
      headers: { 'idempotency-key': key },
    })
    return { response, body: (await response.json()) as OrderBody & { code?: string } }
  }

  async function placed(token: string, goodsId: string, quantity = 1): Promise<OrderBody> {
    const { response, body } = await place(token, goodsId, quantity)
    assert.equal(response.status, 201, JSON.stringify(body))
    return body
  }

  async function read(token: string, id: string): Promise<OrderBody> {
    const response = await orders.call('GET', `/api/orders/${id}`, { token })
    assert.equal(response.status, 200)
    return (await response.json()) as OrderBody
  }

  const reaches = (token: string, id: string, state: string) =>
    eventually(
      async () => {
        const order = await read(token, id)
        return order.state === state ? order : undefined
      },
      30_000,
      `order ${id} to become ${state}`,
    )

  const stockBecomes = (goodsId: string, expected: number) =>
    eventually(
      async () => ((await goods.stockAvailable(goodsId)) === expected ? true : undefined),
      20_000,
      `stock of ${goodsId} to be ${expected}`,
    )

  const reservationOf = async (orderId: string) =>
    (
      await rows<{ reservation_id: string }>(
        orders.database.sequelize,
        'SELECT reservation_id FROM orders WHERE id = :orderId',
        { orderId },
      )
    )[0]?.reservation_id ?? ''

  const refundEvents = async (orderId: string) =>
    (
      await rows<{ n: number }>(
        payment.database.sequelize,
        "SELECT COUNT(*) AS n FROM outbox WHERE message_key = :orderId AND event_type = 'timedeal.payment.refunded.v1'",
        { orderId },
      )
    )[0]?.n

  test('every order route is in /openapi.json with its request, responses and problem codes', async () => {
    await assertEveryRouteDocumented(orders.app)
  })

  test('a placed order is paid: its stock is taken and its reservation confirmed, with one payment', async () => {
    const goodsId = await goods.createGoods(sellerToken, { price: 12_000, stock: 10 })
    const token = await buyer()
    const order = await placed(token, goodsId, 2)
    assert.equal(order.state, 'PENDING_PAYMENT')
    assert.equal(order.totalAmount, 24_000)
    const paid = await reaches(token, order.id, 'PAID')
    assert.ok(paid.paymentId)
    assert.equal(await goods.stockAvailable(goodsId), 8)
    assert.equal((await goods.reservation(await reservationOf(order.id)))?.state, 'CONFIRMED')
    assert.deepEqual(
      (await payment.payments(order.id)).map((row) => [row.status, Number(row.amount)]),
      [['COMPLETED', 24_000]],
    )
  })

  test('a declined payment fails the order and gives the stock back', async () => {
    const goodsId = await goods.createGoods(sellerToken, { price: 10_013, stock: 5 })
    const token = await buyer()
    const order = await placed(token, goodsId, 1)
    const failed = await reaches(token, order.id, 'FAILED')
    assert.equal(failed.failureReason, 'payment failed: CARD_DECLINED')
    await stockBecomes(goodsId, 5)
    assert.equal((await goods.reservation(await reservationOf(order.id)))?.state, 'RELEASED')
    assert.deepEqual(
      (await payment.payments(order.id)).map((row) => row.status),
      ['FAILED'],
    )
  })

  test('cancelling a paid order restocks once and refunds once, even when the cancellation is delivered twice', async () => {
    const goodsId = await goods.createGoods(sellerToken, { price: 8_000, stock: 3 })
    const token = await buyer()
    const order = await placed(token, goodsId, 2)
    await reaches(token, order.id, 'PAID')
    assert.equal(await goods.stockAvailable(goodsId), 1)

    const cancel = await orders.call('POST', `/api/orders/${order.id}/cancel`, { token })
    assert.equal(cancel.status, 200)
    assert.equal(((await cancel.json()) as OrderBody).state, 'CANCELLED')
    await stockBecomes(goodsId, 3)
    await eventually(
      async () => ((await payment.payments(order.id))[0]?.status === 'REFUNDED' ? true : undefined),
      20_000,
      'the refund',
    )

    // The very same event again, as a relay that crashed before marking it would send it.
    const [row] = await rows<{ event: string | CloudEvent }>(
      orders.database.sequelize,
      "SELECT event FROM outbox WHERE message_key = :id AND event_type = 'timedeal.order.cancelled.v1'",
      { id: order.id },
    )
    assert.ok(row)
    const cancelled = typeof row.event === 'string' ? (JSON.parse(row.event) as CloudEvent) : row.event
    const bus = testBus('flow-duplicate')
    const publisher = await bus.publisher()
    try {
      const [receipt] = await publisher.publish(TOPIC_ORDERS, [cancelled])
      assert.ok(receipt)
      await waitForGroupsPast([goods.groupId, payment.groupId], receipt)
    } finally {
      await publisher.close()
    }
    assert.equal(await goods.stockAvailable(goodsId), 3)
    assert.equal(Number(await refundEvents(order.id)), 1)
    assert.deepEqual(
      (await payment.payments(order.id)).map((p) => p.status),
      ['REFUNDED'],
    )
  })

  test('a delivered order returned within the window is refunded and restocked; shipping is the seller’s', async () => {
    const sellerId = uniqueName('seller')
    const ownSeller = await issuer.sign({ sub: sellerId, role: 'SELLER' })
    const goodsId = await goods.createGoods(ownSeller, { price: 20_000, stock: 4 })
    const token = await buyer()
    const order = await placed(token, goodsId, 1)
    await reaches(token, order.id, 'PAID')

    const returnTooEarly = await orders.call('POST', `/api/orders/${order.id}/return`, { token })
    assert.equal(returnTooEarly.status, 409)
    const otherSeller = await orders.call('POST', `/api/orders/${order.id}/ship`, { token: sellerToken })
    assert.equal(otherSeller.status, 404)
    const buyerShips = await orders.call('POST', `/api/orders/${order.id}/ship`, { token })
    assert.equal(buyerShips.status, 403)

    const shipped = await orders.call('POST', `/api/orders/${order.id}/ship`, { token: ownSeller })
    assert.equal(((await shipped.json()) as OrderBody).state, 'SHIPPED')
    const cancelShipped = await orders.call('POST', `/api/orders/${order.id}/cancel`, { token })
    assert.equal(cancelShipped.status, 409)
    const delivered = await orders.call('POST', `/api/orders/${order.id}/deliver`, { token: ownSeller })
    assert.equal(((await delivered.json()) as OrderBody).state, 'DELIVERED')
    const returned = await orders.call('POST', `/api/orders/${order.id}/return`, { token })
    assert.equal(returned.status, 200)
    assert.equal(((await returned.json()) as OrderBody).state, 'RETURNED')

    await stockBecomes(goodsId, 4)
    await eventually(
      async () => ((await payment.payments(order.id))[0]?.status === 'REFUNDED' ? true : undefined),
      20_000,
      'the refund of the return',
    )
    assert.equal(Number(await refundEvents(order.id)), 1)
    const seen = await orders.call('GET', `/api/orders/${order.id}`, { token: ownSeller })
    assert.equal(seen.status, 200)
  })

  test('an illegal transition is 409 INVALID_ORDER_STATE and changes nothing', async () => {
    const goodsId = await goods.createGoods(sellerToken, { price: 5_000, stock: 2 })
    const token = await buyer()
    const order = await placed(token, goodsId)
    const paid = await reaches(token, order.id, 'PAID')
    const response = await orders.call('POST', `/api/orders/${order.id}/return`, { token })
    assert.equal(response.status, 409)
    const problem = (await response.json()) as { code: string; state: string; command: string }
    assert.equal(response.headers.get('content-type'), 'application/problem+json')
    assert.deepEqual([problem.code, problem.state, problem.command], ['INVALID_ORDER_STATE', 'PAID', 'RETURN'])
    const after = await read(token, order.id)
    assert.deepEqual([after.state, after.version], [paid.state, paid.version])
  })

  test('the same Idempotency-Key returns the same order; another request under it is refused', async () => {
    const goodsId = await goods.createGoods(sellerToken, { price: 3_000, stock: 5 })
    const token = await buyer()
    const key = randomUUID()
    const first = await place(token, goodsId, 1, key)
    assert.equal(first.response.status, 201)
    const again = await place(token, goodsId, 1, key)
    assert.equal(again.response.status, 200)
    assert.equal(again.response.headers.get('idempotent-replayed'), 'true')
    assert.equal(again.body.id, first.body.id)
    const other = await place(token, goodsId, 2, key)
    assert.equal(other.response.status, 422)
    assert.equal(other.body.code, 'IDEMPOTENCY_KEY_REUSED')
    // Another buyer's key space is their own.
    const stranger = await place(await buyer(), goodsId, 1, key)
    assert.equal(stranger.response.status, 201)
    assert.notEqual(stranger.body.id, first.body.id)

    const missing = await orders.call('POST', '/api/orders', { token, body: { goodsId, quantity: 1 } })
    assert.equal(missing.status, 400)
    await stockBecomes(goodsId, 3)
  })

  test('concurrent placements under one key make one order and take the stock once', async () => {
    const goodsId = await goods.createGoods(sellerToken, { price: 4_000, stock: 10 })
    const token = await buyer()
    const key = randomUUID()
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => place(token, goodsId, 2, key)))
    const statuses = results.map((result) => result.response.status).sort()
    assert.deepEqual(statuses, [200, 200, 200, 200, 201])
    assert.equal(new Set(results.map((result) => result.body.id)).size, 1)
    // The losing attempts released the units they had reserved.
    await stockBecomes(goodsId, 8)
  })

  test('twin placements under one key for the last unit both answer the same order, never a refusal', async () => {
    // Several rounds: the twins must race the same way every time, not only when lucky.
    for (let round = 0; round < 8; round += 1) {
      const goodsId = await goods.createGoods(sellerToken, { price: 4_100, stock: 1 })
      const token = await buyer()
      const key = randomUUID()
      const twins = await Promise.all([place(token, goodsId, 1, key), place(token, goodsId, 1, key)])
      assert.deepEqual(
        twins.map((twin) => twin.response.status).sort(),
        [200, 201],
        `round ${round}: ${JSON.stringify(twins.map((twin) => twin.body))}`,
      )
      assert.equal(twins[0]?.body.id, twins[1]?.body.id)
      assert.equal(await goods.stockAvailable(goodsId), 0)
    }
  })

  test('a refused key is refused the same way when sent again, even after the stock came back', async () => {
    const goodsId = await goods.createGoods(sellerToken, { price: 4_200, stock: 1 })
    const holderToken = await buyer()
    const holder = await placed(holderToken, goodsId)
    const token = await buyer()
    const key = randomUUID()
    const refused = await place(token, goodsId, 1, key)
    assert.deepEqual([refused.response.status, refused.body.code], [409, 'SOLD_OUT'])

    await orders.call('POST', `/api/orders/${holder.id}/cancel`, { token: holderToken })
    await stockBecomes(goodsId, 1)
    const twins = await Promise.all([place(token, goodsId, 1, key), place(token, goodsId, 1, key)])
    for (const twin of twins) {
      assert.deepEqual([twin.response.status, twin.body.code], [409, 'SOLD_OUT'], JSON.stringify(twin.body))
    }
    // Only that key remembers the refusal: a new request of the same buyer goes through.
    assert.equal((await place(token, goodsId, 1)).response.status, 201)
  })

  test('a refused reservation gives the buyer goods-service’s own code', async () => {
    const goodsId = await goods.createGoods(sellerToken, { price: 1_000, stock: 2, purchaseLimit: 2 })
    const token = await buyer()
    const tooMany = await place(token, goodsId, 3)
    assert.equal(tooMany.response.status, 422)
    assert.equal(tooMany.body.code, 'PURCHASE_LIMIT_EXCEEDED')
    await placed(await buyer(), goodsId, 2)
    const soldOut = await place(token, goodsId, 1)
    assert.equal(soldOut.response.status, 409)
    assert.equal(soldOut.body.code, 'SOLD_OUT')
    const unknown = await place(token, uniqueName('no-such-goods'), 1)
    assert.equal(unknown.response.status, 404)
    assert.equal(unknown.body.code, 'GOODS_NOT_FOUND')
  })

  test('an order write that rolls back publishes nothing and releases the reservation', async () => {
    const goodsId = await goods.createGoods(sellerToken, { price: 2_000, stock: 3 })
    const token = await buyer()
    const db = orders.database.sequelize
    // The order row goes in; the outbox row then fails, so the whole transaction rolls back.
    await db.query(
      "CREATE TRIGGER refuse_outbox BEFORE INSERT ON outbox FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'outbox refused'",
    )
    try {
      const { response } = await place(token, goodsId, 2)
      assert.equal(response.status, 500)
    } finally {
      await db.query('DROP TRIGGER refuse_outbox')
    }
    const leftovers = await rows<{ id: string }>(db, 'SELECT id FROM orders WHERE goods_id = :goodsId', { goodsId })
    assert.deepEqual(leftovers, [])
    await stockBecomes(goodsId, 3)
    const list = (await (await orders.call('GET', '/api/orders', { token })).json()) as { items: OrderBody[] }
    assert.deepEqual(list.items, [])

    // A later order of the same buyer goes through; nothing of the failed one ever reached Kafka.
    const order = await placed(token, goodsId, 1)
    await reaches(token, order.id, 'PAID')
    const charged = await rows<{ order_id: string }>(
      payment.database.sequelize,
      'SELECT order_id FROM payments WHERE buyer_id = :buyerId',
      { buyerId: order.buyerId },
    )
    assert.deepEqual(
      charged.map((row) => row.order_id),
      [order.id],
    )
  })

  test('a buyer lists their own orders newest first, page by page; another buyer’s are not found', async () => {
    const goodsId = await goods.createGoods(sellerToken, { price: 1_500, stock: 10 })
    const token = await buyer()
    const ids: string[] = []
    for (let index = 0; index < 3; index += 1) ids.push((await placed(token, goodsId)).id)
    const first = (await (await orders.call('GET', '/api/orders?limit=2', { token })).json()) as {
      items: OrderBody[]
      nextCursor: string | null
    }
    assert.deepEqual(
      first.items.map((order) => order.id),
      [ids[2], ids[1]],
    )
    assert.ok(first.nextCursor)
    const second = (await (
      await orders.call('GET', `/api/orders?limit=2&cursor=${first.nextCursor}`, { token })
    ).json()) as { items: OrderBody[]; nextCursor: string | null }
    assert.deepEqual(
      second.items.map((order) => order.id),
      [ids[0]],
    )
    assert.equal(second.nextCursor, null)

    const stranger = await buyer()
    assert.equal((await orders.call('GET', `/api/orders/${ids[0]}`, { token: stranger })).status, 404)
    assert.equal((await orders.call('POST', `/api/orders/${ids[0]}/cancel`, { token: stranger })).status, 404)
    const noToken = await orders.app.request('/api/orders')
    assert.equal(noToken.status, 401)
  })
})

describe('time-driven transitions (real goods-service and payment-service)', () => {
  let stack: OrderStack
  let issuer: TestIssuer
  let goods: TestGoodsService
  let payment: TestPaymentService
  let orders: TestOrderService
  let sellerToken: string

  before(async () => {
    stack = await startOrderStack({
      // Reservations hold for 4 s, so unpaid orders expire 1 s before that: 3 s after placement.
      goods: { RESERVATION_HOLD_MS: '4000' },
      payment: { PROVIDER_TIMEOUT_MS: '6000' },
      orders: {
        PAYMENT_DEADLINE_MARGIN_MS: '1000',
        FULFILMENT_AUTO: 'true',
        FULFILMENT_SHIP_AFTER_MS: '300',
        FULFILMENT_DELIVER_AFTER_MS: '300',
      },
    })
    ;({ issuer, goods, payment, orders, sellerToken } = stack)
  })

  after(() => stack?.stop())

  const state = async (token: string, id: string) =>
    ((await (await orders.call('GET', `/api/orders/${id}`, { token })).json()) as OrderBody).state

  test('an order not paid by its deadline expires and its stock goes back; the late payment changes nothing', async () => {
    // An amount ending in 408 makes the sandbox provider hang until payment-service gives up.
    const goodsId = await goods.createGoods(sellerToken, { price: 3_408, stock: 2 })
    assert.equal(await goods.stockAvailable(goodsId), 2)
    const token = await issuer.sign({ sub: uniqueName('buyer'), role: 'BUYER' })
    const response = await orders.call('POST', '/api/orders', {
      token,
      body: { goodsId, quantity: 1 },
      headers: { 'idempotency-key': randomUUID() },
    })
    assert.equal(response.status, 201)
    const order = (await response.json()) as OrderBody
    await eventually(async () => ((await state(token, order.id)) === 'EXPIRED' ? true : undefined), 20_000, 'expiry')
    await eventually(async () => ((await goods.stockAvailable(goodsId)) === 2 ? true : undefined), 20_000, 'restock')
    await eventually(
      async () => ((await payment.payments(order.id))[0]?.status === 'FAILED' ? true : undefined),
      20_000,
      'the timed-out charge',
    )
    await new Promise((resolve) => setTimeout(resolve, 500))
    assert.equal(await state(token, order.id), 'EXPIRED')
  })

  test('with automatic fulfilment, a paid order ships and is delivered on its own', async () => {
    const goodsId = await goods.createGoods(sellerToken, { price: 7_000, stock: 2 })
    const token = await issuer.sign({ sub: uniqueName('buyer'), role: 'BUYER' })
    const response = await orders.call('POST', '/api/orders', {
      token,
      body: { goodsId, quantity: 1 },
      headers: { 'idempotency-key': randomUUID() },
    })
    const order = (await response.json()) as OrderBody
    await eventually(
      async () => ((await state(token, order.id)) === 'DELIVERED' ? true : undefined),
      20_000,
      'delivery',
    )
    const delivered = (await (await orders.call('GET', `/api/orders/${order.id}`, { token })).json()) as Record<
      string,
      string
    >
    assert.ok(delivered.paidAt && delivered.shippedAt && delivered.deliveredAt)
    assert.ok(delivered.paidAt <= delivered.shippedAt && delivered.shippedAt <= delivered.deliveredAt)
  })
})
