import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { type CloudEvent, createEvent, deadLetterTopicOf, toKafkaRecord } from '@timedeal/contracts'
import { Kafka, logLevel, type Producer } from 'kafkajs'
import { PermanentEventError } from '../src/failures.ts'
import { createEventBus, type DeliveredEvent, type EventBus, type TopicAdmin } from '../src/kafka.ts'
import { eventually, testLogger, testSettings, uniqueName } from './support.ts'

const refund = (orderId: string) =>
  createEvent('paymentRefunded', {
    source: '/test',
    subject: orderId,
    data: { paymentId: `p-${orderId}`, orderId, amount: 500, refundedAt: new Date().toISOString() },
  })

const refunds = (label: string, count: number) =>
  Array.from({ length: count }, (_, index) => refund(uniqueName(`${label}-${index}`)))

const idsOf = (deliveries: readonly DeliveredEvent[]) => deliveries.map(({ event }) => event.id)

describe('batch handling: handleBatch (real Kafka)', () => {
  let bus: EventBus
  let admin: TopicAdmin
  let raw: Kafka
  let producer: Producer
  const created: string[] = []

  /** A fresh one-partition topic (and its dead-letter topic) holding `records`, written in one request. */
  const topicWith = async (label: string, records: Parameters<Producer['send']>[0]['messages']) => {
    const topic = uniqueName(`test.batch.${label}`).replaceAll('_', '.')
    await admin.ensureTopics([
      { name: topic, partitions: 1, replicationFactor: 1, config: {} },
      { name: deadLetterTopicOf(topic), partitions: 1, replicationFactor: 1, config: {} },
    ])
    created.push(topic, deadLetterTopicOf(topic))
    await producer.send({ topic, acks: -1, messages: records })
    return topic
  }

  before(async () => {
    bus = createEventBus({ brokers: testSettings.KAFKA_BROKERS, clientId: 'batch-test', logger: testLogger })
    admin = await bus.admin()
    raw = new Kafka({ clientId: 'raw', brokers: [...testSettings.KAFKA_BROKERS], logLevel: logLevel.NOTHING })
    producer = raw.producer()
    await producer.connect()
  })

  after(async () => {
    await producer.disconnect()
    await admin.deleteTopics(created)
    await admin.close()
  })

  test('a backlog is handed over in few calls of many events each, in the order written, each event once', async () => {
    const events = refunds('load', 300)
    const topic = await topicWith(
      'load',
      events.map((event) => toKafkaRecord(event)),
    )
    const calls: DeliveredEvent[][] = []
    const subscription = await bus.subscribe({
      groupId: uniqueName('batch-load'),
      topics: [topic],
      fromBeginning: true,
      handleBatch: async (deliveries) => {
        calls.push(deliveries)
      },
    })
    try {
      await eventually(async () => (calls.flat().length >= events.length ? true : undefined), 30_000, 'every event')
      assert.deepEqual(
        calls.flat().map(({ event }) => event.id),
        events.map((event) => event.id),
      )
      assert.ok(calls.length <= 10, `${events.length} events in ${calls.length} calls`)
      const offsets = calls.flat().map(({ offset }) => Number(offset))
      assert.deepEqual(
        offsets,
        offsets.map((_, index) => index),
      )
    } finally {
      await subscription.close()
    }
  })

  test('a group that does not commit handles every event yet leaves no committed offset; one that commits, its end', async () => {
    const events = refunds('commits', 20)
    const topic = await topicWith(
      'commits',
      events.map((event) => toKafkaRecord(event)),
    )
    const handled = new Map<string, number>()
    const subscribe = (groupId: string, commitOffsets: boolean) =>
      bus.subscribe({
        groupId,
        topics: [topic],
        fromBeginning: true,
        commitOffsets,
        handleBatch: async (deliveries) => {
          handled.set(groupId, (handled.get(groupId) ?? 0) + deliveries.length)
        },
      })
    const [silent, committing] = [uniqueName('batch-silent'), uniqueName('batch-committing')]
    const subscriptions = [await subscribe(silent, false), await subscribe(committing, true)]
    try {
      await eventually(
        async () =>
          handled.get(silent) === events.length && handled.get(committing) === events.length ? true : undefined,
        30_000,
        'both groups',
      )
      await eventually(
        async () => ((await admin.committedOffsets(committing, topic)).get(0) === 20n ? true : undefined),
        10_000,
        'the committing group at the end',
      )
      assert.equal((await admin.committedOffsets(silent, topic)).size, 0)
      assert.equal((await admin.endOffsets(topic)).get(0), 20n)
    } finally {
      await Promise.all(subscriptions.map((subscription) => subscription.close()))
    }
  })

  test('a batch whose dependency is down is handed again whole until it succeeds, and nothing is lost or repeated', async () => {
    const events = refunds('outage', 20)
    const topic = await topicWith(
      'outage',
      events.map((event) => toKafkaRecord(event)),
    )
    let outageLeft = 3
    const failedCalls: string[][] = []
    const handled: string[] = []
    const subscription = await bus.subscribe({
      groupId: uniqueName('batch-outage'),
      topics: [topic],
      fromBeginning: true,
      retryBackoffMs: 20,
      maxRetryBackoffMs: 100,
      maxAttempts: 2,
      handleBatch: async (deliveries) => {
        if (outageLeft > 0) {
          outageLeft--
          failedCalls.push(idsOf(deliveries))
          throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })
        }
        handled.push(...idsOf(deliveries))
      },
    })
    try {
      await eventually(async () => (handled.length >= events.length ? true : undefined), 30_000, 'every event')
      await new Promise((resolve) => setTimeout(resolve, 500))
      assert.deepEqual(
        handled,
        events.map((event) => event.id),
      )
      assert.equal(failedCalls.length, 3)
      // Past maxAttempts and never narrowed down: an outage is not the events' fault.
      for (const call of failedCalls) assert.equal(call[0], events[0]?.id)
    } finally {
      await subscription.close()
    }
  })

  test('a poison event in a batch is isolated and dead-lettered alone, an invalid record beside it too, and the rest handled once in order', async () => {
    const [a, b, poison, c, d] = refunds('poison', 5) as [CloudEvent, CloudEvent, CloudEvent, CloudEvent, CloudEvent]
    const spoiled = refund('x')
    const garbage = { ...toKafkaRecord(spoiled), value: Buffer.from('not json') }
    const topic = await topicWith('poison', [
      toKafkaRecord(a),
      toKafkaRecord(b),
      toKafkaRecord(poison),
      toKafkaRecord(c),
      garbage,
      toKafkaRecord(d),
    ])
    const handled: string[] = []
    const calls: string[][] = []
    const subscription = await bus.subscribe({
      groupId: uniqueName('batch-poison'),
      topics: [topic],
      fromBeginning: true,
      maxAttempts: 3,
      retryBackoffMs: 20,
      maxRetryBackoffMs: 100,
      handleBatch: async (deliveries) => {
        calls.push(idsOf(deliveries))
        // All or nothing: one hopeless event fails the whole call.
        if (deliveries.some(({ event }) => event.id === poison.id)) throw new PermanentEventError('ledger says no')
        handled.push(...idsOf(deliveries))
      },
    })
    const deadLetters: string[] = []
    const dlqReader = raw.consumer({ groupId: uniqueName('batch-poison-dlq') })
    await dlqReader.connect()
    await dlqReader.subscribe({ topics: [deadLetterTopicOf(topic)], fromBeginning: true })
    await dlqReader.run({
      eachMessage: async ({ message }) => {
        deadLetters.push(String(message.headers?.ce_id))
      },
    })
    try {
      await eventually(async () => (handled.includes(d.id) ? true : undefined), 30_000, 'the last event')
      await eventually(async () => (deadLetters.length >= 2 ? true : undefined), 30_000, 'two dead letters')
      await new Promise((resolve) => setTimeout(resolve, 500))
      assert.deepEqual(handled, [a.id, b.id, c.id, d.id])
      assert.equal(calls.filter((ids) => ids.length === 1 && ids[0] === poison.id).length, 3)
      assert.deepEqual(deadLetters, [poison.id, spoiled.id])
    } finally {
      await subscription.close()
      await dlqReader.disconnect()
    }
  })
})
