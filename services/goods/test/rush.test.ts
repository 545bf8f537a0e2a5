import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { INTERNAL_CREDENTIAL_HEADER, type Redis } from '@timedeal/platform'
import {
  deleteRedisKeys,
  eventually,
  type ServiceProcess,
  spawnService,
  startTestIssuer,
  type TestIssuer,
  uniqueName,
  waitUntilReady,
} from '@timedeal/platform/testing'
import {
  connectStockRedis,
  countBy,
  createTestDatabase,
  INTERNAL_SECRET,
  ledgerRowsOf,
  onHandOf,
  saleDraft,
  stockRedisTargets,
  type TestDatabase,
} from './support.ts'

const entry = fileURLToPath(new URL('../src/main.ts', import.meta.url))

for (const target of stockRedisTargets) {
  describe(`goods-service at the opening instant (a real process over real HTTP, on ${target.name})`, () => {
    const prefix = uniqueName('test_rush')
    let database: TestDatabase
    let redis: Redis
    let stockRedis: Awaited<ReturnType<typeof connectStockRedis>>
    let issuer: TestIssuer
    let service: ServiceProcess

    before(async () => {
      database = await createTestDatabase()
      stockRedis = await connectStockRedis(target)
      redis = stockRedis.redis
      issuer = await startTestIssuer()
      service = await spawnService(entry, {
        ...stockRedis.env,
        MYSQL_DATABASE: database.name,
        STOCK_KEY_PREFIX: prefix,
        JWT_JWKS_URL: issuer.jwksUrl,
        INTERNAL_API_SECRET: INTERNAL_SECRET,
        ORDER_EVENTS_ENABLED: 'false',
        LOG_LEVEL: 'warn',
      })
      await waitUntilReady(service)
    })

    after(async () => {
      assert.equal(await service.stop('SIGTERM'), 0)
      await deleteRedisKeys(redis, prefix)
      await stockRedis.release()
      await issuer.close()
      await database.drop()
    })

    test('2,000 concurrent reservations for a stock of 100: exactly 100 succeed, the rest are SOLD_OUT, MySQL agrees', async () => {
      const seller = await issuer.sign({ sub: `seller-${randomUUID()}`, role: 'SELLER' })
      const [seconds] = await redis.time()
      const created = await fetch(`${service.url}/api/goods`, {
        method: 'POST',
        headers: { authorization: `Bearer ${seller}`, 'content-type': 'application/json' },
        body: JSON.stringify(saleDraft(Number(seconds) * 1000, { stock: 100 })),
      })
      assert.equal(created.status, 201)
      const { id: goodsId } = (await created.json()) as { id: string }

      const answers = await Promise.all(
        Array.from({ length: 2_000 }, async (_, index) => {
          const response = await fetch(`${service.internalUrl}/internal/reservations`, {
            method: 'POST',
            headers: { [INTERNAL_CREDENTIAL_HEADER]: INTERNAL_SECRET, 'content-type': 'application/json' },
            body: JSON.stringify({ reservationId: randomUUID(), goodsId, userId: `rush-${index}`, quantity: 1 }),
          })
          const body = (await response.json()) as { code?: string; userId?: string }
          return { status: response.status, code: body.code ?? 'RESERVED', userId: body.userId }
        }),
      )
      assert.deepEqual(countBy(answers.map((answer) => `${answer.status} ${answer.code}`)), {
        '201 RESERVED': 100,
        '409 SOLD_OUT': 1_900,
      })
      const winners = answers.filter((answer) => answer.status === 201).map((answer) => answer.userId)
      assert.equal(new Set(winners).size, 100)

      const stock = (await (await fetch(`${service.url}/api/goods/${goodsId}/stock`)).json()) as Record<string, unknown>
      assert.equal(stock.stockAvailable, 0)
      assert.equal(stock.saleState, 'SOLD_OUT')

      // After the write-behind drains, the durable record says the same: 100 entries, 0 on hand.
      await eventually(
        async () => ((await ledgerRowsOf(database.sequelize, goodsId)) === 100 ? true : undefined),
        30_000,
        'the ledger to reach MySQL',
      )
      assert.equal(await onHandOf(database.sequelize, goodsId), 0)
      const metrics = await (await fetch(`${service.url}/metrics`)).text()
      assert.match(metrics, /^stock_ledger_lag_entries\{service="goods-service"\} 0$/m)
    })
  })
}
