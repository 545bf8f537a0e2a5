import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { deadLetterTopicOf, TOPIC_ORDERS, topicNamespace } from '../src/index.ts'

describe('topic namespace', () => {
  test('puts catalog topics, their dead-letter topics and groups behind the prefix, and back', () => {
    const names = topicNamespace('test-run-1.')
    assert.equal(names.topic(TOPIC_ORDERS), 'test-run-1.timedeal.orders')
    assert.equal(names.topic(deadLetterTopicOf(TOPIC_ORDERS)), 'test-run-1.timedeal.orders.dlq')
    assert.equal(names.group('payment-service'), 'test-run-1.payment-service')
    assert.equal(names.catalogName('test-run-1.timedeal.orders'), TOPIC_ORDERS)
    assert.ok(names.owns('test-run-1.timedeal.orders'))
    assert.ok(!names.owns(TOPIC_ORDERS))
  })

  test('without a prefix the names are the catalog names', () => {
    const names = topicNamespace()
    assert.equal(names.topic(TOPIC_ORDERS), TOPIC_ORDERS)
    assert.equal(names.group('goods-service'), 'goods-service')
    assert.equal(names.catalogName(TOPIC_ORDERS), TOPIC_ORDERS)
  })

  test('refuses a prefix Kafka cannot carry in a topic name', () => {
    assert.throws(() => topicNamespace('test run/1'), /invalid topic prefix "test run\/1"/)
  })
})
