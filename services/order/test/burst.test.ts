/**
 * A sale opening is a burst: thousands of buyers at once, right after the services started.
 * Every buyer gets an order or a plain "sold out", never an error of our own making.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { TOPIC_PAYMENTS } from '@timedeal/contracts'
import {
  createTestDatabase,
  type ServiceProcess,
  spawnService,
  startTestIssuer,
  type TestDatabase,
  type TestIssuer,
  uniqueName,
  waitUntilReady,
} from '@timedeal/platform/testing'
import { INTERNAL_SECRET, spawnGoodsService, startGroupsAtEnd, type TestGoodsService } from './support.ts'

const orderEntry = fileURLToPath(new URL('../src/main.ts', import.meta.url))
const BUYERS = 2_000
const STOCK = 100

describe('the first burst after start (real goods-service and order-service processes)', () => {
  let issuer: TestIssuer
  let goods: TestGoodsService
  let database: TestDatabase
  let orderService: ServiceProcess | undefined

  before(async () => {
    issuer = await startTestIssuer()
    ;[goods, database] = await Promise.all([spawnGoodsService(issuer), createTestDatabase('order_burst')])
  })

  after(async () => {
    await orderService?.stop('SIGTERM')
    await Promise.all([goods?.stop(), database?.drop()])
    await issuer?.close()
  })

  test('2,000 buyers at once for 100 units right after start get only 201 or 409, and exactly 100 orders', async () => {
    const goodsId = await goods.createGoods(await issuer.sign({ sub: uniqueName('seller'), role: 'SELLER' }), {
      price: 1_000,
      stock: STOCK,
    })
    const tokens = await Promise.all(
      Array.from({ length: BUYERS }, () => issuer.sign({ sub: uniqueName('buyer'), role: 'BUYER' })),
    )
    // goods-service starts afresh too, as after `make dev`; the live stock stays in Redis.
    await goods.halt()
    await goods.resume()
    const groupId = uniqueName('order-burst')
    await startGroupsAtEnd([groupId], [TOPIC_PAYMENTS])
    // Default settings, as a new user's `make dev` runs it.
    orderService = await spawnService(orderEntry, {
      MYSQL_DATABASE: database.name,
      GOODS_URL: goods.url,
      GOODS_INTERNAL_URL: goods.internalUrl,
      INTERNAL_API_SECRET: INTERNAL_SECRET,
      JWT_JWKS_URL: issuer.jwksUrl,
      PAYMENT_EVENTS_GROUP: groupId,
      LOG_LEVEL: 'warn',
    })
    await waitUntilReady(orderService, 60_000)
    const url = orderService.url

    // Buyers wait on the sale page with their connections open, so the orders arrive at once.
    await Promise.all(tokens.map(async () => (await fetch(`${url}/healthz`)).arrayBuffer()))
    const answers = await Promise.all(
      tokens.map(async (token) => {
        const response = await fetch(`${url}/api/orders`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${token}`,
            'content-type': 'application/json',
            'idempotency-key': randomUUID(),
          },
          body: JSON.stringify({ goodsId, quantity: 1 }),
        })
        const body = (await response.json()) as { code?: string }
        return `${response.status}${body.code ? ` ${body.code}` : ''}`
      }),
    )
    const tally: Record<string, number> = {}
    for (const answer of answers) tally[answer] = (tally[answer] ?? 0) + 1
    assert.deepEqual(tally, { '201': STOCK, '409 SOLD_OUT': BUYERS - STOCK })
    assert.equal(await goods.stockAvailable(goodsId), 0)
  })
})
