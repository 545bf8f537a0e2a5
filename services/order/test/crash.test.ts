import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { TOPIC_ORDERS } from '@timedeal/contracts'
import {
  eventually,
  type ServiceProcess,
  spawnService,
  type TestIssuer,
  uniqueName,
  waitUntilReady,
} from '@timedeal/platform/testing'
import {
  type EventWatch,
  type OrderStack,
  rows,
  startOrderStack,
  type TestGoodsService,
  type TestOrderService,
  type TestPaymentService,
  watchEvents,
} from './support.ts'

const relayEntry = fileURLToPath(new URL('../src/relay.ts', import.meta.url))
const stallingRelayEntry = fileURLToPath(new URL('./fixtures/stalling-relay.ts', import.meta.url))
const ORDERS = 20

describe('a relay killed between commit and publish loses nothing and doubles nothing (real processes, kill -9)', () => {
  let stack: OrderStack
  let issuer: TestIssuer
  let goods: TestGoodsService
  let payment: TestPaymentService
  let orders: TestOrderService
  let watch: EventWatch
  const relays: ServiceProcess[] = []

  before(async () => {
    // This order-service commits orders and their outbox rows but publishes nothing itself.
    stack = await startOrderStack({ orders: { OUTBOX_RELAY: 'false' } })
    ;({ issuer, goods, payment, orders } = stack)
    watch = await watchEvents(TOPIC_ORDERS)
  })

  after(async () => {
    for (const relay of relays) await relay.stop('SIGKILL')
    await watch?.close()
    await stack?.stop()
  })

  const spawnRelay = async (entry: string) => {
    const relay = await spawnService(entry, {
      MYSQL_DATABASE: orders.database.name,
      MIGRATE_ON_START: 'false',
      OUTBOX_BATCH_SIZE: '5',
      OUTBOX_POLL_INTERVAL_MS: '200',
    })
    relays.push(relay)
    return relay
  }

  /** Placements still owed to Kafka (the paid orders' events join the outbox as payments arrive). */
  const unpublished = async () =>
    Number(
      (
        await rows<{ n: number }>(
          orders.database.sequelize,
          "SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL AND event_type = 'timedeal.order.placed.v1'",
        )
      )[0]?.n,
    )

  test('each committed event reaches Kafka after restarts, and each order is charged and paid exactly once', async () => {
    const sellerToken = await issuer.sign({ sub: uniqueName('seller'), role: 'SELLER' })
    const goodsId = await goods.createGoods(sellerToken, { price: 1_000, stock: 50 })
    const placed: string[] = []
    const tokens: string[] = []
    for (let index = 0; index < ORDERS; index += 1) {
      const token = await issuer.sign({ sub: uniqueName('buyer'), role: 'BUYER' })
      const response = await orders.call('POST', '/api/orders', {
        token,
        body: { goodsId, quantity: 1 },
        headers: { 'idempotency-key': randomUUID() },
      })
      assert.equal(response.status, 201)
      placed.push(((await response.json()) as { id: string }).id)
      tokens.push(token)
    }
    const eventIds = (
      await rows<{ event_id: string }>(orders.database.sequelize, 'SELECT event_id FROM outbox ORDER BY id')
    ).map((row) => row.event_id)
    assert.equal(eventIds.length, ORDERS)

    // Committed, and not published: no relay runs.
    await new Promise((resolve) => setTimeout(resolve, 1_000))
    assert.equal(await unpublished(), ORDERS)
    assert.equal(eventIds.filter((id) => watch.seen.has(id)).length, 0)

    // The first relay gets one batch acknowledged by Kafka and dies before marking it.
    const stalling = await spawnRelay(stallingRelayEntry)
    await eventually(
      async () => (stalling.output().stdout.includes('stalling before the rows are marked') ? true : undefined),
      30_000,
      'the first batch on Kafka',
    )
    assert.equal(await stalling.stop('SIGKILL'), null)
    assert.equal(await unpublished(), ORDERS, 'the killed relay marked nothing')
    const firstBatch = eventIds.slice(0, 5)
    await eventually(
      async () => (firstBatch.every((id) => watch.seen.has(id)) ? true : undefined),
      20_000,
      'the first batch to reach consumers',
    )

    // The second relay starts after the crash and publishes everything still owed.
    const relay = await spawnRelay(relayEntry)
    await waitUntilReady(relay)
    await eventually(async () => ((await unpublished()) === 0 ? true : undefined), 30_000, 'an empty outbox')
    await eventually(
      async () => (eventIds.every((id) => watch.seen.has(id)) ? true : undefined),
      20_000,
      'every event on Kafka',
    )
    // The batch that was published before the crash went out again: at least once, not exactly once.
    for (const id of firstBatch) assert.equal(watch.seen.get(id), 2, `event ${id}`)
    for (const id of eventIds.slice(5)) assert.equal(watch.seen.get(id), 1, `event ${id}`)

    // Downstream, the duplicates changed nothing: one payment per order, each order paid once.
    for (const [index, orderId] of placed.entries()) {
      await eventually(
        async () => {
          const response = await orders.call('GET', `/api/orders/${orderId}`, { token: tokens[index] ?? '' })
          return ((await response.json()) as { state: string }).state === 'PAID' ? true : undefined
        },
        30_000,
        `order ${orderId} paid`,
      )
    }
    const payments = await rows<{ order_id: string; status: string }>(
      payment.database.sequelize,
      'SELECT order_id, status FROM payments',
    )
    assert.deepEqual(payments.map((row) => row.order_id).sort(), [...placed].sort())
    assert.ok(payments.every((row) => row.status === 'COMPLETED'))
    const completions = await rows<{ n: number }>(
      payment.database.sequelize,
      "SELECT COUNT(*) AS n FROM outbox WHERE event_type = 'timedeal.payment.completed.v1'",
    )
    assert.equal(Number(completions[0]?.n), ORDERS)
    const paidEvents = await rows<{ n: number }>(
      orders.database.sequelize,
      "SELECT COUNT(*) AS n FROM outbox WHERE event_type = 'timedeal.order.paid.v1'",
    )
    assert.equal(Number(paidEvents[0]?.n), ORDERS)
    assert.equal(await goods.stockAvailable(goodsId), 50 - ORDERS)
  })
})
