import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { createEvent, TOPIC_ORDERS, TOPIC_PAYMENTS, topics } from '@timedeal/contracts'
import { QueryTypes, type Sequelize } from 'sequelize'
import { catalogConcurrency, consumeEvents } from '../src/consume.ts'
import { createInboxTable, eventInbox } from '../src/inbox.ts'
import { createEventBus, type EventBus, type EventPublisher, type TopicAdmin } from '../src/kafka.ts'
import type { Migration } from '../src/mysql.ts'
import { createTestDatabase, eventually, type TestDatabase, testLogger, testSettings, uniqueName } from './support.ts'

const topic = uniqueName('test.consume').replaceAll('_', '.')

const effectsTable: Migration = {
  name: '0002-effects',
  up: async ({ sequelize }) => {
    await sequelize.query('CREATE TABLE effects (event_id VARCHAR(64) NOT NULL)')
  },
}

const consumerSettings = {
  CONSUMER_MAX_ATTEMPTS: 5,
  CONSUMER_RETRY_BACKOFF_MS: 50,
  CONSUMER_RETRY_MAX_BACKOFF_MS: 500,
  CONSUMER_FROM_BEGINNING: true,
}

describe('consumeEvents (real MariaDB and Kafka)', () => {
  let database: TestDatabase
  let sequelize: Sequelize
  let bus: EventBus
  let admin: TopicAdmin
  let publisher: EventPublisher

  before(async () => {
    database = await createTestDatabase('consume', [createInboxTable('0001-inbox'), effectsTable])
    sequelize = database.sequelize
    bus = createEventBus({ brokers: testSettings.KAFKA_BROKERS, clientId: 'consume-test', logger: testLogger })
    admin = await bus.admin()
    await admin.ensureTopics([{ name: topic, partitions: 1, replicationFactor: 1, config: {} }])
    publisher = await bus.publisher()
  })

  after(async () => {
    await publisher.close()
    await admin.deleteTopics([topic])
    await admin.close()
    await database.drop()
  })

  const countEffects = async () =>
    Number(
      (await sequelize.query<{ n: number }>('SELECT COUNT(*) AS n FROM effects', { type: QueryTypes.SELECT }))[0]?.n,
    )

  test('an event delivered twice changes the database once, and the relay is woken only after that commit', async () => {
    const event = createEvent('orderPaid', {
      source: '/test',
      subject: 'order-1',
      data: {
        orderId: 'order-1',
        buyerId: 'b',
        goodsId: 'g',
        reservationId: 'r-1',
        quantity: 1,
        paymentId: 'p-1',
        paidAt: new Date().toISOString(),
      },
    })
    const handled: boolean[] = []
    // What a woken relay would find: the effect's row, committed.
    const seenByWakes: Promise<number>[] = []
    const group = uniqueName('consume-test')
    const subscription = await consumeEvents({
      bus,
      group,
      topics: [topic],
      settings: consumerSettings,
      inbox: eventInbox({ sequelize, consumer: group, afterCommit: () => seenByWakes.push(countEffects()) }),
      handle: async ({ event: delivered, once }) => {
        handled.push(
          await once(async (transaction) => {
            await sequelize.query('INSERT INTO effects (event_id) VALUES (:id)', {
              replacements: { id: delivered.id },
              transaction,
            })
          }),
        )
      },
    })
    try {
      await subscription.joined
      await publisher.publish(topic, [event])
      await publisher.publish(topic, [event])
      await eventually(async () => (handled.length === 2 ? true : undefined), 30_000, 'both deliveries handled')
      assert.deepEqual(handled, [true, false])
      assert.equal(await countEffects(), 1)
      assert.deepEqual(await Promise.all(seenByWakes), [1])
    } finally {
      await subscription.close()
    }
  })
})

test("partitions handled at once are the catalog's partitions of the topics consumed", () => {
  const partitionsOf = (name: string) => topics.find((spec) => spec.name === name)?.partitions
  assert.equal(catalogConcurrency([TOPIC_ORDERS]), partitionsOf(TOPIC_ORDERS))
  assert.equal(
    catalogConcurrency([TOPIC_ORDERS, TOPIC_PAYMENTS]),
    (partitionsOf(TOPIC_ORDERS) ?? 0) + (partitionsOf(TOPIC_PAYMENTS) ?? 0),
  )
  assert.equal(catalogConcurrency(['not.in.the.catalog']), 1)
})
