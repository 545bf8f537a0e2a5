// The warm-up against the real MariaDB and Redis: a catalog of the test's own (goods-service's
// schema) and a Redis key prefix of its own. Live stock of an opened sale is never touched.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import {
  connectTestRedis,
  deleteRedisKeys,
  freePort,
  startPrivateRedis,
  testLogger,
  testSettings,
} from '@timedeal/platform/testing'
import type { StockSource } from '@timedeal/stock'
import { createStockStore, LEDGER_GROUP, stockKeys } from '@timedeal/stock'
import { findCondition } from '../../src/conditions.ts'
import { createStockWarmupController } from '../../src/stock-warmup/controller.ts'
import { type CatalogGoods, createGoodsCatalog, type GoodsCatalog } from '../../src/stock-warmup/goods-catalog.ts'
import { reconcileStockWarmupOnce } from '../../src/stock-warmup/once.ts'
import type { WarmupSettings } from '../../src/stock-warmup/settings.ts'
import { readStockSnapshot } from '../../src/stock-warmup/source.ts'
import type { StockWarmup, StockWarmupSpec } from '../../src/stock-warmup/types.ts'
import { createStockWriter } from '../../src/stock-warmup/writer.ts'

const HOUR = 3_600_000
const server = {
  host: testSettings.MYSQL_HOST,
  port: testSettings.MYSQL_PORT,
  user: testSettings.MYSQL_USER,
  password: testSettings.MYSQL_PASSWORD,
}
const redis = connectTestRedis('warmup-test')
const prefixes: string[] = []
let catalog: GoodsCatalog

const newPrefix = () => {
  const prefix = `test-warmup-${randomBytes(4).toString('hex')}`
  prefixes.push(prefix)
  return prefix
}
let ids = 0
const goodsId = () => `g${process.pid}-${++ids}`

function settingsFor(overrides: Partial<WarmupSettings> = {}): WarmupSettings {
  return {
    MYSQL_HOST: server.host,
    MYSQL_PORT: server.port,
    MYSQL_USER: server.user,
    MYSQL_PASSWORD: server.password,
    MYSQL_DATABASE: catalog.source.database,
    REDIS_URL: testSettings.REDIS_URL,
    STOCK_WARMUP_LEDGER_TIMEOUT_MS: 2_000,
    STOCK_WARMUP_RETRY_BASE_MS: 100,
    STOCK_WARMUP_RETRY_MAX_MS: 1_000,
    ...overrides,
  }
}

let generation = 0
function warmup(spec: StockWarmupSpec): StockWarmup {
  return {
    apiVersion: 'timedeal.io/v1alpha1',
    kind: 'StockWarmup',
    metadata: { name: 'test', namespace: 'default', generation: ++generation },
    spec,
  }
}

const once = (resource: StockWarmup, settings = settingsFor()) =>
  reconcileStockWarmupOnce(resource, settings, { wait: false, logger: testLogger, progress: () => undefined })

async function goodsInCatalog(
  count: number,
  sale: { startsAt: number; endsAt: number },
  stock = 10,
): Promise<CatalogGoods[]> {
  const goods = Array.from({ length: count }, (_, index) => ({
    id: goodsId(),
    stockOnHand: stock + index,
    saleStartsAt: sale.startsAt,
    saleEndsAt: sale.endsAt,
    purchaseLimit: index % 2 === 0 ? null : 2,
  }))
  await catalog.insert(goods)
  return goods
}

before(async () => {
  catalog = await createGoodsCatalog(server, 'warmup')
})

after(async () => {
  for (const prefix of prefixes) await deleteRedisKeys(redis, prefix)
  await redis.quit()
  await catalog.drop()
})

