import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { z } from 'zod'
import {
  authSettings,
  eventConsumerSettings,
  internalListener,
  kafkaSettings,
  loadSettings,
  mongoSettings,
  mysqlSettings,
  redisSettings,
  serviceSettings,
  shutdownTimings,
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

describe('development defaults in production', () => {
  const withSecrets = z.object({
    ...serviceSettings('goods', 8082),
    ...mysqlSettings('timedeal_goods'),
    ...authSettings(),
  })
  const own = { MYSQL_PASSWORD: 'a-password-of-its-own', INTERNAL_API_SECRET: 'a-secret-of-its-own-0123456789' }
  const oneLine = (pattern: RegExp) => (error: Error) => {
    assert.equal(error.name, 'SettingsError')
    assert.match(error.message, pattern)
    assert.doesNotMatch(error.message, /\n/)
    return true
  }

  test('development is the default, and there every development default applies', () => {
    const settings = loadSettings(withSecrets, {})
    assert.equal(settings.TIMEDEAL_ENV, 'development')
    assert.equal(settings.MYSQL_PASSWORD, 'timedeal')
    assert.equal(settings.INTERNAL_API_SECRET, 'timedeal-dev-internal-secret')
  })

  test('a production process refuses a secret left unset, naming the setting', () => {
    assert.throws(
      () => loadSettings(withSecrets, { TIMEDEAL_ENV: 'production', MYSQL_PASSWORD: own.MYSQL_PASSWORD }),
      oneLine(/^invalid setting INTERNAL_API_SECRET \(not set\): .*TIMEDEAL_ENV=production/),
    )
    assert.throws(
      () => loadSettings(withSecrets, { TIMEDEAL_ENV: 'production', INTERNAL_API_SECRET: own.INTERNAL_API_SECRET }),
      oneLine(/^invalid setting MYSQL_PASSWORD \(not set\): .*TIMEDEAL_ENV=production/),
    )
  })

  test('a production process refuses the development value given explicitly, without printing a secret', () => {
    assert.throws(
      () =>
        loadSettings(withSecrets, {
          TIMEDEAL_ENV: 'production',
          ...own,
          INTERNAL_API_SECRET: 'timedeal-dev-internal-secret',
        }),
      (error: Error) => {
        oneLine(/^invalid setting INTERNAL_API_SECRET: .*development default.*TIMEDEAL_ENV=production/)(error)
        assert.doesNotMatch(error.message, /timedeal-dev-internal-secret/)
        return true
      },
    )
  })

  test('a production process starts with values of its own', () => {
    const settings = loadSettings(withSecrets, { TIMEDEAL_ENV: 'production', ...own })
    assert.equal(settings.TIMEDEAL_ENV, 'production')
    assert.equal(settings.INTERNAL_API_SECRET, own.INTERNAL_API_SECRET)
  })

  test('a bad secret is named without printing it', () => {
    assert.throws(
      () => loadSettings(withSecrets, { INTERNAL_API_SECRET: 'short-secret' }),
      (error: Error) => {
        oneLine(/^invalid setting INTERNAL_API_SECRET \(hidden\): expected at least 16 characters$/)(error)
        assert.doesNotMatch(error.message, /short-secret/)
        return true
      },
    )
  })

  test('TIMEDEAL_ENV itself is development or production', () => {
    assert.throws(
      () => loadSettings(withSecrets, { TIMEDEAL_ENV: 'prod' }),
      oneLine(/^invalid setting TIMEDEAL_ENV="prod": expected development or production$/),
    )
  })
})

/** Matches the error's message alone (assert.throws matches a RegExp against `name: message`). */
const withMessage = (pattern: RegExp) => (error: Error) => pattern.test(error.message)

describe('listeners, request bodies and shutdown', () => {
  test('internal routes listen on the public port + 100 by default, on the public host', () => {
    const settings = loadSettings(schema, { HTTP_HOST: '0.0.0.0', HTTP_PORT: '8082' })
    assert.deepEqual(internalListener(settings), { host: '0.0.0.0', port: 8182 })
    const moved = loadSettings(schema, { INTERNAL_HOST: '10.0.0.5', INTERNAL_PORT: '9000' })
    assert.deepEqual(internalListener(moved), { host: '10.0.0.5', port: 9000 })
  })

  test('an internal port that cannot be used is one line naming INTERNAL_PORT', () => {
    const past = loadSettings(schema, { HTTP_PORT: '65500' })
    assert.throws(
      () => internalListener(past),
      withMessage(/^invalid setting INTERNAL_PORT \(not set\): HTTP_PORT \+ 100 is past 65535/),
    )
    const same = loadSettings(schema, { HTTP_PORT: '9000', INTERNAL_PORT: '9000' })
    assert.throws(() => internalListener(same), withMessage(/^invalid setting INTERNAL_PORT="9000": .*HTTP_PORT/))
  })

  test('on shutdown the drain period comes first and must end before the overall deadline', () => {
    assert.deepEqual(shutdownTimings(loadSettings(schema, {})), { drainMs: 5_000, deadlineMs: 25_000 })
    const tooLong = loadSettings(schema, { SHUTDOWN_DRAIN_MS: '30000', SHUTDOWN_TIMEOUT_MS: '20000' })
    assert.throws(
      () => shutdownTimings(tooLong),
      withMessage(/^invalid setting SHUTDOWN_DRAIN_MS="30000": expected less than SHUTDOWN_TIMEOUT_MS \(20000\)$/),
    )
  })

  test('request bodies are capped at 64 KiB unless HTTP_BODY_LIMIT_BYTES says otherwise', () => {
    assert.equal(loadSettings(schema, {}).HTTP_BODY_LIMIT_BYTES, 64 * 1024)
    assert.equal(loadSettings(schema, { HTTP_BODY_LIMIT_BYTES: '1024' }).HTTP_BODY_LIMIT_BYTES, 1024)
  })

  test('a consumed stream of events is named by its prefix, on by default, under the group the service names', () => {
    const consumer = z.object(eventConsumerSettings('ORDER', 'goods-service'))
    const defaults = loadSettings(consumer, {})
    assert.equal(defaults.ORDER_EVENTS_ENABLED, true)
    assert.equal(defaults.ORDER_EVENTS_GROUP, 'goods-service')
    assert.equal(defaults.CONSUMER_MAX_ATTEMPTS, 5)
    const set = loadSettings(consumer, { ORDER_EVENTS_ENABLED: 'false', ORDER_EVENTS_GROUP: 'goods-replay' })
    assert.equal(set.ORDER_EVENTS_ENABLED, false)
    assert.equal(set.ORDER_EVENTS_GROUP, 'goods-replay')
  })
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
