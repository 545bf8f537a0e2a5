import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { z } from 'zod'
import { createRedis, defineScripts, pingRedis, type Redis, runScript } from '../src/redis.ts'
import { loadSettings, redisSettings } from '../src/settings.ts'
import { useTestRedisCluster } from './redis-cluster.ts'
import { connectTestRedis, testLogger, uniqueName } from './support.ts'

const moveTwo = {
  numberOfKeys: 2,
  lua: `redis.call('SET', KEYS[1], ARGV[1]) redis.call('SET', KEYS[2], ARGV[1]) return redis.call('MGET', KEYS[1], KEYS[2])`,
}

describe('createRedis on a Redis Cluster of three primaries (REDIS_CLUSTER_NODES)', () => {
  let nodes: readonly string[]
  let redis: Redis
  let shared: Redis
  let testCluster: Awaited<ReturnType<typeof useTestRedisCluster>>

  before(async () => {
    shared = connectTestRedis('cluster-test-shared')
    testCluster = await useTestRedisCluster()
    nodes = testCluster.nodes
    redis = createRedis({
      url: 'redis://127.0.0.1:6379',
      clusterNodes: nodes,
      logger: testLogger,
      connectionName: 'cluster-test',
    })
    defineScripts(redis, { moveTwo })
  })

  after(async () => {
    redis.disconnect()
    shared.disconnect()
    await testCluster.release()
  })

  test('keys land on every primary, not on the single Redis of REDIS_URL', async () => {
    await pingRedis(redis)
    const prefix = uniqueName('test:cluster')
    const keys = Array.from({ length: 30 }, (_, index) => `${prefix}:${index}`)
    for (const key of keys) await redis.set(key, key, 'PX', 60_000)
    assert.deepEqual(await Promise.all(keys.map((key) => redis.get(key))), keys)
    assert.equal(await shared.exists(...keys), 0, 'none of them on the shared Redis')
    const held: number[] = []
    for (const node of nodes) {
      // A node asked directly answers MOVED for a key of another primary's slots.
      const direct = createRedis({ url: `redis://${node}`, logger: testLogger })
      const here = await Promise.all(keys.map((key) => direct.exists(key).catch(() => 0)))
      held.push(here.reduce<number>((sum, count) => sum + count, 0))
      direct.disconnect()
    }
    assert.equal(held.length, 3)
    assert.ok(
      held.every((count) => count > 0),
      `every primary holds some keys: ${held}`,
    )
    assert.equal(
      held.reduce((sum, count) => sum + count),
      keys.length,
    )
  })

  test('runs a script whose keys share a hash tag, and refuses one whose keys span two slots', async () => {
    const tag = uniqueName('test-cluster-tag')
    assert.deepEqual(await runScript(redis, 'moveTwo', [`{${tag}}:a`, `{${tag}}:b`], ['1']), ['1', '1'])
    await assert.rejects(runScript(redis, 'moveTwo', [`${tag}:a`, `${tag}:b-other`], ['1']), /CROSSSLOT|same slot/i)
  })

  test('REDIS_CLUSTER_NODES is read as a list of host:port; empty or absent means the single Redis', () => {
    const schema = z.object(redisSettings())
    const read = (value?: string) =>
      loadSettings(schema, value === undefined ? {} : { REDIS_CLUSTER_NODES: value }).REDIS_CLUSTER_NODES
    assert.deepEqual(read(' 10.0.0.1:7000, 10.0.0.2:7000 '), ['10.0.0.1:7000', '10.0.0.2:7000'])
    assert.deepEqual(read(), [])
    assert.deepEqual(read('  '), [])
    assert.throws(() => read('redis://10.0.0.1'), /REDIS_CLUSTER_NODES/)
  })
})
