import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { TOPIC_ORDERS } from '@timedeal/contracts'
import { appendToOutbox } from '@timedeal/platform'
import {
  createPrivateKafka,
  createRunTopicsOn,
  createTestDatabase,
  eventually,
  type PrivateKafka,
  privateKafkaAvailable,
  type ServiceProcess,
  spawnService,
  type TestDatabase,
  testLogger,
  uniqueName,
  waitUntilReady,
} from '@timedeal/platform/testing'
import { migrations } from '../src/adapters/migrations.ts'
import { OrderStore } from '../src/adapters/order-store.ts'
import { newOrderId, newReservationId } from '../src/domain/ids.ts'
import { placeOrder } from '../src/domain/order-state.ts'
import { toCloudEvents } from '../src/flows/orders.ts'
import { rows, watchEvents } from './support.ts'

const relayEntry = fileURLToPath(new URL('../src/relay.ts', import.meta.url))
const ORDERS = 150

describe('a Kafka broker restarted in the middle of a stream of orders (a private broker, the real relay process)', {
  skip: privateKafkaAvailable() ? false : 'the Kafka jars are not installed (hack/infra.sh up kafka installs them)',
}, () => {
  let kafka: PrivateKafka
  let database: TestDatabase
  let relay: ServiceProcess

  before(async () => {
    kafka = await createPrivateKafka()
    await kafka.start()
    await createRunTopicsOn(kafka.brokers)
    database = await createTestDatabase('relay', migrations)
    relay = await spawnService(relayEntry, {
      MYSQL_DATABASE: database.name,
      KAFKA_BROKERS: kafka.brokers.join(','),
      MIGRATE_ON_START: 'false',
      OUTBOX_POLL_INTERVAL_MS: '100',
      LOG_LEVEL: 'warn',
    })
    await waitUntilReady(relay)
  })

  after(async () => {
    await relay?.stop('SIGKILL')
    await kafka?.destroy()
    await database?.drop()
  })

  const unpublished = async () =>
    Number(
      (await rows<{ n: number }>(database.sequelize, 'SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL'))[0]
        ?.n,
    )

  test('every committed order event reaches Kafka once the broker is back', async () => {
    const store = new OrderStore(database.sequelize)
    const sequelize = database.sequelize
    const eventIds: string[] = []
    let restarted: Promise<void> | undefined
    for (let index = 0; index < ORDERS; index += 1) {
      if (index === 50) await kafka.kill()
      // The broker comes back while orders keep being committed.
      if (index === 100) restarted = kafka.start()
      const now = new Date()
      const { order, events } = placeOrder({
        id: newOrderId(now.getTime()),
        buyerId: uniqueName('buyer'),
        sellerId: 'seller-1',
        goodsId: 'goods-1',
        reservationId: newReservationId(),
        quantity: 1,
        unitPrice: 1_000,
        at: now,
        payBy: new Date(now.getTime() + 570_000),
      })
      const cloudEvents = toCloudEvents(events)
      await sequelize.transaction(async (transaction) => {
        await store.insert(order, uniqueName('key'), transaction)
        await appendToOutbox(sequelize, transaction, TOPIC_ORDERS, cloudEvents)
      })
      eventIds.push(...cloudEvents.map((event) => event.id))
      await new Promise((resolve) => setTimeout(resolve, 30))
    }
    await restarted
    assert.ok((await unpublished()) > 0, 'some events waited for the broker')

    await eventually(async () => ((await unpublished()) === 0 ? true : undefined), 120_000, 'an empty outbox')
    const watch = await watchEvents(TOPIC_ORDERS, kafka.brokers, true)
    try {
      await eventually(
        async () => (eventIds.every((id) => watch.seen.has(id)) ? true : undefined),
        60_000,
        'every event read back from the broker',
      )
      const duplicates = eventIds.filter((id) => (watch.seen.get(id) ?? 0) > 1).length
      testLogger.info({ events: eventIds.length, duplicates }, 'read back after the broker restart')
      assert.equal(watch.seen.size, eventIds.length, 'nothing else on this broker')
    } finally {
      await watch.close()
    }
  })
})
