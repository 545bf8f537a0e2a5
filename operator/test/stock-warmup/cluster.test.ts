// The warm-up's writer on a real Redis Cluster of three primaries (REDIS_CLUSTER_NODES): a chunk's
// goods sit in slots of every primary, and each primary must be sent the script it has not seen.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { createRedis, type Redis } from '@timedeal/platform'
import { testLogger } from '@timedeal/platform/testing'
import { useTestRedisCluster } from '@timedeal/platform/testing/redis-cluster'
import { createStockStore, type StockSource, stockKeys } from '@timedeal/stock'
import { createStockWriter } from '../../src/stock-warmup/writer.ts'

const HOUR = 3_600_000

describe('the stock warm-up writer on a Redis Cluster', () => {
  let nodes: readonly string[]
  let cluster: Redis
  let testCluster: Awaited<ReturnType<typeof useTestRedisCluster>>
  const prefix = `test-warmup-cluster-${randomBytes(4).toString('hex')}`

  before(async () => {
    testCluster = await useTestRedisCluster()
    nodes = testCluster.nodes
    cluster = createRedis({ url: 'redis://127.0.0.1:6379', clusterNodes: nodes, logger: testLogger })
  })

  after(async () => {
    const keys = stockKeys(prefix)
    await Promise.all(
      Array.from({ length: 40 }, (_, index) => cluster.del(keys.available(`g-${index}`), keys.sale(`g-${index}`))),
    )
    cluster.disconnect()
    await testCluster.release()
  })

  const rows = (from: number, to: number, now: number): StockSource[] =>
    Array.from({ length: to - from }, (_, offset) => ({
      goodsId: `g-${from + offset}`,
      onHand: from + offset + 1,
      startsAt: now + HOUR,
      endsAt: now + 2 * HOUR,
      purchaseLimit: 2,
      initialStock: from + offset + 1,
      version: 1,
    }))

  test('loads a chunk whose goods sit on every primary, also after every primary forgot the script', async () => {
    const now = Date.now()
    const writer = createStockWriter(cluster, { prefix, mode: 'IfAbsent', chunkSize: 20, maxAttempts: 3 })
    const first = await writer.write(rows(0, 20, now))
    assert.deepEqual([first.loaded.length, first.skipped], [20, 0])
    for (const node of nodes) {
      const direct = createRedis({ url: `redis://${node}`, logger: testLogger })
      await direct.script('FLUSH')
      direct.disconnect()
    }
    const second = await writer.write(rows(15, 40, now))
    assert.deepEqual([second.loaded.length, second.skipped], [20, 5])

    // What goods-service reads on the same cluster is what the warm-up wrote.
    const store = createStockStore(cluster, { prefix, holdMs: 60_000, retentionMs: 60_000 })
    const snapshot = await store.read('g-39')
    assert.equal(snapshot?.available, 40)
    assert.equal(snapshot?.terms.purchaseLimit, 2)
    assert.equal((await store.read('g-0'))?.available, 1)
  })

  test('an Overwrite warm-up replaces stock of sales not yet open on every primary', async () => {
    const now = Date.now()
    const writer = createStockWriter(cluster, { prefix, mode: 'Overwrite', chunkSize: 50, maxAttempts: 3 })
    const replaced = rows(0, 10, now).map((row) => ({ ...row, onHand: 7, initialStock: 7, version: 2 }))
    const outcome = await writer.write(replaced)
    assert.deepEqual([outcome.loaded.length, outcome.refused], [10, 0])
    const keys = stockKeys(prefix)
    const counts = await Promise.all(replaced.map((row) => cluster.get(keys.available(row.goodsId))))
    assert.deepEqual(counts, Array(10).fill('7'))
  })
})
