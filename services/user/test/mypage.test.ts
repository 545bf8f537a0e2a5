/**
 * My page against the real order-, goods- and chat-service, run as processes the way `make dev`
 * runs them, each behind a delay proxy the test controls: that is how a service is made slow
 * or unreachable here, while the service itself stays untouched.
 */
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { TOPIC_CHAT_MESSAGES } from '@timedeal/contracts'
import { createMongo } from '@timedeal/platform'
import {
  type DelayProxy,
  eventually,
  listenOnFreePort,
  prepareServiceUnderTest,
  type ServiceProcess,
  type ServiceUnderTest,
  spawnReadyService,
  startDelayProxy,
  testLogger,
  testSettings,
  uniqueName,
} from '@timedeal/platform/testing'
import type { MyPage } from '../src/flows/mypage.ts'
import {
  createTestDatabase,
  INTERNAL_SECRET,
  signIn,
  startUserService,
  type TestDatabase,
  type TestUserService,
  verifiedAccount,
} from './support.ts'

const entry = (service: string) => fileURLToPath(new URL(`../../${service}/src/main.ts`, import.meta.url))

// Generous: the services share two cores with other suites, and a cold one answers slowly.
const PART_TIMEOUT_MS = 1500
const HALF_OPEN_MS = 800
const BREAKER_FAILURES = 3

