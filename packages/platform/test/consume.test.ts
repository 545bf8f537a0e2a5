import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import {
  type CloudEvent,
  createEvent,
  deadLetterTopicOf,
  TOPIC_ORDERS,
  TOPIC_PAYMENTS,
  topics,
} from '@timedeal/contracts'
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize'
import { catalogConcurrency, consumeEvents } from '../src/consume.ts'
import { PermanentEventError } from '../src/failures.ts'
import { createInboxTable, eventInbox, INBOX_TABLE } from '../src/inbox.ts'
import {
  createEventBus,
  type DeliveredEvent,
  type EventBus,
  type EventPublisher,
  type TopicAdmin,
} from '../src/kafka.ts'
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

const refund = (orderId: string): CloudEvent =>
  createEvent('paymentRefunded', {
    source: '/test',
    subject: orderId,
    data: { paymentId: `p-${orderId}`, orderId, amount: 500, refundedAt: new Date().toISOString() },
  })

describe('consumeEvents a batch at a time with an inbox (real MariaDB and Kafka)', () => {
  let database: TestDatabase
  let sequelize: Sequelize
  let bus: EventBus
  let admin: TopicAdmin
  let publisher: EventPublisher
  const created: string[] = []

  before(async () => {
    database = await createTestDatabase('consume_batch', [createInboxTable('0001-inbox'), effectsTable])
    sequelize = database.sequelize
    bus = createEventBus({ brokers: testSettings.KAFKA_BROKERS, clientId: 'consume-batch-test', logger: testLogger })
    admin = await bus.admin()
    publisher = await bus.publisher()
  })

  after(async () => {
    await publisher.close()
    await admin.deleteTopics(created)
    await admin.close()
    await database.drop()
  })

  /** A fresh one-partition topic (and its dead-letter topic) holding `events`, published in one request. */
  async function topicWith(label: string, events: readonly CloudEvent[]): Promise<string> {
    const name = uniqueName(`test.consume.batch.${label}`).replaceAll('_', '.')
    await admin.ensureTopics([
      { name, partitions: 1, replicationFactor: 1, config: {} },
      { name: deadLetterTopicOf(name), partitions: 1, replicationFactor: 1, config: {} },
    ])
    created.push(name, deadLetterTopicOf(name))
    await publisher.publish(name, events)
    return name
  }

  const effectsOf = async (events: readonly CloudEvent[]) =>
    (
      await sequelize.query<{ event_id: string }>('SELECT event_id FROM effects WHERE event_id IN (:ids)', {
        replacements: { ids: events.map((event) => event.id) },
        type: QueryTypes.SELECT,
      })
    ).map((row) => row.event_id)

  const inboxOf = async (consumer: string) =>
    (
      await sequelize.query<{ event_id: string }>(`SELECT event_id FROM ${INBOX_TABLE} WHERE consumer = :consumer`, {
        replacements: { consumer },
        type: QueryTypes.SELECT,
      })
    ).map((row) => row.event_id)

  const insertEffects = (deliveries: readonly DeliveredEvent[], transaction: Transaction) =>
    sequelize.query(`INSERT INTO effects (event_id) VALUES ${deliveries.map(() => '(?)').join(', ')}`, {
      replacements: deliveries.map(({ event }) => event.id),
      transaction,
    })

  const sorted = (ids: readonly string[]) => [...ids].sort()

  test('a batch commits the effects and inbox rows of all its events together, in few transactions, and a replay of the topic changes nothing', async () => {
    const events = Array.from({ length: 120 }, (_, index) => refund(uniqueName(`whole-${index}`)))
    const topic = await topicWith('whole', events)
    const consumer = uniqueName('batch-whole')
    const inbox = eventInbox({ sequelize, consumer })
    const calls: { given: number; fresh: number }[] = []
    const consume = (group: string) =>
      consumeEvents({
        bus,
        group,
        topics: [topic],
        settings: { ...consumerSettings, CONSUMER_BATCH_MAX: 50 },
        inbox,
        handleBatch: async ({ deliveries, onceEach }) => {
          const fresh = await onceEach(async (deliveries, transaction) => {
            await insertEffects(deliveries, transaction)
          })
          calls.push({ given: deliveries.length, fresh: fresh.length })
        },
      })
    const first = await consume(consumer)
    try {
      await eventually(
        async () => (calls.reduce((sum, call) => sum + call.given, 0) >= events.length ? true : undefined),
        30_000,
        'every event',
      )
    } finally {
      await first.close()
    }
    assert.ok(calls.length <= 12, `${events.length} events in ${calls.length} calls`)
    assert.ok(
      calls.every((call) => call.given <= 50),
      `no call past CONSUMER_BATCH_MAX: ${calls.map((call) => call.given)}`,
    )
    assert.deepEqual(sorted(await effectsOf(events)), sorted(events.map((event) => event.id)))
    assert.deepEqual(sorted(await inboxOf(consumer)), sorted(events.map((event) => event.id)))

    // Another group reading the topic again under the same inbox: every id is known, nothing runs.
    calls.length = 0
    const replay = await consume(uniqueName('batch-whole-replay'))
    try {
      await eventually(
        async () => (calls.reduce((sum, call) => sum + call.given, 0) >= events.length ? true : undefined),
        30_000,
        'the replay',
      )
    } finally {
      await replay.close()
    }
    assert.equal(
      calls.reduce((sum, call) => sum + call.fresh, 0),
      0,
    )
    assert.equal((await effectsOf(events)).length, events.length)
  })

  test('a poison event is dead-lettered alone, leaving neither its effect nor its inbox row, and the rest of its batch is applied once', async () => {
    const events = Array.from({ length: 8 }, (_, index) => refund(uniqueName(`poison-${index}`)))
    const poison = events[3] as CloudEvent
    const topic = await topicWith('poison', events)
    const consumer = uniqueName('batch-poison')
    let poisonedCalls = 0
    const subscription = await consumeEvents({
      bus,
      group: consumer,
      topics: [topic],
      settings: { ...consumerSettings, CONSUMER_MAX_ATTEMPTS: 2 },
      inbox: eventInbox({ sequelize, consumer }),
      handleBatch: async ({ onceEach }) => {
        await onceEach(async (deliveries, transaction) => {
          // Written first, so the rollback of the whole batch is what keeps them out.
          await insertEffects(deliveries, transaction)
          if (deliveries.some(({ event }) => event.id === poison.id)) {
            poisonedCalls += 1
            throw new PermanentEventError('this refund can never be applied')
          }
        })
      },
    })
    const others = events.filter((event) => event.id !== poison.id)
    try {
      await eventually(
        async () => ((await effectsOf(others)).length === others.length ? true : undefined),
        30_000,
        'the events beside the poison',
      )
      await eventually(
        async () => ((await admin.endOffsets(deadLetterTopicOf(topic))).get(0) === 1n ? true : undefined),
        30_000,
        'the dead letter',
      )
    } finally {
      await subscription.close()
    }
    assert.deepEqual(sorted(await effectsOf(events)), sorted(others.map((event) => event.id)))
    assert.deepEqual(sorted(await inboxOf(consumer)), sorted(others.map((event) => event.id)))
    // Once with the whole batch, then alone up to CONSUMER_MAX_ATTEMPTS.
    assert.equal(poisonedCalls, 3)
  })

  test('a batch whose transaction fails part-way is rolled back whole and, delivered again, applies each event once', async () => {
    const events = Array.from({ length: 30 }, (_, index) => refund(uniqueName(`crash-${index}`)))
    const topic = await topicWith('crash', events)
    const consumer = uniqueName('batch-crash')
    let crashesLeft = 2
    const subscription = await consumeEvents({
      bus,
      group: consumer,
      topics: [topic],
      settings: consumerSettings,
      inbox: eventInbox({ sequelize, consumer }),
      handleBatch: async ({ onceEach }) => {
        await onceEach(async (deliveries, transaction) => {
          const half = Math.ceil(deliveries.length / 2)
          await insertEffects(deliveries.slice(0, half), transaction)
          if (crashesLeft > 0) {
            crashesLeft -= 1
            throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })
          }
          if (deliveries.length > half) await insertEffects(deliveries.slice(half), transaction)
        })
      },
    })
    try {
      await eventually(
        async () => ((await inboxOf(consumer)).length === events.length ? true : undefined),
        30_000,
        'every event',
      )
    } finally {
      await subscription.close()
    }
    assert.equal(crashesLeft, 0)
    const applied = await effectsOf(events)
    assert.equal(applied.length, events.length, 'each event applied exactly once')
    assert.deepEqual(sorted(applied), sorted(events.map((event) => event.id)))
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
