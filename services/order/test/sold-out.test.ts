import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { unitsReturnedChannel } from '@timedeal/contracts'
import { createRedis } from '@timedeal/platform'
import { connectTestRedis, eventually, testLogger, testSettings, uniqueName } from '@timedeal/platform/testing'
import { useTestRedisCluster } from '@timedeal/platform/testing/redis-cluster'
import { type SoldOutMarks, startSoldOutMarks } from '../src/adapters/sold-out-marks.ts'
import {
  INTERNAL_SECRET,
  type OrderStack,
  startOrderStack,
  startTestOrderService,
  type TestOrderService,
} from './support.ts'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Long enough that only goods-service's "units came back" can clear a mark within a test. */
const MARK_TTL_MS = '60000'
const HOLD_MS = 5_000

describe('sold-out marks (real goods-service, two order-service instances, Redis pub/sub)', () => {
  let stack: OrderStack
  let second: TestOrderService

  before(async () => {
    stack = await startOrderStack({
      goods: { RESERVATION_HOLD_MS: String(HOLD_MS), EXPIRY_SWEEP_INTERVAL_MS: '200' },
      orders: { SOLD_OUT_MARK_TTL_MS: MARK_TTL_MS, ORDER_EXPIRY_ENABLED: 'false', PAYMENT_DEADLINE_MARGIN_MS: '1000' },
    })
    second = await startTestOrderService(stack.goods, stack.issuer, {
      SOLD_OUT_MARK_TTL_MS: MARK_TTL_MS,
      ORDER_EXPIRY_ENABLED: 'false',
      PAYMENT_DEADLINE_MARGIN_MS: '1000',
    })
  })

  after(async () => {
    await second?.stop()
    await stack?.stop()
  })

  const buyer = () => stack.issuer.sign({ sub: uniqueName('buyer'), role: 'BUYER' })

  async function place(goodsId: string, orders: TestOrderService = stack.orders) {
    const response = await orders.call('POST', '/api/orders', {
      token: await buyer(),
      body: { goodsId, quantity: 1 },
      headers: { 'idempotency-key': randomUUID() },
    })
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  }

  /** How many reservations goods-service itself refused as sold out, all goods together. */
  async function soldOutAnswers(): Promise<number> {
    const text = await (await fetch(`${stack.goods.url}/metrics`)).text()
    const line = text
      .split('\n')
      .find((row) => row.startsWith('stock_reservations_total{') && row.includes('outcome="SOLD_OUT"'))
    return line ? Number(line.split(' ').at(-1)) : 0
  }

  const internal = { 'x-timedeal-internal': INTERNAL_SECRET, 'content-type': 'application/json' }

  /**
   * Goods of one unit, held by a reservation nobody pays for (made at goods-service itself), and
   * a buyer refused by goods-service: the goods is marked sold out.
   */
  async function soldOutGoods() {
    const goodsId = await stack.goods.createGoods(stack.sellerToken, { price: 1_000, stock: 1 })
    const reservationId = `rsv-${randomUUID()}`
    const held = await fetch(`${stack.goods.internalUrl}/internal/reservations`, {
      method: 'POST',
      headers: internal,
      body: JSON.stringify({ reservationId, goodsId, userId: 'slow-payer', quantity: 1 }),
    })
    assert.equal(held.status, 201, await held.text())
    const refused = await place(goodsId)
    assert.equal(refused.status, 409, JSON.stringify(refused.body))
    return { goodsId, reservationId, refused: refused.body }
  }

  test('buyers after a sell-out are refused on every instance without asking goods-service, with its own problem', async () => {
    const { goodsId, refused } = await soldOutGoods()
    assert.equal(refused.code, 'SOLD_OUT')
    // The mark reaches the other instance over pub/sub.
    await sleep(200)
    const before = await soldOutAnswers()
    const later = await Promise.all([
      ...Array.from({ length: 5 }, () => place(goodsId, stack.orders)),
      ...Array.from({ length: 5 }, () => place(goodsId, second)),
    ])
    for (const answer of later) {
      assert.deepEqual({ status: answer.status, body: answer.body }, { status: 409, body: refused })
    }
    assert.equal((await soldOutAnswers()) - before, 0, 'goods-service was asked again after the sell-out')
  })

  test('a unit released back to stock is sold again at once, although the goods was marked sold out', async () => {
    const { goodsId, reservationId } = await soldOutGoods()
    const released = await fetch(`${stack.goods.internalUrl}/internal/reservations/${reservationId}/release`, {
      method: 'POST',
      headers: internal,
      body: JSON.stringify({ goodsId, reason: 'test' }),
    })
    assert.equal(released.status, 200, await released.text())
    // Well before the hold would have run out, and the mark's own bound.
    const sold = await eventually(
      async () => ((await place(goodsId, second)).status === 201 ? true : undefined),
      1_500,
      'a buyer on the other instance to get the released unit',
    )
    assert.equal(sold, true)
  })

  test('a hold that ran out gives its unit to the next buyer, although the goods was marked sold out', async () => {
    const { goodsId } = await soldOutGoods()
    const sold = await eventually(
      async () => ((await place(goodsId)).status === 201 ? true : undefined),
      HOLD_MS + 3_000,
      'a buyer to get the unit of the expired hold',
    )
    assert.equal(sold, true)
  })
})

