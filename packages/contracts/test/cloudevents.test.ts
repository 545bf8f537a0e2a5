import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  allTopics,
  createEvent,
  deadLetterTopicOf,
  events,
  fromKafkaRecord,
  InvalidEventError,
  toKafkaRecord,
  topics,
  validateEvent,
} from '../src/index.ts'

const placed = () =>
  createEvent('orderPlaced', {
    source: '/services/order',
    subject: 'order-1',
    data: {
      orderId: 'order-1',
      buyerId: 'u-1',
      goodsId: 'g-1',
      reservationId: 'r-1',
      quantity: 1,
      unitPrice: 9900,
      totalAmount: 9900,
      placedAt: '2026-11-26T10:00:00.000Z',
    },
  })

describe('CloudEvents Kafka binding, binary mode', () => {
  test('attributes travel as ce_ headers and the data as the JSON value, keyed by subject', () => {
    const event = placed()
    const record = toKafkaRecord(event)
    assert.equal(record.key, 'order-1')
    assert.equal(record.headers.ce_specversion, '1.0')
    assert.equal(record.headers.ce_type, 'timedeal.order.placed.v1')
    assert.equal(record.headers.ce_id, event.id)
    assert.equal(record.headers.ce_source, '/services/order')
    assert.equal(record.headers.ce_time, event.time)
    assert.equal(record.headers['content-type'], 'application/json')
    assert.deepEqual(JSON.parse(record.value.toString()), event.data)
  })

  test('a record read back equals the event written', () => {
    const event = placed()
    const record = toKafkaRecord(event)
    const headers = Object.fromEntries(Object.entries(record.headers).map(([k, v]) => [k, Buffer.from(v)]))
    assert.deepEqual(validateEvent(fromKafkaRecord({ headers, value: record.value })), event)
  })

  test('records without the required attributes, or with a non-JSON value, are rejected', () => {
    const record = toKafkaRecord(placed())
    const { ce_id: _dropped, ...withoutId } = record.headers
    assert.throws(() => fromKafkaRecord({ headers: withoutId, value: record.value }), InvalidEventError)
    assert.throws(() => fromKafkaRecord({ headers: record.headers, value: Buffer.from('{nope') }), /not JSON/)
    assert.throws(
      () => fromKafkaRecord({ headers: { ...record.headers, ce_specversion: '0.3' }, value: record.value }),
      InvalidEventError,
    )
  })

  test('unknown types and data that breaks the schema are rejected on receipt', () => {
    const event = placed()
    assert.throws(() => validateEvent({ ...event, type: 'timedeal.unknown.v1' }), /unknown event type/)
    assert.throws(() => validateEvent({ ...event, data: { ...event.data, quantity: 0 } }), /quantity/)
  })
})

describe('topic catalog', () => {
  test('every event type travels on exactly one catalog topic', () => {
    for (const definition of Object.values(events)) {
      const carriers = topics.filter((topic) => topic.events.includes(definition.type))
      assert.equal(carriers.length, 1, definition.type)
      assert.equal(carriers[0]?.name, definition.topic)
    }
  })

  test('each topic has a dead-letter topic', () => {
    const names = allTopics().map((topic) => topic.name)
    for (const topic of topics) assert.ok(names.includes(deadLetterTopicOf(topic.name)))
  })
})
