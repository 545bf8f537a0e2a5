import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { TOPIC_PAYMENTS } from '@timedeal/contracts'
import { createTestDatabase, spawnService, uniqueName, waitUntilReady } from '@timedeal/platform/testing'
import { startGroupsAtEnd } from './support.ts'

const entry = fileURLToPath(new URL('../src/main.ts', import.meta.url))

describe('order-service process', () => {
  test('starts against the real servers, reports each dependency ready, and stops on SIGTERM', async () => {
    // A database and a consumer group of its own: the development ones are left alone.
    const database = await createTestDatabase('order_process')
    const groupId = uniqueName('order-process')
    await startGroupsAtEnd([groupId], [TOPIC_PAYMENTS])
    const service = await spawnService(entry, { MYSQL_DATABASE: database.name, PAYMENT_EVENTS_GROUP: groupId })
    try {
      const ready = (await waitUntilReady(service)) as { checks: Record<string, { status: string }> }
      assert.deepEqual(Object.keys(ready.checks).sort(), ['kafka', 'mysql'])
      for (const check of Object.values(ready.checks)) assert.equal(check.status, 'up')
      const health = await fetch(`${service.url}/healthz`)
      assert.deepEqual(await health.json(), { status: 'ok', service: 'order-service' })
      const metrics = await (await fetch(`${service.url}/metrics`)).text()
      assert.match(metrics, /^outbox_lag_seconds\{service="order-service"\} 0$/m)
    } finally {
      assert.equal(await service.stop('SIGTERM'), 0)
      await database.drop()
    }
  })
})
