/**
 * The gateway in front of the real services, run as processes the way `make dev` runs them:
 * every public prefix reaches its owner, the services keep their own authorization, the chat's
 * WebSocket passes through for a STOMP round trip, and the API reference covers every route.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { Client, type IMessage, type IStompSocket } from '@stomp/stompjs'
import { assertEveryRouteDocumented } from '@timedeal/platform'
import { eventually, startTestIssuer, type TestIssuer, uniqueName } from '@timedeal/platform/testing'
import { WebSocket } from 'ws'
import { PUBLIC_PREFIXES, UPSTREAM_NAMES } from '../src/domain/routing.ts'
import { startPlatform, startTestGateway, type TestGateway, type TestPlatform } from './support.ts'

let issuer: TestIssuer
let platform: TestPlatform
let gateway: TestGateway

before(async () => {
  issuer = await startTestIssuer()
  platform = await startPlatform(issuer)
  gateway = await startTestGateway(platform.urls, issuer)
})

after(async () => {
  await gateway?.stop()
  await platform?.stop()
  await issuer?.close()
})

const sign = (role: 'BUYER' | 'SELLER', sub = uniqueName(role.toLowerCase())) => issuer.sign({ sub, role })

function call(path: string, init: RequestInit & { token?: string } = {}): Promise<Response> {
  const { token, ...rest } = init
  const headers = new Headers(rest.headers)
  if (token) headers.set('authorization', `Bearer ${token}`)
  if (rest.body) headers.set('content-type', 'application/json')
  return fetch(`${gateway.url}${path}`, { ...rest, headers })
}

async function createGoods(sellerToken: string): Promise<string> {
  const answer = await call('/api/goods', {
    method: 'POST',
    token: sellerToken,
    body: JSON.stringify({
      name: uniqueName('goods'),
      price: 1000,
      initialStock: 5,
      saleStartsAt: new Date(Date.now() - 60_000).toISOString(),
      saleEndsAt: new Date(Date.now() + 3_600_000).toISOString(),
      purchaseLimit: null,
    }),
  })
  assert.equal(answer.status, 201, await answer.clone().text())
  return ((await answer.json()) as { id: string }).id
}

describe('routing to the services', () => {
  test('every public prefix reaches the service that owns it', async () => {
    const buyer = await sign('BUYER')
    const seller = await sign('SELLER')
    const goodsId = await createGoods(seller)
    const goods = await call(`/api/goods/${goodsId}`)
    assert.equal(goods.status, 200)
    assert.equal(((await goods.json()) as { id: string }).id, goodsId)
    const wishlist = await call('/api/wishlist', { token: buyer })
    assert.equal(wishlist.status, 200)
    const orders = await call('/api/orders', { token: buyer })
    assert.equal(orders.status, 200)
    assert.ok(Array.isArray(((await orders.json()) as { items: unknown[] }).items))
    const payments = await call('/api/payments', { token: buyer })
    assert.equal(payments.status, 200)
    const room = await call('/api/chat/rooms', { method: 'POST', token: buyer, body: JSON.stringify({ goodsId }) })
    assert.equal(room.status, 201, await room.clone().text())
    const rooms = await call('/api/chat/rooms', { token: buyer })
    assert.equal(((await rooms.json()) as { items: unknown[] }).items.length, 1)
    // user-service checks its own tokens: a stranger's signature is refused there, not here.
    const signUp = await call('/api/users', { method: 'POST', body: JSON.stringify({}) })
    assert.equal(signUp.status, 400)
    assert.equal(((await signUp.json()) as { code: string }).code, 'VALIDATION_FAILED')
    const login = await call('/api/auth/login', {
      method: 'POST',
      body: JSON.stringify({ email: `${uniqueName('nobody')}@example.com`, password: 'not-the-password-1' }),
    })
    assert.equal(login.status, 401)
  })

  test('a request without a token reaches the service and gets its own 401', async () => {
    for (const path of ['/api/orders', '/api/payments', '/api/chat/rooms', '/api/wishlist', '/api/users/me']) {
      const answer = await call(path)
      assert.equal(answer.status, 401, path)
      assert.equal(answer.headers.get('content-type'), 'application/problem+json', path)
      assert.equal(answer.headers.get('www-authenticate'), 'Bearer', path)
      assert.equal(((await answer.json()) as { code: string }).code, 'UNAUTHENTICATED', path)
    }
  })

  test('an expired token gets the service’s own refusal, whatever the gateway thought of it', async () => {
    const expired = await issuer.sign({ sub: uniqueName('buyer'), role: 'BUYER' }, { expiresIn: -60 })
    const answer = await call('/api/orders', { token: expired })
    assert.equal(answer.status, 401)
    assert.equal(((await answer.json()) as { code: string }).code, 'TOKEN_EXPIRED')
  })
})

describe('the chat WebSocket', () => {
  /** An @stomp/stompjs client through the gateway, as a browser page on the gateway's origin opens it. */
  async function connectThroughGateway(token: string, how: 'passcode' | 'upgrade-header'): Promise<Client> {
    const url = `${gateway.url.replace('http', 'ws')}/ws/chat`
    const client = new Client({
      webSocketFactory: () =>
        new WebSocket(url, ['v12.stomp', 'v11.stomp'], {
          origin: gateway.url,
          ...(how === 'upgrade-header' ? { headers: { authorization: `Bearer ${token}` } } : {}),
        }) as unknown as IStompSocket,
      connectHeaders: how === 'passcode' ? { passcode: token } : {},
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
      reconnectDelay: 0,
    })
    const connected = new Promise<void>((resolve, reject) => {
      client.onConnect = () => resolve()
      client.onStompError = (frame) => reject(new Error(frame.headers.message))
      client.onWebSocketClose = (event) => reject(new Error(`closed before CONNECTED (${event.code})`))
    })
    client.activate()
    await connected
    return client
  }

  test('a STOMP round trip through the gateway: subprotocol, Origin and Authorization reach chat-service', async () => {
    const buyerId = uniqueName('buyer')
    const sellerId = uniqueName('seller')
    const goodsId = await createGoods(await sign('SELLER', sellerId))
    const buyerToken = await sign('BUYER', buyerId)
    const opened = await call('/api/chat/rooms', {
      method: 'POST',
      token: buyerToken,
      body: JSON.stringify({ goodsId }),
    })
    const roomId = ((await opened.json()) as { id: string }).id

    const buyer = await connectThroughGateway(buyerToken, 'passcode')
    const seller = await connectThroughGateway(await sign('SELLER', sellerId), 'upgrade-header')
    try {
      assert.equal((buyer.webSocket as unknown as WebSocket).protocol, 'v12.stomp')
      const received: IMessage[] = []
      const subscribed = new Promise<void>((resolve) => buyer.watchForReceipt('subscribed', () => resolve()))
      buyer.subscribe(`/sub/rooms/${roomId}`, (message) => received.push(message), { receipt: 'subscribed' })
      await subscribed
      const delivered = new Promise<void>((resolve) => seller.watchForReceipt('sent', () => resolve()))
      seller.publish({
        destination: `/pub/rooms/${roomId}`,
        body: 'hello through the gateway',
        headers: { receipt: 'sent' },
      })
      await delivered
      const [message] = await eventually(
        async () => (received.length > 0 ? received : undefined),
        10_000,
        'the message',
      )
      assert.equal(message?.body, 'hello through the gateway')
      assert.equal(message?.headers['sender-id'], sellerId)
    } finally {
      await buyer.deactivate()
      await seller.deactivate()
    }
  })

  test('a stopping gateway closes the tunnels it holds, so its shutdown never waits on them', async () => {
    const leaving = await startTestGateway(platform.urls, issuer)
    const socket = new WebSocket(`${leaving.url.replace('http', 'ws')}/ws/chat`, ['v12.stomp'], { origin: leaving.url })
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve())
      socket.once('error', reject)
    })
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    await leaving.stop()
    await closed
    assert.equal(socket.readyState, WebSocket.CLOSED)
  })

  test('chat-service’s own refusal of a foreign Origin reaches the client unchanged', async () => {
    const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/ws/chat`, ['v12.stomp'], {
      origin: 'https://evil.example',
    })
    const status = await new Promise<number>((resolve, reject) => {
      socket.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0))
      socket.once('open', () => reject(new Error('a foreign page opened the chat')))
      socket.once('error', reject)
    })
    assert.equal(status, 403)
  })
})

describe('the API reference', () => {
  test('the merged document holds every public path of every service, served from the gateway', async () => {
    const answer = await call('/api/openapi.json')
    assert.equal(answer.status, 200)
    const merged = (await answer.json()) as {
      servers: { url: string }[]
      paths: Record<string, Record<string, { tags?: string[] }>>
      info: { description: string }
    }
    assert.deepEqual(
      merged.servers.map((server) => server.url),
      [gateway.url],
    )
    assert.doesNotMatch(merged.info.description, /did not answer/)
    for (const name of UPSTREAM_NAMES) {
      const own = (await (
        await fetch(`${platform.urls[`${name.toUpperCase()}_URL` as 'USER_URL']}/openapi.json`)
      ).json()) as {
        paths: Record<string, Record<string, unknown>>
      }
      const publicPaths = Object.keys(own.paths).filter((path) =>
        PUBLIC_PREFIXES[name].some((prefix) => path === prefix || path.startsWith(`${prefix}/`)),
      )
      assert.ok(publicPaths.length > 0, `${name}-service documents public paths`)
      for (const path of publicPaths) {
        assert.deepEqual(Object.keys(merged.paths[path] ?? {}).sort(), Object.keys(own.paths[path] ?? {}).sort(), path)
        for (const operation of Object.values(merged.paths[path] ?? {})) assert.deepEqual(operation.tags, [name])
      }
    }
    assert.ok(
      !Object.keys(merged.paths).some((path) => path.startsWith('/internal') || path === '/.well-known/jwks.json'),
    )
  })

  test('/api/docs loads nothing from anywhere but the gateway', async () => {
    const page = await call('/api/docs')
    assert.equal(page.status, 200)
    const html = await page.text()
    assert.doesNotMatch(html, /https?:\/\//)
    const scripts = [...html.matchAll(/<script[^>]*\ssrc="([^"]+)"/g)].map((match) => match[1] as string)
    assert.ok(scripts.length > 0, 'the page loads its script')
    for (const src of scripts) {
      assert.ok(src.startsWith('/'), src)
      const script = await call(src)
      assert.equal(script.status, 200, src)
      assert.match(script.headers.get('content-type') ?? '', /javascript/)
      assert.ok((await script.arrayBuffer()).byteLength > 100_000, 'the whole reference bundle')
    }
    assert.match(html, /\/api\/openapi\.json/)
    // Its one inline script runs under the nonce the policy names.
    const nonce = /'nonce-([^']+)'/.exec(page.headers.get('content-security-policy') ?? '')?.[1]
    assert.ok(nonce)
    assert.ok(html.includes(`nonce="${nonce}"`))
  })

  test('the gateway’s own routes are documented', async () => {
    await assertEveryRouteDocumented(gateway.app)
  })
})
