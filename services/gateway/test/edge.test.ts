/**
 * What the gateway does at the edge, seen from both sides: a recording server stands where a
 * service would, so the tests see exactly what the gateway passes on and what it answers itself.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { startTestIssuer, type TestIssuer, uniqueName } from '@timedeal/platform/testing'
import {
  closedPortUrl,
  type RecordingServer,
  startRecordingServer,
  startTestGateway,
  type TestGateway,
  type UpstreamUrls,
} from './support.ts'

let issuer: TestIssuer
let recorder: RecordingServer
let urls: UpstreamUrls
const started: TestGateway[] = []

before(async () => {
  issuer = await startTestIssuer()
  recorder = await startRecordingServer()
  urls = {
    USER_URL: recorder.url,
    GOODS_URL: recorder.url,
    ORDER_URL: recorder.url,
    PAYMENT_URL: recorder.url,
    CHAT_URL: recorder.url,
  }
})

after(async () => {
  await Promise.all(started.map((gateway) => gateway.stop()))
  await recorder?.close()
  await issuer?.close()
})

async function gatewayWith(overrides: Record<string, string> = {}, upstreams: Partial<UpstreamUrls> = {}) {
  const gateway = await startTestGateway({ ...urls, ...upstreams }, issuer, overrides)
  started.push(gateway)
  return gateway
}

const token = (sub = uniqueName('buyer')) => issuer.sign({ sub, role: 'BUYER' })

/** The request the recorder saw for a unique marker in the query. */
function seenWith(marker: string) {
  const found = recorder.seen.find((seen) => seen.url.includes(marker))
  assert.ok(found, `the service never saw the request ${marker}`)
  return found
}

/** A request whose path is sent exactly as written (fetch would normalise dot segments). */
function rawGet(url: string, path: string): Promise<{ status: number; body: string; type: string | undefined }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(`${url}${path}`, { method: 'GET', path }, (response) => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          body: Buffer.concat(chunks).toString(),
          type: response.headers['content-type'],
        }),
      )
    })
    request.on('error', reject)
    request.end()
  })
}

describe('what the gateway passes on', () => {
  test('forwards the original Authorization, the trace and where the request came from, and adds no identity', async () => {
    const gateway = await gatewayWith()
    const marker = uniqueName('forwarded')
    const accessToken = await token()
    const traceId = 'a'.repeat(32)
    const answer = await fetch(`${gateway.url}/api/orders?m=${marker}`, {
      headers: {
        authorization: `Bearer ${accessToken}`,
        traceparent: `00-${traceId}-${'b'.repeat(16)}-01`,
        'x-forwarded-for': '6.6.6.6',
        'x-forwarded-host': 'forged.example',
        'x-user-id': 'someone-else',
      },
    })
    assert.equal(answer.status, 200)
    const seen = seenWith(marker)
    assert.equal(seen.headers.authorization, `Bearer ${accessToken}`)
    assert.match(String(seen.headers.traceparent), new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`))
    // A client's own forwarding headers are replaced when the gateway trusts no proxy in front.
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
    assert.equal(seen.headers['x-forwarded-proto'], 'http')
    assert.equal(seen.headers['x-forwarded-host'], new URL(gateway.url).host)
    assert.equal(seen.headers['x-request-id'], answer.headers.get('x-request-id'))
    // Whatever the client claims passes on untouched, and the gateway claims nothing of its own.
    assert.equal(seen.headers['x-user-id'], 'someone-else')
    const sentByClient = new Set(['authorization', 'traceparent', 'x-forwarded-for', 'x-forwarded-host', 'x-user-id'])
    const sentByFetch = new Set(['accept', 'accept-encoding', 'accept-language', 'sec-fetch-mode', 'user-agent'])
    const added = Object.keys(seen.headers)
      .filter((name) => !sentByClient.has(name) && !sentByFetch.has(name))
      .sort()
    assert.deepEqual(added, ['connection', 'host', 'x-forwarded-proto', 'x-request-id'])
  })

  test('appends the client to a trusted proxy hop list and keeps its protocol and host', async () => {
    const gateway = await gatewayWith({ TRUST_PROXY: 'true' })
    const marker = uniqueName('trusted')
    await fetch(`${gateway.url}/api/goods?m=${marker}`, {
      headers: { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'shop.example' },
    })
    const seen = seenWith(marker)
    assert.equal(seen.headers['x-forwarded-for'], '203.0.113.7')
    assert.equal(seen.headers['x-forwarded-proto'], 'https')
    assert.equal(seen.headers['x-forwarded-host'], 'shop.example')
  })

  test('streams a request body through and passes every Set-Cookie of the answer back', async () => {
    const gateway = await gatewayWith()
    const marker = uniqueName('stream')
    const chunks = ['{"a":', '"', 'x'.repeat(10_000), '"}']
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk))
        controller.close()
      },
    })
    const answer = await fetch(`${gateway.url}/api/orders?m=${marker}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit)
    assert.equal(answer.status, 200)
    assert.deepEqual(await answer.json(), { echoed: chunks.join('').length })
    assert.equal(seenWith(marker).body, chunks.join(''))
    assert.deepEqual(answer.headers.getSetCookie(), ['a=1', 'b=2'])
  })
})

