import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { Redis } from '@timedeal/platform'
import { deleteRedisKeys, eventually, spawnService, testLogger, uniqueName } from '@timedeal/platform/testing'
import { createStockStore, LEDGER_GROUP, type LedgerEntry, parseLedgerEntry, type StockStore } from '@timedeal/stock'
import { QueryTypes } from 'sequelize'
import { createCatalog } from '../src/adapters/catalog.ts'
import {
  applyLedgerBatch,
  createLedgerWriter,
  forgetConsumer,
  idleConsumers,
  type LedgerWriter,
  ledgerLag,
} from '../src/adapters/ledger-writer.ts'
import { draftToGoods, stockSourceOf } from '../src/domain/goods.ts'
import {
  connectStockRedis,
  createTestDatabase,
  goodsIdInShard,
  onHandOf,
  stockRedisTargets,
  type TestDatabase,
} from './support.ts'

const workerEntry = fileURLToPath(new URL('../src/worker.ts', import.meta.url))

for (const target of stockRedisTargets) {
  describe(`the ledger write-behind (real MariaDB, on ${target.name})`, () => {
    let database: TestDatabase
    let redis: Redis
    let stockRedis: Awaited<ReturnType<typeof connectStockRedis>>
    const prefixes: string[] = []

    before(async () => {
      database = await createTestDatabase()
      stockRedis = await connectStockRedis(target)
      redis = stockRedis.redis
    })

    after(async () => {
      for (const prefix of prefixes) await deleteRedisKeys(redis, prefix)
      await stockRedis.release()
      await database.drop()
    })

    /**
     * Goods in MySQL and Redis with a busy sale behind them: reservations and releases. `ids` are
     * the ledger's entries as `<shard>/<entry id>`, in shard order. With `everyShard`, there is
     * one goods in each shard of the namespace.
     */
    async function busySale(goodsCount: number, reservations: number, options: { everyShard?: boolean } = {}) {
      const prefix = uniqueName('test_ledger')
      prefixes.push(prefix)
      const store = createStockStore(redis, { prefix, holdMs: 600_000, retentionMs: 600_000 })
      const catalog = createCatalog(database.sequelize)
      const now = await store.now()
      const goodsIds: string[] = []
      const count = options.everyShard ? store.keys.shards.length : goodsCount
      for (let index = 0; index < count; index += 1) {
        const drafted = draftToGoods(
          {
            name: `ledger goods ${index}`,
            description: '',
            price: 1_000,
            initialStock: 10_000,
            saleStartsAt: new Date(now - 60_000),
            saleEndsAt: new Date(now + 3_600_000),
            purchaseLimit: null,
          },
          'ledger-seller',
          new Date(now),
        )
        const goods = options.everyShard ? { ...drafted, id: goodsIdInShard(store, index) } : drafted
        await catalog.insert(goods)
        await store.loadIfAbsent(stockSourceOf(goods))
        goodsIds.push(goods.id)
      }
      const reserved: string[] = []
      for (let start = 0; start < reservations; start += 100) {
        await Promise.all(
          Array.from({ length: Math.min(100, reservations - start) }, async (_, offset) => {
            const index = start + offset
            const reservationId = `ledger-${index}-${randomUUID()}`
            const goodsId = goodsIds[index % goodsIds.length] as string
            const outcome = await store.reserve({
              reservationId,
              goodsId,
              userId: `u-${index}`,
              quantity: 1 + (index % 3),
            })
            assert.ok(outcome.ok)
            reserved.push(reservationId)
          }),
        )
      }
      await Promise.all(reserved.filter((_, index) => index % 10 === 0).map((id) => store.release(id)))
      const ids: string[] = []
      for (const shard of store.keys.shards) {
        const entries = (await redis.xrange(shard.ledger, '-', '+')) as [string, string[]][]
        ids.push(...entries.map(([id]) => `${shard.index}/${id}`))
      }
      return { prefix, store, goodsIds, ids }
    }

    async function appliedIds(goodsIds: readonly string[]): Promise<string[]> {
      const rows = await database.sequelize.query<{ id: string }>(
        `SELECT CONCAT(shard, '/', entry_ms, '-', entry_seq) AS id FROM stock_ledger WHERE goods_id IN (?)
         ORDER BY shard, entry_ms, entry_seq`,
        { replacements: [goodsIds], type: QueryTypes.SELECT },
      )
      return rows.map((row) => row.id)
    }

    async function assertConverged(store: StockStore, goodsIds: readonly string[], ids: readonly string[]) {
      assert.deepEqual(await appliedIds(goodsIds), ids, 'every ledger entry applied exactly once')
      for (const goodsId of goodsIds) {
        const live = Number(await redis.get(store.keys.available(goodsId)))
        assert.equal(await onHandOf(database.sequelize, goodsId), live, `goods ${goodsId}: MySQL equals Redis`)
      }
      assert.equal((await ledgerLag(redis, store.keys.ledgers)).entries, 0)
    }

    /** Entries read but not acknowledged, in every shard. */
    async function pendingOf(store: StockStore): Promise<number> {
      let pending = 0
      for (const stream of store.keys.ledgers) {
        if ((await redis.exists(stream)) === 0) continue
        const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][]
        if (groups.length === 0) continue
        pending += Number(((await redis.xpending(stream, LEDGER_GROUP)) as [number])[0])
      }
      return pending
    }

    /** Runs a ledger writer until it has drained the ledger, then `check` while it still runs. */
    async function afterDrainBy(
      store: StockStore,
      options: { consumer: string; batchSize: number; claimIdleMs: number; trimEveryMs?: number },
      check: (writer: LedgerWriter) => Promise<void>,
    ) {
      const reader = redis.duplicate()
      const writer = createLedgerWriter({
        redis,
        reader,
        sequelize: database.sequelize,
        keys: store.keys,
        ...options,
        logger: testLogger,
      })
      writer.start()
      try {
        await eventually(async () => ((await writer.lag()).entries === 0 ? true : undefined), 30_000, 'the drain')
        await check(writer)
      } finally {
        await writer.stop()
        reader.disconnect()
      }
    }

    /** The settings of a ledger worker process on `prefix`, reading `batchSize` entries at a time. */
    const workerEnv = (prefix: string, batchSize: number) => ({
      ...stockRedis.env,
      MYSQL_DATABASE: database.name,
      STOCK_KEY_PREFIX: prefix,
      LEDGER_BATCH_SIZE: String(batchSize),
      LEDGER_CLAIM_IDLE_MS: '300',
      LOG_LEVEL: 'warn',
    })

    /** A worker started again drains every shard's ledger, MySQL ends equal to Redis, and it stops cleanly. */
    async function restartedWorkerConverges(
      env: Record<string, string>,
      store: StockStore,
      goodsIds: readonly string[],
      ids: readonly string[],
    ) {
      const worker = await spawnService(workerEntry, env)
      try {
        await eventually(
          async () => ((await ledgerLag(redis, store.keys.ledgers)).entries === 0 ? true : undefined),
          60_000,
          'the restarted worker to drain every shard',
        )
        await assertConverged(store, goodsIds, ids)
      } finally {
        assert.equal(await worker.stop('SIGTERM'), 0)
      }
    }

    test('a worker killed with SIGKILL mid-batch, again and again, leaves MySQL equal to Redis once restarted', async () => {
      const { prefix, store, goodsIds, ids } = await busySale(4, 3_000)
      const env = workerEnv(prefix, 20)
      const appliedCount = async () => (await appliedIds(goodsIds)).length
      let killedMidBatch = 0
      for (const share of [0.15, 0.4, 0.65]) {
        const worker = await spawnService(workerEntry, env)
        await eventually(
          async () => ((await appliedCount()) >= ids.length * share ? true : undefined),
          60_000,
          `${share * 100}% of the ledger applied`,
        )
        assert.equal(await worker.stop('SIGKILL'), null)
        // Entries read but never acknowledged: the worker died inside a batch.
        const pending = await pendingOf(store)
        if (pending > 0) killedMidBatch += 1
      }
      assert.ok(killedMidBatch > 0, 'no kill landed inside a batch')
      assert.ok((await appliedCount()) < ids.length, 'the killed workers should not have finished the ledger')

      await restartedWorkerConverges(env, store, goodsIds, ids)
    })

    test('applies the entries of every shard exactly once across a restart of the writer', async () => {
      const { prefix, store, goodsIds, ids } = await busySale(0, 800, { everyShard: true })
      const shardsWithEntries = new Set(ids.map((id) => id.split('/')[0]))
      assert.equal(shardsWithEntries.size, store.keys.shards.length, 'a shard has no ledger entries')
      const env = workerEnv(prefix, 10)
      const first = await spawnService(workerEntry, env)
      try {
        await eventually(
          async () => ((await appliedIds(goodsIds)).length >= ids.length / 4 ? true : undefined),
          30_000,
          'a quarter of the ledger applied',
        )
      } finally {
        assert.equal(await first.stop('SIGKILL'), null)
      }
      assert.ok((await appliedIds(goodsIds)).length < ids.length, 'the first writer should not have finished')

      await restartedWorkerConverges(env, store, goodsIds, ids)
    })

    test('a batch committed but never acknowledged is not applied twice', async () => {
      const { store, goodsIds, ids } = await busySale(2, 300)
      // A consumer reads a batch and commits it, then dies before XACK.
      const shard = store.keys.shardOf(goodsIds[0] as string)
      await redis.xgroup('CREATE', shard.ledger, LEDGER_GROUP, '0', 'MKSTREAM')
      const reply = (await redis.call(
        'XREADGROUP',
        'GROUP',
        LEDGER_GROUP,
        'doomed',
        'COUNT',
        120,
        'STREAMS',
        shard.ledger,
        '>',
      )) as [string, [string, string[]][]][]
      const batch = (reply[0]?.[1] ?? []).map(([id, fields]) => parseLedgerEntry(id, fields, shard.index))
      const entries = batch.filter((entry) => entry !== undefined)
      assert.equal(entries.length, 120)
      assert.equal(await applyLedgerBatch(database.sequelize, entries), 120)
      assert.equal(await applyLedgerBatch(database.sequelize, entries), 0, 'a replayed batch inserts nothing')

      await afterDrainBy(store, { consumer: 'successor', batchSize: 50, claimIdleMs: 200 }, () =>
        assertConverged(store, goodsIds, ids),
      )
    })

    test('never drops entries a consumer read after it was listed as gone', async () => {
      const { store, goodsIds, ids } = await busySale(1, 40)
      const stream = store.keys.shardOf(goodsIds[0] as string).ledger
      await redis.xgroup('CREATE', stream, LEDGER_GROUP, '0', 'MKSTREAM')
      // A worker that has been quiet for a while: paused by the machine, or waiting on MySQL.
      await redis.xgroup('CREATECONSUMER', stream, LEDGER_GROUP, 'sleeper')
      await new Promise((resolve) => setTimeout(resolve, 120))
      const gone = await idleConsumers(redis, stream, LEDGER_GROUP, { idleMs: 100 })
      assert.deepEqual(gone, ['sleeper'])

      // It wakes and reads a batch just after it was listed, and before it is dropped.
      const reply = (await redis.call(
        'XREADGROUP',
        'GROUP',
        LEDGER_GROUP,
        'sleeper',
        'COUNT',
        25,
        'STREAMS',
        stream,
        '>',
      )) as [string, [string, string[]][]][]
      const read = reply[0]?.[1] ?? []
      assert.equal(read.length, 25)
      for (const name of gone) assert.equal(await forgetConsumer(redis, stream, LEDGER_GROUP, name), false)

      // Its batch is still pending, so whoever takes over applies it if the sleeper never does.
      const [pending] = (await redis.xpending(stream, LEDGER_GROUP)) as [number]
      assert.equal(pending, 25, 'the entries the sleeper read are no longer pending for anyone')
      // A consumer that really holds nothing is dropped.
      await redis.xgroup('CREATECONSUMER', stream, LEDGER_GROUP, 'long-gone')
      assert.equal(await forgetConsumer(redis, stream, LEDGER_GROUP, 'long-gone'), true)
      const left = (await redis.xinfo('CONSUMERS', stream, LEDGER_GROUP)) as unknown[][]
      assert.deepEqual(
        left.map((fields) => fields[1]),
        ['sleeper'],
      )
      await afterDrainBy(store, { consumer: 'heir', batchSize: 50, claimIdleMs: 200 }, () =>
        assertConverged(store, goodsIds, ids),
      )
    })

    test('terms entries bring a goods row up to the newest terms and never back to older ones', async () => {
      const prefix = uniqueName('test_ledger_terms')
      prefixes.push(prefix)
      const store = createStockStore(redis, { prefix, holdMs: 600_000, retentionMs: 600_000 })
      const catalog = createCatalog(database.sequelize)
      const now = await store.now()
      const goods = draftToGoods(
        {
          name: 'edited goods',
          description: '',
          price: 1_000,
          initialStock: 10,
          saleStartsAt: new Date(now + 3_600_000),
          saleEndsAt: new Date(now + 7_200_000),
          purchaseLimit: null,
        },
        'ledger-seller',
        new Date(now),
      )
      await catalog.insert(goods)
      await store.loadIfAbsent(stockSourceOf(goods))
      const base = stockSourceOf(goods)
      // Two edits live stock took whose transactions never committed.
      assert.equal((await store.configure(goods.id, { ...base, initialStock: 12, version: 2 })).status, 'OK')
      const newest = { ...base, initialStock: 15, purchaseLimit: 2, endsAt: base.endsAt + 60_000, version: 3 }
      assert.equal((await store.configure(goods.id, newest)).status, 'OK')
      const shard = store.keys.shardOf(goods.id)
      const entries = ((await redis.xrange(shard.ledger, '-', '+')) as [string, string[]][])
        .map(([id, fields]) => parseLedgerEntry(id, fields, shard.index))
        .filter((entry) => entry !== undefined)
      const terms = entries.filter((entry) => entry.kind === 'terms')
      assert.equal(terms.length, 2)

      // The newer one is applied first (say, the older was pending with a consumer that died).
      await applyLedgerBatch(database.sequelize, [terms[1] as LedgerEntry])
      await applyLedgerBatch(database.sequelize, [terms[0] as LedgerEntry])
      const termsOfRow = async () => {
        const row = await catalog.find(goods.id)
        return row && stockSourceOf(row)
      }
      assert.deepEqual(await termsOfRow(), { ...newest, goodsId: goods.id, onHand: 10 })
      // The stock adjustments follow as usual.
      await applyLedgerBatch(database.sequelize, entries)
      assert.deepEqual(await termsOfRow(), { ...newest, goodsId: goods.id, onHand: 15 })
    })

    test('entries trickling in are applied in a few larger batches while it lingers, and all of them', async () => {
      const { store, goodsIds } = await busySale(1, 0)
      const goodsId = goodsIds[0] as string
      const reader = redis.duplicate()
      const writer = createLedgerWriter({
        redis,
        reader,
        sequelize: database.sequelize,
        keys: store.keys,
        consumer: 'lingering',
        batchSize: 500,
        claimIdleMs: 30_000,
        idlePollMs: 10,
        batchLingerMs: 400,
        logger: testLogger,
      })
      writer.start()
      try {
        // One reservation every 10 ms: without the linger nearly each would be a batch of its own.
        for (let index = 0; index < 40; index += 1) {
          const outcome = await store.reserve({
            reservationId: randomUUID(),
            goodsId,
            userId: `u-${index}`,
            quantity: 1,
          })
          assert.ok(outcome.ok)
          await new Promise((resolve) => setTimeout(resolve, 10))
        }
        await eventually(async () => ((await writer.lag()).entries === 0 ? true : undefined), 30_000, 'the drain')
      } finally {
        await writer.stop()
        reader.disconnect()
      }
      const [row] = await database.sequelize.query<{ rows: number; batches: number }>(
        'SELECT COUNT(*) AS `rows`, COUNT(DISTINCT batch_id) AS batches FROM stock_ledger WHERE goods_id = ?',
        { replacements: [goodsId], type: QueryTypes.SELECT },
      )
      assert.equal(Number(row?.rows), 40)
      assert.ok(Number(row?.batches) <= 5, `${row?.batches} batches for 40 entries`)
      assert.equal(await onHandOf(database.sequelize, goodsId), Number(await redis.get(store.keys.available(goodsId))))
    })

    test('writes ledger rows whose ids hold quotes, backslashes and colons exactly as they came', async () => {
      const goodsId = `ledger:${randomUUID()}`
      const at = Date.now()
      const awkward = [`it's "a" \\ :reservation ${randomUUID()}`, `\\'; DROP TABLE goods; -- ${randomUUID()}`]
      const entries: LedgerEntry[] = awkward.map((reservationId, index) => ({
        shard: 0,
        id: `${at}-${index}`,
        goodsId,
        kind: 'reserve',
        delta: -1,
        reservationId,
        userId: `user:'${index}'\\`,
        at: at + index,
      }))
      assert.equal(await applyLedgerBatch(database.sequelize, entries), 2)
      assert.equal(await applyLedgerBatch(database.sequelize, entries), 0, 'a replayed batch inserts nothing')
      const rows = await database.sequelize.query<{
        reservation_id: string
        user_id: string
        delta: number
        occurred_at: Date
      }>('SELECT reservation_id, user_id, delta, occurred_at FROM stock_ledger WHERE goods_id = ? ORDER BY entry_seq', {
        replacements: [goodsId],
        type: QueryTypes.SELECT,
      })
      assert.deepEqual(
        rows.map((row) => [row.reservation_id, row.user_id, row.delta, new Date(row.occurred_at).getTime()]),
        entries.map((entry) => [entry.reservationId, entry.userId, -1, entry.at]),
      )
    })

    test('reports its lag (entries waiting, age of the oldest) and trims what it applied', async () => {
      const { store, goodsIds, ids } = await busySale(1, 30)
      await new Promise((resolve) => setTimeout(resolve, 50))
      const waiting = await ledgerLag(redis, store.keys.ledgers)
      assert.equal(waiting.entries, ids.length)
      assert.ok(waiting.oldestAgeMs >= 50, `oldest entry is ${waiting.oldestAgeMs} ms old`)

      await afterDrainBy(
        store,
        { consumer: 'lag-reporter', batchSize: 7, claimIdleMs: 30_000, trimEveryMs: 100 },
        async (writer) => {
          assert.deepEqual(await writer.lag(), { entries: 0, oldestAgeMs: 0 })
          await assertConverged(store, goodsIds, ids)
          // Applied entries leave the stream; the last one stays as the group's reference point.
          await eventually(
            async () => ((await redis.xlen(store.keys.shardOf(goodsIds[0] as string).ledger)) <= 1 ? true : undefined),
            5_000,
            'the trim',
          )
        },
      )
    })
  })
}
