import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { z } from 'zod'
import {
  kafkaSettings,
  loadSettings,
  mongoSettings,
  mysqlSettings,
  redisSettings,
  serviceSettings,
} from '../src/settings.ts'
import { continueTrace } from '../src/trace.ts'

const schema = z.object({
  ...serviceSettings('goods', 8082),
  ...mysqlSettings('timedeal_goods'),
  ...redisSettings(),
  ...kafkaSettings(),
  ...mongoSettings('timedeal_chat'),
})

describe('settings from environment variables', () => {
  test('defaults work for local development', () => {
    const settings = loadSettings(schema, {})
    assert.equal(settings.HTTP_PORT, 8082)
    assert.equal(settings.HTTP_HOST, '127.0.0.1')
    assert.equal(settings.MYSQL_DATABASE, 'timedeal_goods')
    assert.deepEqual(settings.KAFKA_BROKERS, ['127.0.0.1:9092'])
    assert.equal(settings.REDIS_URL, 'redis://127.0.0.1:6379')
  })

  test('values are parsed into types, and blank values count as unset', () => {
    const settings = loadSettings(schema, { HTTP_PORT: '9000', KAFKA_BROKERS: 'a:1, b:2', LOG_LEVEL: ' ' })
    assert.equal(settings.HTTP_PORT, 9000)
    assert.deepEqual(settings.KAFKA_BROKERS, ['a:1', 'b:2'])
    assert.equal(settings.LOG_LEVEL, 'info')
  })

  for (const [name, value, message] of [
    ['HTTP_PORT', 'eighty', /^invalid setting HTTP_PORT="eighty": expected a port number$/],
    ['HTTP_PORT', '70000', /^invalid setting HTTP_PORT="70000": expected a port number 1-65535$/],
    ['REDIS_URL', 'http://x', /^invalid setting REDIS_URL="http:\/\/x": expected a redis/],
    ['KAFKA_BROKERS', 'nohost', /^invalid setting KAFKA_BROKERS="nohost": expected host:port/],
    ['KAFKA_TOPIC_PREFIX', 'my run/', /^invalid setting KAFKA_TOPIC_PREFIX="my run\/": expected letters, digits/],
    ['LOG_LEVEL', 'loud', /^invalid setting LOG_LEVEL="loud": expected one of/],
  ] as const) {
    test(`a bad ${name} is one line naming the setting`, () => {
      assert.throws(
        () => loadSettings(schema, { [name]: value }),
        (error: Error) => {
          assert.match(error.message, message)
          assert.doesNotMatch(error.message, /\n/)
          return true
        },
      )
    })
  }
})

describe('trace context', () => {
  test('continues a valid traceparent with a new span', () => {
    const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    const { traceparent, traceId } = continueTrace(incoming)
    assert.equal(traceId, '4bf92f3577b34da6a3ce929d0e0e4736')
    assert.match(traceparent, /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/)
    assert.notEqual(traceparent, incoming)
  })

  test('starts a new trace when the header is missing or malformed', () => {
    assert.match(continueTrace(undefined).traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
    assert.notEqual(continueTrace('garbage').traceId, 'garbage')
  })
})