describe('what the gateway never routes', () => {
  test('/internal/* and paths that would climb into it are 404 problems and never reach a service', async () => {
    const gateway = await gatewayWith()
    const before = recorder.seen.length
    for (const path of [
      '/internal/reservations',
      '/internal/signing-keys/rotate',
      '/api/orders/../../internal/reservations',
      '/api/orders/..%2f..%2finternal%2freservations',
      '/api/internal/reservations',
      '/api/ordersx',
    ]) {
      const answer = await rawGet(gateway.url, path)
      assert.equal(answer.status, 404, path)
      assert.equal(answer.type, 'application/problem+json', path)
    }
    assert.equal(recorder.seen.length, before, 'no request reached the service')
  })
})

describe('limits', () => {
  test('refuses an address past its limit with 429 and Retry-After, while another address goes on', async () => {
    const gateway = await gatewayWith({ TRUST_PROXY: 'true', RATE_LIMIT_PER_ADDRESS: '3' })
    const from = (address: string) => fetch(`${gateway.url}/api/goods`, { headers: { 'x-forwarded-for': address } })
    for (let index = 0; index < 3; index += 1) assert.equal((await from('198.51.100.1')).status, 200)
    const refused = await from('198.51.100.1')
    assert.equal(refused.status, 429)
    assert.equal(refused.headers.get('content-type'), 'application/problem+json')
    const retryAfter = Number(refused.headers.get('retry-after'))
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`)
    assert.equal(((await refused.json()) as { code: string }).code, 'RATE_LIMITED')
    assert.equal((await from('198.51.100.2')).status, 200)
  })

  test('refuses a user past their limit from any address; other users and token-less requests go on', async () => {
    const gateway = await gatewayWith({ TRUST_PROXY: 'true', RATE_LIMIT_PER_USER: '2' })
    const accessToken = await token()
    const call = (address: string, bearer?: string) =>
      fetch(`${gateway.url}/api/orders`, {
        headers: { 'x-forwarded-for': address, ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
      })
    assert.equal((await call('192.0.2.1', accessToken)).status, 200)
    assert.equal((await call('192.0.2.2', accessToken)).status, 200)
    const refused = await call('192.0.2.3', accessToken)
    assert.equal(refused.status, 429)
    assert.ok(Number(refused.headers.get('retry-after')) >= 1)
    assert.equal(((await refused.json()) as { scope: string }).scope, 'user')
    assert.equal((await call('192.0.2.3', await token())).status, 200)
    // An invalid token is no user: it is counted by address only and passed on for the service to refuse.
    assert.equal((await call('192.0.2.3', 'not-a-token')).status, 200)
  })

  test('counts chat upgrades too: past the limit the upgrade is refused with 429 and Retry-After', async () => {
    const gateway = await gatewayWith({ TRUST_PROXY: 'true', RATE_LIMIT_PER_ADDRESS: '1' })
    const { WebSocket } = await import('ws')
    const upgrade = () =>
      new Promise<{ status: number; retryAfter: string | undefined }>((resolve) => {
        const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/ws/chat`, ['v12.stomp'], {
          headers: { 'x-forwarded-for': '198.51.100.77' },
        })
        socket.once('unexpected-response', (_request, response) =>
          resolve({ status: response.statusCode ?? 0, retryAfter: response.headers['retry-after'] as string }),
        )
        // The recording server takes no upgrades: the first one, let through, ends without an answer.
        socket.once('error', () => resolve({ status: 0, retryAfter: undefined }))
      })
    assert.notEqual((await upgrade()).status, 429)
    const refused = await upgrade()
    assert.equal(refused.status, 429)
    assert.ok(Number(refused.retryAfter) >= 1)
  })

  test('answers a plain GET of /ws/chat with 426 Upgrade Required', async () => {
    const gateway = await gatewayWith()
    const answer = await fetch(`${gateway.url}/ws/chat`)
    assert.equal(answer.status, 426)
    assert.equal(answer.headers.get('upgrade'), 'websocket')
    assert.equal(((await answer.json()) as { code: string }).code, 'UPGRADE_REQUIRED')
  })

  test('refuses a body past the limit with 413 before it reaches the service, streamed or not', async () => {
    const gateway = await gatewayWith({ HTTP_BODY_LIMIT_BYTES: '1024' })
    const before = recorder.seen.length
    const sized = await fetch(`${gateway.url}/api/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ note: 'x'.repeat(2048) }),
    })
    assert.equal(sized.status, 413)
    assert.equal(((await sized.json()) as { code: string }).code, 'PAYLOAD_TOO_LARGE')
    assert.equal(recorder.seen.length, before)
    const streamed = await fetch(`${gateway.url}/api/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: new ReadableStream<Uint8Array>({
        start(controller) {
          for (let index = 0; index < 4; index += 1) controller.enqueue(new Uint8Array(512).fill(120))
          controller.close()
        },
      }),
      duplex: 'half',
    } as RequestInit)
    assert.equal(streamed.status, 413)
    assert.equal(streamed.headers.get('content-type'), 'application/problem+json')
  })
})

