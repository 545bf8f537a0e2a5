import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import {
  codeIn,
  createTestDatabase,
  type SessionBody,
  signIn,
  startUserService,
  type TestDatabase,
  type TestUserService,
  uniqueEmail,
  verifiedAccount,
} from './support.ts'

const problemCode = async (response: Response) => ((await response.json()) as { code: string }).code

describe('sign-in, refresh-token rotation and sign-out (real MariaDB and Redis)', () => {
  let database: TestDatabase
  let base: TestUserService

  before(async () => {
    database = await createTestDatabase()
    base = await startUserService(database, { LOGIN_LIMIT_PER_ACCOUNT: '4', LOGIN_LIMIT_PER_ADDRESS: '8' })
  })

  after(async () => {
    await base.close()
    await database.drop()
  })

  const refresh = (user: TestUserService, refreshToken: string | undefined) =>
    user.call('POST', '/api/auth/refresh', { body: { refreshToken } })

  test('sign-up, mailed code, verify, sign-in, refresh, reuse detected, family revoked, sign-out', async () => {
    const user = base.newClient()
    const email = uniqueEmail()
    const password = 'correct horse battery'
    assert.equal(
      (await user.call('POST', '/api/users', { body: { email, password, name: 'Grace', role: 'SELLER' } })).status,
      202,
    )
    const code = codeIn(await user.latestMail(email))
    assert.equal((await user.call('POST', '/api/users/verify', { body: { email, code, password } })).status, 200)

    const first = await signIn(user, email, password)
    assert.equal(first.tokenType, 'Bearer')
    assert.equal(first.user.email, email)
    assert.equal(first.user.role, 'SELLER')
    assert.equal(first.expiresIn, 900)
    const header = decodeProtectedHeader(first.accessToken)
    assert.equal(header.alg, 'EdDSA')
    assert.equal(header.typ, 'at+jwt')
    const claims = decodeJwt(first.accessToken)
    assert.equal(claims.sub, first.user.id)
    assert.equal(claims.role, 'SELLER')
    assert.equal(claims.iss, 'timedeal-user')
    assert.equal(claims.aud, 'timedeal')
    assert.ok(first.refreshToken)

    const me = await user.call('GET', '/api/users/me', { token: first.accessToken })
    assert.equal(me.status, 200)
    assert.equal(((await me.json()) as { email: string }).email, email)

    const rotated = await refresh(user, first.refreshToken)
    assert.equal(rotated.status, 200)
    const second = (await rotated.json()) as SessionBody
    assert.notEqual(second.refreshToken, first.refreshToken)
    assert.equal(decodeJwt(second.accessToken).sid, claims.sid, 'a refresh stays in the same session')

    const replayed = await refresh(user, first.refreshToken)
    assert.equal(replayed.status, 401)
    assert.equal(await problemCode(replayed), 'REFRESH_TOKEN_REUSED')
    const afterTheft = await refresh(user, second.refreshToken)
    assert.equal(afterTheft.status, 401, 'the newest token of the family is revoked too')
    assert.equal(await problemCode(afterTheft), 'REFRESH_TOKEN_REVOKED')

    const again = await signIn(user, email, password)
    const signOut = await user.call('POST', '/api/auth/logout', { body: { refreshToken: again.refreshToken } })
    assert.equal(signOut.status, 204)
    const afterSignOut = await refresh(user, again.refreshToken)
    assert.equal(afterSignOut.status, 401)
    assert.equal(await problemCode(afterSignOut), 'REFRESH_TOKEN_REVOKED')
  })

  test('browsers get the refresh token as a Secure, HttpOnly, SameSite=Strict cookie scoped to /api/auth', async () => {
    const user = base.newClient()
    const { email, password } = await verifiedAccount(user)
    const login = await user.call('POST', '/api/auth/login', {
      body: { email, password, refreshTokenTransport: 'cookie' },
    })
    assert.equal(login.status, 200)
    const body = (await login.json()) as SessionBody
    assert.equal(body.refreshToken, undefined, 'the token is not readable by scripts')
    const cookie = login.headers.get('set-cookie') ?? ''
    assert.match(cookie, /^__Secure-timedeal_refresh=[\w-]+;/)
    for (const attribute of ['HttpOnly', 'Secure', 'SameSite=Strict', 'Path=/api/auth']) {
      assert.ok(cookie.includes(attribute), `${attribute} in ${cookie}`)
    }
    const pair = cookie.split(';')[0] ?? ''

    const rotated = await user.call('POST', '/api/auth/refresh', { headers: { cookie: pair } })
    assert.equal(rotated.status, 200)
    const nextPair = (rotated.headers.get('set-cookie') ?? '').split(';')[0] ?? ''
    assert.notEqual(nextPair, pair)

    const replayed = await user.call('POST', '/api/auth/refresh', { headers: { cookie: pair } })
    assert.equal(replayed.status, 401)
    assert.match(replayed.headers.get('set-cookie') ?? '', /Max-Age=0/, 'a refused cookie is cleared')

    const signOut = await user.call('POST', '/api/auth/logout', { headers: { cookie: nextPair } })
    assert.equal(signOut.status, 204)
    assert.match(signOut.headers.get('set-cookie') ?? '', /Max-Age=0/)
  })

  test('a browser posting its refresh cookie with an empty JSON body is refreshed, not refused as malformed JSON', async () => {
    const user = base.newClient()
    const { email, password } = await verifiedAccount(user)
    const login = await user.call('POST', '/api/auth/login', {
      body: { email, password, refreshTokenTransport: 'cookie' },
    })
    const pair = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? ''
    const rotated = await user.call('POST', '/api/auth/refresh', {
      headers: { cookie: pair, 'content-type': 'application/json', 'content-length': '0' },
      body: '',
    })
    assert.equal(rotated.status, 200, await rotated.clone().text())
  })

  test('a refresh without a token is a 400, an unknown one a 401', async () => {
    const user = base.newClient()
    const missing = await user.call('POST', '/api/auth/refresh')
    assert.equal(missing.status, 400)
    assert.equal(await problemCode(missing), 'REFRESH_TOKEN_MISSING')
    const unknown = await refresh(user, 'made-up-token')
    assert.equal(unknown.status, 401)
    assert.equal(await problemCode(unknown), 'REFRESH_TOKEN_INVALID')
  })

  test('a wrong password and an unknown address get the very same answer', async () => {
    const user = base.newClient()
    const { email } = await verifiedAccount(user)
    const wrongPassword = await user.call('POST', '/api/auth/login', { body: { email, password: 'not the password' } })
    const unknownEmail = await user.call('POST', '/api/auth/login', {
      body: { email: uniqueEmail(), password: 'not the password' },
    })
    assert.equal(wrongPassword.status, 401)
    assert.equal(unknownEmail.status, 401)
    const strip = (body: Record<string, unknown>) => ({ ...body, instance: undefined })
    assert.deepEqual(
      strip((await wrongPassword.json()) as Record<string, unknown>),
      strip((await unknownEmail.json()) as Record<string, unknown>),
    )
  })

  test('an unverified account cannot sign in, and says so only to someone who knows the password', async () => {
    const user = base.newClient()
    const email = uniqueEmail()
    const password = 'correct horse battery'
    await user.call('POST', '/api/users', { body: { email, password, name: 'Pending', role: 'BUYER' } })
    const withPassword = await user.call('POST', '/api/auth/login', { body: { email, password } })
    assert.equal(withPassword.status, 403)
    assert.equal(await problemCode(withPassword), 'EMAIL_NOT_VERIFIED')
    const withoutPassword = await user.call('POST', '/api/auth/login', { body: { email, password: 'a wrong guess' } })
    assert.equal(withoutPassword.status, 401)
    assert.equal(await problemCode(withoutPassword), 'INVALID_CREDENTIALS')
  })

  test('too many attempts on one account are refused with 429 and Retry-After, even with the right password', async () => {
    const user = base.newClient()
    const { email, password } = await verifiedAccount(user)
    for (let attempt = 0; attempt < 4; attempt++) {
      // Each guess from another address: the account's own limit is what stops them.
      const response = await user.newClient().call('POST', '/api/auth/login', { body: { email, password: 'guess' } })
      assert.equal(response.status, 401)
    }
    const limited = await user.newClient().call('POST', '/api/auth/login', { body: { email, password } })
    assert.equal(limited.status, 429)
    assert.equal(await problemCode(limited), 'RATE_LIMITED')
    const retryAfter = Number(limited.headers.get('retry-after'))
    assert.ok(retryAfter > 0 && retryAfter <= base.settings.LOGIN_LIMIT_WINDOW_SECONDS)
  })

  test('too many attempts from one address are refused, whichever accounts they target', async () => {
    const user = base.newClient()
    for (let attempt = 0; attempt < 8; attempt++) {
      const response = await user.call('POST', '/api/auth/login', {
        body: { email: uniqueEmail(), password: 'guess' },
      })
      assert.equal(response.status, 401)
    }
    const limited = await user.call('POST', '/api/auth/login', { body: { email: uniqueEmail(), password: 'guess' } })
    assert.equal(limited.status, 429)
    const elsewhere = await user.newClient().call('POST', '/api/auth/login', {
      body: { email: uniqueEmail(), password: 'guess' },
    })
    assert.equal(elsewhere.status, 401, 'other addresses are not affected')
  })

  test('signing in clears the account counter, so its owner is not locked out by old typos', async () => {
    const user = base.newClient()
    const { email, password } = await verifiedAccount(user)
    for (let round = 0; round < 3; round++) {
      for (let typo = 0; typo < 3; typo++) {
        await user.newClient().call('POST', '/api/auth/login', { body: { email, password: 'typo typo' } })
      }
      await signIn(user.newClient(), email, password)
    }
  })

  test('malformed sign-ins are a 400 naming the bad fields', async () => {
    const user = base.newClient()
    const response = await user.call('POST', '/api/auth/login', {
      body: { email: 42, refreshTokenTransport: 'pigeon' },
    })
    assert.equal(response.status, 400)
    const problem = (await response.json()) as { errors: { field: string }[] }
    assert.deepEqual(problem.errors.map((error) => error.field).sort(), ['email', 'password', 'refreshTokenTransport'])
  })

  test('changing the password ends the other sessions, keeps this one, and retires the old password', async () => {
    const user = base.newClient()
    const { email, password } = await verifiedAccount(user)
    const here = await signIn(user, email, password)
    const elsewhere = await signIn(user, email, password)
    const wrong = await user.call('POST', '/api/users/me/password', {
      token: here.accessToken,
      body: { currentPassword: 'not my password', newPassword: 'a brand new passphrase' },
    })
    assert.equal(wrong.status, 403)
    assert.equal(await problemCode(wrong), 'CURRENT_PASSWORD_WRONG')
    const changed = await user.call('POST', '/api/users/me/password', {
      token: here.accessToken,
      body: { currentPassword: password, newPassword: 'a brand new passphrase' },
    })
    assert.equal(changed.status, 204)
    assert.equal((await refresh(user, elsewhere.refreshToken)).status, 401)
    assert.equal((await refresh(user, here.refreshToken)).status, 200)
    const oldPassword = await user.call('POST', '/api/auth/login', { body: { email, password } })
    assert.equal(oldPassword.status, 401)
    await signIn(user, email, 'a brand new passphrase')
  })

  test('a new password must follow the password policy', async () => {
    const user = base.newClient()
    const { email, password } = await verifiedAccount(user)
    const session = await signIn(user, email, password)
    const response = await user.call('POST', '/api/users/me/password', {
      token: session.accessToken,
      body: { currentPassword: password, newPassword: 'short' },
    })
    assert.equal(response.status, 400)
  })

  test('sign-in outcomes are counted for /metrics', async () => {
    const user = base.newClient()
    const { email, password } = await verifiedAccount(user)
    await signIn(user, email, password)
    await user.call('POST', '/api/auth/login', { body: { email, password: 'not the password' } })
    const text = await (await user.call('GET', '/metrics')).text()
    assert.match(text, /user_sign_ins_total\{[^}]*outcome="success"[^}]*\} \d+/)
    assert.match(text, /user_sign_ins_total\{[^}]*outcome="invalid_credentials"[^}]*\} \d+/)
  })
})
