import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { CloudEvent } from '@timedeal/contracts'
import { QueryTypes, type Sequelize } from 'sequelize'
import {
  createEventBus,
  type DeliveredEvent,
  type EventBus,
  type EventPublisher,
  type PublishReceipt,
  type TopicEvents,
} from '../src/kafka.ts'
import { appendToOutbox, createOutboxTable, OutboxRelay } from '../src/outbox.ts'
import {
  connectTestMysql,
  createTestDatabase,
  eventually,
  recordedTopics,
  type TestDatabase,
  testLogger,
  testOrderPaid,
  testSettings,
  uniqueName,
} from './support.ts'

const topics = [1, 2].map((n) => uniqueName(`test.relay${n}`).replaceAll('_', '.')) as [string, string]

/** What the relay asked of Kafka: one entry per request, with the topics and event ids it carried. */
interface Request {
  readonly topics: string[]
  readonly ids: string[]
}

/** The real publisher, recording each request; `hold` keeps the next request waiting until released. */
function recordingPublisher(publisher: EventPublisher) {
  const requests: Request[] = []
  let gate: Promise<void> | undefined
  let openGate: (() => void) | undefined
  let entered: (() => void) | undefined
  const pass = async () => {
    entered?.()
    await gate
  }
  const recorded: EventPublisher = {
    async publish(topic, events) {
      await pass()
      requests.push({ topics: [topic], ids: events.map((event) => event.id) })
      return publisher.publish(topic, events)
    },
    async publishAll(batches: readonly TopicEvents[]): Promise<PublishReceipt[]> {
      await pass()
      requests.push({
        topics: batches.map((batch) => batch.topic),
        ids: batches.flatMap((batch) => batch.events.map((event) => event.id)),
      })
      return (publisher.publishAll as NonNullable<EventPublisher['publishAll']>)(batches)
    },
    close: async () => undefined,
  }
  return {
    publisher: recorded,
    requests,
    /** The next request waits; resolves once one is waiting. */
    hold(): Promise<void> {
      gate = new Promise((resolve) => {
        openGate = resolve
      })
      return new Promise((resolve) => {
        entered = () => {
          entered = undefined
          resolve()
        }
      })
    },
    release() {
      gate = undefined
      openGate?.()
    },
  }
}

