// Live stock on a real Redis Cluster of three primaries: a script may only touch keys of one slot,
// so every key one script is given must hash to the same slot.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { createRedis, type Redis } from '@timedeal/platform'
import { testLogger } from '@timedeal/platform/testing'
import { useTestRedisCluster } from '@timedeal/platform/testing/redis-cluster'
import { createStockStore, type StockStore, stockKeys } from '../src/index.ts'
import { dropPrefix, ledgerOf, openSale, testPrefix } from './support.ts'

const prefix = testPrefix()

describe('live stock on a Redis Cluster of three primaries', () => {
  let cluster: Redis
  let store: StockStore
  let testCluster: Awaited<ReturnType<typeof useTestRedisCluster>>

  before(async () => {
    testCluster = await useTestRedisCluster()
    const { nodes } = testCluster
    cluster = createRedis({ url: 'redis://127.0.0.1:6379', clusterNodes: nodes, logger: testLogger })
    store = createStockStore(cluster, { prefix, holdMs: 60_000, retentionMs: 60_000 })
  })

  after(async () => {
    await dropPrefix(cluster, prefix)
    cluster.disconnect()
    await testCluster.release()
  })

  test('every key one script is given hashes to one slot, the shared ledger and expiry index included', async () => {
    const keys = stockKeys(prefix)
    const slotOf = async (key: string) => Number(await cluster.call('CLUSTER', 'KEYSLOT', key))
    for (const goodsId of ['g-1', 'g-2', `g-${randomUUID()}`]) {
      const scriptKeys = [
        keys.available(goodsId),
        keys.sale(goodsId),
        keys.holders(goodsId),
        keys.reservation(goodsId, randomUUID()),
        keys.reservationGoods(randomUUID()),
        keys.expiries,
        keys.ledger,
      ]
      const slots = new Set(await Promise.all(scriptKeys.map(slotOf)))
      assert.equal(slots.size, 1, `${goodsId}: ${scriptKeys.join(', ')} span ${slots.size} slots`)
    }
  })

  test('reserves, confirms, releases, edits and expires on the cluster; the ledger records each change', async () => {
    const { goodsId } = await openSale(store, { stock: 5 })
    const ids = [randomUUID(), randomUUID(), randomUUID()]
    for (const [index, reservationId] of ids.entries()) {
      const outcome = await store.reserve({ reservationId, goodsId, userId: `u-${index}`, quantity: 1 })
      assert.ok(outcome.ok, `reserve ${index}: ${JSON.stringify(outcome)}`)
    }
    assert.equal((await store.confirm(ids[0] as string)).status, 'CONFIRMED')
    assert.deepEqual(await store.release(ids[1] as string, { reason: 'order-cancelled' }), {
      status: 'RELEASED',
      changed: true,
    })
    assert.equal((await store.reservation(ids[2] as string))?.state, 'RESERVED')
    const before = await store.read(goodsId)
    assert.ok(before)
    const edited = await store.configure(goodsId, {
      ...before.terms,
      endsAt: (await store.now()) + 7_200_000,
      version: 2,
    })
    assert.deepEqual(edited, { status: 'OK', delta: 0 })
    assert.deepEqual(await store.expireDue(), { released: 0, due: 0, unloaded: [] })
    assert.equal((await store.read(goodsId))?.available, 3)
    const kinds = (await ledgerOf(cluster, store, goodsId)).map((entry) => entry.kind)
    assert.deepEqual(kinds, ['reserve', 'reserve', 'reserve', 'release', 'terms'])
  })
})