describe('browsers', () => {
  test('answers CORS for configured origins only and refuses other foreign origins', async () => {
    const allowed = 'https://partner.example'
    const gateway = await gatewayWith({ CORS_ALLOWED_ORIGINS: allowed })
    const preflight = (origin: string) =>
      fetch(`${gateway.url}/api/orders`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type, idempotency-key',
        },
      })
    const ok = await preflight(allowed)
    assert.equal(ok.status, 204)
    assert.equal(ok.headers.get('access-control-allow-origin'), allowed)
    assert.equal(ok.headers.get('access-control-allow-credentials'), 'true')
    assert.match(ok.headers.get('access-control-allow-headers') ?? '', /idempotency-key/)

    const refused = await preflight('https://evil.example')
    assert.equal(refused.status, 403)
    assert.equal(refused.headers.get('access-control-allow-origin'), null)
    assert.equal(((await refused.json()) as { code: string }).code, 'CORS_ORIGIN_REFUSED')

    const before = recorder.seen.length
    const forged = await fetch(`${gateway.url}/api/orders`, {
      method: 'POST',
      headers: { origin: 'https://evil.example', 'content-type': 'text/plain' },
      body: '{}',
    })
    assert.equal(forged.status, 403)
    assert.equal(recorder.seen.length, before, 'a refused cross-site request never reaches a service')

    const read = await fetch(`${gateway.url}/api/goods`, { headers: { origin: allowed } })
    assert.equal(read.headers.get('access-control-allow-origin'), allowed)
    const sameOrigin = await fetch(`${gateway.url}/api/orders`, {
      method: 'POST',
      headers: { origin: gateway.url, 'content-type': 'application/json' },
      body: '{}',
    })
    assert.equal(sameOrigin.status, 200)
    assert.equal(sameOrigin.headers.get('access-control-allow-origin'), null)
  })

  test('sets the security headers on every answer, and HSTS only when the browser used TLS', async () => {
    const gateway = await gatewayWith({ TRUST_PROXY: 'true' })
    for (const path of ['/api/goods', '/', '/api/nowhere']) {
      const answer = await fetch(`${gateway.url}${path}`)
      const csp = answer.headers.get('content-security-policy') ?? ''
      assert.match(csp, /frame-ancestors 'none'/, path)
      assert.match(csp, /default-src 'self'/, path)
      assert.match(csp, /script-src 'self'(;|$)/, path)
      assert.match(csp, /connect-src 'self'/, path)
      assert.equal(answer.headers.get('x-content-type-options'), 'nosniff', path)
      assert.equal(answer.headers.get('referrer-policy'), 'strict-origin-when-cross-origin', path)
      assert.equal(answer.headers.get('strict-transport-security'), null, path)
    }
    const overTls = await fetch(`${gateway.url}/api/goods`, { headers: { 'x-forwarded-proto': 'https' } })
    assert.match(overTls.headers.get('strict-transport-security') ?? '', /max-age=\d+/)
  })

  test('serves the built web app with cache headers and its index for client routes, never for /api', async () => {
    const dist = await mkdtemp(join(tmpdir(), 'timedeal-web-'))
    try {
      await mkdir(join(dist, 'assets'))
      await writeFile(join(dist, 'index.html'), '<!doctype html><div id="root"></div>')
      await writeFile(join(dist, 'assets', 'index-3f9a.js'), 'console.log(1)')
      await writeFile(join(dist, 'favicon.svg'), '<svg/>')
      const gateway = await gatewayWith({ WEB_DIST_DIR: dist })
      const index = await fetch(`${gateway.url}/`)
      assert.equal(index.status, 200)
      assert.match(index.headers.get('content-type') ?? '', /text\/html/)
      assert.equal(index.headers.get('cache-control'), 'no-cache')
      const asset = await fetch(`${gateway.url}/assets/index-3f9a.js`)
      assert.equal(await asset.text(), 'console.log(1)')
      assert.match(asset.headers.get('content-type') ?? '', /javascript/)
      assert.match(asset.headers.get('cache-control') ?? '', /immutable/)
      assert.equal((await fetch(`${gateway.url}/favicon.svg`)).headers.get('cache-control'), 'no-cache')
      const deepLink = await fetch(`${gateway.url}/orders/123`)
      assert.equal(deepLink.status, 200)
      assert.match(await deepLink.text(), /id="root"/)
      assert.equal((await fetch(`${gateway.url}/assets/missing-1.js`)).status, 404)
      // Dot segments never leave the folder: at most the app's index answers.
      for (const path of ['/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/assets/..%2f..%2f..%2fetc%2fpasswd']) {
        const escaped = await rawGet(gateway.url, path)
        assert.doesNotMatch(escaped.body, /root:/, path)
      }
      const unknownApi = await fetch(`${gateway.url}/api/nowhere`)
      assert.equal(unknownApi.status, 404)
      assert.equal(unknownApi.headers.get('content-type'), 'application/problem+json')
    } finally {
      await rm(dist, { recursive: true, force: true })
    }
  })

  test('answers / with a 404 problem saying how to build the web app while it is not built', async () => {
    const gateway = await gatewayWith({ WEB_DIST_DIR: join(tmpdir(), uniqueName('no-web-dist')) })
    const answer = await fetch(`${gateway.url}/`)
    assert.equal(answer.status, 404)
    assert.equal(answer.headers.get('content-type'), 'application/problem+json')
    const problem = (await answer.json()) as { code: string; detail: string }
    assert.equal(problem.code, 'WEB_APP_NOT_BUILT')
    assert.match(problem.detail, /make build/)
  })
})

