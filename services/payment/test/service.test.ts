import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { TOPIC_ORDERS } from '@timedeal/contracts'
import { createTestDatabase, spawnService, uniqueName, waitUntilReady } from '@timedeal/platform/testing'
import { startGroupsAtEnd } from './support.ts'

const entry = fileURLToPath(new URL('../src/main.ts', import.meta.url))

describe('payment-service process', () => {
  test('starts against the real servers, reports each dependency ready, and stops on SIGTERM', async () => {
    // A database and a consumer group of its own: a fresh group must not charge the topic's history
    // into the development database.
    const database = await createTestDatabase('payment_process')
    const groupId = uniqueName('payment-process')
    await startGroupsAtEnd([groupId], [TOPIC_ORDERS])
    const service = await spawnService(entry, { MYSQL_DATABASE: database.name, ORDER_EVENTS_GROUP: groupId })
    try {
      const ready = (await waitUntilReady(service)) as { checks: Record<string, { status: string }> }
      assert.deepEqual(Object.keys(ready.checks).sort(), ['kafka', 'mysql'])
      for (const check of Object.values(ready.checks)) assert.equal(check.status, 'up')
      const health = await fetch(`${service.url}/healthz`)
      assert.deepEqual(await health.json(), { status: 'ok', service: 'payment-service' })
      const metrics = await (await fetch(`${service.url}/metrics`)).text()
      assert.match(metrics, /^outbox_lag_seconds\{service="payment-service"\} 0$/m)
    } finally {
      assert.equal(await service.stop('SIGTERM'), 0)
      await database.drop()
    }
  })
})