/** Marks the goods once the marks listen (they start in the background). */
const marked = (marks: SoldOutMarks, goodsId: string) =>
  eventually(
    async () => {
      marks.markSoldOut(goodsId, Date.now())
      return marks.isSoldOut(goodsId) ? true : undefined
    },
    5_000,
    `${goodsId} to be marked sold out`,
  )

describe('a sold-out mark without news', () => {
  test('lapses after its bound when the message that would clear it is lost', async () => {
    const redis = connectTestRedis(uniqueName('sold-out-lapse'))
    const marks = startSoldOutMarks({ redis, stockPrefix: uniqueName('stock'), ttlMs: 300, logger: testLogger })
    try {
      await marked(marks, 'goods-1')
      await sleep(400)
      assert.equal(marks.isSoldOut('goods-1'), false)
    } finally {
      await marks.stop()
      redis.disconnect()
    }
  })

  test('is dropped when the subscriber connection drops, and marks work again once it is back', async () => {
    const name = uniqueName('sold-out-drop')
    const redis = connectTestRedis(name)
    const admin = connectTestRedis()
    const stockPrefix = uniqueName('stock')
    const marks = startSoldOutMarks({ redis, stockPrefix, ttlMs: 60_000, logger: testLogger })
    try {
      await marked(marks, 'goods-1')
      const clients = String(await admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub'))
      const ids = clients
        .split('\n')
        .filter((line) => line.includes(` name=${name} `))
        .map((line) => /id=(\d+)/.exec(line)?.[1])
      assert.equal(ids.length, 1, clients)
      await admin.call('CLIENT', 'KILL', 'ID', String(ids[0]))
      await eventually(async () => (marks.isSoldOut('goods-1') ? undefined : true), 2_000, 'the mark to be dropped')
      // Subscribed again: a mark is kept, and goods-service's message clears it.
      await marked(marks, 'goods-2')
      await admin.publish(unitsReturnedChannel(stockPrefix), 'goods-2')
      await eventually(async () => (marks.isSoldOut('goods-2') ? undefined : true), 2_000, 'the mark to be cleared')
    } finally {
      await marks.stop()
      redis.disconnect()
      admin.disconnect()
    }
  })
})

describe('sold-out marks on a Redis Cluster of three primaries', () => {
  test('a mark reaches the other instance, and a message published on any node clears it', async () => {
    const cluster = await useTestRedisCluster()
    const connect = () =>
      createRedis({ url: testSettings.REDIS_URL, clusterNodes: [...cluster.nodes], logger: testLogger })
    const clients = [connect(), connect(), connect()]
    const [first, second, publisher] = clients as [(typeof clients)[0], (typeof clients)[0], (typeof clients)[0]]
    const stockPrefix = uniqueName('stock')
    const marks = [first, second].map((redis) =>
      startSoldOutMarks({ redis, stockPrefix, ttlMs: 60_000, logger: testLogger }),
    )
    const [here, there] = marks as [SoldOutMarks, SoldOutMarks]
    try {
      await marked(there, 'goods-warm-up')
      await marked(here, 'goods-1')
      await eventually(async () => (there.isSoldOut('goods-1') ? true : undefined), 2_000, 'the mark to be shared')
      await publisher.publish(unitsReturnedChannel(stockPrefix), 'goods-1')
      await eventually(
        async () => (here.isSoldOut('goods-1') || there.isSoldOut('goods-1') ? undefined : true),
        2_000,
        'the marks to be cleared',
      )
    } finally {
      await Promise.all(marks.map((one) => one.stop()))
      for (const client of clients) client.disconnect()
      await cluster.release()
    }
  })
})
