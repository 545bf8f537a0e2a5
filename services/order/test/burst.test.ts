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
  prepareServiceUnderTest,
  type ServiceProcess,
  type ServiceUnderTest,
  spawnReadyService,
  startTestIssuer,
  type TestIssuer,
  uniqueName,
} from '@timedeal/platform/testing'
import { INTERNAL_SECRET, spawnGoodsService, type TestGoodsService } from './support.ts'

const orderEntry = fileURLToPath(new URL('../src/main.ts', import.meta.url))
const BUYERS = 2_000
const STOCK = 100

describe('the first burst after start (real goods-service and order-service processes)', () => {
  let issuer: TestIssuer
  let goods: TestGoodsService
  let order: ServiceUnderTest
  let orderService: ServiceProcess | undefined

  before(async () => {
    issuer = await startTestIssuer()
    ;[goods, order] = await Promise.all([
      spawnGoodsService(issuer),
      prepareServiceUnderTest({
        name: 'order_burst',
        issuer,
        consumes: { groupSetting: 'PAYMENT_EVENTS_GROUP', topics: [TOPIC_PAYMENTS] },
      }),
    ])
  })

  after(async () => {
    await orderService?.stop('SIGTERM')
    await Promise.all([goods?.stop(), order?.release()])
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
    // Default settings, as a new user's `make dev` runs it.
    orderService = await spawnReadyService(orderEntry, {
      ...order.env,
      GOODS_URL: goods.url,
      GOODS_INTERNAL_URL: goods.internalUrl,
      INTERNAL_API_SECRET: INTERNAL_SECRET,
      LOG_LEVEL: 'warn',
    })
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
