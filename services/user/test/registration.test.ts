import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { QueryTypes } from 'sequelize'
import {
  codeIn,
  createTestDatabase,
  signIn,
  startUserService,
  type TestDatabase,
  type TestUserService,
  uniqueEmail,
} from './support.ts'

describe('sign-up and e-mail verification (real MariaDB and Redis)', () => {
  let database: TestDatabase
  let base: TestUserService

  before(async () => {
    database = await createTestDatabase()
    base = await startUserService(database)
  })

  after(async () => {
    await base.close()
    await database.drop()
  })

  const signUpBody = (email: string, extra: Record<string, unknown> = {}) => ({
    email,
    password: 'correct horse battery',
    name: 'Ada',
    role: 'BUYER',
    ...extra,
  })

  test('a sign-up mails a 6-digit code, and the code verifies the address', async () => {
    const user = base.newClient()
    const email = uniqueEmail()
    const response = await user.call('POST', '/api/users', { body: signUpBody(email) })
    assert.equal(response.status, 202)
    assert.equal(((await response.json()) as { status: string }).status, 'VERIFICATION_SENT')
    const mail = await user.latestMail(email)
    assert.match(mail?.subject ?? '', /verification code/)
    const verified = await user.call('POST', '/api/users/verify', {
      body: { email, code: codeIn(mail), password: 'correct horse battery' },
    })
    assert.equal(verified.status, 200)
    assert.deepEqual(await verified.json(), { status: 'VERIFIED' })
  })

  test('the address is matched whatever its letter case and surrounding spaces', async () => {
    const user = base.newClient()
    const email = uniqueEmail()
    await user.call('POST', '/api/users', { body: signUpBody(`  ${email.toUpperCase()} `) })
    const code = codeIn(await user.latestMail(email))
    const verified = await user.call('POST', '/api/users/verify', {
      body: { email: email.toUpperCase(), code, password: 'correct horse battery' },
    })
    assert.equal(verified.status, 200)
  })

  test('the code is stored only as a keyed digest', async () => {
    const user = base.newClient()
    const email = uniqueEmail()
    await user.call('POST', '/api/users', { body: signUpBody(email) })
    const code = codeIn(await user.latestMail(email))
    const [row] = await database.sequelize.query<{ code_digest: string }>(
      'SELECT code_digest FROM email_verifications WHERE email = ?',
      { replacements: [email], type: QueryTypes.SELECT },
    )
    assert.ok(row)
    assert.ok(!row.code_digest.includes(code))
  })

  test('passwords are stored as argon2id hashes only', async () => {
    const user = base.newClient()
    const email = uniqueEmail()
    await user.call('POST', '/api/users', { body: signUpBody(email) })
    const [row] = await database.sequelize.query<{ password_hash: string }>(
      'SELECT password_hash FROM sign_ups WHERE email = ?',
      { replacements: [email], type: QueryTypes.SELECT },
    )
    assert.match(row?.password_hash ?? '', /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/)
    assert.ok(!row?.password_hash.includes('correct horse battery'))
  })

  test('signing up with a registered address answers the same and mails the owner a notice, not a code', async () => {
    const user = base.newClient()
    const email = uniqueEmail()
    const first = await user.call('POST', '/api/users', { body: signUpBody(email) })
    await user.call('POST', '/api/users/verify', {
      body: { email, code: codeIn(await user.latestMail(email)), password: 'correct horse battery' },
    })
    const again = await user.call('POST', '/api/users', {
      body: signUpBody(email, { password: 'another long password' }),
    })
    assert.equal(again.status, first.status)
    assert.deepEqual(await again.json(), await first.json())
    const notice = await user.latestMail(email)
    assert.match(notice?.subject ?? '', /tried to sign up/)
    assert.doesNotMatch(notice?.text ?? '', /\b\d{6}\b/)
  })

  test('signing up again before verifying sends a new code and the old one stops working', async () => {
    const user = base.newClient()
    const email = uniqueEmail()
    await user.call('POST', '/api/users', { body: signUpBody(email) })
    const firstCode = codeIn(await user.latestMail(email))
    await user.call('POST', '/api/users', { body: signUpBody(email) })
    const secondCode = codeIn(await user.latestMail(email))
    if (firstCode !== secondCode) {
      const stale = await user.call('POST', '/api/users/verify', {
        body: { email, code: firstCode, password: 'correct horse battery' },
      })
      assert.equal(stale.status, 400)
    }
    const fresh = await user.call('POST', '/api/users/verify', {
      body: { email, code: secondCode, password: 'correct horse battery' },
    })
    assert.equal(fresh.status, 200)
  })

  test('a second sign-up of an unverified address cannot take it over: the victim verifies with their own password', async () => {
    const email = uniqueEmail()
    const victim = base.newClient()
    const attacker = base.newClient()
    const victimPassword = 'the victim passphrase'
    const attackerPassword = 'the attacker passphrase'
    const victimSignUp = signUpBody(email, { password: victimPassword, name: 'Victim', role: 'BUYER' })
    assert.equal((await victim.call('POST', '/api/users', { body: victimSignUp })).status, 202)
    const attackerSignUp = signUpBody(email, { password: attackerPassword, name: 'Mallory', role: 'SELLER' })
    assert.equal((await attacker.call('POST', '/api/users', { body: attackerSignUp })).status, 202)

    // The newest code is the one the attacker's sign-up sent, to the victim's mailbox.
    const code = codeIn(await victim.latestMail(email))
    const verified = await victim.call('POST', '/api/users/verify', { body: { email, code, password: victimPassword } })
    assert.equal(verified.status, 200)

    const attackerSignIn = await attacker.newClient().call('POST', '/api/auth/login', {
      body: { email, password: attackerPassword },
    })
    assert.equal(attackerSignIn.status, 401, "the attacker's password never works")
    const session = await signIn(victim.newClient(), email, victimPassword)
    assert.equal(session.user.role, 'BUYER', 'the victim gets their own role')
    assert.equal(session.user.name, 'Victim')
  })

  test('the right code with a password of no sign-up verifies nothing and spends a try', async () => {
    const user = base.newClient()
    const email = uniqueEmail()
    await user.call('POST', '/api/users', { body: signUpBody(email) })
    const code = codeIn(await user.latestMail(email))
    const wrongPassword = await user.call('POST', '/api/users/verify', {
      body: { email, code, password: 'a password nobody used' },
    })
    assert.equal(wrongPassword.status, 400)
    assert.equal(((await wrongPassword.json()) as { code: string }).code, 'VERIFICATION_FAILED')
    const [row] = await database.sequelize.query<{ n: number }>(
      'SELECT COUNT(*) AS n FROM users WHERE email = ? AND email_verified_at IS NOT NULL',
      { replacements: [email], type: QueryTypes.SELECT },
    )
    assert.equal(Number(row?.n), 0)
    const right = await user.call('POST', '/api/users/verify', {
      body: { email, code, password: 'correct horse battery' },
    })
    assert.equal(right.status, 200)
  })

  test('verifying needs the password of the sign-up', async () => {
    const user = base.newClient()
    const response = await user.call('POST', '/api/users/verify', { body: { email: uniqueEmail(), code: '123456' } })
    assert.equal(response.status, 400)
    const problem = (await response.json()) as { code: string; errors: { field: string }[] }
    assert.equal(problem.code, 'VALIDATION_FAILED')
    assert.deepEqual(
      problem.errors.map((error) => error.field),
      ['password'],
    )
  })

  test('a code allows five wrong guesses, then even the right code fails', async () => {
    const user = base.newClient()
    const email = uniqueEmail()
    await user.call('POST', '/api/users', { body: signUpBody(email) })
    const code = codeIn(await user.latestMail(email))
    const wrong = code === '000000' ? '000001' : '000000'
    for (let attempt = 0; attempt < 5; attempt++) {
      const response = await user.call('POST', '/api/users/verify', {
        body: { email, code: wrong, password: 'correct horse battery' },
      })
      assert.equal(response.status, 400)
      assert.equal(((await response.json()) as { code: string }).code, 'VERIFICATION_FAILED')
    }
    const right = await user.call('POST', '/api/users/verify', {
      body: { email, code, password: 'correct horse battery' },
    })
    assert.equal(right.status, 400)
  })

  test('verifying an unknown address fails exactly like a wrong code', async () => {
    const user = base.newClient()
    const response = await user.call('POST', '/api/users/verify', {
      body: { email: uniqueEmail(), code: '123456', password: 'correct horse battery' },
    })
    assert.equal(response.status, 400)
    assert.equal(((await response.json()) as { code: string }).code, 'VERIFICATION_FAILED')
  })

  test('malformed sign-ups are a 400 naming every bad field', async () => {
    const user = base.newClient()
    const response = await user.call('POST', '/api/users', {
      body: { email: 'not-an-address', password: 'short', name: '', role: 'ADMIN' },
    })
    assert.equal(response.status, 400)
    assert.match(response.headers.get('content-type') ?? '', /application\/problem\+json/)
    const problem = (await response.json()) as { code: string; errors: { field: string; message: string }[] }
    assert.equal(problem.code, 'VALIDATION_FAILED')
    assert.deepEqual(problem.errors.map((error) => error.field).sort(), ['email', 'name', 'password', 'role'])
  })

  test('a weak password is refused with the reason', async () => {
    const user = base.newClient()
    const response = await user.call('POST', '/api/users', {
      body: signUpBody(uniqueEmail(), { password: 'password123' }),
    })
    assert.equal(response.status, 400)
    assert.match(((await response.json()) as { detail: string }).detail, /password: this password is too well known/)
  })

  test('a body that is not JSON is a 400, one that is not declared JSON a 415', async () => {
    const user = base.newClient()
    const broken = await user.call('POST', '/api/users', { body: '{"email":' })
    assert.equal(broken.status, 400)
    assert.equal(((await broken.json()) as { code: string }).code, 'MALFORMED_JSON')
    const form = await user.call('POST', '/api/users', { body: 'email=a', headers: { 'content-type': 'text/plain' } })
    assert.equal(form.status, 415)
  })

  test('a malformed code is a validation error, not a spent attempt', async () => {
    const user = base.newClient()
    const response = await user.call('POST', '/api/users/verify', {
      body: { email: uniqueEmail(), code: '12ab', password: 'correct horse battery' },
    })
    assert.equal(response.status, 400)
    assert.equal(((await response.json()) as { code: string }).code, 'VALIDATION_FAILED')
  })

  test('sign-ups for one address are limited, so nobody can flood a mailbox', async () => {
    const user = base.newClient()
    const email = uniqueEmail()
    const limit = user.settings.SIGNUP_LIMIT_PER_EMAIL
    for (let attempt = 0; attempt < limit; attempt++) {
      const response = await user.newClient().call('POST', '/api/users', { body: signUpBody(email) })
      assert.equal(response.status, 202)
    }
    const refused = await user.newClient().call('POST', '/api/users', { body: signUpBody(email) })
    assert.equal(refused.status, 429)
    assert.ok(Number(refused.headers.get('retry-after')) > 0)
  })
})
