import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import {
  type AuthedEnv,
  assertEveryRouteDocumented,
  authenticate,
  createMetricsRegistry,
  createServiceApp,
  createServiceApps,
  createTokenVerifier,
  INTERNAL_CREDENTIAL_HEADER,
  INTERNAL_OPENAPI_PATH,
  requireRole,
} from '@timedeal/platform'
import { type ServiceProcess, spawnService, testLogger, waitUntilReady } from '@timedeal/platform/testing'
import { Hono } from 'hono'
import { decodeProtectedHeader } from 'jose'
import { DEMO_ACCOUNTS } from '../src/seed.ts'
import {
  codeIn,
  createTestDatabase,
  INTERNAL_SECRET,
  type SessionBody,
  signIn,
  startUserService,
  type TestDatabase,
  uniqueEmail,
} from './support.ts'

const entry = fileURLToPath(new URL('../src/main.ts', import.meta.url))

describe('user-service process', () => {
  test('starts against the real servers, reports each dependency ready, and stops on SIGTERM', async () => {
    const database = await createTestDatabase()
    const service = await spawnService(entry, { MYSQL_DATABASE: database.name })
    try {
      const ready = (await waitUntilReady(service)) as { checks: Record<string, { status: string }> }
      assert.deepEqual(Object.keys(ready.checks).sort(), ['mysql', 'redis'])
      for (const check of Object.values(ready.checks)) assert.equal(check.status, 'up')
      const health = await fetch(`${service.url}/healthz`)
      assert.deepEqual(await health.json(), { status: 'ok', service: 'user-service' })
    } finally {
      assert.equal(await service.stop('SIGTERM'), 0)
      await database.drop()
    }
  })

  test('serves internal routes on their own listener only; the public one answers /internal/* with a 404', async () => {
    const database = await createTestDatabase()
    const service = await spawnService(entry, {
      MYSQL_DATABASE: database.name,
      INTERNAL_API_SECRET: INTERNAL_SECRET,
      LOG_LEVEL: 'warn',
    })
    try {
      await waitUntilReady(service)
      const credential = { [INTERNAL_CREDENTIAL_HEADER]: INTERNAL_SECRET }
      const mailPath = '/internal/dev/mail?to=nobody%40example.test'
      const onPublic = await fetch(`${service.url}${mailPath}`, { headers: credential })
      assert.equal(onPublic.status, 404)
      assert.equal(onPublic.headers.get('content-type'), 'application/problem+json')
      const rotateOnPublic = await fetch(`${service.url}/internal/signing-keys/rotate`, {
        method: 'POST',
        headers: credential,
      })
      assert.equal(rotateOnPublic.status, 404)
      const onInternal = await fetch(`${service.internalUrl}${mailPath}`, { headers: credential })
      assert.equal(onInternal.status, 200)
      assert.deepEqual(await onInternal.json(), { messages: [] })
      assert.equal((await fetch(`${service.internalUrl}/api/auth/login`, { method: 'POST' })).status, 404)
    } finally {
      assert.equal(await service.stop('SIGTERM'), 0)
      await database.drop()
    }
  })

  test('refuses to start in production with a development default: one line naming it, exit code 1', async () => {
    const service = await spawnService(entry, {
      TIMEDEAL_ENV: 'production',
      INTERNAL_API_SECRET: 'a-production-secret-0123456789',
      MYSQL_PASSWORD: 'a-production-password',
      MAILER: 'smtp',
      SMTP_URL: 'smtps://u:p@mail.example.com',
    })
    assert.equal(await service.exited, 1)
    const stderr = service.output().stderr.trim()
    assert.doesNotMatch(stderr, /\n/)
    assert.match(stderr, /^invalid setting DATA_KEYS \(not set\): .*TIMEDEAL_ENV=production/)
  })

  test('`seed` creates the demo accounts once, verified, and running it again changes nothing', async () => {
    const database = await createTestDatabase()
    try {
      for (let run = 0; run < 2; run++) {
        const seed = await spawnService(entry, { MYSQL_DATABASE: database.name }, ['seed'])
        assert.equal(await seed.exited, 0, seed.output().stderr)
      }
      const [rows] = await database.sequelize.query(
        'SELECT email, role, email_verified_at IS NOT NULL AS verified FROM users ORDER BY email',
      )
      assert.deepEqual(
        rows,
        DEMO_ACCOUNTS.map((demo) => ({ email: demo.email, role: demo.role, verified: 1 })).sort((a, b) =>
          a.email.localeCompare(b.email),
        ),
      )
      const user = await startUserService(database)
      try {
        for (const demo of DEMO_ACCOUNTS) {
          const session = await signIn(user.newClient(), demo.email, demo.password)
          assert.equal(session.user.role, demo.role)
        }
      } finally {
        await user.close()
      }
    } finally {
      await database.drop()
    }
  })
})

