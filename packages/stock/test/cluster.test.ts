// Live stock on a real Redis Cluster of three primaries: a script may only touch keys of one slot,
// so every key one script is given must hash to the same slot, and the shards of one namespace
// must spread over the primaries.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { createRedis, type Redis } from '@timedeal/platform'
import { deleteRedisKeys, testLogger } from '@timedeal/platform/testing'
import { useTestRedisCluster } from '@timedeal/platform/testing/redis-cluster'
import { createStockStore, type StockStore, stockKeys } from '../src/index.ts'
import { availableOf, goodsIdInShard, ledgerOf, openSale, testPrefix } from './support.ts'

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
    await deleteRedisKeys(cluster, prefix)
    cluster.disconnect()
    await testCluster.release()
  })

  const slotOf = async (key: string) => Number(await cluster.call('CLUSTER', 'KEYSLOT', key))

  /** The address of the primary serving each slot, from the cluster's own slot map. */
  async function primaryOfSlot(): Promise<(slot: number) => string> {
    const ranges = (await cluster.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, ...unknown[]]][]
    return (slot) => {
      const range = ranges.find(([first, last]) => slot >= first && slot <= last)
      if (!range) throw new Error(`no primary serves slot ${slot}`)
      return `${range[2][0]}:${range[2][1]}`
    }
  }

  test("every key one script is given hashes to its goods' shard's slot, the ledger, expiry index and lookup included", async () => {
    const keys = stockKeys(prefix)
    const slotsOfShards = new Set<number>()
    for (const goodsId of ['g-1', 'g-2', ...Array.from({ length: 40 }, () => `g-${randomUUID()}`)]) {
      const shard = keys.shardOf(goodsId)
      const scriptKeys = [
        keys.available(goodsId),
        keys.sale(goodsId),
        keys.holders(goodsId),
        keys.reservation(goodsId, randomUUID()),
        shard.reservationGoods(randomUUID()),
        shard.expiries,
        shard.ledger,
      ]
      const slots = new Set(await Promise.all(scriptKeys.map(slotOf)))
      assert.equal(slots.size, 1, `${goodsId}: ${scriptKeys.join(', ')} span ${slots.size} slots`)
      slotsOfShards.add([...slots][0] as number)
    }
    // Goods of different shards are in different slots: the namespace is not one slot any more.
    assert.ok(slotsOfShards.size > 1, 'every goods of the namespace is in one slot')
  })

  test('several hot goods of one namespace land on different primaries, and each takes its own stock there', async () => {
    const keys = stockKeys(prefix)
    const primaryOf = await primaryOfSlot()
    const primaryOfShard = await Promise.all(keys.shards.map(async (shard) => primaryOf(await slotOf(shard.ledger))))
    // The default layout spreads the default namespace's shards over all three primaries.
    const defaults = stockKeys()
    const spread = await Promise.all(defaults.shards.map(async (shard) => primaryOf(await slotOf(shard.ledger))))
    assert.equal(
      new Set(spread).size,
      3,
      `the ${defaults.shards.length} shards of "stock" sit on ${new Set(spread).size} primaries`,
    )

    // One hot goods on each primary this namespace's shards reach.
    const hot = new Map<string, string>()
    for (const [index, primary] of primaryOfShard.entries()) {
      if (hot.has(primary)) continue
      const { goodsId } = await openSale(store, { stock: 20, goodsId: goodsIdInShard(store, index) })
      hot.set(primary, goodsId)
    }
    assert.ok(hot.size > 1, 'the shards of this namespace sit on one primary')
    const outcomes = await Promise.all(
      [...hot.values()].flatMap((goodsId) =>
        Array.from({ length: 30 }, (_, index) =>
          store.reserve({ reservationId: randomUUID(), goodsId, userId: `u-${index}`, quantity: 1 }),
        ),
      ),
    )
    assert.equal(outcomes.filter((outcome) => outcome.ok).length, 20 * hot.size)
    for (const [primary, goodsId] of hot) {
      assert.equal(await availableOf(cluster, store, goodsId), 0)
      // The goods' keys and its ledger entries are on that primary.
      assert.equal(primaryOf(await slotOf(store.keys.available(goodsId))), primary)
      assert.equal((await ledgerOf(cluster, store, goodsId)).length, 20)
    }
  })

  test('expires due reservations in every shard on the cluster', async () => {
    const shortHold = createStockStore(cluster, { prefix, holdMs: 200, retentionMs: 60_000 })
    const goodsIds: string[] = []
    for (const shard of shortHold.keys.shards) {
      const { goodsId } = await openSale(shortHold, { stock: 3, goodsId: goodsIdInShard(shortHold, shard.index) })
      goodsIds.push(goodsId)
      const outcome = await shortHold.reserve({ reservationId: randomUUID(), goodsId, userId: 'u', quantity: 2 })
      assert.ok(outcome.ok)
    }
    await new Promise((resolve) => setTimeout(resolve, 300))
    const pass = await shortHold.expireDue()
    assert.deepEqual([pass.due, pass.released], [goodsIds.length, goodsIds.length])
    for (const goodsId of goodsIds) assert.equal(await availableOf(cluster, shortHold, goodsId), 3)
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
