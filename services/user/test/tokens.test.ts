import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { INTERNAL_CREDENTIAL_HEADER } from '@timedeal/platform'
import { decodeProtectedHeader, SignJWT } from 'jose'
import { QueryTypes } from 'sequelize'
import {
  createTestDatabase,
  INTERNAL_SECRET,
  newDataKey,
  signIn,
  startUserService,
  type TestDatabase,
  type TestUserService,
  verifiedAccount,
} from './support.ts'

interface Jwks {
  keys: { kid: string; kty: string; crv: string; alg: string; use: string; x: string; d?: string }[]
}

const problemCode = async (response: Response) => ((await response.json()) as { code: string }).code
const internal = { [INTERNAL_CREDENTIAL_HEADER]: INTERNAL_SECRET }

describe('access tokens and the signing keys behind them (real MariaDB)', () => {
  let database: TestDatabase
  let base: TestUserService

  before(async () => {
    database = await createTestDatabase()
    base = await startUserService(database, { SIGNING_KEY_PUBLISH_AHEAD_SECONDS: '2' })
  })

  after(async () => {
    await base.close()
    await database.drop()
  })

  /** A token like the service's own, but with the claims and key the test chooses. */
  const forge = (
    claims: { sub: string; role: string },
    key: { kid: string; privateKey: Parameters<SignJWT['sign']>[0] },
    times: { iat: number; exp: number },
  ) =>
    new SignJWT({ role: claims.role })
      .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: 'at+jwt' })
      .setIssuer('timedeal-user')
      .setAudience('timedeal')
      .setSubject(claims.sub)
      .setIssuedAt(times.iat)
      .setExpirationTime(times.exp)
      .sign(key.privateKey)

  test('the JWKS publishes Ed25519 public keys only, and the key that signs tokens is among them', async () => {
    const user = base.newClient()
    const response = await user.call('GET', '/.well-known/jwks.json')
    assert.equal(response.status, 200)
    const jwks = (await response.json()) as Jwks
    assert.ok(jwks.keys.length >= 1)
    for (const key of jwks.keys) {
      assert.deepEqual([key.kty, key.crv, key.alg, key.use], ['OKP', 'Ed25519', 'EdDSA', 'sig'])
      assert.equal(key.d, undefined, 'no private part')
    }
    const { email, password } = await verifiedAccount(user)
    const session = await signIn(user, email, password)
    const { kid } = decodeProtectedHeader(session.accessToken)
    assert.ok(jwks.keys.some((key) => key.kid === kid))
  })

  test('private signing keys are stored encrypted', async () => {
    const rows = await database.sequelize.query<{ private_key_encrypted: string }>(
      'SELECT private_key_encrypted FROM signing_keys',
      { type: QueryTypes.SELECT },
    )
    assert.ok(rows.length >= 1)
    for (const row of rows) {
      assert.doesNotMatch(row.private_key_encrypted, /PRIVATE KEY/)
      assert.match(row.private_key_encrypted, /^[\w-]+:[\w-]+:[\w-]+:[\w-]+$/)
    }
  })

  test('an expired access token is refused with TOKEN_EXPIRED and a Bearer challenge', async () => {
    const user = base.newClient()
    const { email, password } = await verifiedAccount(user)
    const session = await signIn(user, email, password)
    const key = await user.service.signingKeys.signingKey()
    const now = Math.floor(Date.now() / 1000)
    const expired = await forge({ sub: session.user.id, role: 'BUYER' }, key, { iat: now - 3600, exp: now - 600 })
    const response = await user.call('GET', '/api/users/me', { token: expired })
    assert.equal(response.status, 401)
    assert.equal(await problemCode(response), 'TOKEN_EXPIRED')
    assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer error="invalid_token"/)
  })

  test('a token signed by another key is refused, whether it names a known key id or not', async () => {
    const user = base.newClient()
    const { email, password } = await verifiedAccount(user)
    const session = await signIn(user, email, password)
    const { kid } = decodeProtectedHeader(session.accessToken)
    const { privateKey } = generateKeyPairSync('ed25519')
    const now = Math.floor(Date.now() / 1000)
    const times = { iat: now, exp: now + 600 }
    for (const claimedKid of [kid ?? '', 'some-other-key']) {
      const forged = await forge({ sub: session.user.id, role: 'SELLER' }, { kid: claimedKid, privateKey }, times)
      const response = await user.call('GET', '/api/users/me', { token: forged })
      assert.equal(response.status, 401)
      assert.equal(await problemCode(response), 'TOKEN_INVALID')
    }
  })

  test('a request without a token is challenged', async () => {
    const response = await base.newClient().call('GET', '/api/users/me')
    assert.equal(response.status, 401)
    assert.equal(await problemCode(response), 'UNAUTHENTICATED')
    assert.equal(response.headers.get('www-authenticate'), 'Bearer')
  })

  test('a rotation publishes the next key ahead, switches to it, and keeps the old key valid', async () => {
    const user = base.newClient()
    const { email, password } = await verifiedAccount(user)
    const before = await signIn(user, email, password)
    const oldKid = decodeProtectedHeader(before.accessToken).kid

    const rotate = await user.callInternal('POST', '/internal/signing-keys/rotate', { headers: internal })
    assert.equal(rotate.status, 201)
    const rotated = (await rotate.json()) as { kid: string; activatesAt: string }
    const published = (await (await user.call('GET', '/.well-known/jwks.json')).json()) as Jwks
    assert.ok(
      published.keys.some((key) => key.kid === rotated.kid),
      'the next key is published at once',
    )
    assert.ok(published.keys.some((key) => key.kid === oldKid))

    if (Date.now() < Date.parse(rotated.activatesAt)) {
      const during = await signIn(user, email, password)
      assert.equal(decodeProtectedHeader(during.accessToken).kid, oldKid, 'the old key signs until the switch')
    }
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Date.parse(rotated.activatesAt) - Date.now() + 50)))
    const afterSwitch = await signIn(user, email, password)
    assert.equal(decodeProtectedHeader(afterSwitch.accessToken).kid, rotated.kid)

    assert.equal((await user.call('GET', '/api/users/me', { token: before.accessToken })).status, 200)
    assert.equal((await user.call('GET', '/api/users/me', { token: afterSwitch.accessToken })).status, 200)
  })

  test('internal routes need the service credential, not a user token', async () => {
    const user = base.newClient()
    const { email, password } = await verifiedAccount(user)
    const session = await signIn(user, email, password)
    const withToken = await user.callInternal('POST', '/internal/signing-keys/rotate', { token: session.accessToken })
    assert.equal(withToken.status, 401)
    assert.equal(await problemCode(withToken), 'SERVICE_CREDENTIAL_REQUIRED')
    const wrong = await user.callInternal('GET', `/internal/dev/mail?to=${encodeURIComponent(email)}`, {
      headers: { [INTERNAL_CREDENTIAL_HEADER]: 'x'.repeat(INTERNAL_SECRET.length) },
    })
    assert.equal(wrong.status, 403)
    assert.equal(await problemCode(wrong), 'SERVICE_CREDENTIAL_INVALID')
  })

  test('the dev mail route is off when mail goes out by SMTP', async () => {
    const smtp = await startUserService(database, { MAILER: 'smtp', SMTP_URL: 'smtp://127.0.0.1:2525' })
    try {
      const response = await smtp.callInternal('GET', '/internal/dev/mail?to=a@example.test', { headers: internal })
      assert.equal(response.status, 404)
      assert.equal(await problemCode(response), 'MAIL_SINK_DISABLED')
    } finally {
      await smtp.close()
    }
  })

  test('the public listener never serves internal routes, not even with the credential', async () => {
    const user = base.newClient()
    for (const [method, path] of [
      ['POST', '/internal/signing-keys/rotate'],
      ['GET', '/internal/dev/mail?to=a@example.test'],
    ] as const) {
      const response = await user.call(method, path, { headers: internal })
      assert.equal(response.status, 404, path)
      assert.equal(response.headers.get('content-type'), 'application/problem+json')
      assert.equal(await problemCode(response), 'NOT_FOUND')
    }
  })

  test('in production the dev mail route does not exist at all', async () => {
    // A database of its own: its signing keys are sealed with the production data key.
    const own = await createTestDatabase()
    const production = await startUserService(own, {
      TIMEDEAL_ENV: 'production',
      MAILER: 'smtp',
      SMTP_URL: 'smtp://127.0.0.1:2525',
      DATA_KEYS: newDataKey('prod1'),
      // The test hands the service a connected client; the setting only has to be its own.
      MYSQL_PASSWORD: 'not-the-development-password',
    })
    try {
      const response = await production.callInternal('GET', '/internal/dev/mail?to=a@example.test', {
        headers: internal,
      })
      assert.equal(response.status, 404)
      assert.equal(await problemCode(response), 'NOT_FOUND')
      const rotate = await production.callInternal('POST', '/internal/signing-keys/rotate', { headers: internal })
      assert.equal(rotate.status, 201, 'the other internal routes stay')
    } finally {
      await production.close()
      await own.drop()
    }
  })
})
