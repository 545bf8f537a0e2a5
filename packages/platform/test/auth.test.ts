import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { after, before, describe, test } from 'node:test'
import { Hono } from 'hono'
import { createRemoteJWKSet, type JWTVerifyGetKey } from 'jose'
import {
  type AuthedEnv,
  authenticate,
  bearerToken,
  createTokenVerifier,
  forwardedHeaders,
  INTERNAL_CREDENTIAL_HEADER,
  requireRole,
  requireServiceCredential,
  type TokenVerifier,
} from '../src/auth.ts'
import { type AppEnv, createServiceApps } from '../src/http.ts'
import { createMetricsRegistry } from '../src/metrics.ts'
import { Problem } from '../src/problem.ts'
import { freePort, listenOnFreePort, startTestIssuer, type TestIssuer, testLogger } from './support.ts'

const SECRET = 'an-internal-secret-for-tests'

function buildApps(verifier: TokenVerifier) {
  const api = new Hono<AuthedEnv>()
    .use(authenticate(verifier))
    .get('/me', (c) => c.json({ id: c.var.caller.id, role: c.var.caller.role }))
    .post('/goods', requireRole('SELLER'), (c) => c.json({ by: c.var.caller.id }, 201))
    .get('/forward', (c) => c.json(forwardedHeaders(c)))
  const internal = new Hono<AppEnv>().use(requireServiceCredential(SECRET)).get('/stock', (c) => c.json({ ok: true }))
  const { publicApp, internalApp } = createServiceApps(
    { service: 'example', logger: testLogger, metrics: createMetricsRegistry('example') },
    { publicRoutes: new Hono<AppEnv>().route('/api', api), internalRoutes: internal },
  )
  if (!internalApp) throw new Error('expected an internal app')
  return { app: publicApp, internalApp }
}

const get = (app: Hono<AppEnv>, path: string, headers: Record<string, string> = {}) => app.request(path, { headers })
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const codeOf = async (response: Response) => ((await response.json()) as { code: string }).code