describe('outbox relay batching (real MariaDB and Kafka)', () => {
  let database: TestDatabase
  let sequelize: Sequelize
  let bus: EventBus
  let publisher: EventPublisher
  let received: DeliveredEvent[]
  let closeTopics: () => Promise<void>

  before(async () => {
    database = await createTestDatabase('relay', [createOutboxTable('0001-outbox')])
    sequelize = database.sequelize
    bus = createEventBus({ brokers: testSettings.KAFKA_BROKERS, clientId: 'relay-test', logger: testLogger })
    const recorded = await recordedTopics(bus, topics, 'relay-test')
    publisher = recorded.publisher
    received = recorded.received
    closeTopics = recorded.close
  })

  after(async () => {
    await closeTopics()
    await database.drop()
  })

  const commit = (db: Sequelize, topic: string, events: CloudEvent[], wake?: () => void) =>
    db.transaction((transaction) => appendToOutbox(db, transaction, topic, events, wake))

  const arrived = (events: readonly CloudEvent[], what: string) => {
    const ids = new Set(events.map((event) => event.id))
    return eventually(
      async () => (received.filter((d) => ids.has(d.event.id)).length >= ids.size ? true : undefined),
      20_000,
      what,
    )
  }

  test('events of several topics in one batch go out in one Kafka request and are marked in one statement, in order per aggregate', async () => {
    const recording = recordingPublisher(publisher)
    const updates: string[] = []
    const relay = new OutboxRelay({ sequelize, publisher: recording.publisher, logger: testLogger })
    const orders = [uniqueName('order-a'), uniqueName('order-b')]
    const sent: { topic: string; event: CloudEvent }[] = []
    for (let sequence = 0; sequence < 12; sequence++) {
      const topic = topics[sequence % 2] as string
      const event = testOrderPaid(orders[Math.floor(sequence / 2) % 2] as string, sequence)
      sent.push({ topic, event })
      await commit(sequelize, topic, [event])
    }
    const spied = sequelize.query.bind(sequelize)
    sequelize.query = ((sql: string, options?: object) => {
      if (/^\s*UPDATE outbox/i.test(sql)) updates.push(sql)
      return spied(sql, options as never)
    }) as typeof sequelize.query
    try {
      assert.equal(await relay.drain(), sent.length)
    } finally {
      sequelize.query = spied as typeof sequelize.query
    }
    assert.equal(recording.requests.length, 1, `one request, not ${JSON.stringify(recording.requests)}`)
    assert.deepEqual([...(recording.requests[0]?.topics ?? [])].sort(), [...topics].sort())
    assert.equal(updates.length, 1, 'one UPDATE marks the whole batch published')
    await arrived(
      sent.map(({ event }) => event),
      'every event',
    )
    for (const topic of topics) {
      for (const order of orders) {
        assert.deepEqual(
          received.filter((d) => d.topic === topic && d.key === order).map((d) => d.event.id),
          sent.filter((s) => s.topic === topic && s.event.subject === order).map((s) => s.event.id),
          `order of ${order} on ${topic}`,
        )
      }
    }
  })

  test('wakes while a batch is being sent make exactly one follow-up batch', async () => {
    const recording = recordingPublisher(publisher)
    const relay = new OutboxRelay({
      sequelize,
      publisher: recording.publisher,
      logger: testLogger,
      pollIntervalMs: 60_000,
    })
    relay.start()
    try {
      const first = testOrderPaid(uniqueName('order'), 0)
      const waiting = recording.hold()
      await commit(sequelize, topics[0], [first], relay.wake)
      await waiting
      const burst = Array.from({ length: 20 }, (_, sequence) => testOrderPaid(uniqueName('order'), sequence + 1))
      for (const event of burst) await commit(sequelize, topics[0], [event], relay.wake)
      recording.release()
      await arrived([first, ...burst], 'the first event and the burst')
      // Give stray cycles the chance to show themselves.
      await new Promise((resolve) => setTimeout(resolve, 500))
      assert.deepEqual(
        recording.requests.map((request) => request.ids.length),
        [1, burst.length],
        'the burst goes out in the one follow-up request',
      )
    } finally {
      await relay.stop()
    }
  })

  test('with a linger, commits that follow each other closely go out in one request', async () => {
    const recording = recordingPublisher(publisher)
    const relay = new OutboxRelay({
      sequelize,
      publisher: recording.publisher,
      logger: testLogger,
      pollIntervalMs: 60_000,
      lingerMs: 1_500,
    })
    relay.start()
    try {
      const events = Array.from({ length: 5 }, (_, sequence) => testOrderPaid(uniqueName('order'), sequence))
      for (const event of events) await commit(sequelize, topics[0], [event], relay.wake)
      await arrived(events, 'the lingered events')
      assert.deepEqual(
        recording.requests.map((request) => request.ids.length),
        [events.length],
      )
    } finally {
      await relay.stop()
    }
  })

  test('the leading relay publishes while every pooled connection is taken by long transactions', async () => {
    // The relay's database client has a small pool, as a busy service's would be exhausted by requests.
    const crowded = connectTestMysql(database.name, 3)
    const writer = connectTestMysql(database.name, 1)
    const relay = new OutboxRelay({ sequelize: crowded, publisher, logger: testLogger, pollIntervalMs: 60_000 })
    relay.start()
    let released = false
    const busy: Promise<unknown>[] = []
    try {
      const lockName = `timedeal.outbox.${database.name}`
      await eventually(
        async () => {
          const [row] = await writer.query<{ holder: number | null }>('SELECT IS_USED_LOCK(?) AS holder', {
            replacements: [lockName],
            type: QueryTypes.SELECT,
          })
          return row?.holder ? true : undefined
        },
        10_000,
        'the relay to lead',
      )
      // Every other pooled connection is held for seconds by a transaction.
      for (let n = 0; n < 2; n++) {
        busy.push(
          crowded
            .transaction((transaction) => crowded.query('SELECT SLEEP(4)', { transaction }))
            .finally(() => {
              released = true
            }),
        )
      }
      await new Promise((resolve) => setTimeout(resolve, 300))
      const event = testOrderPaid(uniqueName('order'), 1)
      await commit(writer, topics[0], [event], relay.wake)
      await arrived([event], 'the event while the pool is taken')
      assert.equal(released, false, 'published before the long transactions ended')
    } finally {
      await Promise.allSettled(busy)
      await relay.stop()
      await Promise.all([crowded.close(), writer.close()])
    }
  })
})
