import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { InvalidEventError } from '@timedeal/contracts'
import { Kafka, logLevel } from 'kafkajs'
import { z } from 'zod'
import { classifyFailure, PermanentEventError } from '../src/failures.ts'
import { createSequelize } from '../src/mysql.ts'
import { Problem } from '../src/problem.ts'
import { createRedis } from '../src/redis.ts'
import { freePort, testLogger } from './support.ts'

/** The error `attempt` rejects with. */
async function failureOf(attempt: () => Promise<unknown>): Promise<unknown> {
  try {
    await attempt()
  } catch (error) {
    return error
  }
  throw new Error('expected a failure')
}

describe('what a consumer makes of a failure', () => {
  test('the errors of real clients whose server is down are infrastructure failures', async () => {
    const closed = await freePort()
    const sequelize = createSequelize({
      host: '127.0.0.1',
      port: closed,
      user: 'nobody',
      password: 'nothing',
      database: 'none',
      logger: testLogger,
    })
    const redis = createRedis({ url: `redis://127.0.0.1:${closed}`, logger: testLogger.child({ level: 'fatal' }) })
    const kafka = new Kafka({
      clientId: 'failures-test',
      brokers: [`127.0.0.1:${closed}`],
      retry: { retries: 0 },
      logLevel: logLevel.NOTHING,
    })
    const producer = kafka.producer()
    try {
      const failures = {
        mysql: await failureOf(() => sequelize.query('SELECT 1')),
        redis: await failureOf(() => redis.get('anything')),
        kafka: await failureOf(() => producer.connect()),
        http: await failureOf(() => fetch(`http://127.0.0.1:${closed}/`)),
      }
      for (const [client, error] of Object.entries(failures)) {
        assert.equal(classifyFailure(error), 'infrastructure', `${client}: ${String(error)}`)
      }
    } finally {
      await sequelize.close()
      redis.disconnect()
    }
  })

  test('a dependency answering "not now" is an infrastructure failure; a refusal is permanent', () => {
    assert.equal(
      classifyFailure(new Problem({ status: 503, code: 'GOODS_UNAVAILABLE', detail: 'down' })),
      'infrastructure',
    )
    assert.equal(
      classifyFailure(new Problem({ status: 429, code: 'TOO_MANY_REQUESTS', detail: 'later' })),
      'infrastructure',
    )
    assert.equal(classifyFailure(new Problem({ status: 422, code: 'SALE_CLOSED', detail: 'closed' })), 'permanent')
    assert.equal(
      classifyFailure(new Problem({ status: 404, code: 'RESERVATION_NOT_FOUND', detail: 'none' })),
      'permanent',
    )
  })

  test('invalid data and a handler that says so are permanent', () => {
    assert.equal(classifyFailure(new PermanentEventError('a rule says no')), 'permanent')
    assert.equal(classifyFailure(new InvalidEventError('not an event')), 'permanent')
    assert.equal(classifyFailure(z.object({ id: z.string() }).safeParse({}).error), 'permanent')
  })

  test('a failure wrapped by another keeps the kind of its cause', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3306'), { code: 'ECONNREFUSED' })
    assert.equal(classifyFailure(new Error('could not record the refund', { cause: refused })), 'infrastructure')
  })

  test('anything else is unclassified, and so retried rather than dead-lettered', () => {
    assert.equal(classifyFailure(new TypeError('cannot read properties of undefined')), 'unclassified')
    assert.equal(classifyFailure(new Error('something odd')), 'unclassified')
    assert.equal(
      classifyFailure(new Problem({ status: 500, code: 'INTERNAL', detail: 'a bug somewhere' })),
      'unclassified',
    )
    assert.equal(classifyFailure('a string'), 'unclassified')
  })
})