describe('stock warm-up against MariaDB and Redis', () => {
  test('loads every listed goods before its sale opens, and a second run leaves all of it alone', async () => {
    const prefix = newPrefix()
    const now = Date.now()
    const goods = await goodsInCatalog(25, { startsAt: now + HOUR, endsAt: now + 2 * HOUR })
    const spec: StockWarmupSpec = {
      goods: { goodsIds: [...goods.map((item) => item.id), 'not-in-catalog'] },
      target: { keyPrefix: prefix },
      policy: { chunkSize: 7 },
    }
    const status = await once(warmup(spec))
    assert.equal(status.phase, 'Ready', JSON.stringify(status))
    assert.deepEqual([status.total, status.loaded, status.skipped, status.missing], [25, 25, 0, 1])
    assert.match(status.checksum ?? '', /^sha256:[0-9a-f]{64}$/)
    assert.equal(findCondition(status.conditions, 'DeadlinePassed')?.status, 'False')

    const store = createStockStore(redis, { prefix, holdMs: 60_000, retentionMs: 60_000 })
    for (const item of goods) {
      const live = await store.read(item.id)
      assert.equal(live?.available, item.stockOnHand)
      assert.equal(live?.terms.startsAt, item.saleStartsAt)
      assert.equal(live?.terms.purchaseLimit, item.purchaseLimit)
      assert.equal(live?.state, 'UPCOMING')
    }

    const again = await once(warmup(spec))
    assert.deepEqual([again.phase, again.loaded, again.skipped], ['Ready', 0, 25])
  })

  test('loads stock where goods-service looks for it when the namespace has other than the default number of shards', async () => {
    const prefix = newPrefix()
    const now = Date.now()
    const goods = await goodsInCatalog(12, { startsAt: now + HOUR, endsAt: now + 2 * HOUR })
    const spec: StockWarmupSpec = {
      goods: { goodsIds: goods.map((item) => item.id) },
      target: { keyPrefix: prefix, shards: 3 },
    }
    const status = await once(warmup(spec))
    assert.deepEqual([status.phase, status.loaded], ['Ready', 12], JSON.stringify(status))
    // goods-service with STOCK_SHARDS=3 reads every goods; its keys are those of its shard of three.
    const store = createStockStore(redis, { prefix, shards: 3, holdMs: 60_000, retentionMs: 60_000 })
    for (const item of goods) assert.equal((await store.read(item.id))?.available, item.stockOnHand)
    const shardsUsed = new Set(goods.map((item) => store.keys.shardOf(item.id).index))
    assert.ok(shardsUsed.size > 1, 'the goods all fell in one shard')
  })

  test('never overwrites the live stock of an opened sale, by default or when asked to overwrite', async () => {
    const prefix = newPrefix()
    const now = Date.now()
    const [goods] = await goodsInCatalog(1, { startsAt: now - HOUR, endsAt: now + HOUR }, 10)
    assert.ok(goods)
    const spec: StockWarmupSpec = { goods: { goodsIds: [goods.id] }, target: { keyPrefix: prefix } }
    assert.equal((await once(warmup(spec))).loaded, 1)
    const store = createStockStore(redis, { prefix, holdMs: 60_000, retentionMs: 60_000 })
    const reserved = await store.reserve({
      reservationId: `r-${goods.id}`,
      goodsId: goods.id,
      userId: 'u1',
      quantity: 3,
    })
    assert.ok(reserved.ok)
    // Until goods-service's write-behind has taken the reserve from the ledger, MySQL is behind:
    // the warm-up waits for it, then says so and writes nothing.
    const [absent] = await goodsInCatalog(1, { startsAt: now - HOUR, endsAt: now + HOUR })
    assert.ok(absent)
    const behind = await once(
      warmup({ goods: { goodsIds: [goods.id, absent.id] }, target: { keyPrefix: prefix } }),
      settingsFor({ STOCK_WARMUP_LEDGER_TIMEOUT_MS: 300 }),
    )
    assert.equal(behind.phase, 'Failed')
    assert.match(findCondition(behind.conditions, 'SourceError')?.message ?? '', /behind the stock ledger/)
    assert.equal(await redis.exists(stockKeys(prefix).available(absent.id)), 0)
    // The write-behind has taken every entry; the catalog still says 10 (its transaction is not
    // modelled here): a warm-up that overwrote would give the reserved units away again.
    for (const stream of stockKeys(prefix).ledgers) await redis.xgroup('CREATE', stream, LEDGER_GROUP, '$', 'MKSTREAM')
    const ifAbsent = await once(warmup(spec))
    assert.deepEqual([ifAbsent.phase, ifAbsent.loaded, ifAbsent.skipped], ['Ready', 0, 1])
    assert.equal(findCondition(ifAbsent.conditions, 'DeadlinePassed')?.status, 'True')
    assert.equal((await store.read(goods.id))?.available, 7)

    const overwrite = await once(warmup({ ...spec, policy: { mode: 'Overwrite' } }))
    assert.equal(overwrite.phase, 'Failed')
    assert.deepEqual([overwrite.loaded, overwrite.refused], [0, 1])
    assert.equal(findCondition(overwrite.conditions, 'OverwriteRefused')?.status, 'True')
    assert.equal((await store.read(goods.id))?.available, 7)
    assert.equal(await store.holding(goods.id, 'u1'), 3)
  })

  test('an Overwrite whose opensAt has passed is refused whole: not even absent stock is written', async () => {
    const prefix = newPrefix()
    const now = Date.now()
    const [goods] = await goodsInCatalog(1, { startsAt: now - HOUR, endsAt: now + HOUR })
    assert.ok(goods)
    const status = await once(
      warmup({
        goods: { goodsIds: [goods.id] },
        target: { keyPrefix: prefix },
        schedule: { opensAt: new Date(now - HOUR).toISOString() },
        policy: { mode: 'Overwrite' },
      }),
    )
    assert.equal(status.phase, 'Failed')
    assert.equal(findCondition(status.conditions, 'Ready')?.reason, 'OverwriteRefused')
    assert.equal(await redis.exists(stockKeys(prefix).available(goods.id)), 0)
  })

  test('Overwrite before the sale opens replaces loaded stock and terms with the catalog', async () => {
    const prefix = newPrefix()
    const now = Date.now()
    const [goods] = await goodsInCatalog(1, { startsAt: now + HOUR, endsAt: now + 2 * HOUR }, 40)
    assert.ok(goods)
    const store = createStockStore(redis, { prefix, holdMs: 60_000, retentionMs: 60_000 })
    await store.loadIfAbsent({
      goodsId: goods.id,
      onHand: 5,
      startsAt: now + 3 * HOUR,
      endsAt: now + 4 * HOUR,
      purchaseLimit: 1,
      initialStock: 5,
      version: 1,
    })
    const status = await once(
      warmup({ goods: { goodsIds: [goods.id] }, target: { keyPrefix: prefix }, policy: { mode: 'Overwrite' } }),
    )
    assert.deepEqual([status.phase, status.loaded], ['Ready', 1])
    const live = await store.read(goods.id)
    assert.equal(live?.available, 40)
    assert.equal(live?.terms.startsAt, goods.saleStartsAt)
    assert.equal(live?.terms.purchaseLimit, null)
  })

  test('a window selection finds every goods opening in it across pages, even with equal opening times', async () => {
    const prefix = newPrefix()
    const from = Date.now() + 100 * HOUR + Math.floor(Math.random() * HOUR)
    const inside = [
      ...(await goodsInCatalog(7, { startsAt: from, endsAt: from + HOUR })),
      ...(await goodsInCatalog(4, { startsAt: from + 1, endsAt: from + HOUR })),
    ]
    await goodsInCatalog(2, { startsAt: from + HOUR, endsAt: from + 2 * HOUR })
    await goodsInCatalog(2, { startsAt: from - 1, endsAt: from + HOUR })
    const read: StockSource[] = []
    const summary = await readStockSnapshot(
      catalog.source,
      { kind: 'window', from, to: from + HOUR },
      3,
      async (rows) => {
        read.push(...rows)
      },
    )
    assert.equal(summary.total, inside.length)
    assert.deepEqual(read.map((row) => row.goodsId).sort(), inside.map((item) => item.id).sort())
    assert.equal(summary.earliestOpening, from)

    const status = await once(
      warmup({
        goods: { opensBetween: { from: new Date(from).toISOString(), to: new Date(from + HOUR).toISOString() } },
        target: { keyPrefix: prefix },
        schedule: { leadTime: '1000h' },
      }),
    )
    assert.deepEqual([status.phase, status.total, status.loaded], ['Ready', inside.length, inside.length])
  })

  test('reads one consistent snapshot: a change committed between two pages is not half seen', async () => {
    const now = Date.now()
    const goods = await goodsInCatalog(6, { startsAt: now + HOUR, endsAt: now + 2 * HOUR }, 10)
    const read: StockSource[] = []
    let changed = false
    await readStockSnapshot(catalog.source, { kind: 'ids', ids: goods.map((item) => item.id) }, 2, async (rows) => {
      if (!changed) {
        changed = true
        await catalog.pool.query('UPDATE goods SET stock_on_hand = stock_on_hand + 1000 WHERE id IN (?)', [
          goods.map((item) => item.id),
        ])
      }
      read.push(...rows)
    })
    assert.equal(read.length, 6)
    for (const row of read) assert.ok(row.onHand < 1000, `${row.goodsId} read ${row.onHand} after the snapshot began`)
  })

  test('without --wait a warm-up whose time has not come reports Scheduled and writes nothing; with it, it waits and warms', async () => {
    const prefix = newPrefix()
    const now = Date.now()
    const [goods] = await goodsInCatalog(1, { startsAt: now + HOUR, endsAt: now + 2 * HOUR })
    assert.ok(goods)
    const spec: StockWarmupSpec = {
      goods: { goodsIds: [goods.id] },
      target: { keyPrefix: prefix },
      schedule: { opensAt: new Date(now + 1_500).toISOString(), leadTime: '0s' },
    }
    const scheduled = await once(warmup(spec))
    assert.equal(scheduled.phase, 'Scheduled')
    assert.equal(await redis.exists(stockKeys(prefix).available(goods.id)), 0)

    const lines: string[] = []
    const waited = await reconcileStockWarmupOnce(warmup(spec), settingsFor(), {
      wait: true,
      logger: testLogger,
      progress: (line) => lines.push(line),
    })
    assert.deepEqual([waited.phase, waited.loaded], ['Ready', 1])
    assert.ok(Date.now() >= now + 1_500)
    assert.ok(
      lines.some((line) => line.startsWith('waiting until')),
      lines.join('\n'),
    )
    assert.ok(
      lines.some((line) => line.startsWith('read 1, loaded 1')),
      lines.join('\n'),
    )
  })

  test('a warm-up that just finished is not run again when the cache still shows it Warming', async () => {
    const prefix = newPrefix()
    const now = Date.now()
    const goods = await goodsInCatalog(3, { startsAt: now + HOUR, endsAt: now + 2 * HOUR })
    const controller = createStockWarmupController({ settings: settingsFor(), logger: testLogger })
    const events: string[] = []
    const ctx = {
      now: Date.now,
      logger: testLogger,
      event: (_type: string, reason: string) => events.push(reason),
      peers: () => [],
    }
    try {
      const base = warmup({ goods: { goodsIds: goods.map((item) => item.id) }, target: { keyPrefix: prefix } })
      base.metadata.uid = 'uid-1'
      const first = await controller.reconcile({ ...base, metadata: { ...base.metadata, resourceVersion: '1' } }, ctx)
      assert.equal(first.status.phase, 'Warming')
      // The cache now shows the Warming write (version 2): the warm-up runs.
      const seen = { ...base, metadata: { ...base.metadata, resourceVersion: '2' }, status: first.status }
      const warmed = await controller.reconcile(seen, ctx)
      assert.deepEqual([warmed.status.phase, warmed.status.loaded], ['Ready', 3])
      // Asked again before the Ready write reached the cache: the same answer, nothing run again.
      const again = await controller.reconcile(seen, ctx)
      assert.deepEqual(again.status, warmed.status)
      assert.deepEqual(events, ['Warming', 'Warmed'])
    } finally {
      await controller.close()
    }
  })

  test('a MySQL that cannot be reached is a SourceError, a Redis that cannot be reached a RedisError', async () => {
    const now = Date.now()
    const [goods] = await goodsInCatalog(1, { startsAt: now + HOUR, endsAt: now + 2 * HOUR })
    assert.ok(goods)
    const spec: StockWarmupSpec = { goods: { goodsIds: [goods.id] }, target: { keyPrefix: newPrefix() } }
    const noMysql = await once(warmup(spec), settingsFor({ MYSQL_PORT: await freePort() }))
    assert.equal(noMysql.phase, 'Failed')
    assert.equal(findCondition(noMysql.conditions, 'SourceError')?.status, 'True')
    assert.match(findCondition(noMysql.conditions, 'Ready')?.message ?? '', /MySQL/)

    const noRedis = await once(warmup(spec), settingsFor({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` }))
    assert.equal(noRedis.phase, 'Failed')
    assert.equal(findCondition(noRedis.conditions, 'RedisError')?.status, 'True')
  })

  test('a Redis that goes away between two chunks and comes back: the chunk is retried and every goods loaded', async () => {
    const privateRedis = await startPrivateRedis('always')
    const client = (await import('@timedeal/platform')).createRedis({ url: privateRedis.url, logger: testLogger })
    try {
      const now = Date.now()
      const rows: StockSource[] = Array.from({ length: 8 }, (_, index) => ({
        goodsId: `g-${index}`,
        onHand: index + 1,
        startsAt: now + HOUR,
        endsAt: now + 2 * HOUR,
        purchaseLimit: null,
        initialStock: index + 1,
        version: 1,
      }))
      const writer = createStockWriter(client, {
        prefix: 'w',
        mode: 'IfAbsent',
        chunkSize: 4,
        maxAttempts: 8,
        retryBaseMs: 200,
      })
      assert.equal((await writer.write(rows.slice(0, 4))).loaded.length, 4)
      await privateRedis.kill()
      const second = writer.write(rows.slice(4))
      await new Promise((resolve) => setTimeout(resolve, 500))
      await privateRedis.restart()
      const outcome = await second
      assert.deepEqual([outcome.loaded.length, outcome.skipped], [4, 0])
      assert.ok(writer.roundTrips > 2, 'the second chunk took more than one attempt')
      assert.equal(await client.get(stockKeys('w').available('g-7')), '8')
      assert.equal(await client.get(stockKeys('w').available('g-0')), '1')
    } finally {
      client.disconnect()
      await privateRedis.stop()
    }
  })

  test('a Redis that forgot the script mid-warm-up gets it again; every goods is loaded once and counted', async () => {
    const privateRedis = await startPrivateRedis('everysec')
    const client = (await import('@timedeal/platform')).createRedis({ url: privateRedis.url, logger: testLogger })
    try {
      const now = Date.now()
      const rows: StockSource[] = Array.from({ length: 10 }, (_, index) => ({
        goodsId: `g-${index}`,
        onHand: index,
        startsAt: now + HOUR,
        endsAt: now + 2 * HOUR,
        purchaseLimit: null,
        initialStock: index,
        version: 1,
      }))
      const writer = createStockWriter(client, { prefix: 'w', mode: 'IfAbsent', chunkSize: 5, maxAttempts: 3 })
      const first = await writer.write(rows.slice(0, 5))
      await client.script('FLUSH')
      const second = await writer.write(rows.slice(3))
      assert.equal(first.loaded.length, 5)
      assert.deepEqual([second.loaded.length, second.skipped], [5, 2])
      assert.equal(await client.get(stockKeys('w').available('g-9')), '9')
    } finally {
      client.disconnect()
      await privateRedis.stop()
    }
  })
})
