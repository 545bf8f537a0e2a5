import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { createEvent, deadLetterTopicOf, events, toKafkaRecord } from '@timedeal/contracts'
import { Kafka, logLevel } from 'kafkajs'
import { createEventBus, type DeliveredEvent, type EventBus, type TopicAdmin } from '../src/kafka.ts'
import { eventually, testLogger, testSettings, uniqueName } from './support.ts'

describe('Kafka through the platform event bus (real broker)', () => {
  let bus: EventBus
  let admin: TopicAdmin
  const topic = uniqueName('test.events').replaceAll('_', '.')

  before(async () => {
    bus = createEventBus({ brokers: testSettings.KAFKA_BROKERS, clientId: 'platform-test', logger: testLogger })
    admin = await bus.admin()
    await admin.ensureTopics([
      { name: topic, partitions: 3, replicationFactor: 1, config: {} },
      { name: deadLetterTopicOf(topic), partitions: 1, replicationFactor: 1, config: {} },
    ])
  })

  after(async () => {
    await admin.deleteTopics([topic, deadLetterTopicOf(topic)])
    await admin.close()
  })

  test('creating topics is idempotent', async () => {
    assert.deepEqual(await admin.ensureTopics([{ name: topic, partitions: 3, replicationFactor: 1, config: {} }]), [])
    assert.ok((await admin.listTopics()).includes(topic))
  })

  test('a published event arrives through a consumer group with its CloudEvents headers intact', async () => {
    const received: DeliveredEvent[] = []
    const subscription = await bus.subscribe({
      groupId: uniqueName('platform-test-group'),
      topics: [topic],
      fromBeginning: true,
      handle: async (delivery) => {
        received.push(delivery)
      },
    })
    const publisher = await bus.publisher()
    try {
      const sent = createEvent('orderPlaced', {
        source: '/services/order',
        subject: 'order-42',
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        data: {
          orderId: 'order-42',
          buyerId: 'buyer-1',
          goodsId: 'goods-7',
          reservationId: 'res-1',
          quantity: 2,
          unitPrice: 15_000,
          totalAmount: 30_000,
          placedAt: new Date('2026-11-26T10:00:00Z').toISOString(),
        },
      })
      const receipts = await publisher.publish(topic, [sent])
      assert.equal(receipts.length, 1)
      assert.equal(receipts[0]?.topic, topic)

      const delivery = await eventually(async () => received[0], 20_000, 'the event to be consumed')
      assert.equal(delivery.key, 'order-42')
      assert.deepEqual(delivery.event, { ...sent })
      assert.equal(delivery.event.type, events.orderPlaced.type)
      assert.equal(delivery.event.traceparent, sent.traceparent)
    } finally {
      await publisher.close()
      await subscription.close()
    }
  })

  test('a record that is not a valid event is reported and dead-lettered, and the next one still arrives', async () => {
    const valid = createEvent('paymentFailed', {
      source: '/services/payment',
      subject: 'order-9',
      data: {
        paymentId: 'pay-9',
        orderId: 'order-9',
        amount: 1000,
        code: 'CARD_DECLINED',
        failedAt: new Date().toISOString(),
      },
    })
    // Written with a raw client: the bus itself refuses to send data that breaks the schema.
    const raw = new Kafka({
      clientId: 'raw-test',
      brokers: [...testSettings.KAFKA_BROKERS],
      logLevel: logLevel.NOTHING,
    })
    const producer = raw.producer()
    await producer.connect()
    const broken = toKafkaRecord({ ...valid, id: 'broken-1', data: { orderId: 'order-9' } })
    await producer.send({
      topic,
      messages: [
        { ...broken, partition: 0 },
        { ...toKafkaRecord(valid), partition: 0 },
      ],
    })
    await producer.disconnect()

    const invalid: string[] = []
    const handled: string[] = []
    const subscription = await bus.subscribe({
      groupId: uniqueName('platform-test-invalid'),
      topics: [topic],
      fromBeginning: true,
      handle: async ({ event }) => {
        handled.push(event.id)
      },
      onInvalid: async (error) => {
        invalid.push(error.message)
      },
    })
    try {
      await eventually(async () => (handled.includes(valid.id) ? true : undefined), 20_000, 'the valid event')
      assert.equal(invalid.length, 1)
      assert.match(invalid[0] ?? '', /invalid timedeal\.payment\.failed\.v1 data/)
    } finally {
      await subscription.close()
    }
  })

  test('publishing data that breaks the schema fails before anything is sent', () => {
    assert.throws(
      () =>
        createEvent('orderPlaced', {
          source: '/services/order',
          subject: 'x',
          // @ts-expect-error the schema wants every field of an order line
          data: { orderId: 'x' },
        }),
      /invalid timedeal\.order\.placed\.v1 data/,
    )
  })
})