describe('a service that is down or slow', () => {
  test('is 502, then 503 with Retry-After once its breaker opens, and never blocks the other services', async () => {
    const down = await closedPortUrl()
    const gateway = await gatewayWith(
      { UPSTREAM_BREAKER_THRESHOLD: '2', UPSTREAM_BREAKER_OPEN_MS: '30000' },
      {
        PAYMENT_URL: down,
      },
    )
    for (let index = 0; index < 2; index += 1) {
      const answer = await fetch(`${gateway.url}/api/payments`)
      assert.equal(answer.status, 502)
      assert.equal(answer.headers.get('content-type'), 'application/problem+json')
      const problem = (await answer.json()) as { code: string; upstream: string }
      assert.equal(problem.code, 'UPSTREAM_UNREACHABLE')
      assert.equal(problem.upstream, 'payment-service')
    }
    const open = await fetch(`${gateway.url}/api/payments`)
    assert.equal(open.status, 503)
    assert.equal(((await open.json()) as { code: string }).code, 'UPSTREAM_UNAVAILABLE')
    assert.equal(open.headers.get('retry-after'), '30')
    assert.equal((await fetch(`${gateway.url}/api/goods`)).status, 200)
  })

  test('is called again once its breaker half-opens, and answers as soon as it is back', async () => {
    const url = await closedPortUrl()
    const gateway = await gatewayWith(
      { UPSTREAM_BREAKER_THRESHOLD: '1', UPSTREAM_BREAKER_OPEN_MS: '300' },
      {
        PAYMENT_URL: url,
      },
    )
    assert.equal((await fetch(`${gateway.url}/api/payments`)).status, 502)
    assert.equal((await fetch(`${gateway.url}/api/payments`)).status, 503)
    const back = createServer((_request, response) => response.end('{"items":[]}'))
    await new Promise<void>((resolve) => back.listen(Number(new URL(url).port), '127.0.0.1', () => resolve()))
    try {
      await sleep(400)
      const answer = await fetch(`${gateway.url}/api/payments`)
      assert.equal(answer.status, 200)
      assert.deepEqual(await answer.json(), { items: [] })
    } finally {
      back.closeAllConnections()
      await new Promise<void>((resolve) => back.close(() => resolve()))
    }
  })

  test('is 504 when a service does not start answering in time', async () => {
    const gateway = await gatewayWith({ UPSTREAM_TIMEOUT_MS: '300' })
    const answer = await fetch(`${gateway.url}/api/payments/hang`)
    assert.equal(answer.status, 504)
    assert.equal(answer.headers.get('content-type'), 'application/problem+json')
    assert.equal(((await answer.json()) as { code: string }).code, 'UPSTREAM_TIMEOUT')
  })

  test('refuses a chat upgrade with 502 problem+json when chat-service is down', async () => {
    const gateway = await gatewayWith({}, { CHAT_URL: await closedPortUrl() })
    const { WebSocket } = await import('ws')
    const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/ws/chat`, ['v12.stomp'])
    const refusal = await new Promise<{ status: number; type: string | undefined; body: string }>((resolve, reject) => {
      socket.once('unexpected-response', (_request, response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            type: response.headers['content-type'],
            body: Buffer.concat(chunks).toString(),
          }),
        )
      })
      socket.once('open', () => reject(new Error('the upgrade went through to nothing')))
      socket.once('error', reject)
    })
    assert.equal(refusal.status, 502)
    assert.equal(refusal.type, 'application/problem+json')
    assert.equal((JSON.parse(refusal.body) as { code: string }).code, 'UPSTREAM_UNREACHABLE')
  })
})