describe('my page', () => {
  let database: TestDatabase
  let user: TestUserService
  let jwks: import('node:http').Server
  const proxies: Record<'orders' | 'goods' | 'chat', DelayProxy> = {} as never
  const owned: ServiceUnderTest[] = []
  const processes: ServiceProcess[] = []
  const mongoDatabase = uniqueName('timedeal_test_user_mypage_chat')
  let buyer: { token: string; id: string }
  let seller: { token: string; id: string }
  let goodsId: string

  before(async () => {
    proxies.orders = await startDelayProxy()
    proxies.goods = await startDelayProxy()
    proxies.chat = await startDelayProxy()
    database = await createTestDatabase()
    user = await startUserService(database, {
      ORDER_URL: proxies.orders.url,
      GOODS_URL: proxies.goods.url,
      CHAT_URL: proxies.chat.url,
      MYPAGE_PART_TIMEOUT_MS: String(PART_TIMEOUT_MS),
      MYPAGE_BREAKER_FAILURES: String(BREAKER_FAILURES),
      MYPAGE_BREAKER_HALF_OPEN_MS: String(HALF_OPEN_MS),
    })
    // The other services check tokens against user-service's real keys, as they do in production.
    jwks = createServer((_request, response) => {
      user.service.signingKeys.jwks().then((keys) => {
        response.writeHead(200, { 'content-type': 'application/json' })
        response.end(JSON.stringify(keys))
      })
    })
    const jwksUrl = `http://127.0.0.1:${await listenOnFreePort(jwks)}/.well-known/jwks.json`
    const own = async (options: Parameters<typeof prepareServiceUnderTest>[0]) => {
      const prepared = await prepareServiceUnderTest(options)
      owned.push(prepared)
      return prepared
    }
    const spawn = async (service: string, env: Record<string, string>) => {
      const child = await spawnReadyService(entry(service), {
        INTERNAL_API_SECRET: INTERNAL_SECRET,
        LOG_LEVEL: 'warn',
        JWT_JWKS_URL: jwksUrl,
        ...env,
      })
      processes.push(child)
      return child
    }
    const [goods, order, chat] = await Promise.all([
      own({ name: 'mypage_goods', redisPrefixSetting: 'STOCK_KEY_PREFIX' }),
      own({ name: 'mypage_order' }),
      own({
        name: 'mypage_chat',
        consumes: { groupSetting: 'CHAT_MESSAGES_GROUP', topics: [TOPIC_CHAT_MESSAGES] },
        redisPrefixSetting: 'CHAT_REDIS_PREFIX',
      }),
    ])
    const goodsProcess = await spawn('goods', { ...goods.env, ORDER_EVENTS_ENABLED: 'false' })
    const [orderProcess, chatProcess] = await Promise.all([
      spawn('order', {
        ...order.env,
        GOODS_URL: goodsProcess.url,
        GOODS_INTERNAL_URL: goodsProcess.internalUrl,
        PAYMENT_EVENTS_ENABLED: 'false',
      }),
      spawn('chat', { ...chat.env, MONGO_DATABASE: mongoDatabase, GOODS_URL: goodsProcess.url }),
    ])
    proxies.orders.target = orderProcess.url
    proxies.goods.target = goodsProcess.url
    proxies.chat.target = chatProcess.url

    buyer = await account('BUYER')
    seller = await account('SELLER')
    goodsId = await createGoods(goodsProcess.url, seller.token)
    const wished = await fetch(`${goodsProcess.url}/api/wishlist`, {
      method: 'POST',
      headers: { authorization: `Bearer ${buyer.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ goodsId }),
    })
    assert.equal(wished.status, 201, await wished.text())
  })

  after(async () => {
    await Promise.all(processes.map((child) => child.stop('SIGTERM')))
    await Promise.all(owned.map((prepared) => prepared.release()))
    await Promise.all(Object.values(proxies).map((proxy) => proxy?.close()))
    jwks?.close()
    await user?.close()
    await database?.drop()
    const mongo = await createMongo({ url: testSettings.MONGO_URL, database: mongoDatabase, logger: testLogger })
    await mongo.dropDatabase()
    await mongo.close()
  })

  async function account(role: 'BUYER' | 'SELLER') {
    const { email, password } = await verifiedAccount(user, { role })
    const session = await signIn(user, email, password)
    return { token: session.accessToken, id: session.user.id }
  }

  async function myPage(token: string): Promise<MyPage> {
    const response = await user.call('GET', '/api/users/me/mypage', { token })
    assert.equal(response.status, 200, await response.clone().text())
    return (await response.json()) as MyPage
  }

  const breakerState = async (dependency: string) => {
    const response = await user.call('GET', '/metrics')
    const line = new RegExp(
      `^user_mypage_dependency_breaker_state\\{[^}]*dependency="${dependency}"[^}]*\\} (\\d+)$`,
      'm',
    )
    return Number(line.exec(await response.text())?.[1])
  }

  it("shows every part, each read with the caller's own token, when every service answers", async () => {
    const buyerPage = await myPage(buyer.token)
    assert.deepEqual(buyerPage.degraded, [], JSON.stringify(buyerPage.degradedReasons))
    assert.equal(buyerPage.profile.id, buyer.id)
    assert.deepEqual(buyerPage.orders, [])
    assert.deepEqual(
      buyerPage.wishlist?.map((entry) => entry.goods.id),
      [goodsId],
    )
    assert.equal(buyerPage.goods, undefined)
    assert.equal(buyerPage.unreadNotifications, 0)

    const sellerPage = await myPage(seller.token)
    assert.deepEqual(sellerPage.degraded, [], JSON.stringify(sellerPage.degradedReasons))
    assert.deepEqual(
      sellerPage.goods?.map((goods) => goods.id),
      [goodsId],
    )
    assert.equal(sellerPage.wishlist, undefined)
  })

  it('refuses a caller without a token before calling any service', async () => {
    const reached = proxies.orders.requests + proxies.goods.requests + proxies.chat.requests
    const response = await user.call('GET', '/api/users/me/mypage')
    assert.equal(response.status, 401)
    assert.equal(proxies.orders.requests + proxies.goods.requests + proxies.chat.requests, reached)
  })

  it('answers without the unread count, and without waiting for it, when chat-service is slower than the part timeout', async () => {
    const slowMs = PART_TIMEOUT_MS + 8000
    proxies.chat.delayMs = slowMs
    try {
      const started = Date.now()
      const page = await myPage(buyer.token)
      const took = Date.now() - started
      assert.deepEqual(page.degraded, ['unreadNotifications'])
      assert.equal(page.unreadNotifications, null)
      assert.match(
        page.degradedReasons.unreadNotifications ?? '',
        new RegExp(`did not answer within ${PART_TIMEOUT_MS} ms`),
      )
      assert.deepEqual(
        page.wishlist?.map((entry) => entry.goods.id),
        [goodsId],
      )
      assert.deepEqual(page.orders, [])
      assert.ok(took < slowMs, `the page waited ${took} ms for a part whose budget is ${PART_TIMEOUT_MS} ms`)
    } finally {
      proxies.chat.delayMs = 0
    }
  })

  it('stops calling order-service while it is down, and calls it again after the half-open interval once it is back', async () => {
    proxies.orders.cut = true
    try {
      const first = await myPage(buyer.token)
      assert.deepEqual(first.degraded, ['orders'])
      assert.match(first.degradedReasons.orders ?? '', /cannot be reached/)
      // Each page tries a refused GET again; the breaker opens after a few failures in a row.
      await eventually(async () => (await breakerState('order-service')) === 1 || undefined, 5000, 'the breaker opens')

      const reached = proxies.orders.requests
      const paused = await myPage(buyer.token)
      assert.deepEqual(paused.degraded, ['orders'])
      assert.match(paused.degradedReasons.orders ?? '', /failed repeatedly/)
      assert.equal(proxies.orders.requests, reached, 'a call went to order-service while its breaker was open')
      assert.deepEqual(
        paused.wishlist?.map((entry) => entry.goods.id),
        [goodsId],
      )
    } finally {
      proxies.orders.cut = false
    }

    const recovered = await eventually(
      async () => {
        const page = await myPage(buyer.token)
        return page.degraded.length === 0 ? page : undefined
      },
      HALF_OPEN_MS * 10,
      'the orders come back',
    )
    assert.deepEqual(recovered.orders, [])
    assert.equal(await breakerState('order-service'), 0)
  })
})

async function createGoods(goodsUrl: string, token: string): Promise<string> {
  const now = Date.now()
  const response = await fetch(`${goodsUrl}/api/goods`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      name: 'My page test goods',
      price: 1000,
      initialStock: 5,
      saleStartsAt: new Date(now + 3_600_000).toISOString(),
      saleEndsAt: new Date(now + 7_200_000).toISOString(),
    }),
  })
  assert.equal(response.status, 201, await response.clone().text())
  return ((await response.json()) as { id: string }).id
}
