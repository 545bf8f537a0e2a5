import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { TOPIC_CHAT_MESSAGES } from '@timedeal/contracts'
import { prepareServiceUnderTest, spawnService, testSettings, waitUntilReady } from '@timedeal/platform/testing'

const entry = fileURLToPath(new URL('../src/main.ts', import.meta.url))

describe('chat-service process', () => {
  test('starts against the real servers, reports each dependency ready, and stops on SIGTERM', async () => {
    // Databases of the test's own: the development ones are never touched.
    const owned = await prepareServiceUnderTest({
      name: 'chat_process',
      consumes: { groupSetting: 'CHAT_MESSAGES_GROUP', topics: [TOPIC_CHAT_MESSAGES] },
      redisPrefixSetting: 'CHAT_REDIS_PREFIX',
    })
    const service = await spawnService(entry, { ...owned.env, MONGO_DATABASE: testSettings.MONGO_DATABASE })
    try {
      const ready = (await waitUntilReady(service)) as { checks: Record<string, { status: string }> }
      assert.deepEqual(Object.keys(ready.checks).sort(), ['kafka', 'mongo', 'mysql', 'redis'])
      for (const check of Object.values(ready.checks)) assert.equal(check.status, 'up')
      const health = await fetch(`${service.url}/healthz`)
      assert.deepEqual(await health.json(), { status: 'ok', service: 'chat-service' })
    } finally {
      assert.equal(await service.stop('SIGTERM'), 0)
      await owned.release()
    }
  })
})