describe('verifying callers with the shared middleware', () => {
  let issuer: TestIssuer
  let app: Hono<AppEnv>
  let internalApp: Hono<AppEnv>
  let verifier: TokenVerifier

  before(async () => {
    issuer = await startTestIssuer()
    verifier = issuer.verifier()
    ;({ app, internalApp } = buildApps(verifier))
  })

  after(async () => {
    await issuer.close()
  })

  test('a valid token puts the caller on the request', async () => {
    const token = await issuer.sign({ sub: 'user-1', role: 'BUYER' })
    const response = await get(app, '/api/me', bearer(token))
    assert.equal(response.status, 200)
    assert.deepEqual(await response.json(), { id: 'user-1', role: 'BUYER' })
  })

  test('a request without a token is a 401 with a Bearer challenge', async () => {
    const response = await get(app, '/api/me')
    assert.equal(response.status, 401)
    assert.equal(response.headers.get('www-authenticate'), 'Bearer')
    assert.match(response.headers.get('content-type') ?? '', /problem\+json/)
    assert.equal(await codeOf(response), 'UNAUTHENTICATED')
  })

  test('a header that is not a Bearer token counts as no token', async () => {
    const response = await get(app, '/api/me', { authorization: 'Basic dXNlcjpwYXNz' })
    assert.equal(response.status, 401)
    assert.equal(await codeOf(response), 'UNAUTHENTICATED')
  })

  test('an expired token is a 401 TOKEN_EXPIRED', async () => {
    const token = await issuer.sign({ sub: 'user-1', role: 'BUYER' }, { expiresIn: Math.floor(Date.now() / 1000) - 60 })
    const response = await get(app, '/api/me', bearer(token))
    assert.equal(response.status, 401)
    assert.equal(await codeOf(response), 'TOKEN_EXPIRED')
    assert.match(response.headers.get('www-authenticate') ?? '', /error="invalid_token"/)
  })

  test('a token without an expiry is a 401: it would be valid forever', async () => {
    const token = await issuer.sign({ sub: 'user-1', role: 'BUYER' }, { expiresIn: null })
    const response = await get(app, '/api/me', bearer(token))
    assert.equal(response.status, 401)
    assert.equal(await codeOf(response), 'TOKEN_INVALID')
  })

  test('a token signed by another key is a 401', async () => {
    const stranger = await startTestIssuer()
    try {
      const token = await stranger.sign({ sub: 'user-1', role: 'SELLER' })
      const response = await get(app, '/api/me', bearer(token))
      assert.equal(response.status, 401)
      assert.equal(await codeOf(response), 'TOKEN_INVALID')
    } finally {
      await stranger.close()
    }
  })

  test('a token for another audience is a 401', async () => {
    const token = await issuer.sign({ sub: 'user-1', role: 'BUYER' }, { audience: 'someone-else' })
    const response = await get(app, '/api/me', bearer(token))
    assert.equal(response.status, 401)
    assert.equal(await codeOf(response), 'TOKEN_INVALID')
  })

  test('a token with a role nobody knows is a 401', async () => {
    const token = await issuer.sign({ sub: 'user-1', role: 'ADMIN' })
    const response = await get(app, '/api/me', bearer(token))
    assert.equal(response.status, 401)
  })

  test('a buyer on a seller-only route is a 403; a seller passes', async () => {
    const buyer = await issuer.sign({ sub: 'buyer-1', role: 'BUYER' })
    const forbidden = await app.request('/api/goods', { method: 'POST', headers: bearer(buyer) })
    assert.equal(forbidden.status, 403)
    assert.equal(await codeOf(forbidden), 'FORBIDDEN_ROLE')
    const seller = await issuer.sign({ sub: 'seller-1', role: 'SELLER' })
    const allowed = await app.request('/api/goods', { method: 'POST', headers: bearer(seller) })
    assert.equal(allowed.status, 201)
    assert.deepEqual(await allowed.json(), { by: 'seller-1' })
  })

  test('a service-to-service call forwards the caller’s own token and the trace', async () => {
    const token = await issuer.sign({ sub: 'user-1', role: 'BUYER' })
    const response = await get(app, '/api/forward', { ...bearer(token), 'x-request-id': 'req-1' })
    const headers = (await response.json()) as Record<string, string>
    assert.equal(headers.authorization, `Bearer ${token}`)
    assert.equal(headers['x-request-id'], 'req-1')
    assert.match(headers.traceparent ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/)
  })

  test('internal routes refuse a missing credential (401) and a wrong one (403), and pass the right one', async () => {
    const missing = await get(internalApp, '/internal/stock')
    assert.equal(missing.status, 401)
    assert.equal(await codeOf(missing), 'SERVICE_CREDENTIAL_REQUIRED')
    const userToken = await issuer.sign({ sub: 'user-1', role: 'SELLER' })
    assert.equal(
      (await get(internalApp, '/internal/stock', bearer(userToken))).status,
      401,
      'a user token is not enough',
    )
    const wrong = await get(internalApp, '/internal/stock', { [INTERNAL_CREDENTIAL_HEADER]: 'not-the-secret' })
    assert.equal(wrong.status, 403)
    assert.equal(await codeOf(wrong), 'SERVICE_CREDENTIAL_INVALID')
    const right = await get(internalApp, '/internal/stock', { [INTERNAL_CREDENTIAL_HEADER]: SECRET })
    assert.equal(right.status, 200)
  })

  test('works outside HTTP routes: a WebSocket upgrade header or a STOMP CONNECT header', async () => {
    const token = await issuer.sign({ sub: 'user-7', role: 'SELLER' })
    const fromUpgrade = await verifier.verify(bearerToken(`Bearer ${token}`) ?? '')
    assert.deepEqual({ id: fromUpgrade.id, role: fromUpgrade.role }, { id: 'user-7', role: 'SELLER' })
    // STOMP clients often send the bare token in a header of their own.
    const stompHeader = token
    const fromStomp = await verifier.verify(bearerToken(stompHeader) ?? stompHeader)
    assert.equal(fromStomp.id, 'user-7')
    await assert.rejects(verifier.verify('not-a-jwt'), (error: unknown) => {
      return error instanceof Problem && error.status === 401
    })
  })
})