describe('another service verifying user-service tokens with the shared middleware', () => {
  let database: TestDatabase
  let user: ServiceProcess
  let other: Hono

  before(async () => {
    database = await createTestDatabase()
    user = await spawnService(entry, {
      MYSQL_DATABASE: database.name,
      INTERNAL_API_SECRET: INTERNAL_SECRET,
      SIGNING_KEY_PUBLISH_AHEAD_SECONDS: '2',
      // Counters of its own: earlier runs from this address must not count against this one.
      RATE_LIMIT_KEY_PREFIX: `${database.name}:limit:`,
      LOG_LEVEL: 'warn',
    })
    await waitUntilReady(user)
    // A second small service: buyers and sellers may read, only sellers may list goods.
    const verifier = createTokenVerifier({
      jwksUrl: `${user.url}/.well-known/jwks.json`,
      issuer: 'timedeal-user',
      audience: 'timedeal',
      // Scaled down with the publish-ahead time above (production: 30 s and 60 s).
      keyRefetchCooldownMs: 1_000,
    })
    const app = createServiceApp({ service: 'goods-like', logger: testLogger, metrics: createMetricsRegistry('x') })
    const routes = new Hono<AuthedEnv>()
      .use(authenticate(verifier))
      .get('/whoami', (c) => c.json({ id: c.var.caller.id, role: c.var.caller.role }))
      .post('/goods', requireRole('SELLER'), (c) => c.json({ listedBy: c.var.caller.id }, 201))
    app.route('/api', routes)
    other = app as unknown as Hono
  })

  after(async () => {
    await user.stop('SIGTERM')
    await database.drop()
  })

  async function account(role: 'BUYER' | 'SELLER') {
    const email = uniqueEmail(role.toLowerCase())
    const password = 'correct horse battery'
    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${user.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      })
    assert.equal((await post('/api/users', { email, password, name: role, role })).status, 202)
    const mail = await fetch(`${user.internalUrl}/internal/dev/mail?to=${encodeURIComponent(email)}`, {
      headers: { [INTERNAL_CREDENTIAL_HEADER]: INTERNAL_SECRET },
    })
    const { messages } = (await mail.json()) as { messages: { text: string }[] }
    assert.equal((await post('/api/users/verify', { email, code: codeIn(messages[0]), password })).status, 200)
    return {
      signIn: async () => {
        const response = await post('/api/auth/login', { email, password })
        assert.equal(response.status, 200)
        return (await response.json()) as SessionBody
      },
      rotateKeys: async () => {
        const response = await fetch(`${user.internalUrl}/internal/signing-keys/rotate`, {
          method: 'POST',
          headers: { [INTERNAL_CREDENTIAL_HEADER]: INTERNAL_SECRET },
        })
        assert.equal(response.status, 201)
        return (await response.json()) as { kid: string; activatesAt: string }
      },
    }
  }

  const call = (method: string, path: string, token: string) =>
    other.request(path, { method, headers: { authorization: `Bearer ${token}` } })

  test('accepts user-service tokens and knows who calls', async () => {
    const buyer = await account('BUYER')
    const session = await buyer.signIn()
    const response = await call('GET', '/api/whoami', session.accessToken)
    assert.equal(response.status, 200)
    assert.deepEqual(await response.json(), { id: session.user.id, role: 'BUYER' })
  })

  test('a buyer calling a seller-only route is forbidden; a seller passes', async () => {
    const buyer = await (await account('BUYER')).signIn()
    const forbidden = await call('POST', '/api/goods', buyer.accessToken)
    assert.equal(forbidden.status, 403)
    assert.equal(((await forbidden.json()) as { code: string }).code, 'FORBIDDEN_ROLE')
    const seller = await (await account('SELLER')).signIn()
    assert.equal((await call('POST', '/api/goods', seller.accessToken)).status, 201)
  })

  test('follows a key rotation without restarting', async () => {
    const seller = await account('SELLER')
    const before = await seller.signIn()
    assert.equal((await call('GET', '/api/whoami', before.accessToken)).status, 200)

    const rotated = await seller.rotateKeys()
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Date.parse(rotated.activatesAt) - Date.now() + 50)))
    const afterRotation = await seller.signIn()
    assert.equal(decodeProtectedHeader(afterRotation.accessToken).kid, rotated.kid)

    const response = await call('GET', '/api/whoami', afterRotation.accessToken)
    assert.equal(response.status, 200, await response.clone().text())
    assert.equal((await call('GET', '/api/whoami', before.accessToken)).status, 200, 'tokens of the old key still pass')
  })
})

describe('the HTTP contract of user-service', () => {
  test('documents every route, public and internal, with its request, responses and problem codes', async () => {
    const database = await createTestDatabase()
    const user = await startUserService(database)
    try {
      const { publicApp, internalApp } = createServiceApps(
        { service: 'user-service', logger: testLogger, metrics: createMetricsRegistry('user-service') },
        { publicRoutes: user.service.publicRoutes, internalRoutes: user.service.internalRoutes },
      )
      await assertEveryRouteDocumented(publicApp)
      assert.ok(internalApp)
      await assertEveryRouteDocumented(internalApp, INTERNAL_OPENAPI_PATH)
    } finally {
      await user.close()
      await database.drop()
    }
  })
})
