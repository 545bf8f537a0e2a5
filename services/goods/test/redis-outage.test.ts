import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { createEvent, deadLetterTopicOf, TOPIC_ORDERS } from '@timedeal/contracts'
import { createLogger, createRedis, type EventPublisher, type Redis } from '@timedeal/platform'
import {
  eventually,
  type PrivateRedis,
  type ServiceProcess,
  spawnService,
  startGroupsAtEnd,
  startPrivateRedis,
  startTestIssuer,
  type TestIssuer,
  testEventBus,
  uniqueName,
  waitUntilReady,
  watchDeadLetters,
} from '@timedeal/platform/testing'
import { createStockStore, type StockStore } from '@timedeal/stock'
import { createTestDatabase, INTERNAL_SECRET, saleDraft, type TestDatabase } from './support.ts'

const entry = fileURLToPath(new URL('../src/main.ts', import.meta.url))
const OUTAGE_MS = 30_000

// The private Redis is killed on purpose: its connection errors are expected.
const quietLogger = createLogger('redis-outage-test', 'fatal')

describe('goods-service while its Redis is down (a real process, a private Redis, real Kafka)', () => {
  const groupId = uniqueName('goods-outage')
  const stockPrefix = uniqueName('test_outage')
  const deadLetterTopic = deadLetterTopicOf(TOPIC_ORDERS)
  let redis: PrivateRedis
  // The test's own client of the private Redis: it makes the paid reservations.
  let client: Redis
  let store: StockStore
  let database: TestDatabase
  let issuer: TestIssuer
  let publisher: EventPublisher
  let service: ServiceProcess

  before(async () => {
    // Every write fsynced, so a SIGKILL loses nothing it acknowledged and a restart brings it all back.
    redis = await startPrivateRedis('always')
    client = createRedis({ url: redis.url, logger: quietLogger, connectionName: 'outage-test' })
    store = createStockStore(client, { prefix: stockPrefix, holdMs: 600_000, retentionMs: 600_000 })
    database = await createTestDatabase()
    issuer = await startTestIssuer()
    const bus = testEventBus('goods-outage-test')
    // The publisher creates the run's topics (the operator's apply) if this suite runs alone.
    publisher = await bus.publisher()
    await startGroupsAtEnd([groupId], [TOPIC_ORDERS])
    service = await spawnService(entry, {
      MYSQL_DATABASE: database.name,
      REDIS_URL: redis.url,
      STOCK_KEY_PREFIX: stockPrefix,
      JWT_JWKS_URL: issuer.jwksUrl,
      INTERNAL_API_SECRET: INTERNAL_SECRET,
      ORDER_EVENTS_GROUP: groupId,
      LOG_LEVEL: 'warn',
    })
    await waitUntilReady(service, 60_000)
  })

  after(async () => {
    await service.stop('SIGTERM')
    await publisher.close()
    client.disconnect()
    await redis.stop()
    await issuer.close()
    await database.drop()
  })

  const stockOf = async (goodsId: string) => {
    const response = await fetch(`${service.url}/api/goods/${goodsId}/stock`)
    return response.status === 200 ? Number(((await response.json()) as { stockAvailable: number }).stockAvailable) : -1
  }

  test('never dead-letters the cancels of paid orders while Redis is down for 30 s; every unit comes back once it returns', async () => {
    const seller = await issuer.sign({ sub: `seller-${randomUUID()}`, role: 'SELLER' })
    const created = await fetch(`${service.url}/api/goods`, {
      method: 'POST',
      headers: { authorization: `Bearer ${seller}`, 'content-type': 'application/json' },
      body: JSON.stringify(saleDraft(await store.now(), { stock: 10 })),
    })
    assert.equal(created.status, 201)
    const { id: goodsId } = (await created.json()) as { id: string }
    // Reading the stock loads it into Redis.
    assert.equal(await stockOf(goodsId), 10)

    const orders = Array.from({ length: 6 }, (_, index) => ({
      orderId: `order-${randomUUID()}`,
      buyerId: `buyer-${index}`,
      goodsId,
      reservationId: `reservation-${randomUUID()}`,
      quantity: 1,
    }))
    for (const order of orders) {
      const reserved = await store.reserve({
        reservationId: order.reservationId,
        goodsId,
        userId: order.buyerId,
        quantity: order.quantity,
      })
      assert.ok(reserved.ok)
      // Paid: the reservation is confirmed and no longer expires on its own.
      assert.equal((await store.confirm(order.reservationId, goodsId)).status, 'CONFIRMED')
    }
    assert.equal(await stockOf(goodsId), 10 - orders.length)

    const cancels = orders.map((order) =>
      createEvent('orderCancelled', {
        source: 'order-service',
        subject: order.orderId,
        data: { ...order, wasPaid: true, cancelledAt: new Date().toISOString() },
      }),
    )
    const ours = new Set(cancels.map((event) => event.id))
    const deadLettered: string[] = []
    const reader = await watchDeadLetters(deadLetterTopic, (id) => {
      if (ours.has(id)) deadLettered.push(id)
    })

    try {
      const outageStarted = Date.now()
      await redis.kill()
      await publisher.publish(TOPIC_ORDERS, cancels)
      await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS - (Date.now() - outageStarted)))
      await redis.restart()

      await eventually(
        async () => (deadLettered.length > 0 || (await stockOf(goodsId)) === 10 ? true : undefined),
        60_000,
        'every cancelled unit back in stock',
      )
      assert.deepEqual(deadLettered, [], 'no cancel of a paid order may be dead-lettered for an outage')
      assert.equal(await stockOf(goodsId), 10)
      for (const order of orders) {
        const record = await store.reservation(order.reservationId)
        assert.deepEqual([record?.state, record?.releaseReason], ['RELEASED', 'order-cancelled'])
      }
      // The events were retried through the outage, not merely consumed after it.
      const metrics = await (await fetch(`${service.url}/metrics`)).text()
      const retries = [...metrics.matchAll(/^consumer_retries_total\{([^}]*)\} (\d+)/gm)]
        .filter(([, labels]) => labels?.includes('kind="infrastructure"') && labels.includes(`group="${groupId}"`))
        .reduce((sum, [, , count]) => sum + Number(count), 0)
      assert.ok(retries > 0, `expected infrastructure retries to be counted:\n${metrics.slice(0, 2000)}`)
    } finally {
      await reader.close()
    }
  })
})
