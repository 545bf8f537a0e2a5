import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { createEvent, deadLetterTopicOf, toKafkaRecord } from '@timedeal/contracts'
import { Kafka, logLevel } from 'kafkajs'
import { Registry } from 'prom-client'
import { PermanentEventError } from '../src/failures.ts'
import { createEventBus, DEAD_LETTER_HEADERS, type EventBus, type TopicAdmin } from '../src/kafka.ts'
import { eventually, testLogger, testSettings, uniqueName } from './support.ts'

const topic = uniqueName('test.poison').replaceAll('_', '.')
const dlq = deadLetterTopicOf(topic)

const refund = (orderId: string) =>
  createEvent('paymentRefunded', {
    source: '/test',
    subject: orderId,
    data: { paymentId: `p-${orderId}`, orderId, amount: 500, refundedAt: new Date().toISOString() },
  })

describe('bounded retries and the dead-letter topic (real Kafka)', () => {
  let bus: EventBus
  let admin: TopicAdmin

  before(async () => {
    bus = createEventBus({ brokers: testSettings.KAFKA_BROKERS, clientId: 'dlq-test', logger: testLogger })
    admin = await bus.admin()
    await admin.ensureTopics([
      { name: topic, partitions: 1, replicationFactor: 1, config: {} },
      { name: dlq, partitions: 1, replicationFactor: 1, config: {} },
    ])
  })

  after(async () => {
    await admin.deleteTopics([topic, dlq])
    await admin.close()
  })

  test('an event that can never succeed goes to <topic>.dlq with the error after bounded retries; the consumer keeps going; replay brings it back', async () => {
    const poison = refund(uniqueName('poison'))
    const healthy = refund(uniqueName('healthy'))
    const garbage = { ...toKafkaRecord(refund('x')), value: Buffer.from('not json') }
    const raw = new Kafka({ clientId: 'raw', brokers: [...testSettings.KAFKA_BROKERS], logLevel: logLevel.NOTHING })
    const producer = raw.producer()
    await producer.connect()
    await producer.send({ topic, messages: [toKafkaRecord(poison), garbage, toKafkaRecord(healthy)] })

    const attempts = new Map<string, number>()
    const handled: string[] = []
    let poisonCured = false
    const subscription = await bus.subscribe({
      groupId: uniqueName('dlq-test'),
      topics: [topic],
      fromBeginning: true,
      maxAttempts: 3,
      retryBackoffMs: 20,
      handle: async ({ event }) => {
        attempts.set(event.id, (attempts.get(event.id) ?? 0) + 1)
        if (event.id === poison.id && !poisonCured) throw new PermanentEventError('cannot refund: ledger says no')
        handled.push(event.id)
      },
    })

    const deadLetters: { headers: Record<string, string>; value: string }[] = []
    const dlqReader = raw.consumer({ groupId: uniqueName('dlq-reader') })
    await dlqReader.connect()
    await dlqReader.subscribe({ topics: [dlq], fromBeginning: true })
    await dlqReader.run({
      eachMessage: async ({ message }) => {
        const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]))
        deadLetters.push({ headers, value: String(message.value) })
      },
    })

    try {
      await eventually(async () => (handled.includes(healthy.id) ? true : undefined), 30_000, 'the healthy event')
      assert.equal(attempts.get(poison.id), 3)
      await eventually(async () => (deadLetters.length >= 2 ? true : undefined), 20_000, 'two dead letters')
      const [first, second] = deadLetters
      assert.equal(first?.headers.ce_id, poison.id)
      assert.equal(first?.headers[DEAD_LETTER_HEADERS.error], 'cannot refund: ledger says no')
      assert.equal(first?.headers[DEAD_LETTER_HEADERS.originalTopic], topic)
      assert.equal(first?.headers[DEAD_LETTER_HEADERS.attempts], '3')
      assert.equal(first?.headers[DEAD_LETTER_HEADERS.errorType], 'PermanentEventError')
      assert.equal(second?.headers[DEAD_LETTER_HEADERS.errorType], 'InvalidEventError')
      assert.equal(second?.value, 'not json')

      poisonCured = true
      const { replayed } = await bus.replayDeadLetters({ deadLetterTopic: dlq, idleMs: 1_500 })
      assert.equal(replayed, 2)
      await eventually(
        async () => (handled.includes(poison.id) ? true : undefined),
        20_000,
        'the replayed poison event',
      )
      // What is still poison (the non-JSON record) comes back to the dead-letter topic.
      await eventually(async () => (deadLetters.length >= 3 ? true : undefined), 20_000, 'the garbage back in the DLQ')
      assert.equal(deadLetters[2]?.value, 'not json')
      assert.equal(handled.filter((id) => id === poison.id).length, 1)
    } finally {
      await dlqReader.disconnect()
      await producer.disconnect()
      await subscription.close()
    }
  })
  test('an event whose dependency is down is retried past the bounded attempts and never dead-lettered, while its other partitions keep flowing', async () => {
    const outageTopic = uniqueName('test.outage').replaceAll('_', '.')
    await admin.ensureTopics([
      { name: outageTopic, partitions: 2, replicationFactor: 1, config: {} },
      { name: deadLetterTopicOf(outageTopic), partitions: 1, replicationFactor: 1, config: {} },
    ])
    const metrics = new Registry()
    const observed = createEventBus({
      brokers: testSettings.KAFKA_BROKERS,
      clientId: 'outage-test',
      logger: testLogger,
      metrics,
    })
    const blocked = refund(uniqueName('blocked'))
    const puzzling = refund(uniqueName('puzzling'))
    const flowing = refund(uniqueName('flowing'))
    const raw = new Kafka({ clientId: 'raw', brokers: [...testSettings.KAFKA_BROKERS], logLevel: logLevel.NOTHING })
    const producer = raw.producer()
    await producer.connect()
    await producer.send({
      topic: outageTopic,
      messages: [
        { ...toKafkaRecord(blocked), partition: 0 },
        { ...toKafkaRecord(puzzling), partition: 0 },
        { ...toKafkaRecord(flowing), partition: 1 },
      ],
    })
    await producer.disconnect()

    const failuresLeft = new Map([
      // What mysql2 and ioredis report while their server is down.
      [
        blocked.id,
        {
          left: 8,
          error: () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
        },
      ],
      // Nobody knows what this is: it must not be dead-lettered either.
      [puzzling.id, { left: 6, error: () => new TypeError('something odd happened') }],
    ])
    const handled: string[] = []
    const subscription = await observed.subscribe({
      groupId: uniqueName('outage-test'),
      topics: [outageTopic],
      fromBeginning: true,
      maxAttempts: 3,
      retryBackoffMs: 20,
      maxRetryBackoffMs: 100,
      handle: async ({ event }) => {
        const failing = failuresLeft.get(event.id)
        if (failing && failing.left > 0) {
          failing.left--
          throw failing.error()
        }
        handled.push(event.id)
      },
    })
    const deadLetters = await observed.subscribe({
      groupId: uniqueName('outage-test-dlq'),
      topics: [deadLetterTopicOf(outageTopic)],
      fromBeginning: true,
      handle: async ({ event }) => {
        handled.push(`dead-lettered:${event.id}`)
      },
    })
    try {
      await eventually(async () => (handled.includes(puzzling.id) ? true : undefined), 30_000, 'the blocked events')
      // The partition of the blocked events waited; the other one did not wait for it.
      assert.ok(handled.indexOf(flowing.id) < handled.indexOf(blocked.id), `order: ${handled.join(', ')}`)
      assert.ok(handled.indexOf(blocked.id) < handled.indexOf(puzzling.id), 'order within a partition holds')
      await new Promise((resolve) => setTimeout(resolve, 1_000))
      assert.deepEqual(
        handled.filter((id) => id.startsWith('dead-lettered:')),
        [],
      )
      const retries = await metrics.getSingleMetricAsString('consumer_retries_total')
      assert.match(retries, /kind="infrastructure"[^\n]* 8$/m)
      assert.match(retries, /kind="unclassified"[^\n]* 6$/m)
    } finally {
      await subscription.close()
      await deadLetters.close()
      await admin.deleteTopics([outageTopic, deadLetterTopicOf(outageTopic)])
    }
  })
})
