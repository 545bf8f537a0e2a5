/**
 * Payments arriving in a burst: order-service takes them a polled batch at a time, confirms the
 * batch's reservations with goods-service in one call and applies the batch in one transaction.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { type CloudEvent, createEvent, TOPIC_PAYMENTS } from '@timedeal/contracts'
import type { EventPublisher } from '@timedeal/platform'
import { eventually, startTestIssuer, type TestIssuer, uniqueName } from '@timedeal/platform/testing'
import {
  rows,
  spawnGoodsService,
  startTestOrderService,
  type TestGoodsService,
  type TestOrderService,
  testBus,
  waitForGroupsPast,
} from './support.ts'

interface OrderBody {
  id: string
  state: string
  totalAmount: number
}

/** How often goods-service answered a route, from its `/metrics`. */
async function goodsCallsTo(goods: TestGoodsService, route: string): Promise<number> {
  const text = await (await fetch(`${goods.url}/metrics`)).text()
  let calls = 0
  for (const line of text.split('\n')) {
    if (line.startsWith('http_server_request_duration_seconds_count{') && line.includes(`route="${route}"`)) {
      calls += Number(line.split(' ').at(-1))
    }
  }
  return calls
}

describe('payments a batch at a time (real goods-service, MariaDB, Redis, Kafka)', () => {
  let issuer: TestIssuer
  let goods: TestGoodsService
  let orders: TestOrderService
  let publisher: EventPublisher
  const bus = testBus('payment-batches-test')

  before(async () => {
    issuer = await startTestIssuer()
    goods = await spawnGoodsService(issuer)
    orders = await startTestOrderService(goods, issuer)
    publisher = await bus.publisher()
  })

  after(async () => {
    await publisher?.close()
    await orders?.stop()
    await goods?.stop()
    await issuer?.close()
  })

  const paymentOf = (order: OrderBody): CloudEvent =>
    createEvent('paymentCompleted', {
      source: '/payment-service',
      subject: order.id,
      data: {
        paymentId: randomUUID(),
        orderId: order.id,
        amount: order.totalAmount,
        provider: 'sandbox',
        completedAt: new Date().toISOString(),
      },
    })

  const statesOf = async (ids: readonly string[]) =>
    rows<{ id: string; state: string }>(orders.database.sequelize, 'SELECT id, state FROM orders WHERE id IN (:ids)', {
      ids,
    })

  const paidEventsOf = async (ids: readonly string[]) =>
    Number(
      (
        await rows<{ n: number }>(
          orders.database.sequelize,
          "SELECT COUNT(*) AS n FROM outbox WHERE message_key IN (:ids) AND event_type = 'timedeal.order.paid.v1'",
          { ids },
        )
      )[0]?.n,
    )

  test('a burst of payments is confirmed with goods-service a batch per call and paid once each, even when the whole burst is delivered again', async () => {
    const seller = await issuer.sign({ sub: uniqueName('seller'), role: 'SELLER' })
    const goodsId = await goods.createGoods(seller, { price: 1_000, stock: 40 })
    const placed: OrderBody[] = []
    for (let index = 0; index < 30; index++) {
      const token = await issuer.sign({ sub: uniqueName('buyer'), role: 'BUYER' })
      const response = await orders.call('POST', '/api/orders', {
        token,
        body: { goodsId, quantity: 1 },
        headers: { 'idempotency-key': randomUUID() },
      })
      assert.equal(response.status, 201)
      placed.push((await response.json()) as OrderBody)
    }
    const ids = placed.map((order) => order.id)
    const confirmCallsBefore = await goodsCallsTo(goods, '/internal/reservations/confirmations')

    // The whole burst in one request, so each partition's consumer polls its share at once.
    const payments = placed.map(paymentOf)
    await publisher.publish(TOPIC_PAYMENTS, payments)
    await eventually(
      async () => ((await statesOf(ids)).every((order) => order.state === 'PAID') ? true : undefined),
      30_000,
      'every order PAID',
    )
    assert.equal(await goodsCallsTo(goods, '/internal/reservations/:id/confirm'), 0, 'calls confirming one reservation')
    const batchCalls = (await goodsCallsTo(goods, '/internal/reservations/confirmations')) - confirmCallsBefore
    // The topic's partitions split the burst: at most a call per partition's batch, never one per order.
    assert.ok(batchCalls >= 1 && batchCalls <= 6, `${batchCalls} confirmation calls for ${ids.length} payments`)
    for (const order of placed) {
      const [row] = await rows<{ reservation_id: string }>(
        orders.database.sequelize,
        'SELECT reservation_id FROM orders WHERE id = :id',
        { id: order.id },
      )
      assert.equal((await goods.reservation(row?.reservation_id ?? ''))?.state, 'CONFIRMED')
    }
    assert.equal(await paidEventsOf(ids), ids.length)

    // Delivered again (a relay that published twice): the inbox knows every id, nothing changes.
    const receipts = await publisher.publish(TOPIC_PAYMENTS, payments)
    const lastPerPartition = new Map(receipts.map((receipt) => [receipt.partition, receipt]))
    for (const receipt of lastPerPartition.values()) await waitForGroupsPast([orders.groupId], receipt)
    assert.equal(await paidEventsOf(ids), ids.length)
    assert.equal(await goods.stockAvailable(goodsId), 10)
  })
})
