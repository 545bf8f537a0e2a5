import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { createLogger, createRedis, type Redis } from '@timedeal/platform'
import { eventually, type PrivateRedis, startPrivateRedis } from '@timedeal/platform/testing'
import { createStockStore, type StockStore } from '../src/index.ts'
import { availableOf, ledgerOf, openSale, testPrefix } from './support.ts'

// The connection errors of the crash are expected; only worse is worth printing.
const quietLogger = createLogger('restart-test', 'error')

describe('live stock across a Redis crash (private Redis with AOF)', () => {
  const prefix = testPrefix()
  let server: PrivateRedis
  let redis: Redis
  let store: StockStore

  before(async () => {
    // Configured like the local server: append-only file on, fsync every second.
    server = await startPrivateRedis('everysec')
    redis = createRedis({ url: server.url, logger: quietLogger, connectionName: 'restart-test' })
    store = createStockStore(redis, { prefix, holdMs: 600_000, retentionMs: 600_000 })
  })

  after(async () => {
    redis?.disconnect()
    await server?.stop()
  })

  test('loses no acknowledged reservation when Redis is killed during a sale and restarted', async () => {
    const stock = 100_000
    const { goodsId } = await openSale(store, { stock })
    const acknowledged: { id: string; userId: string; quantity: number }[] = []
    let crashed = false

    // Buyers keep reserving while the server dies under them; only answered calls count.
    const buyers = Array.from({ length: 16 }, async (_, buyer) => {
      while (!crashed) {
        const id = `crash-${buyer}-${randomUUID()}`
        const userId = `buyer-${buyer}`
        const quantity = 1 + (acknowledged.length % 3)
        try {
          const outcome = await store.reserve({ reservationId: id, goodsId, userId, quantity })
          if (outcome.ok) acknowledged.push({ id, userId, quantity })
        } catch {
          // The connection dropped: this call's fate is unknown, and it is not counted.
        }
      }
    })
    await eventually(async () => (acknowledged.length >= 500 ? true : undefined), 15_000, '500 reservations')
    await server.kill()
    crashed = true
    await Promise.all(buyers)

    await server.restart()
    await eventually(async () => ((await redis.ping()) === 'PONG' ? true : undefined), 15_000, 'the reconnection')

    for (const { id, quantity } of acknowledged) {
      const record = await store.reservation(id)
      assert.equal(record?.state, 'RESERVED', `reservation ${id} was acknowledged but is gone`)
      assert.equal(record?.quantity, quantity)
    }
    // Stock, reservation records and ledger agree, including calls that were applied but never answered.
    const ledger = await ledgerOf(redis, store, goodsId)
    const reserved = ledger.reduce((sum, entry) => sum - entry.delta, 0)
    assert.ok(ledger.length >= acknowledged.length)
    assert.equal(new Set(ledger.map((entry) => entry.reservationId)).size, ledger.length)
    assert.equal(await availableOf(redis, store, goodsId), stock - reserved)

    // The sale goes on, and a retried call is answered from the record that survived.
    const [first] = acknowledged
    assert.ok(first)
    const retried = await store.reserve({
      reservationId: first.id,
      goodsId,
      userId: first.userId,
      quantity: first.quantity,
    })
    assert.ok(retried.ok && retried.replayed)
    const fresh = await store.reserve({ reservationId: randomUUID(), goodsId, userId: 'late-buyer', quantity: 1 })
    assert.ok(fresh.ok && !fresh.replayed)
    assert.equal(await availableOf(redis, store, goodsId), stock - reserved - 1)
  })
})
