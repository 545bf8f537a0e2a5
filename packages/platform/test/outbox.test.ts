import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { CloudEvent } from '@timedeal/contracts'
import { QueryTypes, type Sequelize } from 'sequelize'
import { createInboxTable, handleOnce } from '../src/inbox.ts'
import { createEventBus, type DeliveredEvent, type EventBus, type EventPublisher } from '../src/kafka.ts'
import { appendToOutbox, createOutboxTable, OutboxRelay } from '../src/outbox.ts'
import {
  createTestDatabase,
  eventually,
  recordedTopics,
  type TestDatabase,
  testLogger,
  testOrderPaid,
  testSettings,
  uniqueName,
} from './support.ts'

const topic = uniqueName('test.outbox').replaceAll('_', '.')

describe('transactional outbox and inbox (real MariaDB and Kafka)', () => {
  let database: TestDatabase
  let sequelize: Sequelize
  let bus: EventBus
  let publisher: EventPublisher
  let received: DeliveredEvent[]
  let closeTopics: () => Promise<void>

  before(async () => {
    database = await createTestDatabase('outbox', [createOutboxTable('0001-outbox'), createInboxTable('0002-inbox')])
    sequelize = database.sequelize
    bus = createEventBus({ brokers: testSettings.KAFKA_BROKERS, clientId: 'outbox-test', logger: testLogger })
    const recorded = await recordedTopics(bus, [topic], 'outbox-test')
    publisher = recorded.publisher
    received = recorded.received
    closeTopics = recorded.close
  })

  after(async () => {
    await closeTopics()
    await database.drop()
  })

  const pending = async () =>
    Number(
      (
        await sequelize.query<{ n: number }>('SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL', {
          type: QueryTypes.SELECT,
        })
      )[0]?.n,
    )

  test('a transaction that rolls back publishes nothing', async () => {
    const relay = new OutboxRelay({ sequelize, publisher, logger: testLogger })
    const doomed = testOrderPaid(uniqueName('order'), 1)
    await assert.rejects(
      sequelize.transaction(async (transaction) => {
        await appendToOutbox(sequelize, transaction, topic, [doomed], relay.wake)
        throw new Error('the order write failed')
      }),
      /the order write failed/,
    )
    assert.equal(await pending(), 0)
    assert.equal(await relay.drain(), 0)
    const marker = testOrderPaid(uniqueName('order'), 2)
    await sequelize.transaction((transaction) => appendToOutbox(sequelize, transaction, topic, [marker]))
    assert.equal(await relay.drain(), 1)
    await eventually(async () => (received.some((d) => d.event.id === marker.id) ? true : undefined))
    assert.ok(!received.some((delivery) => delivery.event.id === doomed.id))
  })

  test('committed events leave right after commit, once each, in order per aggregate, with two relays running', async () => {
    const relays = [1, 2].map(
      () => new OutboxRelay({ sequelize, publisher, logger: testLogger, pollIntervalMs: 5_000 }),
    )
    for (const relay of relays) relay.start()
    try {
      const orders = [uniqueName('order-a'), uniqueName('order-b'), uniqueName('order-c')]
      const sent: CloudEvent[] = []
      const started = Date.now()
      for (let sequence = 0; sequence < 30; sequence++) {
        const event = testOrderPaid(orders[sequence % orders.length] as string, sequence)
        sent.push(event)
        // Every relay is woken, as every replica's commits would wake its own relay.
        await sequelize.transaction((transaction) =>
          appendToOutbox(sequelize, transaction, topic, [event], () => {
            for (const relay of relays) relay.wake()
          }),
        )
      }
      const ids = new Set(sent.map((event) => event.id))
      await eventually(
        async () => (received.filter((d) => ids.has(d.event.id)).length >= sent.length ? true : undefined),
        20_000,
        'every committed event',
      )
      // Woken after commit, not found by the 5 s poll.
      assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`)
      await new Promise((resolve) => setTimeout(resolve, 500))
      const mine = received.filter((delivery) => ids.has(delivery.event.id))
      assert.equal(mine.length, sent.length, 'no event was published twice')
      for (const order of orders) {
        assert.deepEqual(
          mine.filter((d) => d.key === order).map((d) => d.event.id),
          sent.filter((event) => event.subject === order).map((event) => event.id),
        )
      }
      assert.equal(await pending(), 0)
    } finally {
      await Promise.all(relays.map((relay) => relay.stop()))
    }
  })

  test('a relay whose lock connection was killed publishes nothing more; only the relay that took over publishes', async () => {
    const lockName = `timedeal.outbox.${database.name}`
    const holder = async () =>
      (
        await sequelize.query<{ holder: number | null }>('SELECT IS_USED_LOCK(?) AS holder', {
          replacements: [lockName],
          type: QueryTypes.SELECT,
        })
      )[0]?.holder ?? null
    const publishedBy: { relay: string; ids: string[] }[] = []
    const recording = (relay: string): EventPublisher => ({
      async publish(topicName, events) {
        publishedBy.push({ relay, ids: events.map((event) => event.id) })
        return publisher.publish(topicName, events)
      },
      close: async () => undefined,
    })
    const first = new OutboxRelay({ sequelize, publisher: recording('first'), logger: testLogger, pollIntervalMs: 200 })
    const second = new OutboxRelay({
      sequelize,
      publisher: recording('second'),
      logger: testLogger,
      pollIntervalMs: 200,
    })
    first.start()
    try {
      const firstLock = await eventually(async () => (await holder()) ?? undefined, 10_000, 'the first relay to lead')
      second.start()
      // The server ends the leader's lock connection, as a network cut or a failover would.
      await sequelize.query(`KILL ${Number(firstLock)}`)
      await eventually(
        async () => {
          const now = await holder()
          return now !== null && now !== firstLock ? true : undefined
        },
        15_000,
        'the standby to take the lock',
      )
      const sent: CloudEvent[] = []
      for (let sequence = 0; sequence < 10; sequence++) {
        const event = testOrderPaid(uniqueName('order'), sequence)
        sent.push(event)
        // Commits on the old leader's replica wake the old leader.
        await sequelize.transaction((transaction) => appendToOutbox(sequelize, transaction, topic, [event], first.wake))
      }
      const ids = new Set(sent.map((event) => event.id))
      const publishedOf = () =>
        publishedBy.flatMap(({ relay, ids: batch }) => batch.filter((id) => ids.has(id)).map((id) => ({ relay, id })))
      await eventually(
        async () => (new Set(publishedOf().map(({ id }) => id)).size === sent.length ? true : undefined),
        20_000,
        'every event published',
      )
      await new Promise((resolve) => setTimeout(resolve, 1_000))
      const publications = publishedOf()
      assert.deepEqual(
        [...new Set(publications.map(({ relay }) => relay))],
        ['second'],
        'only the new leader publishes',
      )
      assert.equal(publications.length, sent.length, 'each event is published once')
    } finally {
      await Promise.all([first.stop(), second.stop()])
    }
  })

  test('an event handled twice by the same consumer takes effect once, even concurrently', async () => {
    const event = testOrderPaid(uniqueName('order'), 1)
    await sequelize.query('CREATE TABLE IF NOT EXISTS refunds (order_id VARCHAR(64) PRIMARY KEY, amount INT NOT NULL)')
    const refund = (transaction: import('sequelize').Transaction) =>
      sequelize
        .query('INSERT INTO refunds (order_id, amount) VALUES (?, 100) ON DUPLICATE KEY UPDATE amount = amount + 100', {
          replacements: [event.subject],
          transaction,
        })
        .then(() => undefined)
    const outcomes = await Promise.all([1, 2, 3].map(() => handleOnce(sequelize, 'payment-service', event, refund)))
    assert.deepEqual(outcomes.sort(), [false, false, true])
    assert.equal(await handleOnce(sequelize, 'payment-service', event, refund), false)
    // Another consumer group keeps its own record.
    assert.equal(await handleOnce(sequelize, 'goods-service', event, async () => undefined), true)
    const [row] = await sequelize.query<{ amount: number }>('SELECT amount FROM refunds WHERE order_id = ?', {
      replacements: [event.subject],
      type: QueryTypes.SELECT,
    })
    assert.equal(row?.amount, 100)
  })

  test('an effect that fails records nothing, so the event is handled on the next delivery', async () => {
    const event = testOrderPaid(uniqueName('order'), 1)
    await assert.rejects(
      handleOnce(sequelize, 'payment-service', event, async () => {
        throw new Error('provider down')
      }),
      /provider down/,
    )
    assert.equal(await handleOnce(sequelize, 'payment-service', event, async () => undefined), true)
  })
})
