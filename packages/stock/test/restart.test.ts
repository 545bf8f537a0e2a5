import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { createLogger, createRedis, type Redis } from '@timedeal/platform'
import { eventually, freePort } from '@timedeal/platform/testing'
import { createStockStore, type StockStore } from '../src/index.ts'
import { availableOf, ledgerOf, openSale, testPrefix } from './support.ts'

// The connection errors of the crash are expected; only worse is worth printing.
const quietLogger = createLogger('restart-test', 'error')

/**
 * A Redis of this test's own (the shared one serves everyone else), configured like the local
 * server: append-only file on, fsync every second. It is killed with SIGKILL mid-sale.
 */
async function startPrivateRedis(port: number, dir: string): Promise<ChildProcess> {
  const server = spawn(
    'redis-server',
    [
      '--bind',
      '127.0.0.1',
      '--port',
      String(port),
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--save',
      '',
      '--daemonize',
      'no',
    ],
    { stdio: 'ignore' },
  )
  const probe = createRedis({ url: `redis://127.0.0.1:${port}`, logger: quietLogger })
  try {
    await eventually(async () => ((await probe.ping()) === 'PONG' ? true : undefined), 15_000, 'the private Redis')
  } finally {
    probe.disconnect()
  }
  return server
}

describe('live stock across a Redis crash (private Redis with AOF)', () => {
  const prefix = testPrefix()
  let dir: string
  let port: number
  let server: ChildProcess | undefined
  let redis: Redis
  let store: StockStore

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'timedeal-redis-'))
    port = await freePort()
    server = await startPrivateRedis(port, dir)
    redis = createRedis({ url: `redis://127.0.0.1:${port}`, logger: quietLogger, connectionName: 'restart-test' })
    store = createStockStore(redis, { prefix, holdMs: 600_000, retentionMs: 600_000 })
  })

  after(async () => {
    redis.disconnect()
    if (server && server.exitCode === null) {
      server.kill('SIGKILL')
      await once(server, 'exit')
    }
    await rm(dir, { recursive: true, force: true })
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
    const running = server as ChildProcess
    running.kill('SIGKILL')
    await once(running, 'exit')
    crashed = true
    await Promise.all(buyers)

    server = await startPrivateRedis(port, dir)
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
