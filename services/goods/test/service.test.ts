import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { TOPIC_ORDERS } from '@timedeal/contracts'
import type { Redis } from '@timedeal/platform'
import { deleteRedisKeys, spawnService, startGroupsAtEnd, uniqueName, waitUntilReady } from '@timedeal/platform/testing'
import { createStockStore } from '@timedeal/stock'
import { createCatalog } from '../src/adapters/catalog.ts'
import { connectRedis, createTestDatabase, type TestDatabase } from './support.ts'

const entry = fileURLToPath(new URL('../src/main.ts', import.meta.url))

describe('goods-service process', () => {
  test('starts against the real servers, reports each dependency ready, and stops on SIGTERM', async () => {
    // A database, stock keys and a consumer group of its own: never the development ones.
    const database = await createTestDatabase()
    const prefix = uniqueName('test_process')
    const groupId = uniqueName('goods-process')
    await startGroupsAtEnd([groupId], [TOPIC_ORDERS])
    const service = await spawnService(entry, {
      MYSQL_DATABASE: database.name,
      STOCK_KEY_PREFIX: prefix,
      ORDER_EVENTS_GROUP: groupId,
    })
    try {
      const ready = (await waitUntilReady(service)) as { checks: Record<string, { status: string }> }
      assert.deepEqual(Object.keys(ready.checks).sort(), ['kafka', 'mysql', 'redis'])
      for (const check of Object.values(ready.checks)) assert.equal(check.status, 'up')
      const health = await fetch(`${service.url}/healthz`)
      assert.deepEqual(await health.json(), { status: 'ok', service: 'goods-service' })
    } finally {
      assert.equal(await service.stop('SIGTERM'), 0)
      const redis = connectRedis()
      await deleteRedisKeys(redis, prefix)
      redis.disconnect()
      await database.drop()
    }
  })
})

describe('goods-service seed', () => {
  const prefix = uniqueName('test_seed')
  let database: TestDatabase
  let redis: Redis

  before(async () => {
    database = await createTestDatabase()
    redis = connectRedis()
  })

  after(async () => {
    await deleteRedisKeys(redis, prefix)
    redis.disconnect()
    await database.drop()
  })

  test('writes demo goods of the demo seller: one open, one opening soon, one sold out, one closed; again is safe', async () => {
    const env = { MYSQL_DATABASE: database.name, STOCK_KEY_PREFIX: prefix, DEMO_SELLER_ID: 'demo-seller-test' }
    for (let run = 0; run < 2; run += 1) {
      const seeding = await spawnService(entry, env, ['seed'])
      assert.equal(await seeding.exited, 0, seeding.output().stderr)
    }
    const catalog = createCatalog(database.sequelize)
    const store = createStockStore(redis, { prefix, holdMs: 60_000, retentionMs: 60_000 })
    const [seconds] = await redis.time()
    const demo = await catalog.page({ sellerId: 'demo-seller-test', now: new Date(Number(seconds) * 1000), limit: 10 })
    assert.equal(demo.length, 4)
    const states = await Promise.all(demo.map(async (goods) => (await store.read(goods.id))?.state))
    assert.deepEqual([...states].sort(), ['CLOSED', 'OPEN', 'SOLD_OUT', 'UPCOMING'])
    const upcoming = demo[states.indexOf('UPCOMING')]
    const opensIn = (upcoming?.saleStartsAt.getTime() ?? 0) - Number(seconds) * 1000
    assert.ok(opensIn > 60_000 && opensIn <= 5 * 60_000, `the upcoming sale opens in ${opensIn} ms`)
  })
})