describe('remembering verified tokens', () => {
  test('checks a token once while it is valid, never answers another or an expired token from memory', async () => {
    const issuer = await startTestIssuer()
    try {
      const remote = createRemoteJWKSet(new URL(issuer.jwksUrl))
      let lookups = 0
      const keys: JWTVerifyGetKey = (header, token) => {
        lookups += 1
        return remote(header, token)
      }
      const verifier = createTokenVerifier({ keys, issuer: issuer.issuer, audience: issuer.audience })
      const expiresAt = Math.floor(Date.now() / 1000) + 2
      const buyer = await issuer.sign({ sub: 'buyer-1', role: 'BUYER' }, { expiresIn: expiresAt })
      for (let call = 0; call < 3; call += 1) assert.equal((await verifier.verify(buyer)).id, 'buyer-1')
      assert.equal(lookups, 1, 'a token already verified was checked again')

      const seller = await issuer.sign({ sub: 'seller-1', role: 'SELLER' }, { expiresIn: expiresAt })
      assert.deepEqual(await verifier.verify(seller), { id: 'seller-1', role: 'SELLER', token: seller })
      const forged = `${buyer.slice(0, buyer.lastIndexOf('.') + 1)}${'A'.repeat(86)}`
      await assert.rejects(verifier.verify(forged), (error: Problem) => error.code === 'TOKEN_INVALID')

      await new Promise((resolve) => setTimeout(resolve, expiresAt * 1000 - Date.now() + 50))
      const checksBefore = lookups
      await verifier.verify(buyer).catch(() => undefined)
      assert.equal(lookups, checksBefore + 1, 'an expired token was answered from memory')
    } finally {
      await issuer.close()
    }
  })
})

describe('following key rotation', () => {
  test('a token of a new key is accepted without a restart once the refetch cooldown passed', async () => {
    const issuer = await startTestIssuer()
    try {
      const verifier = createTokenVerifier({
        jwksUrl: issuer.jwksUrl,
        issuer: issuer.issuer,
        audience: issuer.audience,
        keyRefetchCooldownMs: 300,
      })
      const { app } = buildApps(verifier)
      const before = await issuer.sign({ sub: 'user-1', role: 'BUYER' })
      assert.equal((await get(app, '/api/me', bearer(before))).status, 200)

      await issuer.rotate()
      const after = await issuer.sign({ sub: 'user-1', role: 'BUYER' })
      // Within the cooldown the set is not fetched again, so an issuer must publish keys ahead.
      assert.equal((await get(app, '/api/me', bearer(after))).status, 401)
      await new Promise((resolve) => setTimeout(resolve, 350))
      assert.equal((await get(app, '/api/me', bearer(after))).status, 200)
    } finally {
      await issuer.close()
    }
  })
})

describe('when the keys cannot be fetched', () => {
  test('an unreachable JWKS is a 503, not a rejected token', async () => {
    const issuer = await startTestIssuer()
    const token = await issuer.sign({ sub: 'user-1', role: 'BUYER' })
    await issuer.close()
    const port = await freePort()
    const verifier = createTokenVerifier({
      jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`,
      issuer: issuer.issuer,
      audience: issuer.audience,
    })
    const response = await get(buildApps(verifier).app, '/api/me', bearer(token))
    assert.equal(response.status, 503)
    assert.equal(await codeOf(response), 'AUTH_UNAVAILABLE')
  })

  test('a JWKS endpoint answering an error status is a 503 too', async () => {
    const issuer = await startTestIssuer()
    const token = await issuer.sign({ sub: 'user-1', role: 'BUYER' })
    await issuer.close()
    const failing = createServer((_request, response) => {
      response.writeHead(502).end('bad gateway')
    })
    const port = await listenOnFreePort(failing)
    try {
      const verifier = createTokenVerifier({
        jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`,
        issuer: issuer.issuer,
        audience: issuer.audience,
      })
      const response = await get(buildApps(verifier).app, '/api/me', bearer(token))
      assert.equal(response.status, 503)
    } finally {
      await new Promise<void>((resolve) => failing.close(() => resolve()))
    }
  })
})
